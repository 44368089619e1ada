"""``[mpc]``: the NMPC controller, its CVs (``[[mpc.cvs]]``) and MVs (``[[mpc.mvs]]``).

Everything :class:`mpc.config.MpcConfig` takes from a file has a key here
(general economic cost functions are Python-only).

Weights and penalties are dimensionless. A deviation is first divided by the
signal's *nominal* value (its scaling, ``rtompc plants NAME`` shows it), then
squared and multiplied by the weight, at every stage of the horizon:
``weight * ((y - target) / nominal)**2``; a move costs
``move_weight * ((u_k - u_(k-1)) / nominal)**2``; a soft-limit violation
``l1_penalty * (violation / nominal) + l2_penalty * (violation / nominal)**2``.
Example (Van de Vusse): c_B has nominal 1000 mol/m³, so ``weight = 10`` makes
an error of 0.1 mol/l (a tenth of the nominal) cost 10 × 0.1² = 0.1 per stage;
f_dil has nominal 0.00556 1/s (20 1/h), so ``move_weight = 0.1`` makes a move
of 2 1/h (a tenth) cost 0.1 × 0.1² = 0.001: the controller moves f_dil freely
to remove c_B errors. To choose them, write down the error you would accept on
each CV and the move you would accept on each MV as fractions of the nominals,
and pick weights so that each of them costs about the same; raising a weight
a hundredfold makes that error about ten times smaller relative to the others.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mpc.config import Discretisation, QpSolver, Transcription
from rtompc.config.fields import (
    Name,
    PositiveSeconds,
    Section,
    SignalDifference,
    SignalNumber,
    SignalTable,
    convert_signal,
)


class CvConfig(SignalTable):
    """One controlled variable (a model output). It needs an objective: a ``weight`` with a
    ``target``, a ``zone`` with a ``zone_weight``, or soft limits with a penalty."""

    name: Name
    """Output signal name of the controller's model."""
    weight: float = Field(default=0.0, ge=0)
    """Tracking weight on ((y - target) / nominal)² per stage (nominal: the signal's scaling).
    Example: nominal 1000 mol/m³, weight 10: an error of 100 mol/m³ costs 10·0.1² = 0.1."""
    target: SignalNumber | None = None
    """Setpoint (SI or with unit, ``"1.09 mol/l"``); needed with ``weight > 0``; the RTO may
    replace it."""
    lower: SignalNumber = -math.inf
    """Soft lower limit (violations cost ``l1_penalty``/``l2_penalty``)."""
    upper: SignalNumber = math.inf
    """Soft upper limit (``"126.85 degC"``)."""
    l1_penalty: float = Field(default=0.0, ge=0)
    """Linear (exact) penalty on the limit violation divided by the nominal, per stage. An exact
    penalty holds the limit whenever possible if it exceeds the largest multiplier; 100-1000
    is typical."""
    l2_penalty: float = Field(default=0.0, ge=0)
    """Quadratic penalty on (violation / nominal)² per stage; give both sides a small one."""
    zone: tuple[SignalNumber, SignalNumber] | None = None
    """Zone control: no cost inside [low, high], ``zone_weight`` outside."""
    zone_weight: float = Field(default=0.0, ge=0)
    """Quadratic penalty on (distance outside the zone / nominal)² per stage."""
    hard_lower: SignalNumber = -math.inf
    """Hard lower bound, held from the second predicted node on (the first node is soft with
    ``mpc.hard_bound_penalty`` so a disturbed start never makes the problem infeasible)."""
    hard_upper: SignalNumber = math.inf
    """Hard upper bound (see ``hard_lower``)."""
    linear_cost: float = 0.0
    """Economic stage cost per SI unit of the output, per stage (e.g. -1 to maximise it)."""
    terminal_linear_cost: float = 0.0
    """Economic cost per SI unit of the output at the end of the horizon."""
    cost_scale: Annotated[SignalDifference, Field(gt=0)] | None = None
    """The divisor of the tracking error instead of the nominal: the cost is
    weight · ((y - target) / cost_scale)². Example: ``cost_scale = "1 degC"`` with
    ``weight = 0.25`` charges 0.25 per K² whatever the nominal is."""

    _unit_fields: ClassVar[dict[str, str]] = {
        "target": "value",
        "lower": "value",
        "upper": "value",
        "zone": "pair",
        "hard_lower": "value",
        "hard_upper": "value",
        "cost_scale": "difference",
    }

    @model_validator(mode="after")
    def _objective(self) -> CvConfig:
        if self.weight > 0 and self.target is None:
            raise ValueError(f"CV {self.name!r} has weight > 0 but no target")
        if self.lower > self.upper:
            raise ValueError(
                f"CV {self.name!r}: lower {self.lower:g} is above upper {self.upper:g}"
            )
        limits = math.isfinite(self.lower) or math.isfinite(self.upper)
        if limits and self.l1_penalty == 0 and self.l2_penalty == 0:
            raise ValueError(f"CV {self.name!r} has soft limits but no l1_penalty/l2_penalty")
        if self.zone is not None:
            if self.zone[0] > self.zone[1]:
                raise ValueError(f"CV {self.name!r}: zone low above high {self.zone}")
            if self.zone_weight <= 0:
                raise ValueError(f"CV {self.name!r}: a zone needs zone_weight > 0")
        if self.hard_lower > self.hard_upper:
            raise ValueError(f"CV {self.name!r}: hard_lower is above hard_upper")
        hard = math.isfinite(self.hard_lower) or math.isfinite(self.hard_upper)
        economic = self.linear_cost != 0 or self.terminal_linear_cost != 0
        if not (self.weight > 0 or self.zone is not None or limits or hard or economic):
            raise ValueError(
                f"CV {self.name!r} has no objective: give weight and target, a zone with "
                "zone_weight, lower/upper limits with l1_penalty/l2_penalty, hard limits or a "
                "linear_cost (a CV without one makes every QP fail)"
            )
        return self


