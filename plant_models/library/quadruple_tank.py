"""Quadruple-tank process (four interconnected water tanks, two pumps), in SI units.

Source: K. H. Johansson, "The quadruple-tank process: a multivariable laboratory
process with an adjustable zero", IEEE Trans. Control Systems Technology 8 (3),
456-465, 2000. Geometry from Table I (A1 = A3 = 28 cm^2, A2 = A4 = 32 cm^2,
a1 = a3 = 0.071 cm^2, a2 = a4 = 0.057 cm^2, g = 981 cm/s^2); operating points
P- (minimum phase) and P+ (non-minimum phase) from Table II:

    P-: h0 = (12.4, 12.7, 1.8, 1.4) cm, v0 = (3.00, 3.00) V,
        (k1, k2) = (3.33, 3.35) cm^3/(V s), (gamma1, gamma2) = (0.70, 0.60),
        (T1, T2, T3, T4) = (62, 90, 23, 30) s
    P+: h0 = (12.6, 13.0, 4.8, 4.9) cm, v0 = (3.15, 3.15) V,
        (k1, k2) = (3.14, 3.29) cm^3/(V s), (gamma1, gamma2) = (0.43, 0.34),
        (T1, T2, T3, T4) = (63, 91, 39, 56) s

and the zeros of the linearised 2x2 transfer matrix quoted in the paper:
P-: -0.060 and -0.018 1/s; P+: -0.057 and +0.013 1/s.

Model (paper eq. (1), Torricelli outflow q_i = a_i sqrt(2 g h_i)):

    dh1/dt = (-q1 + q3 + gamma1 k1 v1) / A1
    dh2/dt = (-q2 + q4 + gamma2 k2 v2) / A2
    dh3/dt = (-q3 + (1 - gamma2) k2 v2) / A3
    dh4/dt = (-q4 + (1 - gamma1) k1 v1) / A4

States h1..h4 (m), inputs: pump voltages v1, v2 (V), outputs: the levels of
the two lower tanks h1, h2 (m); the paper measures y_i = kc h_i with
kc = 0.50 V/cm, we give the levels in SI and leave the sensor gain to the tag
map. The valve ratios gamma1, gamma2 and pump gains k1, k2 (m^3/(V s)) are
parameters ``p`` so they can be estimated or used for robust MPC.

Nominal point: the paper's voltages with the *model's exact* steady levels.
Table II's levels and its rounded k, gamma do not balance exactly (the
exact steady levels differ from the published ones by at most 1.7 mm, e.g.
h3 = 1.63 cm instead of 1.8 cm at P-); a nominal state that is not an
equilibrium would make every deviation model built on it inconsistent, so the
published levels are kept in :data:`PUBLISHED_OPERATING_POINTS` for the tests.

Outflow regularisation: sqrt(h) is replaced by h / (h^2 + H_EPS^2)^(1/4), equal
to sqrt(h) within 1e-5 relative for h > 1.6 mm, smooth and finite at h <= 0 (an
integrator overshooting an empty tank then sees a restoring inflow instead of
a NaN).
"""

from __future__ import annotations

import math
from enum import Enum

import casadi as ca

from plant_models.builder import Symbols, build_model
from plant_models.errors import ModelError
from plant_models.model import PlantModel
from plant_models.signals import Signal, signal_set

G = 9.81
"""Acceleration of gravity, m/s^2 (Table I: 981 cm/s^2)."""
CM = 1e-2
"""Metres per centimetre."""
AREA_TANK = (28e-4, 32e-4, 28e-4, 32e-4)
"""Tank cross-sections A1..A4, m^2 (Table I)."""
AREA_OUTLET = (0.071e-4, 0.057e-4, 0.071e-4, 0.057e-4)
"""Outlet hole cross-sections a1..a4, m^2 (Table I)."""
KC = 0.50 / CM
"""Level sensor gain, V/m (Table I: 0.50 V/cm); not applied to the outputs."""
H_MAX = 0.20
"""Tank height, m (20 cm)."""
H_EPS = 1e-5
"""Regularisation level of the square-root outflow law, m."""
V_MAX = 10.0
"""Upper bound of the pump voltages, V (pump amplifier range assumed 0-10 V)."""


class OperatingMode(Enum):
    """Which of Johansson's two operating points (valve settings) to build."""

    MINIMUM_PHASE = "minimum_phase"
    """P-: gamma1 + gamma2 > 1, both transmission zeros in the left half-plane."""
    NON_MINIMUM_PHASE = "non_minimum_phase"
    """P+: gamma1 + gamma2 < 1, one transmission zero in the right half-plane."""


PUBLISHED_OPERATING_POINTS: dict[OperatingMode, dict[str, dict[str, float]]] = {
    OperatingMode.MINIMUM_PHASE: {
        "levels": {"h1": 12.4 * CM, "h2": 12.7 * CM, "h3": 1.8 * CM, "h4": 1.4 * CM},
        "voltages": {"v1": 3.00, "v2": 3.00},
        "parameters": {"gamma1": 0.70, "gamma2": 0.60, "k1": 3.33e-6, "k2": 3.35e-6},
        "time_constants_s": {"T1": 62.0, "T2": 90.0, "T3": 23.0, "T4": 30.0},
        "zeros_1_per_s": {"z1": -0.060, "z2": -0.018},
    },
    OperatingMode.NON_MINIMUM_PHASE: {
        "levels": {"h1": 12.6 * CM, "h2": 13.0 * CM, "h3": 4.8 * CM, "h4": 4.9 * CM},
        "voltages": {"v1": 3.15, "v2": 3.15},
        "parameters": {"gamma1": 0.43, "gamma2": 0.34, "k1": 3.14e-6, "k2": 3.29e-6},
        "time_constants_s": {"T1": 63.0, "T2": 91.0, "T3": 39.0, "T4": 56.0},
        "zeros_1_per_s": {"z1": -0.057, "z2": 0.013},
    },
}
"""Johansson (2000), Table II (levels, voltages, k, gamma, time constants) and the
zeros quoted in the text, converted to SI (k in m^3/(V s), levels in m)."""


