"""Economic MPC of a gasholder over a power-price horizon, closed loop, in-process.

The option beside the two-layer RTO -> MPC for units whose storage matters: the
``steel_gasholder`` model (COG holder + boiler/CHP, a 12 x 30 min price forecast in
its parameters) controlled by the stage-structured NMPC with a linear economic
stage cost (-revenue), hard holder safety levels and a terminal value of the
stored gas (:func:`holder_empc_config`). :func:`run_holder_empc` runs it against
a day-ahead price profile, shifting the forecast every sample (the clock state
restarts at 0 each solve), and compares with the steady-state policy a two-layer
RTO gives a holder (burn the surplus as it comes, the level held).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mpc.config import CvSpec, MpcConfig, MvSpec
from mpc.controller import NmpcController
from plant_models.library import load
from plant_models.library.steel_gasholder import POWER_PER_M3
from plant_models.simulation import step

MWH = 3.6e9
"""J per MWh."""


def holder_empc_config(
    mean_price: float,
    capacity_m3: float,
    *,
    sample_time_s: float = 300.0,
    horizon_steps: int = 72,
    terminal_discount: float = 0.9,
) -> MpcConfig:
    """EMPC of the holder: maximise revenue per stage, holder within 10-90 %, gas left at the
    end worth ``terminal_discount`` x ``mean_price`` (USD/J) as boiler power."""
    level_value = terminal_discount * capacity_m3 * POWER_PER_M3 * mean_price
    return MpcConfig(
        horizon_steps=horizon_steps,
        sample_time_s=sample_time_s,
        cvs=(
            CvSpec("revenue_rate", linear_cost=-sample_time_s),
            CvSpec("level_cog", hard_lower=0.1, hard_upper=0.9, terminal_linear_cost=-level_value),
        ),
        mvs=(MvSpec("cog_to_boiler", move_weight=0.01), MvSpec("flare_cog", move_weight=0.01)),
    )


@dataclass(frozen=True)
class HolderEmpcResult:
    """Closed-loop trajectories and the revenue of EMPC vs the steady policy."""

    t: NDArray[np.float64]
    """Sample times, s."""
    level: NDArray[np.float64]
    """Holder level at the samples."""
    burn: NDArray[np.float64]
    """COG to the boilers, m^3/s."""
    price: NDArray[np.float64]
    """Power price, USD/J."""
    revenue_usd: float
    """Power revenue of the EMPC run plus the end inventory at the mean price."""
    steady_revenue_usd: float
    """Revenue of burning the surplus as it comes (level unchanged)."""
    step_ms_median: float
    """Median EMPC step time, ms."""


def run_holder_empc(
    price_usd_per_mwh: Callable[[float], float],
    *,
    hours: float = 24.0,
    sample_time_s: float = 300.0,
    surplus_m3_s: float = 10.0,
) -> HolderEmpcResult:
    """Closed loop over ``hours`` against ``price_usd_per_mwh(t)``, a known day-ahead profile."""
    model = load("steel_gasholder", n_prices=12, price_step_s=1800.0)
    cap = model.x["v_cog"].upper
    n = int(round(hours * 3600.0 / sample_time_s))
    grid = np.arange(n) * sample_time_s
    mean_price = float(np.mean([price_usd_per_mwh(t) for t in grid])) / MWH
    horizon = int(round(6 * 3600.0 / sample_time_s))  # the 6 h the forecast covers
    cfg = holder_empc_config(mean_price, cap, sample_time_s=sample_time_s, horizon_steps=horizon)
    ctrl = NmpcController(model, cfg)
    d = model.d.vector({"cog_surplus": surplus_m3_s, "flare_penalty": 5e-9})
    v = 0.5 * cap
    levels, burns, prices, times, solve = [], [], [], [], []
    revenue = 0.0
    for k in range(n):
        t = k * sample_time_s
        # the forecast from now: interval j covers [t + 1800 j, t + 1800 (j + 1))
        p = {f"price_{j}": price_usd_per_mwh(t + 1800.0 * j) / MWH for j in range(12)}
        res = ctrl.step({"v_cog": v, "tau": 0.0}, d=d, p=p, time_s=t)
        solve.append(res.solve_time_s)
        u = res.u if res.usable and res.u is not None else np.array([surplus_m3_s, 0.0])
        price = price_usd_per_mwh(t) / MWH
        revenue += price * POWER_PER_M3 * float(u[0]) * sample_time_s
        revenue -= 5e-9 * 17.6e6 * float(u[1]) * sample_time_s
        levels.append(v / cap)
        burns.append(float(u[0]))
        prices.append(price)
        times.append(t)
        x = step(model, np.array([v, 0.0]), u, d, model.resolve("p", p), sample_time_s)
        v = float(x[0])
    revenue += (v - 0.5 * cap) * POWER_PER_M3 * mean_price
    steady = sum(price_usd_per_mwh(t) / MWH for t in grid) * POWER_PER_M3 * surplus_m3_s
    steady *= sample_time_s
    times_ms = float(np.median(solve) * 1e3)
    return HolderEmpcResult(
        np.asarray(times),
        np.asarray(levels),
        np.asarray(burns),
        np.asarray(prices),
        revenue,
        steady,
        times_ms,
    )
