"""RTO iterations at steady state: two-step (estimate, then optimise) and modifier adaptation.

Each method is a small stateful runner: ``step(u, d, y)`` takes the steady
plant measurement at the inputs last applied and returns an
:class:`RtoIteration` with the next input target. A failed estimation or
optimisation never raises: the iteration keeps the previous target and reports
the status and why.

Two-step RTO fits the model's parameters to the measurements (WLS), then
re-optimises the model; with structural mismatch it settles where the fitted
model's optimum lies, not at the plant optimum (Forbes, Marlin & MacGregor
1994). Modifier adaptation keeps the model's parameters and corrects the cost
and constraint values/gradients with plant information (first-order modifiers,
filtered with gain K), so that a fixed point satisfies the plant's KKT
conditions (Marchetti, Chachuat & Bonvin, Ind. Eng. Chem. Res. 48 (2009)
6022-6033).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ConfigError, ModelError
from plant_models.model import PlantModel
from plant_models.results import SolveStatus
from plant_models.steady_state import steady_state
from rto.config import RtoConfig
from rto.estimation import EstimationConfig, EstimationResult, ParameterEstimator
from rto.gradients import output_sensitivity, simplex_gradient
from rto.modifiers import Modifiers, update_modifiers
from rto.optimizer import EconomicOptimizer
from rto.results import RtoResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RtoIteration:
    """One RTO iteration: what was measured, what was decided, and whether it worked."""

    index: int
    """Iteration number, from 0."""
    status: SolveStatus
    """Status of the iteration's solves (the first failure, else the optimisation's)."""
    u_measured: NDArray[np.float64]
    """Inputs at which the plant was measured (full u vector)."""
    plant_profit: float
    """Plant profit at ``u_measured`` from the measurements, $/s."""
    target: NDArray[np.float64]
    """Inputs to apply next (the previous target when this iteration failed)."""
    accepted: bool
    """False when the target was kept from the previous iteration."""
    optimum: RtoResult | None = None
    """The economic optimisation (None if it was not reached)."""
    estimation: EstimationResult | None = None
    """The parameter estimation (two-step only)."""
    modifiers: Modifiers | None = None
    """Modifiers used (modifier adaptation only)."""
    plant_evaluations: int = 1
    """Plant steady states used by this iteration (1 + gradient probes)."""
    message: str = ""
    """Why the target was kept, or the solver message."""


class TwoStepRto:
    """Two-step RTO: steady-state parameter estimation, then economic optimisation."""

    def __init__(self, model: PlantModel, config: RtoConfig, estimation: EstimationConfig,
                 p0: Mapping[str, float] | ArrayLike | None = None) -> None:
        self.model = model
        self.optimizer = EconomicOptimizer(model, config)
        self.estimator = ParameterEstimator(model, estimation)
        self.p = model.resolve("p", p0)
        self._target: NDArray[np.float64] | None = None
        self._k = 0

    def probe_points(self, u: ArrayLike) -> list[NDArray[np.float64]]:
        """Extra plant points needed this iteration (none for two-step)."""
        return []

    def step(self, u: ArrayLike, d: ArrayLike | None, y: Mapping[str, float],
             probes: Sequence[tuple[ArrayLike, Mapping[str, float]]] = ()) -> RtoIteration:
        """One iteration from the steady measurement ``y`` at inputs ``u``."""
        m = self.model
        uv, dv = m.resolve("u", u), m.resolve("d", d)
        k, self._k = self._k, self._k + 1
        prev = self._target if self._target is not None else uv
        profit = self.optimizer.profit_of_outputs(y, uv, dv)
        est = self.estimator.estimate(uv, dv, y, p=self.p)
        if est.p is None:
            return RtoIteration(k, est.status, uv, profit, prev, False, estimation=est,
                                message=f"estimation failed, target kept: {est.info.message}")
        self.p = est.p
        for name, val in est.reconciled.items():  # optimise for the reconciled disturbances
            if name in m.d:
                dv[m.d.index(name)] = val
        res = self.optimizer.solve(dv, est.p, u=uv, x_guess=est.x)
        if res.u is None:
            return RtoIteration(k, res.status, uv, profit, prev, False, res, est,
                                message=f"optimisation failed, target kept: {res.info.message}")
        self._target = res.u
        return RtoIteration(k, res.status, uv, profit, res.u, True, res, est,
                            message=res.info.message)


class GradientSource(Enum):
    """Where modifier adaptation gets plant gradients from."""

    PAST_POINTS = "past_points"
    """The last n+1 operating points; finite differences when they are ill-conditioned."""
    FINITE_DIFFERENCES = "finite_differences"
    """Forward perturbations of each decision at every iteration (n extra plant points)."""


@dataclass(frozen=True)
class ModifierAdaptationConfig:
    """Tuning of modifier adaptation."""

    gain: float = 0.7
    """First-order filter gain K of the modifiers, in (0, 1]."""
    gradient: GradientSource = GradientSource.PAST_POINTS
    """Plant gradient estimation."""
    step: Mapping[str, float] = field(default_factory=dict)
    """Finite-difference step per decision (SI); default 0.1 % of the decision's range."""
    max_condition: float = 1e2
    """Largest accepted condition number of the past-point differences (scaled by range)."""
    min_spacing: float = 1e-3
    """Smallest accepted distance of a past point, as a fraction of the decisions' ranges."""
    max_spacing: float = 0.05
    """Largest accepted distance of a past point, as a fraction of the decisions' ranges
    (farther points give secants, not gradients)."""

    def __post_init__(self) -> None:
        if not (0.0 < self.gain <= 1.0):
            raise ConfigError(f"ModifierAdaptationConfig.gain: expected (0, 1], got {self.gain}")
        object.__setattr__(self, "gradient", GradientSource(self.gradient))
        for key, val in self.step.items():
            if not (math.isfinite(val) and val != 0):
                raise ConfigError(f"ModifierAdaptationConfig.step[{key!r}]: expected non-zero, "
                                  f"got {val}")


