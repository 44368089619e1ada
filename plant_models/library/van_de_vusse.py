"""Van de Vusse CSTR with cooling jacket (A -> B -> C, 2A -> D), in SI units.

Source: K.-U. Klatt and S. Engell, "Gain-scheduling trajectory control of a
continuous stirred tank reactor", Computers & Chemical Engineering 22 (4-5),
491-502, 1998 (parameters of Table 1; the same set as Chen, Kremling & Allgöwer,
"Nonlinear predictive control of a benchmark CSTR", ECC 1995). Published steady
state at F/V = 14.19 1/h, Q_K = -1113.5 kJ/h, feed 104.9 °C, c_A0 = 5.1 mol/l:
c_A = 2.14 mol/l, c_B = 1.09 mol/l, T = 114.2 °C, T_K = 112.9 °C.

``parameters="do_mpc"`` selects the parameter set of do-mpc's CSTR example
(examples/CSTR, Fiedler et al., "do-mpc: Towards FAIR nonlinear and robust model
predictive control", Control Engineering Practice 140, 2023): V_R = 10.01 l,
feed temperature 130 °C, input bounds F/V in [5, 100] 1/h and Q_K in
[-8500, 0] kJ/h. The uncertain parameters ``alpha`` (scales the activation
energy of A -> D) and ``beta`` (scales the pre-exponential factor of A -> B)
are those of do-mpc's robust example; both are 1 nominally.

Model (time in s, concentrations in mol/m^3, temperatures in K):

    dc_A/dt = F/V (c_A0 - c_A) - k1 c_A - k3 c_A^2
    dc_B/dt = -F/V c_B + k1 c_A - k2 c_B
    dT/dt   = F/V (T_in - T) + kw A_R (T_K - T)/(rho Cp V_R)
              - (k1 c_A dH_AB + k2 c_B dH_BC + k3 c_A^2 dH_AD)/(rho Cp)
    dT_K/dt = (Q_K + kw A_R (T - T_K))/(m_K Cp_K)
    k1 = beta k10 exp(-E1/T), k2 = k20 exp(-E2/T), k3 = k30 exp(-alpha E3/T)
"""

from __future__ import annotations

from enum import Enum

import casadi as ca

from plant_models.builder import Symbols, build_model
from plant_models.errors import ModelError
from plant_models.model import PlantModel
from plant_models.signals import Signal, signal_set

H = 3600.0
"""Seconds per hour (the source gives rates per hour)."""
C0 = 273.15
"""0 °C in K."""


class ParameterSet(Enum):
    """Which published parameter set to use."""

    KLATT_ENGELL = "klatt_engell"
    DO_MPC = "do_mpc"


# Kinetic and physical constants of Klatt & Engell (1998), Table 1, converted to SI.
K10 = 1.287e12 / H  # 1/s
K20 = 1.287e12 / H  # 1/s
K30 = 9.043e9 * 1e-3 / H  # m^3/(mol s)   (source: 9.043e9 l/(mol h))
E1 = 9758.3  # K (E/R)
E2 = 9758.3  # K
E3 = 8560.0  # K
DH_AB = 4.2e3  # J/mol
DH_BC = -11.0e3  # J/mol
DH_AD = -41.85e3  # J/mol
RHO = 934.2  # kg/m^3 (0.9342 kg/l)
CP = 3.01e3  # J/(kg K)
KW = 4032.0e3 / H  # W/(m^2 K) (4032 kJ/(h m^2 K))
A_R = 0.215  # m^2
M_K = 5.0  # kg
CP_K = 2.0e3  # J/(kg K)
C_A0 = 5.1e3  # mol/m^3 (5.1 mol/l)

PUBLISHED_STEADY_STATE = {
    "inputs": {"f_dil": 14.19 / H, "q_k": -1113.5e3 / H, "t_in": 104.9 + C0},
    "states": {"c_a": 2.14e3, "c_b": 1.09e3, "t_r": 114.2 + C0, "t_k": 112.9 + C0},
}
"""Klatt & Engell (1998) steady state in SI, used by the tests."""


