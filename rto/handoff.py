"""Hand-off from RTO to MPC: filtered, ramped, reachable steady-state targets.

Each call of :meth:`TargetHandoff.update` takes the RTO's desired inputs and
outputs and issues an :class:`plant_models.samples.OperatingTarget`:

1. first-order filter towards the RTO values (gain ``filter_gain``);
2. rate limit: all signals move together along the straight line to the
   filtered values, so that none moves faster than its ``max_rate`` (SI units
   per second) since the last issued target;
3. steady-state target calculation: the closest steady state of the model
   within the MV and CV limits (and, for rate-limited MVs, within the ramp
   window), in the weighted sense

       min  sum_i w_i ((y_i - y_i^t) / nom_i)^2 + sum_j w_j ((u_j - u_j^t) / nom_j)^2
       s.t. f(x, u, d, p) = 0,  MV limits on u,  CV limits on y,

   so that MPC always receives a consistent, reachable (u, y) pair.

A failed target calculation keeps the previous target and says why.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ConfigError, ModelError
from plant_models.model import PlantModel
from plant_models.results import SolveInfo, SolveStatus, status_from_ipopt
from plant_models.samples import OperatingTarget
from plant_models.steady_state import steady_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandoffConfig:
    """How RTO targets are passed to MPC."""

    cvs: tuple[str, ...] = ()
    """Outputs (y) passed as CV targets."""
    mvs: tuple[str, ...] | None = None
    """Inputs (u) passed as MV targets; None = all of u."""
    filter_gain: float = 1.0
    """First-order filter gain towards the RTO value per update, in (0, 1]."""
    max_rate: Mapping[str, float] = field(default_factory=dict)
    """Largest rate of change per signal (u or y), SI units per second."""
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """MV/CV limits of the controller by signal name (u or y); u also within its bounds."""
    weights: Mapping[str, float] = field(default_factory=dict)
    """Weight per signal in the target calculation; default 1 for CVs and MVs."""
    reach_tol: float = 1e-6
    """A target is reachable when every scaled adjustment is below this."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cvs", tuple(self.cvs))
        if self.mvs is not None:
            object.__setattr__(self, "mvs", tuple(self.mvs))
        for attr in ("max_rate", "limits", "weights"):
            object.__setattr__(self, attr, MappingProxyType(dict(getattr(self, attr))))
        if not (0.0 < self.filter_gain <= 1.0):
            raise ConfigError(f"HandoffConfig.filter_gain: expected (0, 1], got {self.filter_gain}")
        for key, val in self.max_rate.items():
            if not val > 0:
                raise ConfigError(f"HandoffConfig.max_rate[{key!r}]: expected > 0, got {val}")
        for key, (lo, hi) in self.limits.items():
            if not lo <= hi:
                raise ConfigError(f"HandoffConfig.limits[{key!r}]: lower {lo} above upper {hi}")
        for key, val in self.weights.items():
            if not (math.isfinite(val) and val >= 0):
                raise ConfigError(f"HandoffConfig.weights[{key!r}]: expected >= 0, got {val}")

    def validate(self, model: PlantModel) -> None:
        """Raise :class:`ConfigError` naming the key if a name is not in ``model``."""
        for name in self.cvs:
            if name not in model.y:
                raise ConfigError(f"HandoffConfig.cvs: {model.name!r} has no output {name!r}")
        for name in self.mvs or ():
            if name not in model.u:
                raise ConfigError(f"HandoffConfig.mvs: {model.name!r} has no input {name!r}")
        for attr in ("max_rate", "limits", "weights"):
            for key in getattr(self, attr):
                if key not in model.u and key not in model.y:
                    raise ConfigError(
                        f"HandoffConfig.{attr}[{key!r}]: {model.name!r} has no input or output "
                        f"{key!r}"
                    )


@dataclass(frozen=True)
class HandoffResult:
    """One hand-off: the issued target and how it relates to what RTO asked for."""

    info: SolveInfo
    """Status of the target calculation."""
    target: OperatingTarget | None
    """Issued target (the previous one when this update failed; None before any success)."""
    reachable: bool
    """True when the ramped target needed no adjustment to be a feasible steady state."""
    requested: dict[str, float]
    """The filtered, rate-limited values that went into the target calculation."""
    adjustment: dict[str, float]
    """Issued minus requested value per signal (non-zero where limits made a target
    unreachable)."""
    ramping: bool
    """True while rate limits still hold the target away from the RTO value."""
    u: NDArray[np.float64] | None = None
    """Full steady input vector of the target."""
    x: NDArray[np.float64] | None = None
    """Steady state of the target."""


