"""Discrete-time maps of one controller sample, as CasADi SX functions.

:func:`step_function` returns ``F(x, u, d, p) -> x_next`` for a
:class:`~plant_models.model.PlantModel` (explicit RK4 with substeps);
:func:`collocation_function` gives Radau
IIA orthogonal collocation (the scheme of do-mpc's default
``state_discretization='collocation'``, ``collocation_type='radau'``, one
finite element) as residual equations whose collocation states become
decision variables of the stage (lifted collocation, the same NLP as
do-mpc's). Discrete-time models are used as they are.
"""

from __future__ import annotations

import casadi as ca
import numpy as np

from mpc.config import MpcConfig
from plant_models.model import PlantModel


def _rk4(f: ca.Function, x: ca.SX, args: list[ca.SX], dt: float, substeps: int) -> ca.SX:
    h = dt / substeps
    for _ in range(substeps):
        k1 = f(x, *args)
        k2 = f(x + 0.5 * h * k1, *args)
        k3 = f(x + 0.5 * h * k2, *args)
        k4 = f(x + h * k3, *args)
        x = x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def collocation_coefficients(degree: int) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Radau points ``tau`` (with 0 first), derivative matrix C and end weights D (do-mpc's)."""
    tau = [0.0] + list(ca.collocation_points(degree, "radau"))
    n = degree + 1
    c = np.zeros((n, n))
    dvec = np.zeros(n)
    for j in range(n):
        poly = np.poly1d([1.0])
        for r in range(n):
            if r != j:
                poly *= np.poly1d([1.0, -tau[r]]) / (tau[j] - tau[r])
        dvec[j] = poly(1.0)
        dpoly = np.polyder(poly)
        for r in range(n):
            c[j, r] = dpoly(tau[r])
    return c, dvec, tau


def collocation_function(model: PlantModel, config: MpcConfig) -> ca.Function:
    """``C(x, xc, u, d, p) -> (residual, x_end)`` of Radau collocation over one sample.

    ``xc`` stacks the states at the ``degree`` collocation points; the
    residual (``dt f(x_r) - sum_j C[j, r] x_j``) is zero on a solution, and
    ``x_end`` is the state at the end of the sample (do-mpc's scheme with one
    finite element).
    """
    nx, nu, nd, npar = len(model.x), len(model.u), len(model.d), len(model.p)
    degree = config.collocation_degree
    dt = config.sample_time_s
    c, dvec, _ = collocation_coefficients(degree)
    x = ca.SX.sym("x", nx)
    xc = ca.SX.sym("xc", nx * degree)
    u = ca.SX.sym("u", nu)
    d = ca.SX.sym("d", nd)
    p = ca.SX.sym("p", npar)
    pts = [x] + [xc[j * nx:(j + 1) * nx] for j in range(degree)]
    res = []
    for r in range(1, degree + 1):
        xp = sum(c[j, r] * pts[j] for j in range(degree + 1))
        res.append(dt * model.f(pts[r], u, d, p) - xp)
    x_end = sum(dvec[j] * pts[j] for j in range(degree + 1))
    return ca.Function("colloc", [x, xc, u, d, p], [ca.vertcat(*res), x_end],
                       ["x", "xc", "u", "d", "p"], ["residual", "x_end"])


def step_function(model: PlantModel, config: MpcConfig) -> ca.Function:
    """``F(x, u, d, p) -> x_next`` over one sample: RK4, or the model's own discrete map."""
    nx, nu, nd, npar = len(model.x), len(model.u), len(model.d), len(model.p)
    x = ca.SX.sym("x", nx)
    u = ca.SX.sym("u", nu)
    d = ca.SX.sym("d", nd)
    p = ca.SX.sym("p", npar)
    if not model.is_continuous:
        xn = model.f(x, u, d, p)
    else:
        xn = _rk4(model.f, x, [u, d, p], config.sample_time_s, config.rk4_substeps)
    return ca.Function("F", [x, u, d, p], [xn], ["x", "u", "d", "p"], ["x_next"])
