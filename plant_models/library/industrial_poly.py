"""Industrial semi-batch polymerisation reactor (do-mpc's ``examples/industrial_poly``), SI units.

Source: do-mpc 5.x, ``examples/industrial_poly/template_model.py`` (Lucia,
Tatulea-Codrean et al.; Fiedler et al., "do-mpc: Towards FAIR nonlinear and
robust model predictive control", Control Engineering Practice 140, 2023),
after S. Lucia, J. Andersson, H. Brandt, M. Diehl, S. Engell, "Handling
uncertainty in economic nonlinear model predictive control: a comparative
case study", Journal of Process Control 24 (2014) 1247-1259. The equations
are re-written here from the published example; only the time unit differs:
do-mpc's example works in hours (and kg/h for the feed), this module in
seconds (kg/s), i.e. every derivative here is do-mpc's divided by 3600.

States (10): masses of water ``m_w``, monomer ``m_a`` and product ``m_p``
(kg); reactor, vessel-steel, jacket-outlet, external-heat-exchanger and
its-coolant-outlet temperatures ``t_r``, ``t_s``, ``tout_m``, ``t_ek``,
``tout_awt`` (K); accumulated monomer feed ``accum_monom`` (kg) and the
adiabatic temperature ``t_adiab`` (K). Inputs (3): monomer feed
``m_dot_f`` (kg/s), jacket and heat-exchanger coolant inlet temperatures
``t_in_m``, ``t_in_ek`` (K). Uncertain parameters (do-mpc's robust example):
reaction enthalpy ``del_h_r`` (950 kJ/kg, +-30 %) and rate constant ``k_0``
(7, +-30 %). The example's initial state (``main.py``) is the nominal state.
Signal nominals are typical magnitudes (do-mpc's example scales by 10 and 1;
weights given in those units use ``cost_scale``, see ``mpc.presets``).
"""

from __future__ import annotations

import casadi as ca

from plant_models.builder import Symbols, build_model
from plant_models.model import PlantModel
from plant_models.signals import Signal, signal_set

H = 3600.0
"""Seconds per hour (the example's time unit)."""

R = 8.314
T_F = 25.0 + 273.15
E_A = 8500.0
A_TANK = 65.0
K_U2 = 32.0
K_U1 = 4.0
W_WF = 0.333
W_AF = 0.667
M_M_KW = 5000.0
FM_M_KW = 300000.0
M_AWT_KW = 1000.0
FM_AWT_KW = 100000.0
M_AWT = 200.0
FM_AWT = 20000.0
M_S = 39000.0
C_PW = 4.2
C_PS = 0.47
C_PF = 3.0
C_PR = 5.0
K_WS = 17280.0
K_AS = 3600.0
K_PS = 360.0
ALFA = 5 * 20e4 * 3.6
P_1 = 1.0

X0 = {
    "m_w": 10000.0,
    "m_a": 853.0,
    "m_p": 26.5,
    "t_r": 90.0 + 273.15,
    "t_s": 90.0 + 273.15,
    "tout_m": 90.0 + 273.15,
    "t_ek": 35.0 + 273.15,
    "tout_awt": 35.0 + 273.15,
    "accum_monom": 300.0,
}
X0["t_adiab"] = X0["m_a"] * 950.0 / ((X0["m_w"] + X0["m_a"] + X0["m_p"]) * C_PR) + X0["t_r"]
"""The example's initial state (``main.py``)."""


