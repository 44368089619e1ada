"""Economic steady-state optimisation of a PlantModel with IPOPT through CasADi.

:class:`EconomicOptimizer` is built once from a model and an :class:`RtoConfig`
(describe, build, run): the NLP in variables scaled by the signals' nominals,

    max  sum_i price_i s_i(x, u, d) + lambda_phi^T (u - u_ref)
    s.t. f(x, u, d, p) = 0                          (steady state)
         lo_j <= c_j(x, u) + eps_j + lambda_j^T (u - u_ref) <= hi_j   (limits on y)
         u, x within their (tightened) bounds,

with d, p, fixed inputs and modifiers as NLP parameters. :meth:`solve` returns
an :class:`RtoResult` with the status, the optimum, the profit, and each limit's
Lagrange multiplier in $/s per SI unit. It never raises on a failed solve.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ModelError
from plant_models.model import PlantModel
from plant_models.results import SolveInfo, SolveStatus, status_from_ipopt
from plant_models.steady_state import steady_state
from rto.config import RtoConfig
from rto.modifiers import Modifiers
from rto.results import LimitSensitivity, RtoResult, Side

log = logging.getLogger(__name__)

EQUATION_TOL = 1e-6
"""Largest accepted scaled residual of the steady-state equations at an optimum."""


class EconomicOptimizer:
    """Steady-state economic optimiser of one model and config (the NLP is built once)."""

    def __init__(self, model: PlantModel, config: RtoConfig) -> None:
        config.validate(model)
        self.model = model
        self.config = config
        self.decisions = config.decision_names(model)
        self._free = model.u.indices(self.decisions)
        self.constrained = tuple(
            n for n in config.limits if config.limit_kind(model, n) == "y"
        )
        self._cidx = model.y.indices(self.constrained)
        self._build()

    # -- construction ----------------------------------------------------------
    def _build(self) -> None:
        m, cfg = self.model, self.config
        nx, nu, nd, npar, nc = len(m.x), len(m.u), len(m.d), len(m.p), len(self.constrained)
        self._xnom, self._unom = m.x.nominal, m.u.nominal
        self._cnom = m.y.nominal[self._cidx] if nc else np.zeros(0)
        zx, zu = ca.MX.sym("zx", nx), ca.MX.sym("zu", nu)
        d, p = ca.MX.sym("d", nd), ca.MX.sym("p", npar)
        u_ref, lam = ca.MX.sym("u_ref", nu), ca.MX.sym("lam", nu)
        eps, lam_c = ca.MX.sym("eps", nc), ca.MX.sym("lam_c", nc * nu)
        scale = ca.MX.sym("scale")
        x, u = zx * self._xnom, zu * self._unom
        y = m.h(x, u, d, p)
        profit = self._profit_expr(x, u, d, y)
        mod_profit = profit + ca.dot(lam, u - u_ref)
        f = m.f(x, u, d, p)
        eq = f / self._xnom if m.is_continuous else (f - x) / self._xnom
        cons = []
        for j, i in enumerate(self._cidx):
            cons.append((y[i] + eps[j] + ca.dot(lam_c[j * nu:(j + 1) * nu], u - u_ref))
                        / self._cnom[j])
        g = ca.vertcat(eq, *cons)
        z = ca.vertcat(zx, zu)
        par = ca.vertcat(d, p, u_ref, lam, eps, lam_c, scale)
        self._solver = ca.nlpsol(
            "rto", "ipopt", {"x": z, "f": -mod_profit / scale, "g": g, "p": par},
            {"print_time": False, "ipopt": {"print_level": 0, "sb": "yes", "tol": cfg.tol,
                                            "max_iter": cfg.max_iter,
                                            "bound_relax_factor": 0.0}},
        )
        self._profit_fn = ca.Function("profit", [zx, zu, d, p], [profit])
        self._g_fn = ca.Function("g", [z, par], [g])
        # bounds of the scaled variables
        lbx = np.array([cfg.bounds(m, "x", n)[0] for n in m.x.names]) / self._xnom
        ubx = np.array([cfg.bounds(m, "x", n)[1] for n in m.x.names]) / self._xnom
        self._lbz_x, self._ubz_x = lbx, ubx
        lbc = np.array([cfg.limits[n][0] for n in self.constrained])
        ubc = np.array([cfg.limits[n][1] for n in self.constrained])
        self._lbc, self._ubc = lbc, ubc

    def _profit_expr(self, x: ca.MX, u: ca.MX, d: ca.MX, y: ca.MX) -> ca.MX:
        m = self.model
        total = ca.MX(0)
        for name, price in self.config.prices.items():
            if name in m.u:
                total += price * u[m.u.index(name)]
            elif name in m.d:
                total += price * d[m.d.index(name)]
            else:
                total += price * y[m.y.index(name)]
        return total

    # -- evaluation helpers ----------------------------------------------------------
    def profit(self, x: ArrayLike, u: ArrayLike, d: ArrayLike | None = None,
               p: ArrayLike | None = None) -> float:
        """Model profit ($/s) at a given state and input (no modifiers)."""
        m = self.model
        return float(self._profit_fn(np.asarray(x, float) / self._xnom,
                                     np.asarray(u, float) / self._unom,
                                     m.resolve("d", d), m.resolve("p", p)))

    def profit_of_outputs(self, y: Mapping[str, float] | ArrayLike, u: ArrayLike,
                          d: ArrayLike) -> float:
        """Profit ($/s) from output, input and disturbance values (e.g. plant measurements)."""
        m = self.model
        yv = dict(y) if isinstance(y, Mapping) else m.y.mapping(y)
        missing = [n for n in self.config.prices
                   if n not in m.u and n not in m.d and n not in yv]
        if missing:
            raise ModelError(f"profit: no measurement of the priced stream(s) {', '.join(missing)}")
        uv, dv = np.asarray(u, float).reshape(-1), np.asarray(d, float).reshape(-1)
        total = 0.0
        for name, price in self.config.prices.items():
            if name in m.u:
                total += price * uv[m.u.index(name)]
            elif name in m.d:
                total += price * dv[m.d.index(name)]
            else:
                total += price * float(yv[name])
        return total

    # -- solve ----------------------------------------------------------------------
    def solve(
        self,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
        *,
        u: Mapping[str, float] | ArrayLike | None = None,
        x_guess: ArrayLike | None = None,
        modifiers: Modifiers | None = None,
    ) -> RtoResult:
        """Optimise at disturbance ``d`` and parameters ``p`` (defaults: nominal).

        ``u`` gives the fixed inputs and the initial guess of the free ones
        (default nominal); ``x_guess`` the initial states (default: the model's
        steady state at ``u``).
        """
        m, cfg = self.model, self.config
        dv, pv, uv = m.resolve("d", d), m.resolve("p", p), m.resolve("u", u)
        nu = len(m.u)
        lbu = uv.copy()
        ubu = uv.copy()
        for i, name in zip(self._free, self.decisions, strict=True):
            lbu[i], ubu[i] = cfg.bounds(m, "u", name)
        u0 = np.clip(uv, lbu, ubu)
        if x_guess is None:
            ss = steady_state(m, u0, dv, pv, raise_on_failure=False)
            x0 = ss.x if ss.x is not None else m.nominal.x
        else:
            x0 = m.x.vector(np.asarray(x_guess, float), what="x_guess")
        mods = modifiers if modifiers is not None else Modifiers.zero(u0, self.constrained)
        eps = np.array([mods.constraint_bias.get(c, 0.0) for c in self.constrained])
        lam_c = np.concatenate([np.asarray(mods.constraint_gradient.get(c, np.zeros(nu)), float)
                                for c in self.constrained]) if self.constrained else np.zeros(0)
        scale = cfg.profit_scale
        if scale is None:
            scale = max(1.0, abs(self.profit(x0, u0, dv, pv)))
        par = np.concatenate([dv, pv, mods.u_ref, mods.cost_gradient, eps, lam_c, [scale]])
        z0 = np.concatenate([np.clip(x0 / self._xnom, self._lbz_x, self._ubz_x), u0 / self._unom])
        lbz = np.concatenate([self._lbz_x, lbu / self._unom])
        ubz = np.concatenate([self._ubz_x, ubu / self._unom])
        nx = len(m.x)
        lbg = np.concatenate([np.zeros(nx), self._lbc / self._cnom if self.constrained else []])
        ubg = np.concatenate([np.zeros(nx), self._ubc / self._cnom if self.constrained else []])
        t0 = time.perf_counter()
        try:
            sol = self._solver(x0=z0, lbx=lbz, ubx=ubz, lbg=lbg, ubg=ubg, p=par)
        except RuntimeError as exc:  # CasADi evaluation errors
            info = SolveInfo(SolveStatus.NUMERICAL_ERROR, None, 0, time.perf_counter() - t0,
                             f"RTO solve of {m.name!r} failed: {exc}")
            log.warning(info.message)
            return RtoResult(info, None, None, None, dv, pv, None, None)
        elapsed = time.perf_counter() - t0
        stats = self._solver.stats()
        status = status_from_ipopt(stats)
        z = np.asarray(sol["x"], float).reshape(-1)
        gval = np.asarray(self._g_fn(z, par), float).reshape(-1)
        eq_res = float(np.max(np.abs(gval[:nx])))
        viol = self._violations(gval[nx:])
        if status.usable and (eq_res > EQUATION_TOL or not np.all(np.isfinite(z))):
            status = SolveStatus.INFEASIBLE
        message = str(stats.get("return_status", ""))
        iters = int(stats.get("iter_count", 0))
        if not status.usable:
            named = ", ".join(viol) or "none"
            message = (f"RTO of {m.name!r}: {status.value} ({message}); limits on or beyond "
                       f"their bounds at the last iterate: {named}; steady-state residual "
                       f"{eq_res:.3g}")
            log.warning(message)
            return RtoResult(SolveInfo(status, None, iters, elapsed, message),
                             None, None, None, dv, pv, None, None)
        x, uo = z[:nx] * self._xnom, z[nx:] * self._unom
        y = np.asarray(m.h(x, uo, dv, pv), float).reshape(-1)
        mod_profit = -float(sol["f"]) * scale
        lam_g = np.asarray(sol["lam_g"], float).reshape(-1) * scale
        lam_x = np.asarray(sol["lam_x"], float).reshape(-1) * scale
        limits = self._sensitivities(x, uo, gval[nx:] * self._cnom, lbu, ubu, lam_g, lam_x)
        nu_eq = lam_g[:nx] / self._xnom
        info = SolveInfo(status, mod_profit, iters, elapsed, message)
        return RtoResult(info, x, uo, y, dv, pv, mod_profit, self.profit(x, uo, dv, pv),
                         limits, nu_eq)

    def _violations(self, gc: NDArray) -> list[str]:
        """Constrained outputs on or beyond a limit, e.g. ``"x_g >= upper 0.001"``."""
        out = []
        tol = self.config.active_tol
        for j, name in enumerate(self.constrained):
            v, nom = gc[j] * self._cnom[j], self._cnom[j]
            if v >= self._ubc[j] - tol * nom:
                out.append(f"{name} at/above upper limit {self._ubc[j]:g} ({v:.6g})")
            elif v <= self._lbc[j] + tol * nom:
                out.append(f"{name} at/below lower limit {self._lbc[j]:g} ({v:.6g})")
        return out

    def _sensitivities(self, x: NDArray, u: NDArray, c: NDArray, lbu: NDArray, ubu: NDArray,
                       lam_g: NDArray, lam_x: NDArray) -> tuple[LimitSensitivity, ...]:
        m, tol = self.model, self.config.active_tol
        nx = len(m.x)
        out: list[LimitSensitivity] = []

        def add(name: str, kind: str, lo: float, hi: float, val: float, nom: float,
                mult: float) -> None:
            # mult: multiplier in $/s per SI unit; >0 pushes on the upper side
            for side, lim in ((Side.LOWER, lo), (Side.UPPER, hi)):
                if not math.isfinite(lim):
                    continue
                active = abs(val - lim) <= tol * nom + 1e-12
                on_side = (mult < 0) if side is Side.LOWER else (mult > 0)
                sens = mult if on_side else 0.0
                out.append(LimitSensitivity(name, kind, side, float(lim), float(val), bool(active),
                                            float(sens)))

        for i, name in zip(self._free, self.decisions, strict=True):
            add(name, "u", lbu[i], ubu[i], u[i], self._unom[i], lam_x[nx + i] / self._unom[i])
        for name in self.config.limits:
            if self.config.limit_kind(m, name) == "x":
                i = m.x.index(name)
                lo, hi = self.config.bounds(m, "x", name)
                add(name, "x", lo, hi, x[i], self._xnom[i], lam_x[i] / self._xnom[i])
        for j, name in enumerate(self.constrained):
            lo, hi = self._lbc[j], self._ubc[j]
            add(name, "y", lo, hi, c[j], self._cnom[j], lam_g[nx + j] / self._cnom[j])
        return tuple(out)