class TargetHandoff:
    """Turns RTO optima into filtered, ramped, reachable OperatingTargets (stateful)."""

    def __init__(self, model: PlantModel, config: HandoffConfig) -> None:
        config.validate(model)
        self.model, self.config = model, config
        self.mvs = config.mvs if config.mvs is not None else model.u.names
        self._names = (*self.mvs, *config.cvs)
        self._last: dict[str, float] | None = None
        self._last_time: float | None = None
        self._last_target: OperatingTarget | None = None
        self._x_guess: NDArray | None = None
        self._build()

    def _build(self) -> None:
        m, cfg = self.model, self.config
        nx, nu = len(m.x), len(m.u)
        self._xnom, self._unom = m.x.nominal, m.u.nominal
        zx, zu = ca.MX.sym("zx", nx), ca.MX.sym("zu", nu)
        d, p = ca.MX.sym("d", len(m.d)), ca.MX.sym("p", len(m.p))
        tu, ty = ca.MX.sym("tu", len(self.mvs)), ca.MX.sym("ty", len(cfg.cvs))
        x, u = zx * self._xnom, zu * self._unom
        y = m.h(x, u, d, p)
        obj = 0
        for j, name in enumerate(self.mvs):
            i = m.u.index(name)
            obj += cfg.weights.get(name, 1.0) * (zu[i] - tu[j] / self._unom[i]) ** 2
        for j, name in enumerate(cfg.cvs):
            i = m.y.index(name)
            obj += cfg.weights.get(name, 1.0) * ((y[i] - ty[j]) / m.y.nominal[i]) ** 2
        f = m.f(x, u, d, p)
        eq = f / self._xnom if m.is_continuous else (f - x) / self._xnom
        self._ylim = [(m.y.index(n), lo, hi) for n, (lo, hi) in cfg.limits.items()
                      if n in m.y and n not in m.u]
        cons = [y[i] / m.y.nominal[i] for i, _, _ in self._ylim]
        self._solver = ca.nlpsol(
            "sstc", "ipopt",
            {"x": ca.vertcat(zx, zu), "f": obj, "g": ca.vertcat(eq, *cons),
             "p": ca.vertcat(d, p, tu, ty)},
            {"print_time": False, "ipopt": {"print_level": 0, "sb": "yes", "tol": 1e-12,
                                            "max_iter": 300, "bound_relax_factor": 0.0}},
        )
        lbu, ubu = m.u.lower.copy(), m.u.upper.copy()
        for n, (lo, hi) in cfg.limits.items():
            if n in m.u:
                i = m.u.index(n)
                lbu[i], ubu[i] = max(lbu[i], lo), min(ubu[i], hi)
        self._lbz = np.concatenate([m.x.lower / self._xnom, lbu / self._unom])
        self._ubz = np.concatenate([m.x.upper / self._xnom, ubu / self._unom])
        ynom = m.y.nominal
        self._lbg = np.concatenate([np.zeros(nx), [lo / ynom[i] for i, lo, _ in self._ylim]])
        self._ubg = np.concatenate([np.zeros(nx), [hi / ynom[i] for i, _, hi in self._ylim]])

    def reset(self, time_s: float, current: Mapping[str, float]) -> None:
        """Start ramps from the plant's current values (e.g. measured MVs and CVs)."""
        missing = [n for n in self._names if n not in current]
        if missing:
            raise ModelError(f"handoff reset: no current value for {', '.join(missing)}")
        self._last = {n: float(current[n]) for n in self._names}
        self._last_time = float(time_s)

    def update(
        self,
        time_s: float,
        u: Mapping[str, float] | ArrayLike,
        y: Mapping[str, float] | ArrayLike | None = None,
        *,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
    ) -> HandoffResult:
        """Issue a target towards the RTO values ``u`` (and ``y``; default: model outputs at u)."""
        m, cfg = self.model, self.config
        dv, pv = m.resolve("d", d), m.resolve("p", p)
        uv = m.u.vector(u, what="handoff RTO inputs")
        if y is None:
            ss = steady_state(m, uv, dv, pv, x_guess=self._x_guess, raise_on_failure=False)
            if ss.y is None:
                return self._keep(ss.status, f"no model steady state at the RTO inputs: "
                                  f"{ss.info.message}")
            yv = ss.y
        else:
            yv = m.y.vector(y, what="handoff RTO outputs")
        desired = {n: float(uv[m.u.index(n)]) for n in self.mvs}
        desired.update({n: float(yv[m.y.index(n)]) for n in cfg.cvs})
        if self._last is None:
            self._last, self._last_time = dict(desired), float(time_s)
        dt = max(0.0, float(time_s) - float(self._last_time or time_s))
        # filter, then ramp all signals together along the straight line to the filtered
        # point, as fast as the slowest rate-limited signal allows (they arrive together)
        filtered = {n: self._last[n] + cfg.filter_gain * (desired[n] - self._last[n])
                    for n in self._names}
        frac = 1.0
        for n in self._names:
            rate = cfg.max_rate.get(n)
            dist = abs(filtered[n] - self._last[n])
            if rate is not None and dist > 0.0:
                frac = min(frac, rate * dt / dist)
        requested = {n: self._last[n] + frac * (filtered[n] - self._last[n]) for n in self._names}
        ramping = frac < 1.0
        # an MV with a rate limit may not leave its ramp window in the target calculation
        lbz, ubz = self._lbz.copy(), self._ubz.copy()
        nx = len(m.x)
        for n in self.mvs:
            rate = cfg.max_rate.get(n)
            if rate is not None and self._last is not None:
                i = m.u.index(n)
                lo = (self._last[n] - rate * dt) / self._unom[i]
                hi = (self._last[n] + rate * dt) / self._unom[i]
                lbz[nx + i], ubz[nx + i] = max(lbz[nx + i], lo), min(ubz[nx + i], hi)
                if lbz[nx + i] > ubz[nx + i]:  # limits moved away faster than the ramp allows
                    lbz[nx + i] = ubz[nx + i] = min(max(lo, self._lbz[nx + i]),
                                                    self._ubz[nx + i])
        return self._calculate(time_s, requested, dv, pv, uv, ramping, lbz, ubz)

    def _keep(self, status: SolveStatus, message: str) -> HandoffResult:
        log.warning("handoff: %s; previous target kept", message)
        return HandoffResult(SolveInfo(status, None, 0, 0.0, message), self._last_target, False,
                             {}, {}, False)

    def _calculate(self, time_s: float, req: dict[str, float], dv: NDArray, pv: NDArray,
                   u_guess: NDArray, ramping: bool, lbz: NDArray, ubz: NDArray) -> HandoffResult:
        m, cfg = self.model, self.config
        u0 = u_guess.copy()
        for n in self.mvs:
            u0[m.u.index(n)] = req[n]
        x0 = self._x_guess
        if x0 is None:
            ss = steady_state(m, np.clip(u0, m.u.lower, m.u.upper), dv, pv,
                              raise_on_failure=False)
            x0 = ss.x if ss.x is not None else m.nominal.x
        z0 = np.clip(np.concatenate([x0 / self._xnom, u0 / self._unom]), lbz, ubz)
        par = np.concatenate([dv, pv, [req[n] for n in self.mvs], [req[n] for n in cfg.cvs]])
        t0 = time.perf_counter()
        sol = self._solver(x0=z0, lbx=lbz, ubx=ubz, lbg=self._lbg, ubg=self._ubg, p=par)
        elapsed = time.perf_counter() - t0
        stats = self._solver.stats()
        status = status_from_ipopt(stats)
        if not status.usable:
            return self._keep(status, f"steady-state target calculation failed "
                              f"({stats.get('return_status')})")
        nx = len(m.x)
        z = np.asarray(sol["x"], float).reshape(-1)
        x, u = z[:nx] * self._xnom, z[nx:] * self._unom
        y = np.asarray(m.h(x, u, dv, pv), float).reshape(-1)
        issued = {n: float(u[m.u.index(n)]) for n in self.mvs}
        issued.update({n: float(y[m.y.index(n)]) for n in cfg.cvs})
        adj = {n: issued[n] - req[n] for n in self._names}
        noms = {n: (m.u[n].nominal if n in self.mvs else m.y[n].nominal) for n in self._names}
        reachable = all(abs(adj[n]) / noms[n] <= cfg.reach_tol for n in self._names)
        target = OperatingTarget(
            time_s=float(time_s), y={n: issued[n] for n in cfg.cvs},
            u={n: issued[n] for n in self.mvs}, source="rto",
        )
        self._last, self._last_time = issued, float(time_s)
        self._last_target, self._x_guess = target, x
        info = SolveInfo(status, float(sol["f"]), int(stats.get("iter_count", 0)), elapsed,
                         str(stats.get("return_status", "")))
        return HandoffResult(info, target, reachable, req, adj, ramping, u, x)
