"""Williams-Otto CSTR: the three-reaction plant and the two-reaction approximate model.

Plant (``build``, registry name ``williams_otto``): T. J. Williams and R. E. Otto,
"A generalized chemical processing model for the investigation of computer
control", AIEE Trans. 79 (1960) 458-473, reactor section as used for RTO by
P. D. Roberts, "An algorithm for steady-state system optimization and parameter
estimation", Int. J. Systems Sci. 10 (1979) 719-734; H. Zhang and P. D. Roberts;
J. F. Forbes, T. E. Marlin and J. F. MacGregor, "Model adequacy requirements
for optimizing plant operations", Comput. Chem. Eng. 18 (1994) 497-510; and
A. Marchetti, B. Chachuat and D. Bonvin, "Modifier-adaptation methodology for
real-time optimization", Ind. Eng. Chem. Res. 48 (2009) 6022-6033.

    A + B -> C        k1 = 1.6599e6  exp(-6666.7 / T_R)   1/s
    B + C -> P + E    k2 = 7.2117e8  exp(-8333.3 / T_R)
    C + P -> G        k3 = 2.6745e12 exp(-11111  / T_R)

Component balances on mass fractions, holdup W = 2105 kg, F = F_A + F_B:

    W dX_A/dt = F_A - F X_A - W r1
    W dX_B/dt = F_B - F X_B - W r1 - W r2
    W dX_C/dt =     - F X_C + 2 W r1 - 2 W r2 - W r3
    W dX_E/dt =     - F X_E + 2 W r2
    W dX_G/dt =     - F X_G + 1.5 W r3
    W dX_P/dt =     - F X_P + W r2 - 0.5 W r3
    r1 = k1 X_A X_B,  r2 = k2 X_B X_C,  r3 = k3 X_C X_P

Profit ($/s, prices in $/kg, :data:`PRICES`; Marchetti et al. 2009):
``1143.38 X_P F + 25.92 X_E F - 76.23 F_A - 114.34 F_B``, with
``3 <= F_B <= 6`` kg/s and ``70 <= T_R <= 100`` °C. Published plant optimum
at F_A = 1.8275 kg/s: F_B = 4.787 kg/s, T_R = 89.70 °C, profit 190.98 $/s
(Marchetti et al. 2009, Williams-Otto case study; reproduced by the tests).

Approximate model (``build_two_reaction``, ``williams_otto_2r``; Forbes et
al. 1994; Marchetti et al. 2009):

    A + 2B -> P + E   k1* = eta1 exp(-nu1 / T_R),  r1* = k1* X_A X_B^2
    A + B + P -> G    k2* = eta2 exp(-nu2 / T_R),  r2* = k2* X_A X_B X_P

with eta1 = 1.655e8 1/s, nu1 = 8077.6 K, eta2 = 2.611e13 1/s, nu2 = 12438.5 K
(the fitted values quoted in the RTO literature; at the plant optimum the model's
mass fractions are within 0.012 of the plant's). Here the activation
temperatures ``nu1``, ``nu2`` are the parameters the two-step RTO adjusts
(all four are in ``p``; which pair a study adjusts varies between papers). T_R is a manipulated input in both: the
reactor temperature is assumed tightly controlled by a lower loop.
"""

from __future__ import annotations

import casadi as ca

from plant_models.builder import Symbols, build_model
from plant_models.model import PlantModel
from plant_models.signals import Signal, signal_set

C0 = 273.15
"""0 °C in K."""
W_HOLDUP = 2105.0
"""Reactor mass holdup, kg."""
F_A_NOMINAL = 1.8275
"""Feed of A, kg/s (measured disturbance)."""

PRICES: dict[str, float] = {
    "f_p": 1143.38,
    "f_e": 25.92,
    "f_a": -76.23,
    "f_b": -114.34,
}
"""Prices in $/kg per stream signal (positive: revenue, negative: cost), Marchetti et al.
(2009), after Williams & Otto (1960) / Roberts (1979). Profit in $/s is
``sum(price * flow)`` over these signals (f_p = X_P F, f_e = X_E F)."""

