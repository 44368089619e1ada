"""Steady-state parameter estimation and data reconciliation (first step of two-step RTO).

Weighted least squares on measured outputs at a steady operating point:

    min_{x, theta, v}  sum_i ((h_i(x, u, d, theta) - y_i) / sigma_i)^2
                       + sum_k ((v_k - v_k,meas) / sigma_k)^2
    s.t.               f(x, u, d, theta) = 0,   theta within bounds,

solved with IPOPT in variables scaled by the signals' nominals. ``theta`` is a
subset of the model's parameters ``p``; the others stay at their given values.
``v`` are measured inputs or disturbances named in ``reconcile``: instead of
being taken as exact they are reconciled with the outputs (a flow meter with a
bias is corrected by the mass balances), within their signals' bounds.
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
from plant_models.steady_state import steady_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EstimationConfig:
    """What to estimate from which measurements."""

    parameters: tuple[str, ...]
    """Names of the model parameters (``p``) to estimate."""
    measured: tuple[str, ...]
    """Names of the measured outputs (``y``) used in the fit."""
    sigma: Mapping[str, float] = field(default_factory=dict)
    """Standard deviation per measured output (SI); missing ones default to 1 % of the
    signal's nominal."""
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Parameter bounds overriding the parameter signals' own bounds."""
    reconcile: Mapping[str, float] = field(default_factory=dict)
    """Measured inputs/disturbances (u or d) to reconcile, with their standard deviation (SI)."""
    tol: float = 1e-10
    """IPOPT tolerance."""
    max_iter: int = 300
    """IPOPT iteration limit."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", tuple(self.parameters))
        object.__setattr__(self, "measured", tuple(self.measured))
        object.__setattr__(self, "sigma", MappingProxyType(dict(self.sigma)))
        object.__setattr__(self, "bounds", MappingProxyType(dict(self.bounds)))
        object.__setattr__(self, "reconcile", MappingProxyType(dict(self.reconcile)))
        for key, val in self.reconcile.items():
            if not (math.isfinite(val) and val > 0):
                raise ConfigError(f"EstimationConfig.reconcile[{key!r}]: expected a standard "
                                  f"deviation > 0, got {val}")
        if not self.parameters:
            raise ConfigError("EstimationConfig.parameters: at least one parameter is needed")
        if len(self.measured) < len(self.parameters):
            raise ConfigError(
                f"EstimationConfig.measured: {len(self.measured)} measurements cannot determine "
                f"{len(self.parameters)} parameters"
            )
        for key, val in self.sigma.items():
            if not (math.isfinite(val) and val > 0):
                raise ConfigError(f"EstimationConfig.sigma[{key!r}]: expected > 0, got {val}")
        for key, (lo, hi) in self.bounds.items():
            if not lo <= hi:
                raise ConfigError(f"EstimationConfig.bounds[{key!r}]: lower {lo} above upper {hi}")

    def validate(self, model: PlantModel) -> None:
        """Raise :class:`ConfigError` naming the key if the names do not fit ``model``."""
        for name in self.parameters:
            if name not in model.p:
                raise ConfigError(f"EstimationConfig.parameters: {model.name!r} has no parameter "
                                  f"{name!r}; parameters: {', '.join(model.p.names) or '(none)'}")
        for name in self.measured:
            if name not in model.y:
                raise ConfigError(f"EstimationConfig.measured: {model.name!r} has no output "
                                  f"{name!r}; outputs: {', '.join(model.y.names)}")
        for key in (*self.sigma, ):
            if key not in self.measured:
                raise ConfigError(f"EstimationConfig.sigma[{key!r}]: not a measured output")
        for key in self.bounds:
            if key not in self.parameters:
                raise ConfigError(f"EstimationConfig.bounds[{key!r}]: not an estimated parameter")
        for key in self.reconcile:
            if key not in model.u and key not in model.d:
                raise ConfigError(f"EstimationConfig.reconcile[{key!r}]: {model.name!r} has no "
                                  f"input or disturbance {key!r}")


@dataclass(frozen=True)
class EstimationResult:
    """Outcome of one steady-state parameter estimation."""

    info: SolveInfo
    """Status, iterations, time, message; objective = weighted sum of squares."""
    p: NDArray[np.float64] | None
    """Full parameter vector with the estimates (None unless usable)."""
    estimates: dict[str, float]
    """Estimated parameters by name (empty unless usable)."""
    x: NDArray[np.float64] | None
    """Model steady state at the estimates."""
    residuals: dict[str, float]
    """Weighted residual (model - measurement) / sigma per measured output and reconciled
    signal."""
    reconciled: dict[str, float] = field(default_factory=dict)
    """Reconciled values of the inputs/disturbances named in ``reconcile`` (SI)."""

    @property
    def status(self) -> SolveStatus:
        """Shortcut to ``info.status``."""
        return self.info.status


class ParameterEstimator:
    """Steady-state WLS parameter estimator for one model (NLP built once)."""

    def __init__(self, model: PlantModel, config: EstimationConfig) -> None:
        config.validate(model)
        self.model, self.config = model, config
        self._pidx = model.p.indices(config.parameters)
        self._yidx = model.y.indices(config.measured)
        m = model
        nx, nth = len(m.x), len(self._pidx)
        self._xnom = m.x.nominal
        self._pnom = m.p.nominal[self._pidx]
        self._sigma = np.array([config.sigma.get(n, 0.01 * m.y[n].nominal)
                                for n in config.measured])
        self._rec = [(("u" if n in m.u else "d"), n) for n in config.reconcile]
        self._rnom = np.array([getattr(m, k)[n].nominal for k, n in self._rec])
        self._rsig = np.array([config.reconcile[n] for _, n in self._rec])
        nr = len(self._rec)
        zx, zt, zr = ca.MX.sym("zx", nx), ca.MX.sym("zt", nth), ca.MX.sym("zr", nr)
        u_meas, d_meas = ca.MX.sym("u", len(m.u)), ca.MX.sym("d", len(m.d))
        pfix, ymeas = ca.MX.sym("pfix", len(m.p)), ca.MX.sym("ym", len(self._yidx))
        x = zx * self._xnom
        uparts = [u_meas[i] for i in range(len(m.u))]
        dparts = [d_meas[i] for i in range(len(m.d))]
        rmeas = []
        for j, (kind, n) in enumerate(self._rec):
            parts, meas = (uparts, u_meas) if kind == "u" else (dparts, d_meas)
            idx = getattr(m, kind).index(n)
            rmeas.append(meas[idx])
            parts[idx] = zr[j] * self._rnom[j]
        u = ca.vertcat(*uparts) if uparts else ca.MX(0, 1)
        d = ca.vertcat(*dparts) if dparts else ca.MX(0, 1)
        parts = [pfix[i] for i in range(len(m.p))]
        for j, i in enumerate(self._pidx):
            parts[i] = zt[j] * self._pnom[j]
        p = ca.vertcat(*parts)
        y = m.h(x, u, d, p)
        res = (ca.vertcat(*[y[i] for i in self._yidx]) - ymeas) / self._sigma
        if nr:
            res = ca.vertcat(res, (zr * self._rnom - ca.vertcat(*rmeas)) / self._rsig)
        f = m.f(x, u, d, p)
        eq = f / self._xnom if m.is_continuous else (f - x) / self._xnom
        z = ca.vertcat(zx, zt, zr)
        par = ca.vertcat(u_meas, d_meas, pfix, ymeas)
        self._solver = ca.nlpsol(
            "est", "ipopt", {"x": z, "f": ca.sumsqr(res), "g": eq, "p": par},
            {"print_time": False, "ipopt": {"print_level": 0, "sb": "yes", "tol": config.tol,
                                            "max_iter": config.max_iter,
                                            "bound_relax_factor": 0.0}},
        )
        self._res_fn = ca.Function("res", [z, par], [res, eq])
        lo = [config.bounds.get(n, (m.p[n].lower, m.p[n].upper))[0] for n in config.parameters]
        hi = [config.bounds.get(n, (m.p[n].lower, m.p[n].upper))[1] for n in config.parameters]
        self._lbt, self._ubt = np.array(lo) / self._pnom, np.array(hi) / self._pnom
        self._lbr = np.array([getattr(m, k)[n].lower for k, n in self._rec]) / self._rnom
        self._ubr = np.array([getattr(m, k)[n].upper for k, n in self._rec]) / self._rnom

    def estimate(
        self,
        u: Mapping[str, float] | ArrayLike,
        d: Mapping[str, float] | ArrayLike | None,
        y: Mapping[str, float],
        p: Mapping[str, float] | ArrayLike | None = None,
    ) -> EstimationResult:
        """Fit the parameters to measured outputs ``y`` ({name: value}) at inputs ``u``, ``d``.

        ``p`` gives the fixed parameters and the initial guess (default nominal).
        Never raises on a failed solve.
        """
        m = self.model
        uv, dv, pv = m.resolve("u", u), m.resolve("d", d), m.resolve("p", p)
        missing = [n for n in self.config.measured if n not in y]
        if missing:
            raise ModelError(f"parameter estimation: no measurement for {', '.join(missing)}")
        ym = np.array([float(y[n]) for n in self.config.measured])
        if not np.all(np.isfinite(ym)):
            bad = [n for n, v in zip(self.config.measured, ym, strict=True) if not math.isfinite(v)]
            raise ModelError(f"parameter estimation: non-finite measurement for {', '.join(bad)}")
        ss = steady_state(m, uv, dv, pv, raise_on_failure=False)
        x0 = ss.x if ss.x is not None else m.nominal.x
        nx = len(m.x)
        r0 = np.array([(uv if k == "u" else dv)[getattr(m, k).index(n)] for k, n in self._rec])
        z0 = np.concatenate([x0 / self._xnom,
                             np.clip(pv[self._pidx] / self._pnom, self._lbt, self._ubt),
                             np.clip(r0 / self._rnom, self._lbr, self._ubr) if self._rec else []])
        lbz = np.concatenate([m.x.lower / self._xnom, self._lbt, self._lbr])
        ubz = np.concatenate([m.x.upper / self._xnom, self._ubt, self._ubr])
        par = np.concatenate([uv, dv, pv, ym])
        t0 = time.perf_counter()
        sol = self._solver(x0=z0, lbx=lbz, ubx=ubz, lbg=0, ubg=0, p=par)
        elapsed = time.perf_counter() - t0
        stats = self._solver.stats()
        status = status_from_ipopt(stats)
        z = np.asarray(sol["x"], float).reshape(-1)
        res, eq = (np.asarray(v, float).reshape(-1) for v in self._res_fn(z, par))
        if status.usable and float(np.max(np.abs(eq))) > 1e-6:
            status = SolveStatus.INFEASIBLE
        msg = str(stats.get("return_status", ""))
        info = SolveInfo(status, float(sol["f"]), int(stats.get("iter_count", 0)), elapsed, msg)
        labels = (*self.config.measured, *(n for _, n in self._rec))
        resid = {n: float(r) for n, r in zip(labels, res, strict=True)}
        if not status.usable:
            log.warning("parameter estimation of %s failed: %s", m.name, msg)
            return EstimationResult(info, None, {}, None, resid)
        nth = len(self._pidx)
        pfull = pv.copy()
        pfull[self._pidx] = z[nx:nx + nth] * self._pnom
        est = {n: float(pfull[i]) for n, i in zip(self.config.parameters, self._pidx, strict=True)}
        rec = {n: float(v) for (_, n), v in zip(self._rec, z[nx + nth:] * self._rnom, strict=True)}
        return EstimationResult(info, pfull, est, z[:nx] * self._xnom, resid, rec)