class MvConfig(SignalTable):
    """One manipulated variable (a model input)."""

    name: Name
    """Input signal name of the controller's model."""
    weight: float = Field(default=0.0, ge=0)
    """Weight on ((u - target) / nominal)² per stage."""
    target: SignalNumber | None = None
    """Resting value (needed with ``weight > 0``)."""
    move_weight: float = Field(default=0.0, ge=0)
    """Move suppression: weight on ((u_k - u_(k-1)) / nominal)² per stage. Example: 0.1 lets
    the controller trade a 10 % move against a ~3 % CV error of weight 1."""
    lower: SignalNumber | None = None
    """Hard lower bound (default: the model's; must lie within the plant's)."""
    upper: SignalNumber | None = None
    """Hard upper bound (default: the model's; must lie within the plant's)."""
    linear_cost: float = 0.0
    """Economic stage cost per SI unit of the input, per stage (e.g. a feed price)."""
    cost_scale: Annotated[SignalDifference, Field(gt=0)] | None = None
    """The divisor of ``weight`` and ``move_weight`` deviations instead of the nominal."""
    max_rate_per_s: Annotated[SignalNumber, Field(gt=0)] | None = None
    """Hard rate limit |u_k - u_(k-1)| <= max_rate_per_s · sample time (SI per second, or
    with a unit: ``"5 kW/min"``)."""

    _unit_fields: ClassVar[dict[str, str]] = {
        "target": "value",
        "lower": "value",
        "upper": "value",
        "max_rate_per_s": "rate",
        "cost_scale": "difference",
    }

    @model_validator(mode="after")
    def _check(self) -> MvConfig:
        if self.weight > 0 and self.target is None:
            raise ValueError(f"MV {self.name!r} has weight > 0 but no target")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"MV {self.name!r}: lower {self.lower:g} above upper {self.upper:g}")
        return self


class SolverChoice(Enum):
    """NLP method of the controller."""

    RTI = "rti"
    """SQP real-time iterations on a Gauss-Newton QP (IPOPT for the first step and fallback)."""
    IPOPT = "ipopt"
    """Full NLP with IPOPT every step."""


def _tables_by_name(value: Any) -> Any:
    """``[mpc.cvs.c_b]`` tables (keyed by name) -> the ``[[mpc.cvs]]`` list form."""
    if isinstance(value, dict):
        return [{"name": k, **v} if isinstance(v, dict) else v for k, v in value.items()]
    return value