def steady_levels(
    v1: float, v2: float, gamma1: float, gamma2: float, k1: float, k2: float
) -> dict[str, float]:
    """Exact steady levels (m) of the unregularised model for given voltages and parameters.

    From the mass balances: q3 = (1-gamma2) k2 v2, q4 = (1-gamma1) k1 v1,
    q1 = gamma1 k1 v1 + q3, q2 = gamma2 k2 v2 + q4 and h_i = (q_i/a_i)^2 / (2 g).
    """
    q3 = (1.0 - gamma2) * k2 * v2
    q4 = (1.0 - gamma1) * k1 * v1
    q1 = gamma1 * k1 * v1 + q3
    q2 = gamma2 * k2 * v2 + q4
    return {
        f"h{i + 1}": (q / a) ** 2 / (2.0 * G)
        for i, (q, a) in enumerate(zip((q1, q2, q3, q4), AREA_OUTLET, strict=True))
    }


def time_constants(levels: dict[str, float]) -> dict[str, float]:
    """Linearised time constants T_i = (A_i / a_i) sqrt(2 h_i / g), s (Johansson eq. (3))."""
    return {
        f"T{i + 1}": AREA_TANK[i] / AREA_OUTLET[i] * math.sqrt(2.0 * levels[f"h{i + 1}"] / G)
        for i in range(4)
    }


def _sqrt_reg(h: ca.SX) -> ca.SX:
    return h / (h * h + H_EPS * H_EPS) ** 0.25


def build(operating_point: str | OperatingMode = OperatingMode.MINIMUM_PHASE) -> PlantModel:
    """Build the quadruple-tank process at Johansson's P- or P+ operating point."""
    try:
        mode = OperatingMode(operating_point)
    except ValueError:
        raise ModelError(
            f"quadruple_tank: operating_point must be one of "
            f"{[m.value for m in OperatingMode]}, got {operating_point!r}"
        ) from None
    pub = PUBLISHED_OPERATING_POINTS[mode]
    par = pub["parameters"]
    volt = pub["voltages"]
    levels = steady_levels(volt["v1"], volt["v2"], **par)

    def level(i: int, what: str) -> Signal:
        return Signal(f"h{i}", "m", 0.0, H_MAX, 0.1, what)

    x = signal_set(
        "x",
        level(1, "level of lower left tank 1"),
        level(2, "level of lower right tank 2"),
        level(3, "level of upper left tank 3 (drains into tank 1)"),
        level(4, "level of upper right tank 4 (drains into tank 2)"),
    )
    u = signal_set(
        "u",
        Signal("v1", "V", 0.0, V_MAX, 3.0, "pump 1 voltage (feeds tanks 1 and 4)"),
        Signal("v2", "V", 0.0, V_MAX, 3.0, "pump 2 voltage (feeds tanks 2 and 3)"),
    )
    p = signal_set(
        "p",
        Signal("gamma1", "1", 0.0, 1.0, 0.5, "fraction of pump 1 flow going to tank 1"),
        Signal("gamma2", "1", 0.0, 1.0, 0.5, "fraction of pump 2 flow going to tank 2"),
        Signal("k1", "m^3/(V s)", 0.0, 1e-5, 3.3e-6, "pump 1 gain: flow per volt"),
        Signal("k2", "m^3/(V s)", 0.0, 1e-5, 3.3e-6, "pump 2 gain: flow per volt"),
    )
    y = signal_set(
        "y",
        level(1, "measured level of tank 1 (controlled)"),
        level(2, "measured level of tank 2 (controlled)"),
    )
    a1, a2, a3, a4 = AREA_OUTLET
    big_a1, big_a2, big_a3, big_a4 = AREA_TANK
    c = math.sqrt(2.0 * G)

    def rhs(s: Symbols) -> dict[str, ca.SX]:
        q1 = a1 * c * _sqrt_reg(s.h1)
        q2 = a2 * c * _sqrt_reg(s.h2)
        q3 = a3 * c * _sqrt_reg(s.h3)
        q4 = a4 * c * _sqrt_reg(s.h4)
        return {
            "h1": (-q1 + q3 + s.gamma1 * s.k1 * s.v1) / big_a1,
            "h2": (-q2 + q4 + s.gamma2 * s.k2 * s.v2) / big_a2,
            "h3": (-q3 + (1.0 - s.gamma2) * s.k2 * s.v2) / big_a3,
            "h4": (-q4 + (1.0 - s.gamma1) * s.k1 * s.v1) / big_a4,
        }

    def output(s: Symbols) -> dict[str, ca.SX]:
        return {"h1": s.h1, "h2": s.h2}

    label = "P-" if mode is OperatingMode.MINIMUM_PHASE else "P+"
    return build_model(
        "quadruple_tank",
        x=x, u=u, p=p, y=y, rhs=rhs, output=output,
        nominal={"x": levels, "u": volt, "p": par},
        source="K. H. Johansson, IEEE Trans. Control Syst. Technol. 8(3) (2000) 456-465, "
        "Tables I and II",
        description=f"Quadruple-tank process at operating point {label} ({mode.value})",
    )
