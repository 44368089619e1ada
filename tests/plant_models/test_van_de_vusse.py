"""Van de Vusse CSTR against published figures and against do-mpc's own CSTR model.

Klatt & Engell (1998), Comput. Chem. Eng. 22, 491-502: at F/V = 14.19 1/h,
Q_K = -1113.5 kJ/h, feed 104.9 °C the steady state is c_A = 2.14 mol/l,
c_B = 1.09 mol/l, T = 114.2 °C, T_K = 112.9 °C. The figures are printed to
0.01 mol/l and 0.1 K, so the tolerance is half the last printed digit.
"""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.do_mpc_export import import_do_mpc
from plant_models.library import load
from plant_models.library.van_de_vusse import C0, PUBLISHED_STEADY_STATE

H = 3600.0


@pytest.fixture(scope="module")
def cstr():
    return load("van_de_vusse")


def test_published_steady_state(cstr) -> None:
    inputs = PUBLISHED_STEADY_STATE["inputs"]
    ss = cstr.steady_state(u={k: inputs[k] for k in ("f_dil", "q_k")}, d={"t_in": inputs["t_in"]})
    got = dict(zip(cstr.x.names, ss.x, strict=True))
    assert got["c_a"] == pytest.approx(2.14e3, abs=5.0)  # mol/m^3 (0.005 mol/l)
    assert got["c_b"] == pytest.approx(1.09e3, abs=5.0)
    assert got["t_r"] == pytest.approx(114.2 + C0, abs=0.05)
    assert got["t_k"] == pytest.approx(112.9 + C0, abs=0.05)
    assert ss.residual < 1e-6


def test_nominal_point_is_the_published_steady_state(cstr) -> None:
    xdot = cstr.rhs()
    # residual relative to the state scale per hour of operation: a steady point
    assert np.all(np.abs(xdot * H / cstr.x.nominal) < 0.05)


def _do_mpc_example_rhs(x, u, t_in_c, alpha=1.0, beta=1.0):
    """do-mpc examples/CSTR/template_model.py, in its own units (h, mol/l, °C, kJ)."""
    K0_ab, K0_bc, K0_ad = 1.287e12, 1.287e12, 9.043e9
    E_A_ab, E_A_bc, E_A_ad = 9758.3, 9758.3, 8560.0
    H_R_ab, H_R_bc, H_R_ad = 4.2, -11.0, -41.85
    Rou, Cp, Cp_k, A_R, V_R, m_k, K_w, C_A0 = 0.9342, 3.01, 2.0, 0.215, 10.01, 5.0, 4032.0, 5.1
    C_a, C_b, T_R, T_K = x
    F, Q_dot = u
    K_1 = beta * K0_ab * np.exp(-E_A_ab / (T_R + 273.15))
    K_2 = K0_bc * np.exp(-E_A_bc / (T_R + 273.15))
    K_3 = K0_ad * np.exp(-alpha * E_A_ad / (T_R + 273.15))
    return np.array([
        F * (C_A0 - C_a) - K_1 * C_a - K_3 * C_a**2,
        -F * C_b + K_1 * C_a - K_2 * C_b,
        (K_1 * C_a * H_R_ab + K_2 * C_b * H_R_bc + K_3 * C_a**2 * H_R_ad) / (-Rou * Cp)
        + F * (t_in_c - T_R) + K_w * A_R * (T_K - T_R) / (Rou * Cp * V_R),
        (Q_dot + K_w * A_R * (T_R - T_K)) / (m_k * Cp_k),
    ])


def test_do_mpc_parameter_set_matches_do_mpc_example_equations() -> None:
    model = load("van_de_vusse", parameters="do_mpc")
    rng = np.random.default_rng(0)
    for _ in range(20):
        x_do = np.array([rng.uniform(0.1, 2), rng.uniform(0.1, 2), rng.uniform(50, 140),
                         rng.uniform(50, 140)])
        u_do = np.array([rng.uniform(5, 100), rng.uniform(-8500, 0)])
        alpha, beta = rng.uniform(0.95, 1.05), rng.uniform(0.9, 1.1)
        ref = _do_mpc_example_rhs(x_do, u_do, 130.0, alpha, beta)
        x_si = [x_do[0] * 1e3, x_do[1] * 1e3, x_do[2] + C0, x_do[3] + C0]
        u_si = [u_do[0] / H, u_do[1] * 1e3 / H]
        got = cstr_rhs = model.rhs(x=x_si, u=u_si, p=[alpha, beta])
        # back to do-mpc units: mol/l/h and K/h
        got_do = np.array([cstr_rhs[0] * H / 1e3, cstr_rhs[1] * H / 1e3, got[2] * H, got[3] * H])
        np.testing.assert_allclose(got_do, ref, rtol=1e-9, atol=1e-9)
    assert model.nominal.d[0] == pytest.approx(130.0 + C0)


