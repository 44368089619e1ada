"""Steady-state gradients: of the model (implicit function theorem) and of the plant.

Model: along the steady-state manifold f(x, u, d, p) = 0,
``dx/du = -f_x^{-1} f_u`` and ``dy/du = h_x dx/du + h_u``.
Plant: from the last n+1 operating points (a secant/simplex estimate, as in
modifier adaptation with past operating points: Gao & Engell, Comput. Chem.
Eng. 29 (2005) 1347-1363; Marchetti, Chachuat & Bonvin, J. Process Control 20
(2010) 1027-1040), or from forward finite-difference perturbations.
"""

from __future__ import annotations

from collections.abc import Sequence

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ModelError
from plant_models.model import PlantModel


def _jacobians(model: PlantModel) -> ca.Function:
    key = ("rto_ss_jacobians",)
    fn = model._cache.get(key)
    if fn is None:
        x, u = ca.SX.sym("x", len(model.x)), ca.SX.sym("u", len(model.u))
        d, p = ca.SX.sym("d", len(model.d)), ca.SX.sym("p", len(model.p))
        f, h = model.f(x, u, d, p), model.h(x, u, d, p)
        if not model.is_continuous:
            f = f - x
        fn = ca.Function("ssjac", [x, u, d, p],
                         [ca.jacobian(f, x), ca.jacobian(f, u), ca.jacobian(h, x),
                          ca.jacobian(h, u)])
        model._cache[key] = fn
    return fn


def output_sensitivity(
    model: PlantModel, x: ArrayLike, u: ArrayLike, d: ArrayLike, p: ArrayLike
) -> NDArray[np.float64]:
    """dy/du at a steady state, shape (ny, nu)."""
    args = [np.asarray(v, float) for v in (x, u, d, p)]
    fx, fu, hx, hu = (np.asarray(v, float) for v in _jacobians(model)(*args))
    try:
        dxdu = -np.linalg.solve(fx, fu)
    except np.linalg.LinAlgError:
        raise ModelError(f"{model.name}: singular steady-state Jacobian df/dx") from None
    return hx @ dxdu + hu


def simplex_gradient(
    points: Sequence[ArrayLike], values: Sequence[float], scale: ArrayLike,
    *, max_condition: float = 1e4,
) -> NDArray[np.float64] | None:
    """Gradient from n+1 points (last one is the reference), or None if ill-conditioned.

    Solves ``(u_j - u_k)^T g = phi_j - phi_k`` for the n other points, in
    coordinates scaled by ``scale``; returns None when the scaled difference
    matrix has a condition number above ``max_condition``.
    """
    pts = np.asarray(points, float)
    vals = np.asarray(values, float)
    sc = np.asarray(scale, float).reshape(-1)
    n = pts.shape[1]
    if pts.shape[0] != n + 1 or vals.shape != (n + 1,):
        raise ModelError(f"simplex_gradient: need {n + 1} points and values, got {pts.shape[0]}")
    du = (pts[:-1] - pts[-1]) / sc
    if np.linalg.cond(du) > max_condition:
        return None
    gs = np.linalg.solve(du, vals[:-1] - vals[-1])
    return gs / sc