class ModifierAdaptation:
    """Modifier-adaptation RTO with first-order cost and constraint modifiers."""

    def __init__(self, model: PlantModel, config: RtoConfig,
                 tuning: ModifierAdaptationConfig | None = None,
                 p: Mapping[str, float] | ArrayLike | None = None) -> None:
        self.model = model
        self.config = config
        self.tuning = tuning or ModifierAdaptationConfig()
        self.optimizer = EconomicOptimizer(model, config)
        for key in self.tuning.step:
            if key not in self.optimizer.decisions:
                raise ConfigError(f"ModifierAdaptationConfig.step[{key!r}]: not a decision; "
                                  f"decisions: {', '.join(self.optimizer.decisions)}")
        self.p = model.resolve("p", p)
        self._free = model.u.indices(self.optimizer.decisions)
        self._scale = np.array([np.subtract(*config.bounds(model, "u", n)[::-1])
                                for n in self.optimizer.decisions])
        self._history: list[tuple[NDArray, float, NDArray]] = []
        self.modifiers: Modifiers | None = None
        self._target: NDArray[np.float64] | None = None
        self._k = 0

    def _fd_points(self, u: NDArray) -> list[NDArray[np.float64]]:
        pts = []
        for i, name in zip(self._free, self.optimizer.decisions, strict=True):
            lo, hi = self.config.bounds(self.model, "u", name)
            h = self.tuning.step.get(name, 1e-3 * (hi - lo))
            if u[i] + h > hi:
                h = -h
            pt = u.copy()
            pt[i] = u[i] + h
            pts.append(pt)
        return pts

    def _past_ok(self, u: NDArray) -> bool:
        n = len(self._free)
        if self.tuning.gradient is GradientSource.FINITE_DIFFERENCES or len(self._history) < n:
            return False
        past = np.array([h[0][self._free] for h in self._history[-n:]])
        du = (past - u[self._free]) / self._scale
        dist = np.linalg.norm(du, axis=1)
        if np.min(dist) < self.tuning.min_spacing or np.max(dist) > self.tuning.max_spacing:
            return False
        return bool(np.linalg.cond(du) <= self.tuning.max_condition)

    def probe_points(self, u: ArrayLike) -> list[NDArray[np.float64]]:
        """Extra plant points to measure before :meth:`step` at ``u`` (empty if past points do)."""
        uv = self.model.resolve("u", u)
        return [] if self._past_ok(uv) else self._fd_points(uv)

    def step(self, u: ArrayLike, d: ArrayLike | None, y: Mapping[str, float],
             probes: Sequence[tuple[ArrayLike, Mapping[str, float]]] = ()) -> RtoIteration:
        """One iteration from the steady measurement ``y`` at ``u`` (and probe measurements)."""
        m, opt = self.model, self.optimizer
        uv, dv = m.resolve("u", u), m.resolve("d", d)
        k, self._k = self._k, self._k + 1
        prev = self._target if self._target is not None else uv
        cons = opt.constrained
        for label, meas in (("y", y), *((f"probe {i}", py) for i, (_, py) in enumerate(probes))):
            missing = [c for c in cons if c not in meas]
            if missing:
                raise ModelError(f"modifier adaptation: measurement {label} lacks the "
                                 f"constrained output(s) {', '.join(missing)}")

        def record(ui: NDArray, yi: Mapping[str, float]) -> tuple[NDArray, float, NDArray]:
            return (ui, opt.profit_of_outputs(yi, ui, dv),
                    np.array([float(yi[c]) for c in cons]))

        current = record(uv, y)
        probe_recs = [record(m.resolve("u", pu), py) for pu, py in probes]
        if probe_recs:
            pts = probe_recs
        elif self._past_ok(uv):
            pts = self._history[-len(self._free):]
        else:
            return RtoIteration(k, SolveStatus.INVALID_INPUT, uv, current[1], prev, False,
                                message="plant gradient unavailable: past points are "
                                "ill-conditioned and no probes were given (see probe_points)")
        self._history.extend([*probe_recs, current])
        pts_all = [*pts, current]
        u_pts = [r[0][self._free] for r in pts_all]
        g_free = simplex_gradient(u_pts, [r[1] for r in pts_all], self._scale,
                                  max_condition=1e8)
        if g_free is None:
            return RtoIteration(k, SolveStatus.INVALID_INPUT, uv, current[1], prev, False,
                                plant_evaluations=1 + len(probes),
                                message="plant gradient: probe points are degenerate")
        plant_grad = np.zeros(len(m.u))
        plant_grad[self._free] = g_free
        plant_cgrad = {}
        for j, c in enumerate(cons):
            gc = simplex_gradient(u_pts, [r[2][j] for r in pts_all], self._scale,
                                  max_condition=1e8)
            full = np.zeros(len(m.u))
            full[self._free] = gc if gc is not None else 0.0
            plant_cgrad[c] = full
        # model values and gradients at u
        ss = steady_state(m, uv, dv, self.p, raise_on_failure=False)
        if ss.x is None or ss.y is None:
            return RtoIteration(k, ss.status, uv, current[1], prev, False,
                                plant_evaluations=1 + len(probes),
                                message=f"model steady state failed, target kept: "
                                f"{ss.info.message}")
        dydu = output_sensitivity(m, ss.x, uv, dv, self.p)
        fixed = np.setdiff1d(np.arange(len(m.u)), self._free)
        dydu[:, fixed] = 0.0  # fixed inputs do not move: no modifier on them
        model_grad = self._profit_gradient(dydu)
        model_grad[fixed] = 0.0
        model_cgrad = {c: dydu[m.y.index(c)] for c in cons}
        self.modifiers = update_modifiers(
            self.modifiers, uv, plant_grad, model_grad, gain=self.tuning.gain,
            plant_constraints={c: float(y[c]) for c in cons},
            model_constraints={c: float(ss.y[m.y.index(c)]) for c in cons},
            plant_constraint_gradients=plant_cgrad, model_constraint_gradients=model_cgrad,
        )
        res = opt.solve(dv, self.p, u=uv, x_guess=ss.x, modifiers=self.modifiers)
        if res.u is None:
            return RtoIteration(k, res.status, uv, current[1], prev, False, res,
                                modifiers=self.modifiers, plant_evaluations=1 + len(probes),
                                message=f"optimisation failed, target kept: {res.info.message}")
        self._target = res.u
        return RtoIteration(k, res.status, uv, current[1], res.u, True, res,
                            modifiers=self.modifiers, plant_evaluations=1 + len(probes),
                            message=res.info.message)

    def _profit_gradient(self, dydu: NDArray) -> NDArray[np.float64]:
        m = self.model
        g = np.zeros(len(m.u))
        for name, price in self.config.prices.items():
            if name in m.u:
                g[m.u.index(name)] += price
            elif name in m.y:
                g += price * dydu[m.y.index(name)]
        return g
