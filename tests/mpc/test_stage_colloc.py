"""Numerical elimination of the collocation states (mpc.stagewise.eliminate_colloc).

The stage function returns the Radau residual and its Jacobians; numpy solves all stages
at once. Checked against independent references: Newton on the collocation states with
the returned step ``t`` converges, the converged end state matches a CVODES integration
of the same sample (within the collocation error), and ``A``, ``B`` match central
finite differences of the converged end state.
"""

from __future__ import annotations

import numpy as np

from mpc.presets import industrial_poly_config
from mpc.stagewise import build_stage_problem, eliminate_colloc
from plant_models.library import load


def _converged(sp, xs, us, d, p):
    nx, nc = sp.nx, sp.n_colloc
    xc = np.tile(xs, nc // nx)
    for _ in range(30):
        out = sp.dyn(xs, us, xc, d, p, np.zeros(sp.nu))
        x_end, r, rc, rz = (np.asarray(o, dtype=float) for o in out)
        xn, a, b, tm, tv = eliminate_colloc(
            sp.colloc[0], sp.colloc[1], x_end.T, r.T, rc[None], rz[None]
        )
        xc = xc + tv[0]
        if np.max(np.abs(tv)) < 1e-12:
            break
    return xn[0], a[0], b[0], np.max(np.abs(tv))


def test_collocation_step_matches_cvodes_and_finite_differences():
    poly = load("industrial_poly")
    sp = build_stage_problem(poly, industrial_poly_config())
    assert sp.colloc is not None and sp.dyn.n_out() == 4  # residual form, numpy solves
    x0, u0 = poly.nominal.x, poly.nominal.u
    d, p = poly.nominal.d, poly.nominal.p
    xs, us = x0 / sp.x_scale, u0 / sp.u_scale
    xn, a, b, last = _converged(sp, xs, us, d, p)
    assert last < 1e-10  # Newton with the returned step converges
    ref = poly.simulate(x0, [u0], 50.0).x[-1] / sp.x_scale
    np.testing.assert_allclose(xn, ref, atol=2e-3 * np.max(np.abs(ref)))
    h = 1e-6
    for j in range(sp.nx):
        e = np.zeros(sp.nx)
        e[j] = h
        fd = (_converged(sp, xs + e, us, d, p)[0] - _converged(sp, xs - e, us, d, p)[0]) / (2 * h)
        np.testing.assert_allclose(a[:, j], fd, atol=1e-5 * max(1.0, np.max(np.abs(fd))))
    for j in range(sp.nu):
        e = np.zeros(sp.nu)
        e[j] = h
        fd = (_converged(sp, xs, us + e, d, p)[0] - _converged(sp, xs, us - e, d, p)[0]) / (2 * h)
        np.testing.assert_allclose(b[:, j], fd, atol=1e-5 * max(1.0, np.max(np.abs(fd))))
