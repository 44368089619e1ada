"""Agreement with do-mpc (independent implementation) on do-mpc's CSTR example.

Both controllers get the same PlantModel and MpcConfig
(:func:`mpc.presets.do_mpc_cstr_config`: do-mpc 5.x examples/CSTR, nominal
``n_robust=0`` or robust ``n_robust=1``, horizon 20, t_step 0.005 h, Radau
collocation of degree 2); do-mpc's controller is built by
:class:`mpc.do_mpc_backend.DoMpcController`. The closed loops run against the
same CVODES plant from do-mpc's initial state.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from mpc_helpers import plant_step

from mpc import CvSpec, MvSpec, NmpcController, RobustSpec, SolverKind
from mpc.do_mpc_backend import DoMpcController
from mpc.presets import do_mpc_cstr_config
from plant_models.errors import ConfigError

DT = 18.0


def closed_loops(cstr, cfg, steps, solver=SolverKind.RTI):
    ours = NmpcController(cstr, cfg, solver)
    ref = DoMpcController(cstr, cfg)
    xa = cstr.nominal.x.copy()
    xb = xa.copy()
    u0 = cstr.nominal.u
    out_a, out_b = [xa], [xb]
    for k in range(steps):
        ra = ours.step(xa, u_prev=u0 if k == 0 else None)
        rb = ref.step(xb, u_prev=u0 if k == 0 else None)
        assert ra.usable, ra.message
        assert rb.usable, rb.message
        xa = plant_step(cstr, xa, ra.u, DT)
        xb = plant_step(cstr, xb, rb.u, DT)
        out_a.append(xa)
        out_b.append(xb)
    return np.array(out_a), np.array(out_b)


def test_first_move_matches_do_mpc_at_tight_tolerance(cstr):
    cfg = do_mpc_cstr_config(ipopt_tol=1e-12)
    a = NmpcController(cstr, cfg, SolverKind.IPOPT).step(cstr.nominal.x, u_prev=cstr.nominal.u)
    b = DoMpcController(cstr, cfg, nlpsol_opts={"ipopt.tol": 1e-12}).step(
        cstr.nominal.x, u_prev=cstr.nominal.u)
    assert a.usable and b.usable
    np.testing.assert_allclose(a.u, b.u, rtol=1e-6)
    np.testing.assert_allclose(a.x_pred, b.x_pred, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(a.u_pred, b.u_pred, rtol=1e-5)


@pytest.mark.parametrize("steps", [pytest.param(20, id="20-steps"),
                                   pytest.param(50, id="50-steps", marks=pytest.mark.slow)])
def test_nominal_closed_loop_agrees_with_do_mpc(cstr, steps):
    xa, xb = closed_loops(cstr, do_mpc_cstr_config(), steps)
    assert np.max(np.abs(xa[:, 2] - xb[:, 2])) < 0.01  # T_R within 0.01 K
    assert np.max(np.abs(xa[:, 1] - xb[:, 1])) < 0.05  # c_B within 0.05 mol/m^3
    assert abs(xa[-1, 1] - 600.0) < 5.0  # both head for the 0.6 mol/l setpoint


@pytest.mark.slow
def test_robust_closed_loop_agrees_with_do_mpc(cstr):
    xa, xb = closed_loops(cstr, do_mpc_cstr_config(robust=True), 12)
    assert np.max(np.abs(xa[:, 2] - xb[:, 2])) < 0.02


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"economic_stage_cost": lambda y, u: -y["c_b"]}, "economic_stage_cost"),
        ({"control_horizon_steps": 5}, "control_horizon_steps"),
        ({"mvs": (MvSpec("f_dil", max_rate_per_s=1e-6),)}, "max_rate_per_s"),
        ({"cvs": (CvSpec("t_r", zone=(400.0, 410.0), zone_weight=1.0),)}, "zone"),
        ({"cvs": (CvSpec("t_r", upper=410.0, l2_penalty=1.0),)}, "l2_penalty"),
    ],
)
def test_backend_rejects_what_do_mpc_cannot_do(cstr, overrides, field):
    with pytest.raises(ConfigError, match=field):
        DoMpcController(cstr, do_mpc_cstr_config(**overrides))


def test_backend_rejects_scenario_probabilities(cstr):
    rob = RobustSpec((("alpha", (1.0, 1.1)),), probabilities=((0.7, 0.3),))
    with pytest.raises(ConfigError, match="probabilities"):
        DoMpcController(cstr, replace(do_mpc_cstr_config(robust=True), robust=rob))
