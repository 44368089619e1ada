"""Skogestad's distillation column A in LV configuration (82 states), in SI units.

Sources:

- S. Skogestad, "Dynamics and control of distillation columns: a tutorial
  introduction", Trans IChemE 75 (Part A), 539-562, 1997 (column A);
- S. Skogestad and I. Postlethwaite, *Multivariable Feedback Control*, Wiley,
  2nd ed. 2005 (column A in the LV configuration, used throughout); the
  steady-state gain from (L, V) in kmol/min to (y_D, x_B) is
  ``[[0.878, -0.864], [1.082, -1.096]]`` and its RGA(1,1) about 35;
- S. Skogestad, MATLAB files ``colamod.m`` and ``cola_lv.m`` (NTNU, column A
  model with P level controllers), whose equations and numbers this module
  follows.

Binary mixture, relative volatility ``alpha = 1.5``, ``NT = 41`` stages
(reboiler = stage 1, total condenser = stage NT), feed on stage 21, constant
molar flows, equilibrium on every stage but the condenser, linearised tray
hydraulics ``L_i = L0 + (M_i - M0)/tau_L`` (``tau_L = 0.063 min``), liquid
feed (``q_F = 1``). The condenser and reboiler holdups are closed by
P-controllers on the distillate and bottoms flows (``D = 0.5 + 10 (M_D - 0.5)``,
``B = 0.5 + 10 (M_B - 0.5)``, kmol and minutes), which leaves reflux ``L`` and
boilup ``V`` as the inputs (LV configuration). Nominal: ``F = 1 kmol/min``,
``z_F = 0.5``, ``L = 2.70629``, ``V = 3.20629 kmol/min``, giving
``x_D = 0.99``, ``x_B = 0.01``.

Outputs: ``x_d``, ``x_b`` (product compositions), ``m_d``, ``m_b`` (condenser and reboiler
holdups), ``d_flow``, ``b_flow`` (product flows set by the level controllers) and ``q_reb``
(reboiler duty with an assumed heat of vaporisation :data:`H_VAP`, for economics).

States (2 NT): liquid mole fractions of the light component ``x_01..x_NT``
(stage 1 is the reboiler) and holdups ``m_01..m_NT``. SI: holdups in mol,
flows in mol/s (1 kmol/min = 1000/60 mol/s), time in s.

``build(n_stages=...)`` gives the same column with more stages (feed in the
middle), for scaling studies; its steady state is computed, not published.
"""

from __future__ import annotations

import casadi as ca
import numpy as np

from plant_models.builder import Symbols, build_model
from plant_models.errors import ModelError
from plant_models.model import PlantModel
from plant_models.signals import Signal, signal_set

KMOL_PER_MIN = 1000.0 / 60.0
"""1 kmol/min in mol/s."""
MIN = 60.0
"""Seconds per minute."""

ALPHA = 1.5
"""Relative volatility."""
N_STAGES = 41
"""Stages including reboiler and total condenser."""
FEED_STAGE = 21
"""Feed stage (counted from the reboiler = 1)."""
TAU_L = 0.063 * MIN
"""Liquid-flow time constant of the tray hydraulics (s)."""
M0 = 0.5e3
"""Nominal holdup of every stage, reboiler and condenser (mol)."""
F0 = 1.0 * KMOL_PER_MIN
"""Nominal feed (mol/s)."""
Z_F0 = 0.5
"""Nominal feed composition."""
L0 = 2.70629 * KMOL_PER_MIN
"""Nominal reflux (mol/s)."""
V0 = 3.20629 * KMOL_PER_MIN
"""Nominal boilup (mol/s)."""
K_LEVEL = 10.0 / MIN
"""Gain of the condenser and reboiler level P-controllers (1/s)."""
D0 = B0 = 0.5 * KMOL_PER_MIN
"""Nominal distillate and bottoms flows (mol/s)."""
H_VAP = 30.0e3
"""Molar heat of vaporisation (J/mol) for the reboiler duty output ``q_reb = H_VAP * V``: an
assumed value typical of light hydrocarbons (the column A model has constant molar flows and
gives no enthalpies; Skogestad's studies price the boilup V directly)."""

