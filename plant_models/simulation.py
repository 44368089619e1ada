"""Open-loop simulation of a PlantModel with piecewise-constant inputs.

Continuous models are integrated with a CasADi integrator (CVODES by default,
IDAS, or a fixed-step RK4/collocation); discrete models are iterated. The
integrator for a given (method, dt) is built once and cached on the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ModelError, SolverFailed

if TYPE_CHECKING:  # pragma: no cover
    from plant_models.model import PlantModel


class Integrator(Enum):
    """Integration method for continuous-time models."""

    CVODES = "cvodes"
    """Variable-step BDF with error control (SUNDIALS), the default."""
    IDAS = "idas"
    """SUNDIALS DAE solver."""
    RK4 = "rk"
    """CasADi fixed-step explicit Runge-Kutta 4."""
    COLLOCATION = "collocation"
    """CasADi fixed-step Legendre collocation."""


@dataclass(frozen=True)
class Trajectory:
    """Result of a simulation: N steps, N+1 time points."""

    t: NDArray[np.float64]
    """Times, seconds, shape (N+1,)."""
    x: NDArray[np.float64]
    """States, shape (N+1, nx)."""
    u: NDArray[np.float64]
    """Inputs held over each step, shape (N, nu)."""
    d: NDArray[np.float64]
    """Disturbances held over each step, shape (N, nd)."""
    y: NDArray[np.float64]
    """Outputs at each time point (with the input of the step that starts there;
    the last point uses the last input), shape (N+1, ny)."""


def _step_function(model: PlantModel, dt: float, method: Integrator) -> ca.Function:
    key = ("step", method, float(dt))
    cached = model._cache.get(key)
    if cached is not None:
        return cached
    nx, nu, nd, npar = len(model.x), len(model.u), len(model.d), len(model.p)
    x = ca.SX.sym("x", nx)
    u = ca.SX.sym("u", nu)
    d = ca.SX.sym("d", nd)
    p = ca.SX.sym("p", npar)
    if not model.is_continuous:
        fun = ca.Function("step", [x, u, d, p], [model.f(x, u, d, p)])
    else:
        ode = model.f(x, u, d, p)
        opts: dict[str, Any] = {}
        if method is Integrator.CVODES:
            opts = {"abstol": 1e-10, "reltol": 1e-10, "max_num_steps": 100000}
        elif method is Integrator.IDAS:
            opts = {"abstol": 1e-10, "reltol": 1e-10}
        else:
            opts = {"number_of_finite_elements": 20}
        integ = ca.integrator(
            "plant", method.value, {"x": x, "p": ca.vertcat(u, d, p), "ode": ode}, 0.0, dt, opts
        )
        xf = integ(x0=x, p=ca.vertcat(u, d, p))["xf"]
        fun = ca.Function("step", [x, u, d, p], [xf])
    model._cache[key] = fun
    return fun


def rk4_function(model: PlantModel, dt: float, substeps: int, name: str = "rk4") -> ca.Function:
    """Fixed-step RK4 over ``dt`` seconds in ``substeps`` steps: ``F(x, u, d, p) -> x_next``
    (symbolic, differentiable; for estimators and shooting-based fits)."""
    x = ca.SX.sym("x", len(model.x))
    u = ca.SX.sym("u", len(model.u))
    d = ca.SX.sym("d", len(model.d))
    p = ca.SX.sym("p", len(model.p))
    h = dt / substeps
    xk = x
    for _ in range(substeps):
        k1 = model.f(xk, u, d, p)
        k2 = model.f(xk + h / 2 * k1, u, d, p)
        k3 = model.f(xk + h / 2 * k2, u, d, p)
        k4 = model.f(xk + h * k3, u, d, p)
        xk = xk + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return ca.Function(name, [x, u, d, p], [xk])


def step(
    model: PlantModel,
    x: NDArray[np.float64],
    u: NDArray[np.float64],
    d: NDArray[np.float64],
    p: NDArray[np.float64],
    dt: float,
    method: Integrator | str = Integrator.CVODES,
) -> NDArray[np.float64]:
    """Advance the plant one step of ``dt`` seconds with inputs held constant."""
    meth = Integrator(method) if not isinstance(method, Integrator) else method
    if not model.is_continuous and abs(dt - float(model.sample_time_s or 0)) > 1e-9 * max(1, dt):
        raise ModelError(
            f"model {model.name!r} is discrete with sample time {model.sample_time_s} s; "
            f"cannot step by {dt} s"
        )
    try:
        xn = _step_function(model, dt, meth)(x, u, d, p)
    except RuntimeError as exc:
        raise SolverFailed(f"integration of {model.name!r} failed over {dt} s: {exc}") from exc
    out = np.asarray(xn, dtype=float).reshape(-1)
    if not np.all(np.isfinite(out)):
        raise SolverFailed(f"integration of {model.name!r} produced non-finite states")
    return out


def _profile(values: ArrayLike | None, n: int, width: int, label: str, default: NDArray) -> NDArray:
    if values is None:
        return np.tile(default, (n, 1))
    arr = np.asarray(values, dtype=float)
    if arr.ndim <= 1:
        if arr.size != width:
            raise ModelError(f"{label}: expected {width} values per step, got {arr.size}")
        arr = np.tile(arr.reshape(1, -1), (n, 1))
    if arr.shape != (n, width):
        raise ModelError(f"{label}: expected shape ({n}, {width}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        rows, cols = np.nonzero(~np.isfinite(arr))
        raise ModelError(f"{label}: non-finite value at step {rows[0]}, column {cols[0]}")
    return arr


def simulate(
    model: PlantModel,
    x0: Mapping[str, float] | ArrayLike | None,
    u: ArrayLike,
    dt: float,
    *,
    d: ArrayLike | None = None,
    p: Mapping[str, float] | ArrayLike | None = None,
    method: Integrator | str = Integrator.CVODES,
) -> Trajectory:
    """Simulate ``model`` from ``x0`` with piecewise-constant inputs.

    ``u`` has shape (N, nu) (one row per step of ``dt`` seconds); a single row
    is not accepted because the number of steps would be ambiguous. ``d`` is
    (nd,) or (N, nd); ``p`` overrides the nominal parameters. ``x0=None`` starts
    from the nominal state.
    """
    if not (np.isfinite(dt) and dt > 0):
        raise ModelError(f"simulate: dt must be positive and finite, got {dt}")
    u_arr = np.asarray(u, dtype=float)
    if u_arr.ndim != 2:
        raise ModelError(
            f"simulate: u must have shape (steps, {len(model.u)}) for inputs "
            f"{', '.join(model.u.names)}, got shape {u_arr.shape}"
        )
    n = u_arr.shape[0]
    u_arr = _profile(u_arr, n, len(model.u), f"{model.name}.u", model.nominal.u)
    d_arr = _profile(d, n, len(model.d), f"{model.name}.d", model.nominal.d)
    pv = model.resolve("p", p)
    x = model.resolve("x", x0)
    xs = np.empty((n + 1, len(model.x)))
    ys = np.empty((n + 1, len(model.y)))
    xs[0] = x
    for k in range(n):
        ys[k] = np.asarray(model.h(xs[k], u_arr[k], d_arr[k], pv), dtype=float).reshape(-1)
        xs[k + 1] = step(model, xs[k], u_arr[k], d_arr[k], pv, dt, method)
    if n:
        ys[n] = np.asarray(model.h(xs[n], u_arr[-1], d_arr[-1], pv), dtype=float).reshape(-1)
    else:
        ys[0] = np.asarray(model.h(x, model.nominal.u, model.nominal.d, pv), dtype=float).reshape(-1)
    t = dt * np.arange(n + 1)
    return Trajectory(t=t, x=xs, u=u_arr, d=d_arr, y=ys)