PUBLISHED_OPTIMUM = {"f_b": 4.787, "t_r": 89.70 + C0, "profit": 190.98}
"""Plant optimum at F_A = 1.8275 kg/s, Marchetti et al. (2009) (SI: kg/s, K, $/s)."""

PLANT_KINETICS = ((1.6599e6, 6666.7), (7.2117e8, 8333.3), (2.6745e12, 11111.0))
"""(pre-exponential factor 1/s, activation temperature K) of the plant's three reactions."""

TWO_REACTION_PARAMETERS = {"eta1": 1.655e8, "nu1": 8077.6, "eta2": 2.611e13, "nu2": 12438.5}
"""Nominal parameters of the approximate two-reaction model (Forbes et al. 1994)."""

F_B_BOUNDS = (3.0, 6.0)
"""Operating range of the B feed, kg/s (Marchetti et al. 2009)."""
T_R_BOUNDS = (70.0 + C0, 100.0 + C0)
"""Operating range of the reactor temperature, K (Marchetti et al. 2009)."""


def _inputs() -> tuple:
    u = signal_set(
        "u",
        Signal("f_b", "kg/s", *F_B_BOUNDS, 5.0, "feed of pure B"),
        Signal("t_r", "K", *T_R_BOUNDS, 360.0, "reactor temperature (set point of a lower loop)"),
    )
    d = signal_set("d", Signal("f_a", "kg/s", 0.5, 4.0, 2.0, "feed of pure A"))
    return u, d


def _fraction(name: str, nominal: float, what: str) -> Signal:
    return Signal(name, "1", 0.0, 1.0, nominal, f"mass fraction of {what} in the reactor")


_STREAMS = (
    Signal("f_out", "kg/s", 0.0, 20.0, 6.0, "reactor outlet flow F = F_A + F_B"),
    Signal("f_p", "kg/s", 0.0, 20.0, 0.7, "product P in the outlet, X_P F"),
    Signal("f_e", "kg/s", 0.0, 20.0, 2.0, "by-product E in the outlet, X_E F"),
)


def build() -> PlantModel:
    """The three-reaction Williams-Otto plant (Williams & Otto 1960; Marchetti et al. 2009)."""
    (a1, e1), (a2, e2), (a3, e3) = PLANT_KINETICS
    fractions = (
        _fraction("x_a", 0.1, "A"), _fraction("x_b", 0.4, "B"), _fraction("x_c", 0.02, "C"),
        _fraction("x_e", 0.3, "E"), _fraction("x_g", 0.1, "G"), _fraction("x_p", 0.1, "P"),
    )
    x = signal_set("x", *fractions)
    u, d = _inputs()
    y = signal_set("y", *fractions, *_STREAMS)

    def rhs(s: Symbols) -> dict[str, ca.SX]:
        f = s.f_a + s.f_b
        r1 = a1 * ca.exp(-e1 / s.t_r) * s.x_a * s.x_b
        r2 = a2 * ca.exp(-e2 / s.t_r) * s.x_b * s.x_c
        r3 = a3 * ca.exp(-e3 / s.t_r) * s.x_c * s.x_p
        w = W_HOLDUP
        return {
            "x_a": (s.f_a - f * s.x_a) / w - r1,
            "x_b": (s.f_b - f * s.x_b) / w - r1 - r2,
            "x_c": -f * s.x_c / w + 2 * r1 - 2 * r2 - r3,
            "x_e": -f * s.x_e / w + 2 * r2,
            "x_g": -f * s.x_g / w + 1.5 * r3,
            "x_p": -f * s.x_p / w + r2 - 0.5 * r3,
        }

    def output(s: Symbols) -> dict[str, ca.SX]:
        f = s.f_a + s.f_b
        out = {sig.name: s[sig.name] for sig in fractions}
        out.update({"f_out": f, "f_p": s.x_p * f, "f_e": s.x_e * f})
        return out

    return build_model(
        "williams_otto",
        x=x, u=u, d=d, y=y, rhs=rhs, output=output,
        nominal={
            # steady state at the published optimum (F_B 4.787 kg/s, T_R 89.70 °C)
            "x": {"x_a": 0.0874814, "x_b": 0.389604, "x_c": 0.0153099, "x_e": 0.290608,
                  "x_g": 0.10754, "x_p": 0.109457},
            "u": {"f_b": PUBLISHED_OPTIMUM["f_b"], "t_r": PUBLISHED_OPTIMUM["t_r"]},
            "d": {"f_a": F_A_NOMINAL},
        },
        source="Williams & Otto, AIEE Trans. 79 (1960) 458-473; Marchetti, Chachuat & "
        "Bonvin, Ind. Eng. Chem. Res. 48 (2009) 6022-6033",
        description="Williams-Otto CSTR, three reactions (the plant of RTO studies)",
    )