PUBLISHED_GAIN = np.array([[0.878, -0.864], [1.082, -1.096]])
"""Steady-state gain (y_D, x_B) / (L, V) in 1/(kmol/min) (Skogestad 1997; Skogestad &
Postlethwaite 2005, column A, LV configuration)."""
PUBLISHED_RGA11 = 35.1
"""RGA(1,1) of PUBLISHED_GAIN."""


def _names(prefix: str, n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"{prefix}_{i:0{width}d}" for i in range(1, n + 1)]


def _steady_compositions(n: int, nf: int, alpha: float) -> np.ndarray:
    """Compositions at the nominal flows with every holdup at M0 (KINSOL, from a ramp)."""
    x = ca.SX.sym("x", n)
    y = alpha * x / (1 + (alpha - 1) * x)
    lb, lt = L0 + F0, L0
    res = []
    for i in range(n):
        if i == 0:
            r = lb * x[1] - V0 * y[0] - B0 * x[0]
        elif i == n - 1:
            r = V0 * y[n - 2] - (L0 + D0) * x[n - 1]
        else:
            li1 = lt if i + 1 >= nf else lb  # liquid leaving stage i+2 (1-based)
            li = lt if i >= nf else lb
            r = li1 * x[i + 1] - li * x[i] + V0 * y[i - 1] - V0 * y[i]
            if i == nf - 1:
                r += F0 * Z_F0
        res.append(r / KMOL_PER_MIN)
    solver = ca.rootfinder(
        "col_ss",
        "kinsol",
        ca.Function("r", [x], [ca.vertcat(*res)]),
        {"abstol": 1e-12, "strategy": "linesearch", "error_on_fail": True},
    )
    guess = np.linspace(0.02, 0.98, n)
    return np.asarray(solver(guess), dtype=float).reshape(-1)