class MpcSection(Section):
    """``[mpc]``: the NMPC controller (everything :class:`mpc.config.MpcConfig` takes)."""

    horizon_steps: int = Field(ge=1)
    """Prediction horizon in samples."""
    sample_time_s: PositiveSeconds | None = None
    """Controller sample time (default: ``loop.sample_time_s``; the two must agree)."""
    solver: SolverChoice = SolverChoice.RTI
    """``rti`` (fast) or ``ipopt``."""
    qp_solver: QpSolver = QpSolver.AUTO
    """QP method of the RTI solver: ``auto``, ``hpipm``, ``condensed_qpoases``,
    ``condensed_daqp`` (whole-horizon transcription only) or ``piqp`` (stage transcription
    only); the opt-in ones are described in the README's NMPC section."""
    discretisation: Discretisation = Discretisation.RK4
    """``rk4`` or ``collocation`` (Radau)."""
    rk4_substeps: int = Field(default=2, ge=1, le=1000)
    """RK4 substeps per sample."""
    collocation_degree: int = Field(default=2, ge=1, le=5)
    """Radau collocation degree."""
    control_horizon_steps: int | None = Field(default=None, ge=1)
    """Free moves; after it the MVs are held (default: all)."""
    move_blocks: list[Annotated[int, Field(ge=1)]] | None = None
    """Move blocking: block lengths summing to ``horizon_steps``."""
    terminal_weight: float = Field(default=1.0, ge=0)
    """Multiplier of the CV weights at the end of the horizon."""
    ipopt_max_iter: int = Field(default=200, ge=0, le=100000)
    """IPOPT iteration limit."""
    ipopt_tol: float = Field(default=1e-10, gt=0)
    """IPOPT tolerance."""
    rti_iterations: int = Field(default=1, ge=1, le=100)
    """SQP iterations per step (1 = real-time iteration)."""
    rti_step_tol: float = Field(default=1e-9, gt=0)
    """Extra SQP iterations stop below this scaled step."""
    qp_max_iter: int = Field(default=100, ge=1, le=10000)
    """QP iteration limit."""
    codegen: bool | Literal["auto"] = "auto"
    """Compile the controller's functions to C in the background (needs gcc; the controller
    steps interpreted until gcc is done; cached by content). ``"auto"``: on when a C compiler
    is found, unless the environment variable ``RTOMPC_CODEGEN=off``."""
    codegen_budget_s: float = Field(default=120.0, ge=0)
    """Estimated gcc time (from the generated C's size, before gcc starts) above which a
    stage function stays interpreted."""
    cvs: list[CvConfig] = []
    """Controlled variables (``[[mpc.cvs]]``), each with an objective."""
    mvs: list[MvConfig] = []
    """Manipulated variables (``[[mpc.mvs]]``); unlisted MVs keep model bounds and no cost."""
    robust: dict[Name, list[SignalNumber]] | None = None
    """Robust multi-stage MPC: parameter name -> values of the scenario tree (SI or with
    units)."""
    robust_probabilities: dict[Name, list[Annotated[float, Field(ge=0)]]] | None = None
    """Probability of each value in ``robust`` (per parameter, summing to 1; default uniform)."""
    robust_horizon: int = Field(default=1, ge=1, le=100)
    """Stages at which the scenario tree branches (do-mpc's n_robust)."""
    transcription: Transcription = Transcription.AUTO
    """``auto``, ``whole_horizon`` or ``stagewise`` (per-stage functions, HPIPM; needed for
    hard bounds, economic costs, robust horizon > 1)."""
    ipopt_fallback: bool = True
    """Build IPOPT for a failed RTI step; false: cold starts by iterated SQP."""
    first_sqp_iterations: int = Field(default=30, ge=1, le=1000)
    """SQP iteration limit of a cold start without IPOPT."""
    hard_bound_penalty: float = Field(default=1e6, gt=0)
    """L1 penalty on the scaled violation of a hard CV bound at the first predicted node."""

    @field_validator("robust", mode="before")
    @classmethod
    def _robust_units(cls, v: Any, info: ValidationInfo) -> Any:
        if not isinstance(v, dict):
            return v
        return {
            k: [convert_signal(x, k, info) for x in vs] if isinstance(vs, list) else vs
            for k, vs in v.items()
        }

    @field_validator("cvs", "mvs", mode="before")
    @classmethod
    def _by_name(cls, v: Any) -> Any:
        return _tables_by_name(v)

    @model_validator(mode="after")
    def _check(self) -> MpcSection:
        for kind, items in (("cvs", self.cvs), ("mvs", self.mvs)):
            names = [c.name for c in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{kind}: {', '.join(dup)} listed twice")
        if self.move_blocks is not None and sum(self.move_blocks) != self.horizon_steps:
            raise ValueError(
                f"move_blocks sum to {sum(self.move_blocks)}, not horizon_steps "
                f"{self.horizon_steps}"
            )
        if self.robust_probabilities is not None:
            if self.robust is None or set(self.robust_probabilities) != set(self.robust):
                raise ValueError("robust_probabilities must name the parameters of robust")
            for k, ps in self.robust_probabilities.items():
                if len(ps) != len(self.robust[k]) or abs(sum(ps) - 1.0) > 1e-9:
                    raise ValueError(
                        f"robust_probabilities.{k}: {len(self.robust[k])} values summing to 1"
                    )
        if self.robust_horizon > self.horizon_steps:
            raise ValueError("robust_horizon exceeds horizon_steps")
        if self.control_horizon_steps is not None and self.move_blocks is not None:
            raise ValueError("give control_horizon_steps or move_blocks, not both")
        return self