def build_two_reaction() -> PlantModel:
    """The two-reaction approximate model (Forbes et al. 1994; Marchetti et al. 2009)."""
    fractions = (
        _fraction("x_a", 0.1, "A"), _fraction("x_b", 0.4, "B"), _fraction("x_e", 0.3, "E"),
        _fraction("x_g", 0.1, "G"), _fraction("x_p", 0.1, "P"),
    )
    x = signal_set("x", *fractions)
    u, d = _inputs()
    p = signal_set(
        "p",
        Signal("eta1", "1/s", 1e6, 1e11, 1.655e8, "pre-exponential factor of A + 2B -> P + E"),
        Signal("nu1", "K", 5000.0, 12000.0, 8000.0, "activation temperature of A + 2B -> P + E"),
        Signal("eta2", "1/s", 1e10, 1e16, 2.611e13, "pre-exponential factor of A + B + P -> G"),
        Signal("nu2", "K", 8000.0, 16000.0, 12000.0, "activation temperature of A + B + P -> G"),
    )
    y = signal_set("y", *fractions, *_STREAMS)

    def rhs(s: Symbols) -> dict[str, ca.SX]:
        f = s.f_a + s.f_b
        r1 = s.eta1 * ca.exp(-s.nu1 / s.t_r) * s.x_a * s.x_b**2
        r2 = s.eta2 * ca.exp(-s.nu2 / s.t_r) * s.x_a * s.x_b * s.x_p
        w = W_HOLDUP
        return {
            "x_a": (s.f_a - f * s.x_a) / w - r1 - r2,
            "x_b": (s.f_b - f * s.x_b) / w - 2 * r1 - r2,
            "x_e": -f * s.x_e / w + 2 * r1,
            "x_g": -f * s.x_g / w + 3 * r2,
            "x_p": -f * s.x_p / w + r1 - r2,
        }

    def output(s: Symbols) -> dict[str, ca.SX]:
        f = s.f_a + s.f_b
        out = {sig.name: s[sig.name] for sig in fractions}
        out.update({"f_out": f, "f_p": s.x_p * f, "f_e": s.x_e * f})
        return out

    return build_model(
        "williams_otto_2r",
        x=x, u=u, d=d, p=p, y=y, rhs=rhs, output=output,
        nominal={
            "x": {"x_a": 0.0878739, "x_b": 0.386685, "x_e": 0.29723, "x_g": 0.119394,
                  "x_p": 0.108817},
            "u": {"f_b": PUBLISHED_OPTIMUM["f_b"], "t_r": PUBLISHED_OPTIMUM["t_r"]},
            "d": {"f_a": F_A_NOMINAL},
            "p": dict(TWO_REACTION_PARAMETERS),
        },
        source="Forbes, Marlin & MacGregor, Comput. Chem. Eng. 18 (1994) 497-510; "
        "Marchetti, Chachuat & Bonvin, Ind. Eng. Chem. Res. 48 (2009) 6022-6033",
        description="Williams-Otto CSTR, two-reaction approximate model (structural mismatch)",
    )
