"""industrial_poly against do-mpc's own model of examples/industrial_poly.

The peer is a ``do_mpc.model.Model`` built here from the example's equations
(do-mpc 5.x examples/industrial_poly/template_model.py, hours and kg/h),
independently of :mod:`plant_models.builder`; our model works in seconds, so
its derivatives times 3600 must equal do-mpc's.
"""

from __future__ import annotations

from typing import Any

import casadi as ca
import numpy as np
import pytest

from plant_models.do_mpc_export import import_do_mpc
from plant_models.library import load

H = 3600.0


def _do_mpc_example_model() -> Any:
    """do-mpc's industrial_poly model, written as in its example (time in hours)."""
    do_mpc = import_do_mpc()
    model = do_mpc.model.Model("continuous", "SX")
    R, T_F, E_a, A_tank = 8.314, 25 + 273.15, 8500.0, 65.0
    k_U2, k_U1, w_WF, w_AF = 32.0, 4.0, 0.333, 0.667
    m_M_KW, fm_M_KW, m_AWT_KW, fm_AWT_KW = 5000.0, 300000.0, 1000.0, 100000.0
    m_AWT, fm_AWT, m_S = 200.0, 20000.0, 39000.0
    c_pW, c_pS, c_pF, c_pR = 4.2, 0.47, 3.0, 5.0
    k_WS, k_AS, k_PS = 17280.0, 3600.0, 360.0
    alfa, p_1 = 5 * 20e4 * 3.6, 1.0
    names = [
        "m_W",
        "m_A",
        "m_P",
        "T_R",
        "T_S",
        "Tout_M",
        "T_EK",
        "Tout_AWT",
        "accum_monom",
        "T_adiab",
    ]
    m_W, m_A, m_P, T_R, T_S, Tout_M, T_EK, Tout_AWT, _, _ = (
        model.set_variable("_x", n) for n in names
    )
    m_dot_f = model.set_variable("_u", "m_dot_f")
    T_in_M = model.set_variable("_u", "T_in_M")
    T_in_EK = model.set_variable("_u", "T_in_EK")
    delH_R = model.set_variable("_p", "delH_R")
    k_0 = model.set_variable("_p", "k_0")
    U_m = m_P / (m_A + m_P)
    m_ges = m_W + m_A + m_P
    k_R1 = k_0 * ca.exp(-E_a / (R * T_R)) * ((k_U1 * (1 - U_m)) + (k_U2 * U_m))
    k_R2 = k_0 * ca.exp(-E_a / (R * T_EK)) * ((k_U1 * (1 - U_m)) + (k_U2 * U_m))
    k_K = ((m_W / m_ges) * k_WS) + ((m_A / m_ges) * k_AS) + ((m_P / m_ges) * k_PS)
    dot_m_W = m_dot_f * w_WF
    dot_m_A = (
        (m_dot_f * w_AF)
        - (k_R1 * (m_A - ((m_A * m_AWT) / (m_W + m_A + m_P))))
        - (p_1 * k_R2 * (m_A / m_ges) * m_AWT)
    )
    dot_m_P = (k_R1 * (m_A - ((m_A * m_AWT) / (m_W + m_A + m_P)))) + (
        p_1 * k_R2 * (m_A / m_ges) * m_AWT
    )
    dot_T_R = (
        1.0
        / (c_pR * m_ges)
        * (
            (m_dot_f * c_pF * (T_F - T_R))
            - (k_K * A_tank * (T_R - T_S))
            - (fm_AWT * c_pR * (T_R - T_EK))
            + (delH_R * k_R1 * (m_A - ((m_A * m_AWT) / (m_W + m_A + m_P))))
        )
    )
    model.set_rhs("m_W", dot_m_W)
    model.set_rhs("m_A", dot_m_A)
    model.set_rhs("m_P", dot_m_P)
    model.set_rhs("T_R", dot_T_R)
    model.set_rhs(
        "T_S", 1.0 / (c_pS * m_S) * ((k_K * A_tank * (T_R - T_S)) - (k_K * A_tank * (T_S - Tout_M)))
    )
    model.set_rhs(
        "Tout_M",
        1.0
        / (c_pW * m_M_KW)
        * ((fm_M_KW * c_pW * (T_in_M - Tout_M)) + (k_K * A_tank * (T_S - Tout_M))),
    )
    model.set_rhs(
        "T_EK",
        1.0
        / (c_pR * m_AWT)
        * (
            (fm_AWT * c_pR * (T_R - T_EK))
            - (alfa * (T_EK - Tout_AWT))
            + (p_1 * k_R2 * (m_A / m_ges) * m_AWT * delH_R)
        ),
    )
    model.set_rhs(
        "Tout_AWT",
        1.0
        / (c_pW * m_AWT_KW)
        * ((fm_AWT_KW * c_pW * (T_in_EK - Tout_AWT)) - (alfa * (Tout_AWT - T_EK))),
    )
    model.set_rhs("accum_monom", m_dot_f)
    model.set_rhs(
        "T_adiab",
        delH_R / (m_ges * c_pR) * dot_m_A
        - (dot_m_A + dot_m_W + dot_m_P) * (m_A * delH_R / (m_ges * m_ges * c_pR))
        + dot_T_R,
    )
    model.setup()
    return model


@pytest.fixture(scope="module")
def poly():
    return load("industrial_poly")


def test_rhs_matches_do_mpc_model(poly) -> None:
    peer = _do_mpc_example_model()
    f_peer = ca.Function("f", [peer.x, peer.u, peer.p], [peer._rhs])
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(50):
        x = np.array(
            [
                rng.uniform(5e3, 2e4),
                rng.uniform(10, 3e3),
                rng.uniform(20, 2e4),
                rng.uniform(350, 370),
                rng.uniform(330, 370),
                rng.uniform(320, 370),
                rng.uniform(290, 360),
                rng.uniform(290, 360),
                rng.uniform(0, 3e4),
                rng.uniform(360, 400),
            ]
        )
        u_do = np.array(
            [rng.uniform(0, 3e4), rng.uniform(333.15, 373.15), rng.uniform(333.15, 373.15)]
        )
        p = np.array([950.0 * rng.uniform(0.7, 1.3), 7.0 * rng.uniform(0.7, 1.3)])
        ref = np.asarray(f_peer(x, u_do, p)).reshape(-1)
        ours = poly.rhs(x=x, u=[u_do[0] / H, u_do[1], u_do[2]], p=p) * H
        scale = np.maximum(np.abs(ref), 1.0)
        worst = max(worst, float(np.max(np.abs(ours - ref) / scale)))
    assert worst < 1e-12


def test_nominal_state_is_the_examples_initial_state(poly) -> None:
    x = poly.x.mapping(poly.nominal.x)
    assert x["m_w"] == 10000.0 and x["m_a"] == 853.0 and x["m_p"] == 26.5
    assert x["t_adiab"] == pytest.approx(853.0 * 950.0 / (10879.5 * 5.0) + 363.15, rel=1e-15)
    assert len(poly.x) == 10 and len(poly.u) == 3