def test_simulation_agrees_with_do_mpc_simulator() -> None:
    """Same plant, two integrators: our CVODES step vs do-mpc's Simulator (IDAS)."""
    do_mpc = import_do_mpc()
    model = load("van_de_vusse", parameters="do_mpc")
    dm = model.to_do_mpc()
    sim = do_mpc.simulator.Simulator(dm)
    sim.set_param(t_step=18.0)
    tvp = sim.get_tvp_template()
    sim.set_tvp_fun(lambda t: (tvp.__setitem__("t_in", model.nominal.d[0]), tvp)[1])
    pt = sim.get_p_template()
    sim.set_p_fun(lambda t: (pt.__setitem__("alpha", 1.0), pt.__setitem__("beta", 1.0), pt)[2])
    sim.settings.integration_opts = {"abstol": 1e-10, "reltol": 1e-10}
    sim.setup()
    sim.x0 = model.nominal.x
    u_seq = np.array([[20.0 / H, -3000e3 / H]] * 10 + [[60.0 / H, -6000e3 / H]] * 10)
    ours = model.simulate(model.nominal.x, u_seq, 18.0)
    theirs = [np.asarray(sim.make_step(uk.reshape(-1, 1))).reshape(-1) for uk in u_seq]
    np.testing.assert_allclose(ours.x[1:], np.array(theirs), rtol=1e-6, atol=1e-6)


def test_linearisation_matches_finite_differences(cstr) -> None:
    lin = cstr.linearize()
    x0, u0 = cstr.nominal.x, cstr.nominal.u
    for j in range(len(x0)):
        dx = np.zeros_like(x0)
        dx[j] = 1e-4 * cstr.x.nominal[j]
        fd = (cstr.rhs(x=x0 + dx) - cstr.rhs(x=x0 - dx)) / (2 * dx[j])
        np.testing.assert_allclose(lin.A[:, j], fd, rtol=1e-5, atol=1e-12)
    for j in range(len(u0)):
        du = np.zeros_like(u0)
        du[j] = 1e-4 * cstr.u.nominal[j]
        fd = (cstr.rhs(u=u0 + du) - cstr.rhs(u=u0 - du)) / (2 * du[j])
        np.testing.assert_allclose(lin.B[:, j], fd, rtol=1e-5, atol=1e-12)
    assert np.all(lin.poles.real < 0)  # the published operating point is stable


def test_discrete_linearisation_predicts_small_step(cstr) -> None:
    dt = 18.0
    ss = cstr.steady_state()
    lin = cstr.linearize(ss.x, ss.u, sample_time_s=dt)
    du = np.array([0.05 / H, 2e3 / H])  # small step: 0.35 % of F/V, 0.2 % of Q_K
    traj = cstr.simulate(ss.x, np.tile(ss.u + du, (5, 1)), dt)
    dx, dxs = np.zeros(4), []
    for _ in range(5):
        dx = lin.A @ dx + lin.B @ du
        dxs.append(dx)
    # nonlinearity of a 0.35 % step: the ZOH model is right to about 1 % of the response
    np.testing.assert_allclose(traj.x[1:] - ss.x, np.array(dxs), rtol=1e-2, atol=1e-4)


def test_inverse_steady_state_hits_targets_and_round_trips(cstr) -> None:
    ss = cstr.steady_state(targets={"c_b": 1.0e3, "t_r": 390.0})
    y = dict(zip(cstr.y.names, ss.y, strict=True))
    assert y["c_b"] == pytest.approx(1.0e3, abs=1e-4)
    assert y["t_r"] == pytest.approx(390.0, abs=1e-6)
    forward = cstr.steady_state(u=ss.u, x_guess=ss.x)
    np.testing.assert_allclose(forward.x, ss.x, rtol=1e-6)
