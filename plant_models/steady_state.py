"""Steady states of a PlantModel: forward (given u) and square inverse (given output targets).

Forward: find x with f(x,u,d,p) = 0 (continuous) or f(x,u,d,p) = x (discrete).
Inverse: given targets on as many outputs as free inputs, find x and the free
inputs. Both are solved with IPOPT in variables scaled by each signal's nominal,
inside the signals' bounds, and verified by the residual of the scaled equations.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ModelError, SolverFailed
from plant_models.results import SolveInfo, SolveStatus, status_from_ipopt

if TYPE_CHECKING:  # pragma: no cover
    from plant_models.model import PlantModel

RESIDUAL_TOL = 1e-6
"""Largest accepted scaled residual |f_i| / (nominal_i) (per unit of time for ODEs)."""


@dataclass(frozen=True)
class SteadyState:
    """A steady operating point and how it was found."""

    info: SolveInfo
    """Status, iterations, time, message."""
    x: NDArray[np.float64] | None
    """Steady states (None unless usable)."""
    u: NDArray[np.float64] | None
    """Inputs at the steady state (given, or found by the inverse problem)."""
    d: NDArray[np.float64]
    """Disturbances used."""
    p: NDArray[np.float64]
    """Parameters used."""
    y: NDArray[np.float64] | None
    """Outputs at the steady state."""
    residual: float
    """Largest scaled residual of the steady-state equations."""

    @property
    def status(self) -> SolveStatus:
        """Shortcut to ``info.status``."""
        return self.info.status

    def raise_for_status(self) -> None:
        """Raise :class:`SolverFailed` unless usable."""
        self.info.raise_for_status()


def _guess(model: PlantModel, x_guess: Mapping[str, float] | ArrayLike | None) -> NDArray:
    return model.resolve("x", x_guess)


def steady_state(
    model: PlantModel,
    u: Mapping[str, float] | ArrayLike | None = None,
    d: Mapping[str, float] | ArrayLike | None = None,
    p: Mapping[str, float] | ArrayLike | None = None,
    *,
    x_guess: Mapping[str, float] | ArrayLike | None = None,
    targets: Mapping[str, float] | None = None,
    free_inputs: tuple[str, ...] | None = None,
    raise_on_failure: bool = True,
) -> SteadyState:
    """Solve for a steady state.

    Without ``targets``: states for the given ``u`` (default nominal).
    With ``targets`` ({output name: value}): the square inverse problem; the free
    inputs (default: all of ``u``) must be as many as the targets; the other
    inputs are fixed at ``u``. Raises :class:`SolverFailed` naming the states
    with the largest residual when no steady state is found (unless
    ``raise_on_failure`` is False, then the result carries the status).
    """
    uv = model.resolve("u", u)
    dv = model.resolve("d", d)
    pv = model.resolve("p", p)
    x0 = _guess(model, x_guess)
    nx = len(model.x)
    xs_nom = model.x.nominal
    free: list[int] = []
    tgt_idx: list[int] = []
    tgt_val = np.zeros(0)
    if targets is not None:
        names = tuple(free_inputs) if free_inputs is not None else model.u.names
        free = model.u.indices(names)
        tgt_idx = model.y.indices(targets.keys())
        tgt_val = np.array([float(v) for v in targets.values()])
        model.y.check_finite(tgt_val, f"{model.name} steady-state targets")
        if len(free) != len(tgt_idx):
            raise ModelError(
                f"steady_state of {model.name!r}: the inverse problem must be square; "
                f"{len(tgt_idx)} output targets ({', '.join(targets)}) but {len(free)} free inputs "
                f"({', '.join(names)})"
            )
    us_nom = model.u.nominal[free] if free else np.zeros(0)
    zx = ca.SX.sym("zx", nx)
    zu = ca.SX.sym("zu", len(free))
    xs = zx * xs_nom
    uu = ca.SX(uv)
    if free:
        parts = [uu[i] for i in range(len(uv))]
        for j, i in enumerate(free):
            parts[i] = zu[j] * us_nom[j]
        uu = ca.vertcat(*parts)
    fx = model.f(xs, uu, dv, pv)
    res = fx / xs_nom if model.is_continuous else (fx - xs) / xs_nom
    g = [res]
    if tgt_idx:
        hy = model.h(xs, uu, dv, pv)
        ynom = model.y.nominal[tgt_idx]
        g.append((ca.vertcat(*[hy[i] for i in tgt_idx]) - tgt_val) / ynom)
    gexpr = ca.vertcat(*g)
    z = ca.vertcat(zx, zu)
    z0 = np.concatenate([x0 / xs_nom, (uv[free] / us_nom) if free else np.zeros(0)])
    lbz = np.concatenate([model.x.lower / xs_nom, model.u.lower[free] / us_nom if free else []])
    ubz = np.concatenate([model.x.upper / xs_nom, model.u.upper[free] / us_nom if free else []])
    z0 = np.clip(z0, lbz, ubz)
    obj = 1e-10 * ca.sumsqr(z - z0)
    solver = ca.nlpsol(
        "ss", "ipopt", {"x": z, "f": obj, "g": gexpr},
        {"print_time": False, "ipopt": {"print_level": 0, "sb": "yes", "tol": 1e-12,
                                        "max_iter": 500}},
    )
    t0 = time.perf_counter()
    sol = solver(x0=z0, lbx=lbz, ubx=ubz, lbg=0, ubg=0)
    elapsed = time.perf_counter() - t0
    stats = solver.stats()
    zopt = np.asarray(sol["x"], dtype=float).reshape(-1)
    xopt = zopt[:nx] * xs_nom
    ufull = uv.copy()
    if free:
        ufull[free] = zopt[nx:] * us_nom
    resid_vec = np.asarray(ca.Function("r", [z], [gexpr])(zopt), dtype=float).reshape(-1)
    residual = float(np.max(np.abs(resid_vec))) if resid_vec.size else 0.0
    status = status_from_ipopt(stats)
    if residual > RESIDUAL_TOL or not np.all(np.isfinite(zopt)):
        status = SolveStatus.INFEASIBLE if status.usable else status
    info = SolveInfo(
        status=status, objective=None, iterations=int(stats.get("iter_count", 0)),
        solve_time_s=elapsed, message=str(stats.get("return_status", "")),
    )
    if not status.usable:
        worst = np.argsort(-np.abs(resid_vec[:nx]))[:3]
        worst_text = ", ".join(f"{model.x.names[i]} ({resid_vec[i]:.3g})" for i in worst)
        msg = (
            f"steady state of {model.name!r} not found ({info.message}); largest scaled "
            f"residuals: {worst_text}"
        )
        if raise_on_failure:
            raise SolverFailed(msg)
        return SteadyState(
            info=SolveInfo(status, None, info.iterations, elapsed, msg), x=None, u=None,
            d=dv, p=pv, y=None, residual=residual,
        )
    y = np.asarray(model.h(xopt, ufull, dv, pv), dtype=float).reshape(-1)
    return SteadyState(info=info, x=xopt, u=ufull, d=dv, p=pv, y=y, residual=residual)


def require_steady(result: SteadyState) -> SteadyState:
    """Return ``result`` or raise :class:`SolverFailed`."""
    if result.x is None:
        raise SolverFailed(result.info.message)
    return result
