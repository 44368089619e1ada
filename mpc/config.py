"""Typed, frozen, validated configuration of a nonlinear MPC controller.

:class:`MpcConfig` describes the optimal control problem: horizon, sample time,
discretisation, per-CV and per-MV specifications (:class:`CvSpec`,
:class:`MvSpec`), move blocking, terminal cost and an optional robust scenario
tree (:class:`RobustSpec`). Intrinsic checks run at construction;
:meth:`MpcConfig.check_against` checks signal names and bounds against a
:class:`~plant_models.model.PlantModel`. Every error is a
:class:`~plant_models.errors.ConfigError` naming the field.

Weights are dimensionless: they multiply squared deviations divided by the
signal's nominal value (``w * ((y - target) / nominal) ** 2``), so the same
numbers work whatever the SI magnitudes. Slack penalties act on the violation
divided by the nominal, too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from plant_models.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from plant_models.model import PlantModel


class Discretisation(Enum):
    """How the continuous dynamics are discretised over one sample."""

    RK4 = "rk4"
    """Explicit Runge-Kutta 4 with ``rk4_substeps`` substeps per sample."""
    COLLOCATION = "collocation"
    """Radau IIA orthogonal collocation (do-mpc's default), collocation states as variables."""


class Transcription(Enum):
    """How the optimal control problem is written down and linearised."""

    AUTO = "auto"
    """WHOLE_HORIZON when the problem is nominal, small (the condensed qpOASES QP applies:
    at most ``mpc.condensing.CONDENSED_MAX_VARIABLES`` node controls, at most
    ``mpc.stagewise.WHOLE_HORIZON_MAX_STATES`` states) and uses no stage-structured-only
    feature; STAGEWISE otherwise (robust trees, large models, hard bounds, economic costs)."""
    WHOLE_HORIZON = "whole_horizon"
    """One SX expression of the whole horizon, QP data by one (optionally compiled) function;
    fastest on small nominal problems (condensed qpOASES with hot start)."""
    STAGEWISE = "stagewise"
    """One CasADi Function per stage (integrator and its sensitivities, cost, constraints),
    evaluated over the horizon and the scenarios with ``map``; collocation states eliminated
    numerically per stage; HPIPM on the stage-structured QP. Build time and memory linear in
    the horizon and the number of scenarios."""


class QpSolver(Enum):
    """How the RTI solver solves its Gauss-Newton QP."""

    AUTO = "auto"
    """Whole-horizon transcription: CONDENSED_DAQP for nominal MPC with at most 150 node
    controls (``mpc.condensing.CONDENSED_MAX_VARIABLES``) and no node-state bounds, else
    HPIPM (a condensed scenario tree or a long horizon gives a large dense QP). Stage
    transcription: CONDENSED_QPOASES or HPIPM (``mpc.stage_condensing.resolve_stage_qp``).
    Never PIQP."""
    HPIPM = "hpipm"
    """Stage-structured QP, interior point (HPIPM), collocation states condensed per stage."""
    CONDENSED_QPOASES = "condensed_qpoases"
    """QP condensed onto the node controls (inputs, slacks) in one compiled function, dense
    active-set solve with hot start (qpOASES). Needs node states without bounds."""
    CONDENSED_DAQP = "condensed_daqp"
    """The same condensed QP as CONDENSED_QPOASES, solved by DAQP (dual active set, warm
    started from the previous QP's active set; :mod:`mpc.condensed_daqp`). Whole-horizon
    transcription only. Same steps as qpOASES (1e-9); on do-mpc's CSTR (paired A/B in one
    process, load 2.5-2.8) 12-17 % less CPU per QP, 2-8 % per RTI step."""
    PIQP = "piqp"
    """Stage-structured QP as one sparse QP with a fixed pattern (set up once, updated each
    step), proximal interior point (PIQP, multistage KKT solver). Stage transcription only;
    opt-in. Its iteration cap is 3 x ``qp_max_iter`` (~20-35 per RTI QP on industrial_poly,
    ~160 on the cold first step's relaxed QP). Against HPIPM on industrial_poly (same
    steps): 16-35 % less CPU per QP; per RTI step about -15 % robust (9 branches), no gain
    nominal. Not AUTO: with it the robust CSTR's cold-start SQP stopped short of its step
    tolerance (30 iterations) in tests."""


def _finite(value: float, where: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return out


def _nonneg(value: float, where: str) -> float:
    out = _finite(value, where)
    if out < 0:
        raise ConfigError(f"{where}: must be >= 0, got {out}")
    return out


def _limit(value: float | None, where: str, default: float) -> float:
    if value is None:
        return default
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if math.isnan(out):
        raise ConfigError(f"{where}: is NaN")
    return out


@dataclass(frozen=True)
class CvSpec:
    """How one controlled variable (a model output ``y``) enters the controller."""

    name: str
    """Output signal name (must be in the model's ``y``)."""
    weight: float = 0.0
    """Tracking weight on ``((y - target) / nominal) ** 2`` per stage."""
    target: float | None = None
    """Setpoint in SI units; required when ``weight > 0`` (an OperatingTarget may override it)."""
    lower: float = -math.inf
    """Soft lower limit in SI units (violations cost ``l1_penalty``/``l2_penalty``)."""
    upper: float = math.inf
    """Soft upper limit in SI units."""
    l1_penalty: float = 0.0
    """Linear (exact) penalty on the scaled limit violation."""
    l2_penalty: float = 0.0
    """Quadratic penalty on the scaled limit violation."""
    zone: tuple[float, float] | None = None
    """Zone (range) control: no cost inside ``(low, high)`` (SI), ``zone_weight`` outside."""
    zone_weight: float = 0.0
    """Quadratic penalty on the scaled distance outside the zone."""
    hard_lower: float = -math.inf
    """Hard lower bound in SI units, held from the second node of the horizon on; at the
    first predicted node it is soft (``MpcConfig.hard_bound_penalty``) so that a disturbed
    initial state never makes the problem infeasible. Stage-structured transcription only."""
    hard_upper: float = math.inf
    """Hard upper bound in SI units (see ``hard_lower``)."""
    linear_cost: float = 0.0
    """Economic stage cost per SI unit of the output, per stage (e.g. -1 to maximise it)."""
    terminal_linear_cost: float = 0.0
    """Economic terminal cost per SI unit of the output at the end of the horizon."""
    cost_scale: float | None = None
    """Unit of the tracking weight: the cost is ``weight * ((y - target) / cost_scale) ** 2``.
    None: the signal's nominal (the solver's variable scaling). Set it to express weights in
    a unit of your choice without touching the numerical scaling, e.g. ``cost_scale=1.0``
    with ``weight=0.25`` charges 0.25 per (SI unit)^2 whatever the nominal is."""

    def __post_init__(self) -> None:
        where = f"cvs[{self.name!r}]"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"cvs: name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "weight", _nonneg(self.weight, f"{where}.weight"))
        for attr in ("l1_penalty", "l2_penalty", "zone_weight"):
            object.__setattr__(self, attr, _nonneg(getattr(self, attr), f"{where}.{attr}"))
        if self.target is not None:
            object.__setattr__(self, "target", _finite(self.target, f"{where}.target"))
        if self.weight > 0 and self.target is None:
            raise ConfigError(f"{where}.target: a CV with weight > 0 needs a target")
        lo = _limit(self.lower, f"{where}.lower", -math.inf)
        hi = _limit(self.upper, f"{where}.upper", math.inf)
        if lo > hi:
            raise ConfigError(f"{where}.lower/upper: lower limit {lo} is above upper limit {hi}")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        if self.has_limits and self.l1_penalty == 0 and self.l2_penalty == 0:
            raise ConfigError(
                f"{where}.l1_penalty/l2_penalty: soft limits need a positive penalty"
            )
        if self.zone is not None:
            try:
                zlo, zhi = (float(v) for v in self.zone)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}.zone: expected (low, high), got {self.zone!r}") from None
            if not (math.isfinite(zlo) or math.isfinite(zhi)) or zlo > zhi:
                raise ConfigError(f"{where}.zone: expected low <= high, got {self.zone!r}")
            if self.zone_weight <= 0:
                raise ConfigError(f"{where}.zone_weight: a zone needs a positive zone_weight")
            object.__setattr__(self, "zone", (zlo, zhi))
        hlo = _limit(self.hard_lower, f"{where}.hard_lower", -math.inf)
        hhi = _limit(self.hard_upper, f"{where}.hard_upper", math.inf)
        if hlo > hhi:
            raise ConfigError(f"{where}.hard_lower/hard_upper: {hlo} is above {hhi}")
        object.__setattr__(self, "hard_lower", hlo)
        object.__setattr__(self, "hard_upper", hhi)
        for attr in ("linear_cost", "terminal_linear_cost"):
            object.__setattr__(self, attr, _finite(getattr(self, attr), f"{where}.{attr}"))
        if self.cost_scale is not None:
            cs = _finite(self.cost_scale, f"{where}.cost_scale")
            if cs <= 0:
                raise ConfigError(f"{where}.cost_scale: must be > 0, got {cs}")
            object.__setattr__(self, "cost_scale", cs)

    @property
    def has_hard_bounds(self) -> bool:
        """True when the CV has a finite hard bound."""
        return math.isfinite(self.hard_lower) or math.isfinite(self.hard_upper)

    @property
    def has_limits(self) -> bool:
        """True when the CV has a finite soft limit."""
        return math.isfinite(self.lower) or math.isfinite(self.upper)


@dataclass(frozen=True)
class MvSpec:
    """How one manipulated variable (a model input ``u``) enters the controller."""

    name: str
    """Input signal name (must be in the model's ``u``)."""
    weight: float = 0.0
    """Weight on ``((u - target) / nominal) ** 2`` per stage."""
    target: float | None = None
    """Ideal resting value in SI units; required when ``weight > 0``."""
    move_weight: float = 0.0
    """Move-suppression weight on ``((u_k - u_{k-1}) / nominal) ** 2``."""
    lower: float | None = None
    """Hard lower bound in SI units (default: the model's signal bound)."""
    upper: float | None = None
    """Hard upper bound in SI units (default: the model's signal bound)."""
    max_rate_per_s: float | None = None
    """Hard rate-of-change limit ``|u_k - u_{k-1}| <= max_rate_per_s * sample_time_s``."""
    linear_cost: float = 0.0
    """Economic stage cost per SI unit of the input, per stage (e.g. a feed price)."""
    cost_scale: float | None = None
    """Unit of ``weight`` and ``move_weight`` (``weight * ((u - target) / cost_scale) ** 2``);
    None: the signal's nominal (see :attr:`CvSpec.cost_scale`)."""

    def __post_init__(self) -> None:
        where = f"mvs[{self.name!r}]"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"mvs: name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "weight", _nonneg(self.weight, f"{where}.weight"))
        object.__setattr__(self, "move_weight", _nonneg(self.move_weight, f"{where}.move_weight"))
        if self.target is not None:
            object.__setattr__(self, "target", _finite(self.target, f"{where}.target"))
        if self.weight > 0 and self.target is None:
            raise ConfigError(f"{where}.target: an MV with weight > 0 needs a target")
        if self.lower is not None:
            object.__setattr__(self, "lower", _finite(self.lower, f"{where}.lower"))
        if self.upper is not None:
            object.__setattr__(self, "upper", _finite(self.upper, f"{where}.upper"))
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ConfigError(
                f"{where}.lower/upper: lower bound {self.lower} is above upper bound {self.upper}"
            )
        if self.max_rate_per_s is not None:
            rate = _finite(self.max_rate_per_s, f"{where}.max_rate_per_s")
            if rate <= 0:
                raise ConfigError(f"{where}.max_rate_per_s: must be > 0, got {rate}")
            object.__setattr__(self, "max_rate_per_s", rate)
        object.__setattr__(self, "linear_cost", _finite(self.linear_cost, f"{where}.linear_cost"))
        if self.cost_scale is not None:
            cs = _finite(self.cost_scale, f"{where}.cost_scale")
            if cs <= 0:
                raise ConfigError(f"{where}.cost_scale: must be > 0, got {cs}")
            object.__setattr__(self, "cost_scale", cs)


@dataclass(frozen=True)
class RobustSpec:
    """Multi-stage (scenario-tree) robust MPC over uncertain parameters.

    The tree branches at each of the first ``MpcConfig.robust_horizon`` stages
    (do-mpc's ``n_robust``) into one branch per combination of the listed
    parameter values; inputs are shared by the scenarios that have the same
    branch history. Every cost and penalty of a scenario is weighted by its
    probability (the product of its branches' probabilities; uniform unless
    ``probabilities`` is given). The whole-horizon transcription supports
    robust horizon 1 only.
    """

    values: tuple[tuple[str, tuple[float, ...]], ...]
    """``((parameter_name, (value, ...)), ...)``; unlisted parameters keep their value."""
    probabilities: tuple[tuple[float, ...], ...] | None = None
    """Per listed parameter, the probability of each of its values (each tuple sums to 1);
    a branch's probability is the product over the parameters. None: uniform."""

    def __post_init__(self) -> None:
        vals = tuple((str(n), tuple(float(v) for v in vs)) for n, vs in self.values)
        if not vals:
            raise ConfigError("robust.values: needs at least one parameter")
        seen: set[str] = set()
        for name, vs in vals:
            if name in seen:
                raise ConfigError(f"robust.values[{name!r}]: listed twice")
            seen.add(name)
            if not vs or not all(math.isfinite(v) for v in vs):
                raise ConfigError(f"robust.values[{name!r}]: needs finite values, got {vs}")
        object.__setattr__(self, "values", vals)
        if self.probabilities is not None:
            probs = tuple(tuple(_nonneg(p, f"robust.probabilities[{i}]") for p in ps)
                          for i, ps in enumerate(self.probabilities))
            if len(probs) != len(vals):
                raise ConfigError(f"robust.probabilities: expected {len(vals)} tuples (one per "
                                  f"parameter), got {len(probs)}")
            for (name, vs), ps in zip(vals, probs, strict=True):
                if len(ps) != len(vs) or not math.isclose(sum(ps), 1.0, abs_tol=1e-9):
                    raise ConfigError(f"robust.probabilities[{name!r}]: expected {len(vs)} values "
                                      f"summing to 1, got {ps}")
            object.__setattr__(self, "probabilities", probs)

    @property
    def n_scenarios(self) -> int:
        """Number of branches per branching stage (product of the numbers of values)."""
        return math.prod(len(vs) for _, vs in self.values)

    def branch_probabilities(self) -> tuple[float, ...]:
        """Probability of each branch (combination), in ``itertools.product`` order."""
        import itertools

        if self.probabilities is None:
            n = self.n_scenarios
            return tuple(1.0 / n for _ in range(n))
        return tuple(math.prod(c) for c in itertools.product(*self.probabilities))


@dataclass(frozen=True)
class MpcConfig:
    """The optimal control problem solved at every sample."""

    horizon_steps: int
    """Prediction horizon N in samples (>= 1)."""
    sample_time_s: float
    """Controller sample time in seconds (> 0)."""
    cvs: tuple[CvSpec, ...] = ()
    """Controlled variables: tracking, zones and soft limits."""
    mvs: tuple[MvSpec, ...] = ()
    """Manipulated-variable specs; unlisted MVs get model bounds and no cost."""
    discretisation: Discretisation = Discretisation.RK4
    """RK4 or Radau collocation."""
    rk4_substeps: int = 2
    """RK4 substeps per sample (>= 1)."""
    collocation_degree: int = 2
    """Radau collocation degree (1..5; do-mpc's default is 2)."""
    control_horizon_steps: int | None = None
    """Free moves; after it the MVs are held (None: every step is free)."""
    move_blocks: tuple[int, ...] | None = None
    """Move blocking: lengths of blocks of held input, summing to ``horizon_steps``."""
    terminal_weight: float = 1.0
    """Multiplier of the CV tracking weights at the end of the horizon (terminal cost)."""
    robust: RobustSpec | None = None
    """Scenario-tree robust MPC; None for nominal MPC."""
    ipopt_max_iter: int = 200
    """IPOPT iteration limit (first solve and fallback)."""
    ipopt_tol: float = 1e-10
    """IPOPT convergence tolerance."""
    rti_iterations: int = 1
    """Gauss-Newton SQP iterations per step of the RTI solver (1 = real-time iteration)."""
    rti_step_tol: float = 1e-9
    """Extra SQP iterations stop once the scaled step's inf-norm is below this."""
    qp_max_iter: int = 100
    """QP iteration limit: HPIPM iterations; for qpOASES the working-set changes (at least
    10 per QP variable)."""
    codegen: bool | str = "auto"
    """Compile to C in the background (needs a C compiler): the QP data, condensing and
    update functions on the whole-horizon path; the per-stage functions on the
    stage-structured path (see :mod:`mpc.stage_codegen`). The controller steps with the
    CasADi VM until gcc is done, then with the compiled code; libraries are cached by
    content. ``"auto"`` (default): on when a C compiler is found, unless the environment
    variable ``RTOMPC_CODEGEN`` is ``off`` (:func:`mpc.stage_codegen.resolve_codegen`);
    ``True``: on (interpreted, with a log line, when there is no compiler); ``False``: off.
    Measured gains in the README's NMPC benchmark table."""
    codegen_budget_s: float = 120.0
    """Estimated gcc time above which a stage function is not compiled (estimated from the
    generated C's size before gcc starts)."""
    qp_solver: QpSolver = QpSolver.AUTO
    """QP method of the RTI solver (see :class:`QpSolver`)."""
    transcription: Transcription = Transcription.AUTO
    """How the problem is built (see :class:`Transcription`)."""
    robust_horizon: int = 1
    """Stages at which the scenario tree branches (do-mpc's ``n_robust``; >= 1)."""
    ipopt_fallback: bool = True
    """Build IPOPT for a failed RTI step (and, on the whole-horizon path, the first step).
    False: no IPOPT is built; the first step is solved by iterated SQP
    (``first_sqp_iterations``)."""
    first_sqp_iterations: int = 30
    """SQP iteration limit of a cold start (first step, or after a failure) without IPOPT."""
    hard_bound_penalty: float = 1e6
    """L1 penalty on the scaled violation of a hard CV bound at the first predicted node
    (where it is soft; see :attr:`CvSpec.hard_lower`)."""
    economic_stage_cost: Callable[[Mapping[str, Any], Mapping[str, Any]], Any] | None = None
    """General economic stage cost ``f(y, u) -> CasADi expression`` of the outputs and inputs
    by name (SI); its exact Hessian enters the QP, so it should be convex. Python API only."""
    economic_terminal_cost: Callable[[Mapping[str, Any]], Any] | None = None
    """General economic terminal cost ``f(y) -> CasADi expression`` (see above)."""

    def __post_init__(self) -> None:
        if isinstance(self.horizon_steps, bool) or not isinstance(self.horizon_steps, int):
            raise ConfigError(f"horizon_steps: expected an integer, got {self.horizon_steps!r}")
        if self.horizon_steps < 1:
            raise ConfigError(f"horizon_steps: must be >= 1, got {self.horizon_steps}")
        dt = _finite(self.sample_time_s, "sample_time_s")
        if dt <= 0:
            raise ConfigError(f"sample_time_s: must be > 0, got {dt}")
        object.__setattr__(self, "sample_time_s", dt)
        if not isinstance(self.discretisation, Discretisation):
            try:
                object.__setattr__(self, "discretisation", Discretisation(self.discretisation))
            except ValueError:
                raise ConfigError(
                    f"discretisation: expected one of {[d.value for d in Discretisation]}, "
                    f"got {self.discretisation!r}"
                ) from None
        if not isinstance(self.qp_solver, QpSolver):
            try:
                object.__setattr__(self, "qp_solver", QpSolver(self.qp_solver))
            except ValueError:
                raise ConfigError(
                    f"qp_solver: expected one of {[q.value for q in QpSolver]}, "
                    f"got {self.qp_solver!r}"
                ) from None
        for attr, lo, hi in (
            ("rk4_substeps", 1, 1000), ("collocation_degree", 1, 5),
("ipopt_max_iter", 0, 100000),
            ("rti_iterations", 1, 100), ("qp_max_iter", 1, 10000),
            ("robust_horizon", 1, 100), ("first_sqp_iterations", 1, 1000),
        ):
            val = getattr(self, attr)
            if isinstance(val, bool) or not isinstance(val, int) or not lo <= val <= hi:
                raise ConfigError(f"{attr}: expected an integer in [{lo}, {hi}], got {val!r}")
        object.__setattr__(self, "terminal_weight", _nonneg(self.terminal_weight, "terminal_weight"))
        for attr in ("ipopt_tol", "rti_step_tol"):
            if _finite(getattr(self, attr), attr) <= 0:
                raise ConfigError(f"{attr}: must be > 0, got {getattr(self, attr)}")
        object.__setattr__(self, "cvs", tuple(self.cvs))
        object.__setattr__(self, "mvs", tuple(self.mvs))
        for kind, specs, cls in (("cvs", self.cvs, CvSpec), ("mvs", self.mvs, MvSpec)):
            for s in specs:
                if not isinstance(s, cls):
                    raise ConfigError(f"{kind}: expected {cls.__name__} objects, got {type(s).__name__}")
            names: list[str] = [s.name for s in specs]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ConfigError(f"{kind}: duplicate names {dup}")
        n = self.horizon_steps
        if self.control_horizon_steps is not None:
            m = self.control_horizon_steps
            if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= n:
                raise ConfigError(
                    f"control_horizon_steps: expected an integer in [1, horizon_steps={n}], got {m!r}"
                )
            if self.move_blocks is not None:
                raise ConfigError("move_blocks: give either control_horizon_steps or move_blocks")
        if self.move_blocks is not None:
            blocks = tuple(self.move_blocks)
            if any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in blocks):
                raise ConfigError(f"move_blocks: expected positive integers, got {blocks}")
            if sum(blocks) != n:
                raise ConfigError(
                    f"move_blocks: block lengths must sum to horizon_steps={n}, got sum {sum(blocks)}"
                )
            object.__setattr__(self, "move_blocks", blocks)
        if self.robust is not None and not isinstance(self.robust, RobustSpec):
            raise ConfigError(f"robust: expected RobustSpec, got {type(self.robust).__name__}")
        if not isinstance(self.transcription, Transcription):
            try:
                object.__setattr__(self, "transcription", Transcription(self.transcription))
            except ValueError:
                raise ConfigError(
                    f"transcription: expected one of {[t.value for t in Transcription]}, "
                    f"got {self.transcription!r}"
                ) from None
        if self.robust_horizon > self.horizon_steps:
            raise ConfigError(f"robust_horizon: must be <= horizon_steps={self.horizon_steps}, "
                              f"got {self.robust_horizon}")
        if not isinstance(self.ipopt_fallback, bool):
            raise ConfigError(f"ipopt_fallback: expected true/false, got {self.ipopt_fallback!r}")
        if not isinstance(self.codegen, bool) and self.codegen != "auto":
            raise ConfigError(f'codegen: expected true, false or "auto", got {self.codegen!r}')
        if _finite(self.codegen_budget_s, "codegen_budget_s") < 0:
            raise ConfigError(f"codegen_budget_s: must be >= 0, got {self.codegen_budget_s}")
        pen = _finite(self.hard_bound_penalty, "hard_bound_penalty")
        if pen <= 0:
            raise ConfigError(f"hard_bound_penalty: must be > 0, got {pen}")
        object.__setattr__(self, "hard_bound_penalty", pen)
        for attr in ("economic_stage_cost", "economic_terminal_cost"):
            if getattr(self, attr) is not None and not callable(getattr(self, attr)):
                raise ConfigError(f"{attr}: expected a callable, got {getattr(self, attr)!r}")

    @property
    def needs_stagewise(self) -> bool:
        """True when a feature only the stage-structured transcription has is used."""
        return bool(
            self.robust_horizon > 1
            or (self.robust is not None and self.robust.probabilities is not None)
            or self.economic_stage_cost is not None or self.economic_terminal_cost is not None
            or any(c.has_hard_bounds or c.linear_cost or c.terminal_linear_cost
                   or c.cost_scale is not None for c in self.cvs)
            or any(m.linear_cost or m.cost_scale is not None for m in self.mvs)
        )

    # Derived -----------------------------------------------------------
    def free_move(self, k: int) -> bool:
        """True when stage ``k`` may change the input (move blocking / control horizon)."""
        if k == 0:
            return True
        if self.control_horizon_steps is not None:
            return k < self.control_horizon_steps
        if self.move_blocks is not None:
            starts = {0}
            acc = 0
            for b in self.move_blocks:
                acc += b
                starts.add(acc)
            return k in starts
        return True

    def cv(self, name: str) -> CvSpec | None:
        """The spec of CV ``name``, if configured."""
        return next((c for c in self.cvs if c.name == name), None)

    def mv(self, name: str) -> MvSpec | None:
        """The spec of MV ``name``, if configured."""
        return next((m for m in self.mvs if m.name == name), None)

    def check_against(self, model: PlantModel) -> None:
        """Raise :class:`ConfigError` when a name or bound does not fit ``model``."""
        for c in self.cvs:
            if c.name not in model.y:
                raise ConfigError(
                    f"cvs[{c.name!r}].name: model {model.name!r} has no output {c.name!r}; "
                    f"outputs: {', '.join(model.y.names)}"
                )
        for m in self.mvs:
            if m.name not in model.u:
                raise ConfigError(
                    f"mvs[{m.name!r}].name: model {model.name!r} has no input {m.name!r}; "
                    f"inputs: {', '.join(model.u.names)}"
                )
            sig = model.u[m.name]
            lo = sig.lower if m.lower is None else m.lower
            hi = sig.upper if m.upper is None else m.upper
            if lo > hi:
                raise ConfigError(
                    f"mvs[{m.name!r}].lower/upper: bounds [{lo}, {hi}] are inverted "
                    f"(model bounds [{sig.lower}, {sig.upper}])"
                )
        if self.robust is not None:
            for name, _ in self.robust.values:
                if name not in model.p:
                    raise ConfigError(
                        f"robust.values[{name!r}]: model {model.name!r} has no parameter {name!r}; "
                        f"parameters: {', '.join(model.p.names) or '(none)'}"
                    )
        if not model.is_continuous:
            ts = model.sample_time_s
            if ts is None or not math.isclose(ts, self.sample_time_s, rel_tol=1e-9):
                raise ConfigError(
                    f"sample_time_s: discrete-time model {model.name!r} has sample time {ts} s, "
                    f"config says {self.sample_time_s} s"
                )

