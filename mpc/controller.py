"""NmpcController: the public nonlinear MPC object (describe with MpcConfig, build, step).

``NmpcController(model, config, solver=SolverKind.RTI)`` builds the
multiple-shooting problem once; ``step(x, ...)`` solves it for the current
state estimate and returns an :class:`~mpc.result.MpcResult`. It never raises
on a bad solve or a bad input value: the result carries the status and
``u=None``, and the runtime applies a :mod:`mpc.fallback` policy.

Two transcriptions (``MpcConfig.transcription``, see :class:`~mpc.config.Transcription`):
the whole-horizon one (:mod:`mpc.ocp`, small nominal problems) and the
stage-structured one (:mod:`mpc.stagewise`, large or robust problems, hard
bounds, economic costs), chosen automatically from the problem's dimensions by
:func:`resolve_transcription`.

Solver strategy: with ``SolverKind.RTI`` the first step (and any step after a
failure) is solved to convergence, by IPOPT when ``ipopt_fallback`` is on and
the transcription is whole-horizon, else by iterated SQP
(``first_sqp_iterations``); later steps shift the last plan and run
Gauss-Newton SQP iterations; if the QP fails, the step is re-solved from a
cold start in the same step (IPOPT, or iterated SQP without IPOPT; counted in
:attr:`NmpcController.fallbacks`). With ``ipopt_fallback=False`` no IPOPT
solver is built at all. ``SolverKind.IPOPT`` solves every step to convergence
(whole-horizon transcription only).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from enum import Enum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mpc.config import MpcConfig, MvSpec, QpSolver, Transcription
from mpc.ocp import Ocp, build_ocp, parameter_vector
from mpc.result import MpcResult
from mpc.solvers import IpoptSolver, RtiSolver, SolveOutcome
from mpc.stage_codegen import resolve_codegen
from mpc.stage_solver import StageIterate, StageRtiSolver
from mpc.stagewise import WHOLE_HORIZON_MAX_STATES, StageProblem, build_stage_problem
from plant_models.errors import ConfigError, ModelError
from plant_models.model import PlantModel
from plant_models.results import SolveStatus
from plant_models.samples import OperatingTarget, StateEstimate
from plant_models.signals import SignalSet

log = logging.getLogger(__name__)


class SolverKind(Enum):
    """Numerical method used at every step."""

    RTI = "rti"
    """Real-time iterations (Gauss-Newton SQP + HPIPM), IPOPT for the first solve and fallback."""
    IPOPT = "ipopt"
    """Full NLP solve with IPOPT at every step."""


class NmpcController:
    """Nonlinear MPC for one :class:`~plant_models.model.PlantModel`."""

    def __init__(
        self,
        model: PlantModel,
        config: MpcConfig,
        solver: SolverKind = SolverKind.RTI,
        *,
        ipopt_fallback: bool | None = None,
    ) -> None:
        if not isinstance(config, MpcConfig):
            raise ConfigError(f"config: expected MpcConfig, got {type(config).__name__}")
        try:
            solver = SolverKind(solver)
        except ValueError:
            raise ConfigError(
                f"solver: expected one of {[s.value for s in SolverKind]}, got {solver!r}"
            ) from None
        if not isinstance(config.codegen, bool):  # "auto": decided once, here
            config = dataclasses.replace(config, codegen=resolve_codegen(config.codegen))
        self.model = model
        self.config = config
        """The configuration in use (``codegen = "auto"`` resolved to true or false)."""
        self.base_config = config
        """The configuration as built (``config`` differs while MVs are restricted)."""
        self.solver_kind = solver
        self.ipopt_fallback = config.ipopt_fallback if ipopt_fallback is None else ipopt_fallback
        """Whether an IPOPT solver is built (first step and fallback, whole-horizon only)."""
        self.transcription = resolve_transcription(model, config, solver)
        """The transcription in use (AUTO resolved)."""
        self.fallbacks = 0
        """Steps whose real-time iteration failed and that were re-solved from a cold start."""
        self._build(config)
        self._w: NDArray[np.float64] | None = None
        self._u_last: NDArray[np.float64] | None = None
        self._restricted: dict[str, tuple[float, float]] = {}
        self._set_targets(config)

    def _set_targets(self, config: MpcConfig) -> None:
        """Default targets (used where an OperatingTarget gives none) from ``config``."""
        model = self.model
        self._y_target = np.zeros(len(model.y))
        for c in config.cvs:
            if c.target is not None:
                self._y_target[model.y.index(c.name)] = c.target
        self._u_target = model.nominal.u.copy()
        for m in config.mvs:
            if m.target is not None:
                self._u_target[model.u.index(m.name)] = m.target

    def _build(self, config: MpcConfig) -> None:
        """Build the transcription's problem and solvers for ``config``."""
        model, solver = self.model, self.solver_kind
        self.ocp: Ocp | None = None
        self.stage_problem: StageProblem | None = None
        self._ipopt: IpoptSolver | None = None
        self._rti: RtiSolver | None = None
        self._stage: StageRtiSolver | None = None
        self._it: StageIterate | None = None
        if self.transcription is Transcription.STAGEWISE:
            self.stage_problem = build_stage_problem(model, config)
            self._stage = StageRtiSolver(self.stage_problem)
        else:
            self.ocp = build_ocp(model, config)
            if solver is SolverKind.IPOPT or self.ipopt_fallback:
                self._ipopt = IpoptSolver(self.ocp)
            self._rti = RtiSolver(self.ocp) if solver is SolverKind.RTI else None

    def restrict_mvs(self, bounds: Mapping[str, tuple[float, float]]) -> None:
        """Re-plan with MV bounds narrowed to ``bounds`` (``{name: (lower, upper)}``, SI).

        ``lower == upper`` fixes an MV (out of service: the plan moves the others only);
        an empty mapping restores the configured bounds. Each bound is intersected with the
        configured one. Rebuilds the problem (a fraction of a second for small plants) and
        forgets the warm start, so the next step starts cold.
        """
        unknown = sorted(set(bounds) - set(self.model.u.names))
        if unknown:
            raise ConfigError(f"restrict_mvs: unknown MVs {unknown}; known {self.model.u.names}")
        base = self.base_config
        specs = []
        for name in self.model.u.names:
            spec = base.mv(name) or MvSpec(name)
            if name in bounds:
                lo, hi = (float(v) for v in bounds[name])
                cfg_lo = spec.lower if spec.lower is not None else self.model.u[name].lower
                cfg_hi = spec.upper if spec.upper is not None else self.model.u[name].upper
                lo, hi = min(max(lo, cfg_lo), cfg_hi), max(min(hi, cfg_hi), cfg_lo)
                spec = dataclasses.replace(spec, lower=lo, upper=max(lo, hi))
            specs.append(spec)
        config = dataclasses.replace(base, mvs=tuple(specs)) if bounds else base
        self._restricted = {n: (float(lo), float(hi)) for n, (lo, hi) in bounds.items()}
        self.config = config
        self._build(config)
        self.reset()
        log.info("controller re-planned with MV bounds %s", dict(bounds) or "as configured")

    def retune(
        self, config: MpcConfig, bounds: Mapping[str, tuple[float, float]] | None = None
    ) -> None:
        """Replace the configuration while running (live CV limits, zones, weights, setpoints,
        MV rate limits) with MV bounds ``bounds`` (see :meth:`restrict_mvs`; None keeps the
        current restriction). Same horizon, sample time and signals expected. Rebuilds once
        and starts the next step cold."""
        if not isinstance(config, MpcConfig):
            raise ConfigError(f"retune: expected MpcConfig, got {type(config).__name__}")
        config.check_against(self.model)
        self.base_config = config
        self._set_targets(config)
        self.restrict_mvs(self._restricted if bounds is None else bounds)

    # State ------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the warm start and the last move (the next step starts cold)."""
        self._w = None
        self._it = None
        self._u_last = None

    @property
    def last_move(self) -> NDArray[np.float64] | None:
        """The last move returned by a usable step."""
        return None if self._u_last is None else self._u_last.copy()

    # Step -------------------------------------------------------------------
    def step(
        self,
        x: Mapping[str, float] | ArrayLike,
        *,
        target: OperatingTarget | None = None,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
        y_bias: ArrayLike | None = None,
        u_bias: ArrayLike | None = None,
        u_prev: Mapping[str, float] | ArrayLike | None = None,
        time_s: float = 0.0,
    ) -> MpcResult:
        """One controller step from state ``x``; never raises on a bad solve or input value.

        ``y_bias`` is added to the predicted outputs (offset-free control), the
        model sees ``u + u_bias``; ``u_prev`` (default: the last move returned)
        is the input applied in the previous sample (move penalties and rate
        limits); ``d`` and ``p`` default to the model's nominal values.
        """
        t0 = time.perf_counter()
        model = self.model
        try:
            xv = _vector(model.x, x, "x")
            dv = _vector(model.d, d, f"{model.name}.d", model.nominal.d)
            pv = _vector(model.p, p, f"{model.name}.p", model.nominal.p)
            ny, nu = len(model.y), len(model.u)
            yb = _vec(y_bias, ny, "y_bias")
            ub = _vec(u_bias, nu, "u_bias")
            if u_prev is not None:
                up = _vector(model.u, u_prev, "u_prev")
            elif self._u_last is not None:
                up = self._u_last
            else:
                up = model.nominal.u.copy()
            y_tgt, u_tgt = self._targets(target)
        except (ModelError, ConfigError) as exc:
            return MpcResult(SolveStatus.INVALID_INPUT, None, message=str(exc),
                             solve_time_s=time.perf_counter() - t0, time_s=time_s,
                             solver=self.solver_kind.value)
        if self._stage is not None:
            pn = self._stage.node_params(dv, pv, yb, ub, y_tgt, u_tgt)
            return self._result(self._solve_stagewise(pn, xv, up), t0, time_s)
        ocp = self.ocp
        assert ocp is not None
        P = parameter_vector(ocp, x0=xv, u_prev=up, d=dv, p=pv, y_bias=yb, u_bias=ub,
                             y_target=y_tgt, u_target=u_tgt)
        outcome = self._solve(P, xv, up)
        if outcome.trajectories is None and outcome.w is not None and outcome.status.usable:
            traj = ocp.trajectories(outcome.w, P)
            outcome = SolveOutcome(outcome.status, outcome.w, outcome.iterations,
                                   outcome.message, outcome.solver, tuple(traj))
        return self._result(outcome, t0, time_s)

    def step_estimate(
        self,
        estimate: StateEstimate,
        *,
        target: OperatingTarget | None = None,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
        u_prev: Mapping[str, float] | ArrayLike | None = None,
    ) -> MpcResult:
        """:meth:`step` from an estimator's :class:`StateEstimate` (x, y_bias, u_bias, time)."""
        return self.step(
            estimate.x, target=target, d=d, p=p, y_bias=estimate.y_bias, u_bias=estimate.u_bias,
            u_prev=u_prev, time_s=estimate.time_s,
        )

    def _solve(
        self, P: NDArray[np.float64], xv: NDArray[np.float64], up: NDArray[np.float64]
    ) -> SolveOutcome:
        ocp = self.ocp
        assert ocp is not None
        guess = ocp.shift(self._w) if self._w is not None else ocp.initial_guess(xv, up)
        if self._rti is not None and self._w is not None:
            outcome = self._rti.solve(guess, P)
            if outcome.status.usable:
                return outcome
            self.fallbacks += 1
            log.warning("RTI step failed (%s: %s); re-solving from a cold start",
                        outcome.status.value, outcome.message)
            guess = ocp.initial_guess(xv, up)
        if self._ipopt is not None:
            return self._ipopt.solve(guess, P, *ocp.bounds(xv, up))
        assert self._rti is not None
        return self._rti.solve(guess, P, self.config.first_sqp_iterations, "sqp")

    def _solve_stagewise(
        self, pn: NDArray[np.float64], xv: NDArray[np.float64], up: NDArray[np.float64]
    ) -> SolveOutcome:
        stage = self._stage
        assert stage is not None
        cfg = self.config
        if self._it is not None:
            outcome, it = stage.solve(stage.shift(self._it), pn, xv, up, cfg.rti_iterations)
            if outcome.status.usable:
                self._it = it
                return outcome
            self.fallbacks += 1
            log.warning("RTI step failed (%s: %s); re-solving by SQP from a cold start",
                        outcome.status.value, outcome.message)
        outcome, it = stage.solve(stage.initial_guess(xv, up), pn, xv, up,
                                  cfg.first_sqp_iterations, "sqp")
        self._it = it
        return outcome

    def _result(self, outcome: SolveOutcome, t0: float, time_s: float) -> MpcResult:
        if outcome.w is None or not outcome.status.usable or outcome.trajectories is None:
            self._w = None  # next step starts cold
            self._it = None
            return MpcResult(outcome.status, None, objective=None, iterations=outcome.iterations,
                             solve_time_s=time.perf_counter() - t0, message=outcome.message,
                             solver=outcome.solver, time_s=time_s)
        self._w = outcome.w
        xs, us, ys, f = outcome.trajectories
        u_pred = np.asarray(us, dtype=float).T
        u0 = u_pred[0].copy()
        self._u_last = u0
        return MpcResult(
            outcome.status, u0, x_pred=np.asarray(xs, dtype=float).T, u_pred=u_pred,
            y_pred=np.asarray(ys, dtype=float).T, objective=float(f),
            iterations=outcome.iterations, solve_time_s=time.perf_counter() - t0,
            message=outcome.message, solver=outcome.solver, time_s=time_s,
        )

    def _targets(
        self, target: OperatingTarget | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if target is None:  # read only (copied into the parameter vector)
            return self._y_target, self._u_target
        y_tgt = self._y_target.copy()
        u_tgt = self._u_target.copy()
        for name, val in target.y.items():
            if name not in self.model.y:
                raise ConfigError(f"target.y[{name!r}]: model has no output {name!r}")
            y_tgt[self.model.y.index(name)] = _finite(val, f"target.y[{name!r}]")
        for name, val in target.u.items():
            if name not in self.model.u:
                raise ConfigError(f"target.u[{name!r}]: model has no input {name!r}")
            u_tgt[self.model.u.index(name)] = _finite(val, f"target.u[{name!r}]")
        return y_tgt, u_tgt


def resolve_transcription(
    model: PlantModel, config: MpcConfig, solver: SolverKind = SolverKind.RTI
) -> Transcription:
    """The transcription ``config.transcription`` stands for (AUTO resolved).

    AUTO: whole-horizon for nominal problems with at most
    :data:`mpc.stagewise.WHOLE_HORIZON_MAX_STATES` states that use no stage-only feature
    (and always for ``SolverKind.IPOPT``); stage-structured otherwise.
    """
    choice = config.transcription
    if solver is SolverKind.IPOPT:
        if choice is Transcription.STAGEWISE or config.needs_stagewise:
            raise ConfigError("solver: IPOPT needs the whole-horizon transcription, which has "
                              "no hard bounds, economic costs, cost scales, scenario "
                              "probabilities or robust horizon > 1; use SolverKind.RTI")
        return Transcription.WHOLE_HORIZON
    if choice is Transcription.WHOLE_HORIZON:
        if config.qp_solver is QpSolver.PIQP:
            raise ConfigError("qp_solver: 'piqp' needs the stage transcription, not whole_horizon")
        if config.needs_stagewise:
            raise ConfigError("transcription: whole_horizon has no hard bounds, economic costs, "
                              "cost scales, scenario probabilities or robust horizon > 1")
        return choice
    if choice is Transcription.STAGEWISE:
        if config.qp_solver is QpSolver.CONDENSED_DAQP:
            raise ConfigError("qp_solver: 'condensed_daqp' needs the whole-horizon "
                              "transcription, not stagewise")
        return choice
    small = config.robust is None and len(model.x) <= WHOLE_HORIZON_MAX_STATES
    whole = small and not config.needs_stagewise and config.qp_solver is not QpSolver.PIQP
    return Transcription.WHOLE_HORIZON if whole else Transcription.STAGEWISE


def _finite(val: float, where: str) -> float:
    try:
        out = float(val)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {val!r}") from None
    if not np.isfinite(out):
        raise ConfigError(f"{where}: non-finite value {out}")
    return out


def _vector(
    sset: SignalSet, values: Mapping[str, float] | ArrayLike | None, what: str,
    default: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """``sset.vector(values, default=default, what=what)`` (a new array), with a fast path for
    the usual case of a finite float array (or no value and a finite default) of the right
    length: the per-step input checks cost a few microseconds instead of ~30."""
    arr = values if values is not None else default
    if isinstance(arr, np.ndarray) and arr.shape == (len(sset),) and arr.dtype == np.float64:
        if np.isfinite(arr).all():
            return arr.copy()
    if values is None:
        return sset.vector(default, what=what).copy()
    return sset.vector(values, default=default, what=what)


def _vec(val: ArrayLike | None, n: int, what: str) -> NDArray[np.float64]:
    if val is None or np.size(val) == 0:
        return np.zeros(n)
    out = np.asarray(val, dtype=float).reshape(-1)
    if out.shape != (n,):
        raise ModelError(f"{what}: expected {n} values, got shape {np.shape(val)}")
    if not np.all(np.isfinite(out)):
        raise ModelError(f"{what}: non-finite value")
    return out