def build(n_stages: int = N_STAGES, alpha: float = ALPHA) -> PlantModel:
    """Column A (``n_stages`` stages, feed in the middle) with LV level control."""
    if isinstance(n_stages, bool) or not isinstance(n_stages, int) or not 5 <= n_stages <= 999:
        raise ModelError(
            f"distillation_column_a: n_stages must be an odd integer in [5, 999], got {n_stages!r}"
        )
    if n_stages % 2 == 0:
        raise ModelError(f"distillation_column_a: n_stages must be odd, got {n_stages}")
    n = n_stages
    nf = FEED_STAGE if n == N_STAGES else (n + 1) // 2
    xs_names = _names("x", n)
    ms_names = _names("m", n)
    try:
        x_ss = _steady_compositions(n, nf, float(alpha))
    except RuntimeError as exc:
        raise ModelError(
            f"distillation_column_a: no steady state for n_stages={n}: {exc}"
        ) from None
    x = signal_set(
        "x",
        *[
            Signal(nm, "1", 0.0, 1.0, 1.0, f"light-component mole fraction on stage {i + 1}")
            for i, nm in enumerate(xs_names)
        ],
        *[
            Signal(nm, "mol", 0.0, 20.0 * M0, M0, f"liquid holdup on stage {i + 1}")
            for i, nm in enumerate(ms_names)
        ],
    )
    u = signal_set(
        "u",
        Signal("l_t", "mol/s", 0.0, 2.0 * L0, L0, "reflux flow L"),
        Signal("v_b", "mol/s", 0.0, 2.0 * V0, V0, "boilup flow V"),
    )
    d = signal_set(
        "d",
        Signal("f", "mol/s", 0.0, 2.0 * F0, F0, "feed flow"),
        Signal("z_f", "1", 0.0, 1.0, Z_F0, "feed mole fraction of the light component"),
    )
    p = signal_set("p", Signal("alpha", "1", 1.05, 5.0, float(alpha), "relative volatility"))
    y = signal_set(
        "y",
        Signal("x_d", "1", 0.0, 1.0, 1.0, "distillate (top) composition"),
        Signal("x_b", "1", 0.0, 1.0, 1.0, "bottoms composition"),
        Signal("m_d", "mol", 0.0, 20.0 * M0, M0, "condenser holdup"),
        Signal("m_b", "mol", 0.0, 20.0 * M0, M0, "reboiler holdup"),
        Signal("d_flow", "mol/s", -2.0 * F0, 4.0 * F0, D0, "distillate flow D (condenser level P)"),
        Signal("b_flow", "mol/s", -2.0 * F0, 4.0 * F0, B0, "bottoms flow B (reboiler level P)"),
        Signal(
            "q_reb",
            "W",
            0.0,
            2.0 * V0 * H_VAP,
            V0 * H_VAP,
            "reboiler duty H_VAP * V (assumed heat of vaporisation)",
        ),
    )

    def rhs(s: Symbols) -> dict[str, ca.SX]:
        xv = [s[nm] for nm in xs_names]
        mv = [s[nm] for nm in ms_names]
        yv = [s.alpha * xi / (1 + (s.alpha - 1) * xi) for xi in xv[:-1]]
        dist = D0 + K_LEVEL * (mv[-1] - M0)
        bot = B0 + K_LEVEL * (mv[0] - M0)
        vap = s.v_b  # q_F = 1: the same vapour flow on every stage
        liq: list[ca.SX] = [ca.SX(0)] * n  # liq[i]: liquid leaving stage i (0-based)
        for i in range(1, n - 1):
            l_nom = L0 + F0 if i < nf else L0  # 0-based i < nf: stages 2..NF
            liq[i] = l_nom + (mv[i] - M0) / TAU_L
        liq[n - 1] = s.l_t
        out: dict[str, ca.SX] = {}
        for i in range(n):
            if i == 0:
                dm = liq[1] - vap - bot
                dmx = liq[1] * xv[1] - vap * yv[0] - bot * xv[0]
            elif i == n - 1:
                dm = vap - s.l_t - dist
                dmx = vap * yv[n - 2] - s.l_t * xv[n - 1] - dist * xv[n - 1]
            else:
                dm = liq[i + 1] - liq[i]
                dmx = liq[i + 1] * xv[i + 1] - liq[i] * xv[i] + vap * yv[i - 1] - vap * yv[i]
                if i == nf - 1:
                    dm = dm + s.f
                    dmx = dmx + s.f * s.z_f
            out[ms_names[i]] = dm
            out[xs_names[i]] = (dmx - xv[i] * dm) / mv[i]
        return out

    def output(s: Symbols) -> dict[str, ca.SX]:
        return {
            "x_d": s[xs_names[-1]],
            "x_b": s[xs_names[0]],
            "m_d": s[ms_names[-1]],
            "m_b": s[ms_names[0]],
            "d_flow": D0 + K_LEVEL * (s[ms_names[-1]] - M0),
            "b_flow": B0 + K_LEVEL * (s[ms_names[0]] - M0),
            "q_reb": H_VAP * s.v_b,
        }

    nominal_x = {nm: float(v) for nm, v in zip(xs_names, x_ss, strict=True)}
    nominal_x.update({nm: M0 for nm in ms_names})
    return build_model(
        "distillation_column_a" if n == N_STAGES else f"distillation_column_a_{n}",
        x=x,
        u=u,
        d=d,
        p=p,
        y=y,
        rhs=rhs,
        output=output,
        nominal={
            "x": nominal_x,
            "u": {"l_t": L0, "v_b": V0},
            "d": {"f": F0, "z_f": Z_F0},
            "p": {"alpha": float(alpha)},
        },
        source="Skogestad, Trans IChemE 75A (1997) 539-562, column A; Skogestad & "
        "Postlethwaite, Multivariable Feedback Control (2005); cola_lv.m",
        description=f"binary distillation column, {n} stages, LV configuration with "
        "P level control of condenser and reboiler",
    )
