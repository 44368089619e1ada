"""Cao & Rhinehart's R-statistic (J. Process Control 5 (1995) 363-374) on synthetic data.

Stated behaviour, with l1 = 0.2, l2 = l3 = 0.1, alpha = 0.05 and windows of
100 samples of unit-variance Gaussian noise:
- false alarms (steady data called moving): 5 % per signal and check, tested
  as 3-7 % over 2000 windows (about +-4 binomial standard deviations);
- a ramp of 0.3 noise standard deviations per sample is called moving in at
  least 99 % of windows; 0.5 in all of them.
"""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.errors import ConfigError, ModelError
from rto import (
    CRITICAL_VALUES,
    RStatisticConfig,
    SteadyStateDetector,
    critical_value,
    r_statistic,
)

N = 100


@pytest.fixture(scope="module")
def detector():
    return SteadyStateDetector()


def test_r_is_near_one_at_steady_state() -> None:
    r = r_statistic(np.random.default_rng(0).standard_normal(200_000))
    assert np.median(r[500:]) == pytest.approx(1.0, abs=0.02)


def test_critical_values_reproduce_by_simulation() -> None:
    for alpha, table in CRITICAL_VALUES.items():
        assert critical_value(alpha, seed=11) == pytest.approx(table, abs=0.02)


def test_false_alarm_rate_on_steady_noise(detector) -> None:
    rng = np.random.default_rng(7)
    alarms = [not detector.check(rng.standard_normal(N), ["y"]).steady for _ in range(2000)]
    assert 0.03 <= np.mean(alarms) <= 0.07


@pytest.mark.parametrize(("slope", "least"), [(0.3, 0.99), (0.5, 1.0)])
def test_ramps_are_detected(detector, slope, least) -> None:
    rng = np.random.default_rng(8)
    t = np.arange(N)
    moving = [not detector.check(slope * t + rng.standard_normal(N), ["y"]).steady
              for _ in range(500)]
    assert np.mean(moving) >= least


def test_scale_and_offset_do_not_matter(detector) -> None:
    """R is a variance ratio: the verdict is invariant to units and level."""
    rng = np.random.default_rng(9)
    data = 0.05 * np.arange(N) + rng.standard_normal(N)
    a = detector.check(data, ["y"])
    b = detector.check(350.0 + 1e-3 * data, ["y"])
    assert a.r["y"] == pytest.approx(b.r["y"], rel=1e-6)


def test_several_signals_name_the_moving_one(detector) -> None:
    rng = np.random.default_rng(10)
    t = np.arange(N)
    window = np.column_stack([rng.standard_normal(N), 0.02 * rng.standard_normal(N) + 0.01 * t])
    check = detector.check(window, ["flat", "drifting"])
    assert not check.steady
    assert check.moving == ("drifting",)
    assert check.mean["flat"] == pytest.approx(0.0, abs=1.0)


def test_first_order_settling() -> None:
    """A first-order response (tau = 20 samples) is moving at 2 tau, steady after ~15 tau.

    The filters forget in about 1/l2 = 10 samples, so the verdict is about the
    end of the window."""
    rng = np.random.default_rng(12)
    det = SteadyStateDetector()
    t = np.arange(400)
    y = 10.0 * (1 - np.exp(-t / 20.0)) + 0.1 * rng.standard_normal(t.size)
    assert not det.check(y[:40], ["y"]).steady
    assert det.check(y[-N:], ["y"]).steady


def test_other_filter_factors_compute_their_critical_value() -> None:
    det = SteadyStateDetector(RStatisticConfig(lambda1=0.1, lambda2=0.05, lambda3=0.05))
    assert 1.2 < det.r_critical < 1.45


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="lambda1"):
        RStatisticConfig(lambda1=1.5)
    with pytest.raises(ModelError, match="'y'.*NaN"):
        SteadyStateDetector().check(np.r_[np.zeros(50), np.nan], ["y"])
    with pytest.raises(ModelError, match="columns"):
        SteadyStateDetector().check(np.zeros((50, 2)), ["y"])
