"""One by-product gasholder and the boiler/CHP it feeds, with a power-price forecast: for EMPC.

The storage part of the ``steel_energy`` network (see that module for the
structure, data and sources: Kong et al., Applied Energy 87 (2010) 2156-2163;
Zeng et al. 2018; Maddaloni et al. 2019) written for economic MPC over a price
horizon: a COG holder (volume ``v_cog``, m^3 normal) filled by the production
left over after the fixed users (``cog_surplus``, a disturbance) and emptied by
the boiler (MV ``cog_to_boiler``) and the flare (MV ``flare_cog``). The boiler
makes power from COG with the ``steel_energy`` efficiencies (per m^3 of COG:
LHV * eta_boiler / DH_STEAM * W_CONDENSING J of electricity).

Price horizon. The mpc layer holds ``d`` and ``p`` constant over its horizon; a
time-varying price enters as a forecast in the parameters ``price_0`` ..
``price_{n-1}`` (USD/J, one per ``price_step_s`` interval from now) and a clock
state ``tau`` (s since the start of the horizon; start every solve at 0 and
shift the forecast by one interval each ``price_step_s``). The price the plant
sees is the smooth step function

    price(tau) = sum_k price_k * (sig((tau - k T) / s) - sig((tau - (k+1) T) / s))

(logistic sig, width s = :data:`BLEND_S`; the first interval has no lower step
and the last extends to the end of the horizon), so the economic stage cost ``-revenue_rate`` is differentiable.
With a linear stage cost on ``revenue_rate`` the stage-structured NMPC fills
the holder while power is cheap and burns the gas in the peak (test:
``tests/mpc/test_steel_holder_empc.py``).
"""

from __future__ import annotations

import casadi as ca

from plant_models.builder import Symbols, build_model
from plant_models.errors import ModelError
from plant_models.library import steel_energy as se
from plant_models.model import PlantModel
from plant_models.signals import Signal, signal_set

BLEND_S = 60.0
"""Width of the logistic price steps, s."""
POWER_PER_M3 = (
    se.GASES["cog"]["lhv"] * se.GASES["cog"]["boiler_eff"] / se.DH_STEAM * se.W_CONDENSING
)
"""Electric energy per m^3 of COG burnt in the boiler, J/m^3."""


def build(
    n_prices: int = 12, price_step_s: float = 1800.0, capacity_m3: float | None = None
) -> PlantModel:
    """Build the holder + boiler model with an ``n_prices``-interval power-price forecast."""
    if not (isinstance(n_prices, int) and 1 <= n_prices <= 96):
        raise ModelError(
            f"steel_gasholder: n_prices must be an integer in [1, 96], got {n_prices!r}"
        )
    if not price_step_s > 0:
        raise ModelError(f"steel_gasholder: price_step_s must be > 0, got {price_step_s!r}")
    cap = float(capacity_m3 if capacity_m3 is not None else se.HOLDERS["cog"])
    x = signal_set(
        "x",
        Signal("v_cog", "m^3", 0.0, cap, cap / 2, "COG gasholder content (normal m^3)"),
        Signal("tau", "s", 0.0, 1e6, price_step_s, "time since the start of the forecast"),
    )
    u = signal_set(
        "u",
        Signal("cog_to_boiler", "m^3/s", 0.0, 20.0, 10.0, "COG burnt in the boilers"),
        Signal("flare_cog", "m^3/s", 0.0, 20.0, 1.0, "COG flared"),
    )
    d = signal_set(
        "d",
        Signal(
            "cog_surplus",
            "m^3/s",
            0.0,
            40.0,
            10.0,
            "COG production minus the fixed users (stoves, ovens, furnace)",
        ),
        Signal("flare_penalty", "USD/J", 0.0, 1e-6, 5e-9, "penalty on flared energy"),
    )
    p = signal_set(
        "p",
        *[
            Signal(
                f"price_{k}", "USD/J", -1e-6, 1e-6, 1.7e-8, f"power price forecast, interval {k}"
            )
            for k in range(n_prices)
        ],
    )
    y = signal_set(
        "y",
        Signal("level_cog", "1", 0.0, 1.0, 0.5, "COG gasholder level"),
        Signal("power", "W", nominal=5e7, description="power made from COG"),
        Signal("price", "USD/J", nominal=1.7e-8, description="power price now (forecast)"),
        Signal(
            "revenue_rate",
            "USD/s",
            nominal=1.0,
            description="power sold at the price minus the flaring penalty",
        ),
    )

    def sig(z: ca.SX) -> ca.SX:
        return 1.0 / (1.0 + ca.exp(-z))

    def price(s: Symbols) -> ca.SX:
        total = ca.SX(0)
        for k in range(n_prices):
            w = sig((s.tau - k * price_step_s) / BLEND_S) if k else ca.SX(1.0)
            if k + 1 < n_prices:
                w = w - sig((s.tau - (k + 1) * price_step_s) / BLEND_S)
            total = total + s[f"price_{k}"] * w
        return total

    def rhs(s: Symbols) -> dict[str, ca.SX]:
        return {"v_cog": s.cog_surplus - s.cog_to_boiler - s.flare_cog, "tau": ca.SX(1.0)}

    def output(s: Symbols) -> dict[str, ca.SX]:
        power = POWER_PER_M3 * s.cog_to_boiler
        flare = se.GASES["cog"]["lhv"] * s.flare_cog
        return {
            "level_cog": s.v_cog / cap,
            "power": power,
            "price": price(s),
            "revenue_rate": price(s) * power - s.flare_penalty * flare,
        }

    return build_model(
        "steel_gasholder",
        x=x,
        u=u,
        d=d,
        p=p,
        y=y,
        rhs=rhs,
        output=output,
        nominal={
            "x": {"v_cog": cap / 2, "tau": 0.0},
            "u": {"cog_to_boiler": 10.0, "flare_cog": 0.0},
            "d": {"cog_surplus": 10.0, "flare_penalty": se.FLARE_PENALTY},
            "p": {f"price_{k}": se.POWER_PRICE for k in range(n_prices)},
        },
        source="Structure and data: plant_models.library.steel_energy (Kong et al. 2010; "
        "Zeng et al. 2018; Maddaloni et al. 2019); assumed typical values",
        description="COG gasholder + boiler/CHP with a power-price forecast (economic MPC)",
    )
