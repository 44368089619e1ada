"""Column A's dual-composition NMPC against do-mpc (independent implementation), same OCP.

Both controllers get the same PlantModel (Skogestad's column A, 82 states, LV with level
control) and MpcConfig (:func:`mpc.presets.column_a_config`: 1 min samples, Radau
collocation of degree 1, x_D and x_B tracked per 0.001 mole fraction, move penalties; here
N = 10 to keep do-mpc's build and IPOPT steps short) and run against their own CVODES copy
of the plant through a purity step (0.995 / 0.005) with the feed flow 20 % up (a measured
disturbance both controllers see). Ours solves the first step to convergence (iterated SQP,
no IPOPT built) and then one real-time iteration per sample; do-mpc solves every step with
IPOPT.
"""

from __future__ import annotations

import numpy as np
import pytest
from mpc_helpers import plant_step

from mpc import CvSpec, NmpcController
from mpc.config import Discretisation
from mpc.do_mpc_backend import DoMpcController
from mpc.presets import column_a_config
from plant_models.library import load
from plant_models.library.distillation_column_a import KMOL_PER_MIN

STEPS = 4


@pytest.fixture(scope="module")
def loops():
    column = load("distillation_column_a")
    cfg = column_a_config(
        discretisation=Discretisation.COLLOCATION,
        horizon_steps=10,
        cvs=(
            CvSpec("x_d", weight=1.0, target=0.995, cost_scale=1e-3),
            CvSpec("x_b", weight=1.0, target=0.005, cost_scale=1e-3),
        ),
    )
    d = np.array([1.2 * KMOL_PER_MIN, 0.5])
    ours = NmpcController(column, cfg)
    ref = DoMpcController(column, cfg, nlpsol_opts={"ipopt.tol": 1e-10})
    xa = column.nominal.x.copy()
    xb = xa.copy()
    u0 = column.nominal.u
    ua, ub, ya, yb = [], [], [], []
    for k in range(STEPS):
        ra = ours.step(xa, d=d, u_prev=u0 if k == 0 else None)
        rb = ref.step(xb, d=d, u_prev=u0 if k == 0 else None)
        assert ra.usable, ra.message
        assert rb.usable, rb.message
        ua.append(ra.u)
        ub.append(rb.u)
        xa = plant_step(column, xa, ra.u, 60.0, d)
        xb = plant_step(column, xb, rb.u, 60.0, d)
        ya.append(column.outputs(x=xa, u=ra.u, d=d)[:2])
        yb.append(column.outputs(x=xb, u=rb.u, d=d)[:2])
    return column, np.array(ua), np.array(ub), np.array(ya), np.array(yb), ours


def test_moves_agree_with_do_mpc(loops) -> None:
    column, ua, ub, *_ = loops
    np.testing.assert_allclose(ua[0], ub[0], rtol=1e-5)  # both converged on the same NLP
    np.testing.assert_allclose(ua, ub, rtol=2e-3)  # real-time iterations afterwards


def test_compositions_agree_and_head_for_the_targets(loops) -> None:
    column, ua, ub, ya, yb, ours = loops
    np.testing.assert_allclose(ya, yb, atol=2e-5)
    # the feed is up 20 %: both move V and L up, and x_D rises toward 0.995
    assert np.all(ua[-1] > column.nominal.u)
    assert ya[-1, 0] > 0.99 and ya[-1, 1] < 0.01
    assert ours.fallbacks == 0