def build(parameters: str | ParameterSet = ParameterSet.KLATT_ENGELL) -> PlantModel:
    """Build the Van de Vusse CSTR with the chosen parameter set."""
    try:
        pset = ParameterSet(parameters)
    except ValueError:
        raise ModelError(
            f"van_de_vusse: parameters must be one of {[p.value for p in ParameterSet]}, "
            f"got {parameters!r}"
        ) from None
    if pset is ParameterSet.KLATT_ENGELL:
        v_r = 10.0e-3
        t_in = 104.9 + C0
        f_lo, f_hi = 3.0 / H, 35.0 / H
        q_lo, q_hi = -9000.0e3 / H, 0.0
        x0 = PUBLISHED_STEADY_STATE["states"]
        u0 = {"f_dil": 14.19 / H, "q_k": -1113.5e3 / H}
    else:
        v_r = 10.01e-3
        t_in = 130.0 + C0
        f_lo, f_hi = 5.0 / H, 100.0 / H
        q_lo, q_hi = -8500.0e3 / H, 0.0
        # do-mpc example's initial state (C_a 0.8, C_b 0.5 mol/l, T_R 134.14, T_K 130 °C)
        x0 = {"c_a": 0.8e3, "c_b": 0.5e3, "t_r": 134.14 + C0, "t_k": 130.0 + C0}
        u0 = {"f_dil": 18.83 / H, "q_k": -4495.7e3 / H}

    x = signal_set(
        "x",
        Signal("c_a", "mol/m^3", 0.0, C_A0, 1e3, "concentration of A in the reactor"),
        Signal("c_b", "mol/m^3", 0.0, C_A0, 1e3, "concentration of B (product) in the reactor"),
        Signal("t_r", "K", 273.15, 573.15, 400.0, "reactor temperature"),
        Signal("t_k", "K", 273.15, 573.15, 400.0, "cooling jacket temperature"),
    )
    u = signal_set(
        "u",
        Signal("f_dil", "1/s", f_lo, f_hi, 20.0 / H, "feed flow per reactor volume F/V"),
        Signal("q_k", "W", q_lo, q_hi, 2000.0e3 / H, "heat added to the jacket (negative: cooling)"),
    )
    d = signal_set("d", Signal("t_in", "K", 273.15, 473.15, 400.0, "feed temperature"))
    p = signal_set(
        "p",
        Signal("alpha", "1", 0.5, 1.5, 1.0, "scale of the activation energy of A -> D"),
        Signal("beta", "1", 0.5, 1.5, 1.0, "scale of the pre-exponential factor of A -> B"),
    )
    y = signal_set(
        "y",
        Signal("c_a", "mol/m^3", 0.0, C_A0, 1e3, "measured concentration of A"),
        Signal("c_b", "mol/m^3", 0.0, C_A0, 1e3, "measured concentration of B"),
        Signal("t_r", "K", 273.15, 573.15, 400.0, "measured reactor temperature"),
        Signal("t_k", "K", 273.15, 573.15, 400.0, "measured jacket temperature"),
    )

    def rhs(s: Symbols) -> dict[str, ca.SX]:
        k1 = s.beta * K10 * ca.exp(-E1 / s.t_r)
        k2 = K20 * ca.exp(-E2 / s.t_r)
        k3 = K30 * ca.exp(-s.alpha * E3 / s.t_r)
        r_heat = k1 * s.c_a * DH_AB + k2 * s.c_b * DH_BC + k3 * s.c_a**2 * DH_AD
        return {
            "c_a": s.f_dil * (C_A0 - s.c_a) - k1 * s.c_a - k3 * s.c_a**2,
            "c_b": -s.f_dil * s.c_b + k1 * s.c_a - k2 * s.c_b,
            "t_r": s.f_dil * (s.t_in - s.t_r) + KW * A_R * (s.t_k - s.t_r) / (RHO * CP * v_r)
            - r_heat / (RHO * CP),
            "t_k": (s.q_k + KW * A_R * (s.t_r - s.t_k)) / (M_K * CP_K),
        }

    def output(s: Symbols) -> dict[str, ca.SX]:
        return {"c_a": s.c_a, "c_b": s.c_b, "t_r": s.t_r, "t_k": s.t_k}

    return build_model(
        "van_de_vusse",
        x=x, u=u, d=d, p=p, y=y, rhs=rhs, output=output,
        nominal={"x": x0, "u": u0, "d": {"t_in": t_in}, "p": {"alpha": 1.0, "beta": 1.0}},
        source="Klatt & Engell, Comput. Chem. Eng. 22 (1998) 491-502; do-mpc CSTR example",
        description=f"Van de Vusse CSTR with cooling jacket ({pset.value} parameters)",
    )
