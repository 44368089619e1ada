"""The chained RK4 Jacobian of large estimator models equals CasADi's symbolic one.

Above ``CHAIN_NX`` states the estimator's sample map and its Jacobian are built from
per-substep Jacobians (column A: under a second instead of ~8 s); the values must be those
of the unrolled RK4 map differentiated symbolically.
"""

from __future__ import annotations

import casadi as ca
import numpy as np

from mpc.estimation.augmented import CHAIN_NX, Discretization, DisturbanceModel, augment
from plant_models.library import load
from plant_models.simulation import rk4_function


def test_chained_rk4_jacobian_matches_the_symbolic_jacobian() -> None:
    model = load("distillation_column_a", n_stages=13)  # 26 states
    assert len(model.x) > CHAIN_NX
    dist = DisturbanceModel(outputs=("x_d", "x_b"), inputs=("v_b",))
    aug = augment(model, dist, 60.0, Discretization.RK4, substeps=8)
    assert aug.F.is_a("MXFunction")
    ref = rk4_function(model, 60.0, 8)
    xs = ca.SX.sym("x", len(model.x))
    us = ca.SX.sym("u", 2)
    jac = ca.Function(
        "j",
        [xs, us],
        [ca.jacobian(ref(xs, us, model.nominal.d, model.nominal.p), ca.vertcat(xs, us))],
    )
    rng = np.random.default_rng(3)
    nx = len(model.x)
    for _ in range(3):
        x = model.nominal.x * (1 + 0.05 * rng.uniform(-1, 1, nx))
        u = model.nominal.u * (1 + 0.05 * rng.uniform(-1, 1, 2))
        z = np.concatenate([x, [1e-3, -1e-3], [0.2]])
        zn, jf = (np.asarray(v) for v in aug.FdF(z, u, model.nominal.d, model.nominal.p))
        u_eff = u + np.array([0.0, 0.2])
        x_ref = np.asarray(ref(x, u_eff, model.nominal.d, model.nominal.p)).ravel()
        np.testing.assert_allclose(zn.ravel()[:nx], x_ref, rtol=1e-12, atol=1e-12)
        j_ref = np.asarray(jac(x, u_eff))
        np.testing.assert_allclose(jf[:nx, :nx], j_ref[:, :nx], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(jf[:nx, -1], j_ref[:, nx + 1], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(jf[nx:, nx:], np.eye(3))
        assert np.all(jf[nx:, :nx] == 0)
