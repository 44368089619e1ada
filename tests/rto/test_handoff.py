"""Hand-off to MPC: ramped, filtered targets that are reachable steady states."""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.errors import ConfigError
from plant_models.library import load
from plant_models.library.williams_otto import C0, PRICES
from plant_models.samples import OperatingTarget
from rto import EconomicOptimizer, HandoffConfig, RtoConfig, TargetHandoff


@pytest.fixture(scope="module")
def plant():
    return load("williams_otto")


@pytest.fixture(scope="module")
def optimum(plant):
    return EconomicOptimizer(plant, RtoConfig(prices=PRICES)).solve()


def test_reachable_target_passes_unchanged(plant, optimum) -> None:
    ho = TargetHandoff(plant, HandoffConfig(cvs=("x_p", "x_g")))
    res = ho.update(100.0, optimum.u, optimum.y)
    assert res.reachable and not res.ramping
    tgt = res.target
    assert isinstance(tgt, OperatingTarget) and tgt.source == "rto" and tgt.time_s == 100.0
    assert tgt.u["f_b"] == pytest.approx(optimum.u[0], abs=1e-7)
    assert tgt.y["x_p"] == pytest.approx(optimum.y[plant.y.index("x_p")], abs=1e-9)
    # the (u, y) pair is a steady state of the model
    ss = plant.steady_state(u=res.u)
    assert ss.y[plant.y.index("x_g")] == pytest.approx(tgt.y["x_g"], abs=1e-9)


def test_targets_ramp_at_the_rate_limit(plant, optimum) -> None:
    rate = {"t_r": 0.01, "f_b": 1e-3}  # K/s, kg/s per s
    ho = TargetHandoff(plant, HandoffConfig(cvs=("x_p",), max_rate=rate))
    start = {"f_b": 4.0, "t_r": 75.0 + C0,
             "x_p": float(plant.steady_state(u=[4.0, 75.0 + C0]).y[plant.y.index("x_p")])}
    ho.reset(0.0, start)
    prev = dict(start)
    results = []
    for k in range(1, 40):
        res = ho.update(60.0 * k, optimum.u, optimum.y)
        assert res.info.status.usable
        for name in ("f_b", "t_r"):
            assert abs(res.target.u[name] - prev[name]) <= rate[name] * 60.0 + 1e-9
        prev = dict(res.target.u)
        results.append(res)
    assert results[0].ramping
    # T_R needs (89.70 - 75) / 0.01 = 1470 s: still ramping at 1200 s, there at 2400 s
    assert results[19].ramping
    assert not results[-1].ramping
    assert results[-1].target.u["t_r"] == pytest.approx(optimum.u[1], abs=1e-6)
    # every intermediate target is a consistent steady state
    mid = results[10]
    ss = plant.steady_state(u=mid.u)
    assert ss.y[plant.y.index("x_p")] == pytest.approx(mid.target.y["x_p"], abs=1e-9)


def test_filter_moves_a_fraction_of_the_way(plant, optimum) -> None:
    ho = TargetHandoff(plant, HandoffConfig(filter_gain=0.5))
    ho.reset(0.0, {"f_b": 4.0, "t_r": 80.0 + C0})
    res = ho.update(10.0, optimum.u)
    assert res.target.u["f_b"] == pytest.approx(4.0 + 0.5 * (optimum.u[0] - 4.0), abs=1e-7)


def test_unreachable_target_is_moved_to_the_closest_feasible_steady_state(plant, optimum) -> None:
    """An MPC limit X_G <= 0.09 cuts the RTO target: the hand-off projects it and says so."""
    cfg = HandoffConfig(cvs=("x_g", "x_p"), limits={"x_g": (0.0, 0.09), "t_r": (343.15, 373.15)},
                        weights={"x_p": 10.0})
    res = TargetHandoff(plant, cfg).update(0.0, optimum.u, optimum.y)
    assert res.info.status.usable
    assert not res.reachable
    assert res.target.y["x_g"] == pytest.approx(0.09, abs=1e-7)
    assert res.adjustment["x_g"] < -0.01
    ss = plant.steady_state(u=res.u)
    assert ss.y[plant.y.index("x_g")] == pytest.approx(0.09, abs=1e-7)


def test_failure_keeps_the_previous_target(plant, optimum) -> None:
    cfg = HandoffConfig(cvs=("x_a",), limits={"x_a": (0.08, 1.0)})
    ho = TargetHandoff(plant, cfg)
    first = ho.update(0.0, optimum.u, optimum.y)
    assert first.info.status.usable and first.reachable
    y_bad = optimum.y.copy()
    y_bad[plant.y.index("x_g")] = np.inf
    with pytest.raises(Exception, match="x_g"):
        ho.update(10.0, optimum.u, y_bad)  # bad input is an error, not a silent target
    # with little A fed, X_A >= 0.08 is out of reach: no target, the previous one is kept
    second = ho.update(20.0, optimum.u, d={"f_a": 0.8})
    assert not second.info.status.usable
    assert second.target is first.target
    assert "target calculation failed" in second.info.message


def test_config_errors(plant) -> None:
    with pytest.raises(ConfigError, match="cvs.*'x_q'"):
        TargetHandoff(plant, HandoffConfig(cvs=("x_q",)))
    with pytest.raises(ConfigError, match=r"max_rate\['t_k'\]"):
        TargetHandoff(plant, HandoffConfig(max_rate={"t_k": 1.0}))
    with pytest.raises(ConfigError, match="filter_gain"):
        HandoffConfig(filter_gain=0.0)