def rhs_per_hour(s: Symbols, m_dot_f_h: ca.SX) -> dict[str, ca.SX]:
    """The example's derivatives per hour, given the feed in kg/h."""
    m_w, m_a, m_p = s["m_w"], s["m_a"], s["m_p"]
    t_r, t_s, tout_m, t_ek, tout_awt = s["t_r"], s["t_s"], s["tout_m"], s["t_ek"], s["tout_awt"]
    del_h_r, k_0 = s["del_h_r"], s["k_0"]
    u_m = m_p / (m_a + m_p)
    m_ges = m_w + m_a + m_p
    k_r1 = k_0 * ca.exp(-E_A / (R * t_r)) * (K_U1 * (1 - u_m) + K_U2 * u_m)
    k_r2 = k_0 * ca.exp(-E_A / (R * t_ek)) * (K_U1 * (1 - u_m) + K_U2 * u_m)
    k_k = (m_w / m_ges) * K_WS + (m_a / m_ges) * K_AS + (m_p / m_ges) * K_PS
    r1 = k_r1 * (m_a - m_a * M_AWT / (m_w + m_a + m_p))
    r2 = P_1 * k_r2 * (m_a / m_ges) * M_AWT
    dm_w = m_dot_f_h * W_WF
    dm_a = m_dot_f_h * W_AF - r1 - r2
    dm_p = r1 + r2
    dt_r = (
        1.0
        / (C_PR * m_ges)
        * (
            m_dot_f_h * C_PF * (T_F - t_r)
            - k_k * A_TANK * (t_r - t_s)
            - FM_AWT * C_PR * (t_r - t_ek)
            + del_h_r * r1
        )
    )
    return {
        "m_w": dm_w,
        "m_a": dm_a,
        "m_p": dm_p,
        "t_r": dt_r,
        "t_s": 1.0 / (C_PS * M_S) * (k_k * A_TANK * (t_r - t_s) - k_k * A_TANK * (t_s - tout_m)),
        "tout_m": 1.0
        / (C_PW * M_M_KW)
        * (FM_M_KW * C_PW * (s["t_in_m"] - tout_m) + k_k * A_TANK * (t_s - tout_m)),
        "t_ek": 1.0
        / (C_PR * M_AWT)
        * (FM_AWT * C_PR * (t_r - t_ek) - ALFA * (t_ek - tout_awt) + r2 * del_h_r),
        "tout_awt": 1.0
        / (C_PW * M_AWT_KW)
        * (FM_AWT_KW * C_PW * (s["t_in_ek"] - tout_awt) - ALFA * (tout_awt - t_ek)),
        "accum_monom": m_dot_f_h,
        "t_adiab": del_h_r / (m_ges * C_PR) * dm_a
        - (dm_a + dm_w + dm_p) * (m_a * del_h_r / (m_ges * m_ges * C_PR))
        + dt_r,
    }


def build() -> PlantModel:
    """The polymerisation reactor (see the module docstring)."""
    x = signal_set(
        "x",
        Signal("m_w", "kg", 0.0, 1e6, 1e4, "mass of water"),
        Signal("m_a", "kg", 0.0, 1e6, 1e3, "mass of monomer"),
        Signal("m_p", "kg", 0.0, 1e6, 1e3, "mass of product"),
        Signal("t_r", "K", 250.0, 500.0, 360.0, "reactor temperature"),
        Signal("t_s", "K", 250.0, 500.0, 360.0, "vessel steel temperature"),
        Signal("tout_m", "K", 250.0, 500.0, 360.0, "jacket coolant outlet temperature"),
        Signal("t_ek", "K", 250.0, 500.0, 330.0, "external heat exchanger temperature"),
        Signal("tout_awt", "K", 250.0, 500.0, 330.0, "heat-exchanger coolant outlet temperature"),
        Signal("accum_monom", "kg", 0.0, 1e6, 1e4, "accumulated monomer feed"),
        Signal("t_adiab", "K", 250.0, 1000.0, 380.0, "adiabatic temperature"),
    )
    u = signal_set(
        "u",
        Signal("m_dot_f", "kg/s", 0.0, 3.0e4 / H, 1.0e4 / H, "monomer feed"),
        Signal("t_in_m", "K", 333.15, 373.15, 350.0, "jacket coolant inlet temperature"),
        Signal("t_in_ek", "K", 333.15, 373.15, 350.0, "heat-exchanger coolant inlet temperature"),
    )
    p = signal_set(
        "p",
        Signal("del_h_r", "kJ/kg", 500.0, 1500.0, 950.0, "specific reaction enthalpy"),
        Signal("k_0", "1", 3.0, 12.0, 7.0, "reaction rate constant"),
    )
    y = signal_set("y", *x.signals)

    def rhs(s: Symbols) -> dict[str, ca.SX]:
        per_h = rhs_per_hour(s, s.m_dot_f * H)
        return {k: v / H for k, v in per_h.items()}

    def output(s: Symbols) -> dict[str, ca.SX]:
        return {sig.name: s[sig.name] for sig in x}

    return build_model(
        "industrial_poly",
        x=x,
        u=u,
        p=p,
        y=y,
        rhs=rhs,
        output=output,
        nominal={
            "x": X0,
            "u": {"m_dot_f": 0.0, "t_in_m": 353.15, "t_in_ek": 353.15},
            "p": {"del_h_r": 950.0, "k_0": 7.0},
        },
        source="do-mpc examples/industrial_poly (Fiedler et al., Control Eng. Practice 140, "
        "2023); Lucia et al., J. Process Control 24 (2014) 1247-1259",
        description="industrial semi-batch polymerisation reactor (10 states, 3 inputs)",
    )
