"""RTO of Skogestad's column A: product value against reboiler duty, checked independently.

Economics (those of ``scenarios/col_rto_energy_price.toml``): distillate 30 $/kmol, bottoms
20 $/kmol, feed 18 $/kmol, reboiler duty 10 $/GJ (5 $/GJ after the price event); x_D >= 0.99
(product spec), x_B <= 0.02, V <= 4 kmol/min. The economic optimiser's answer is checked
against a brute-force scan of the steady states on the x_D = 0.99 spec (the square inverse
problem solved for L and V at each x_B) and its x_D multiplier against the finite-difference
change of the optimal profit with the spec (the meaning of a KKT multiplier).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from plant_models.library import load
from plant_models.library.distillation_column_a import KMOL_PER_MIN
from rto import EconomicOptimizer, RtoConfig

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "col_rto_energy_price.toml"
PRICES = {"d_flow": 0.030, "b_flow": 0.020, "f": -0.018, "q_reb": -1e-8}
LIMITS = {"x_d": (0.99, 1.0), "x_b": (0.0, 0.02), "v_b": (0.0, 4.0 * KMOL_PER_MIN)}


@pytest.fixture(scope="module")
def column():
    return load("distillation_column_a")


def _optimizer(column, prices=PRICES, x_d_spec=0.99) -> EconomicOptimizer:
    limits = dict(LIMITS, x_d=(x_d_spec, 1.0))
    return EconomicOptimizer(column, RtoConfig(prices=prices, limits=limits))


def test_scenario_uses_these_economics() -> None:
    eco = tomllib.loads(SCENARIO.read_text())["economics"]
    assert eco["prices"] == PRICES
    assert eco["limits"]["x_d"] == list(LIMITS["x_d"])


def test_optimum_is_on_the_purity_spec_and_beats_every_scanned_steady_state(column) -> None:
    opt = _optimizer(column)
    res = opt.solve()
    assert res.info.status.usable, res.info.message
    y = column.y.mapping(res.y)
    assert y["x_d"] == pytest.approx(0.99, abs=1e-7)  # active: distillate is worth more
    assert 0.012 < y["x_b"] < 0.018  # interior: recovery traded against steam (0.0152)
    # brute force: steady states on the spec, x_B on a grid, L and V from the inverse problem
    grid = np.arange(0.008, 0.0201, 0.0005)
    profits = []
    x_guess = column.nominal.x
    for xb in grid:
        ss = column.steady_state(targets={"x_d": 0.99, "x_b": float(xb)}, x_guess=x_guess)
        x_guess = ss.x
        profits.append(opt.profit(ss.x, ss.u))
    profits = np.asarray(profits)
    best = int(np.argmax(profits))
    assert 0 < best < len(grid) - 1  # an interior maximum of the scan
    assert abs(grid[best] - y["x_b"]) <= 0.0005 + 1e-12
    assert res.profit >= profits.max() - 1e-9
    # parabola through the three best grid points: its vertex is the optimiser's x_B
    c = np.polyfit(grid[best - 1 : best + 2], profits[best - 1 : best + 2], 2)
    assert -c[1] / (2 * c[0]) == pytest.approx(y["x_b"], abs=1e-4)
    # over-purified operation (0.995 / 0.005) loses money against the optimum
    over = column.steady_state(targets={"x_d": 0.995, "x_b": 0.005}, x_guess=column.nominal.x)
    assert opt.profit(over.x, over.u) < 0.98 * res.profit  # 3.4 % less


def test_purity_multiplier_equals_the_profit_change_with_the_spec(column) -> None:
    res = _optimizer(column).solve()
    (lim,) = [s for s in res.limits if s.signal == "x_d" and s.active]
    step = 2e-4
    tighter = _optimizer(column, x_d_spec=0.99 + step).solve()
    fd = (tighter.profit - res.profit) / step  # $/s per unit of mole fraction
    assert fd < 0
    assert lim.sensitivity == pytest.approx(fd, rel=0.05)


def test_cheaper_steam_buys_purer_bottoms(column) -> None:
    dear = column.y.mapping(_optimizer(column).solve().y)
    cheap_prices = dict(PRICES, q_reb=-5e-9)
    cheap = column.y.mapping(_optimizer(column, prices=cheap_prices).solve().y)
    assert cheap["x_b"] < dear["x_b"] - 0.004  # 0.0098 against 0.0152
    assert cheap["q_reb"] > dear["q_reb"]
