"""Economic MPC over a power-price horizon stores COG in the holder before a price peak.

Model: ``steel_gasholder`` (COG holder + boiler/CHP, a 12 x 30 min price forecast
in its parameters). The stage-structured NMPC with a linear economic stage cost
(-revenue, USD per 300 s stage), hard holder safety levels (10-90 %) and a
terminal value of the stored gas at 90 % of the mean price plans a 6 h horizon. With a
peak at hours 2-4 it must fill the holder while power is cheap and burn at the
boiler's maximum in the peak; with flat prices it has no reason to store.
"""

from __future__ import annotations

import numpy as np

from mpc.config import CvSpec, MpcConfig, MvSpec
from mpc.controller import NmpcController
from plant_models.library import load
from plant_models.library.steel_gasholder import POWER_PER_M3

MWH = 3.6e9
DT = 300.0
N = 72  # 6 h


def plan(prices_usd_mwh: list[float]):
    model = load("steel_gasholder", n_prices=12, price_step_s=1800.0)
    # gas left at the end of the horizon is worth 90 % of the mean price (a discount for
    # the uncertainty beyond the forecast; at 100 % storing and burning tie at flat prices)
    mean = float(np.mean(prices_usd_mwh))
    level_value = 0.9 * model.x["v_cog"].upper * POWER_PER_M3 * mean / MWH
    cfg = MpcConfig(
        horizon_steps=N,
        sample_time_s=DT,
        cvs=(
            CvSpec("revenue_rate", linear_cost=-DT),
            CvSpec("level_cog", hard_lower=0.1, hard_upper=0.9, terminal_linear_cost=-level_value),
        ),
        mvs=(MvSpec("cog_to_boiler", move_weight=0.01), MvSpec("flare_cog", move_weight=0.01)),
    )
    ctrl = NmpcController(model, cfg)
    p = {f"price_{k}": v / MWH for k, v in enumerate(prices_usd_mwh)}
    res = ctrl.step({"v_cog": 0.5 * model.x["v_cog"].upper, "tau": 0.0}, p=p)
    assert res.usable, res.message
    return model, res


def test_empc_stores_gas_before_the_price_peak_and_burns_it_in_the_peak() -> None:
    prices = [40.0] * 4 + [150.0] * 4 + [60.0] * 4
    model, res = plan(prices)
    level = res.y_pred[:, model.y.index("level_cog")]
    burn = res.u_pred[:, model.u.index("cog_to_boiler")]
    surplus = model.nominal.d[model.d.index("cog_surplus")]
    cheap, peak = slice(0, 24), slice(24, 48)
    assert level[24] > 0.85  # full (safety level 0.9) when the peak starts
    assert np.mean(burn[cheap]) < surplus - 4.0  # holding back while power is cheap
    assert np.min(burn[peak]) > 19.9  # boiler at its COG maximum in the peak
    assert level.min() >= 0.1 - 1e-6 and level.max() <= 0.9 + 1e-6
    # the plan earns more than burning the surplus as it comes (same end level or better)
    price = res.y_pred[:-1, model.y.index("price")]
    empc = float(np.sum(price * POWER_PER_M3 * burn) * DT)
    steady = float(np.sum(price * POWER_PER_M3 * surplus) * DT)
    stored_end = (level[-1] - 0.5) * model.x["v_cog"].upper * POWER_PER_M3 * 60.0 / MWH
    assert empc + stored_end > steady + 5000.0


def test_empc_without_a_price_peak_does_not_fill_the_holder() -> None:
    model, res = plan([60.0] * 12)
    level = res.y_pred[:, model.y.index("level_cog")]
    assert np.max(level[:48]) < 0.6
