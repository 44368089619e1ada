"""Measurement validation: each check flags exactly the faulty signal, with its reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mpc.estimation import (
    MeasurementValidator,
    RejectReason,
    ValidationConfig,
    limits_from_signals,
)
from plant_models.errors import ConfigError, ModelError
from plant_models.library import load
from plant_models.samples import Measurement, Quality

NAMES = ("c_b", "t_r", "t_k")
GOOD = (Quality.GOOD,) * 3


def meas(t: float, values, quality=GOOD, source=None) -> Measurement:
    return Measurement(
        time_s=t,
        names=NAMES,
        values=np.asarray(values, dtype=float),
        quality=tuple(quality),
        source_time_s=np.zeros(0) if source is None else np.asarray(source, dtype=float),
    )


BASE = [1090.0, 387.3, 386.0]


def test_all_good_accepted_in_requested_order() -> None:
    report = MeasurementValidator().validate(meas(0.0, BASE), ("t_k", "c_b"))
    assert report.accepted == ("t_k", "c_b")
    assert report.rejected == ()
    assert "rejected [none]" in report.describe()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (math.nan, RejectReason.NOT_FINITE),
        (math.inf, RejectReason.NOT_FINITE),
        (-math.inf, RejectReason.NOT_FINITE),
        (200.0, RejectReason.BELOW_LIMIT),
        (700.0, RejectReason.ABOVE_LIMIT),
    ],
    ids=["nan", "inf", "-inf", "below", "above"],
)
def test_non_finite_and_out_of_range(value: float, reason: RejectReason) -> None:
    cfg = ValidationConfig(limits=limits_from_signals(load("van_de_vusse").y))
    values = list(BASE)
    values[1] = value
    report = MeasurementValidator(cfg).validate(meas(0.0, values))
    assert report.accepted == ("c_b", "t_k")
    assert report.rejected_names == ("t_r",)
    assert report.reasons("t_r") == (reason,)
    assert "t_r" in report.describe()


def test_limits_from_signals_uses_signal_bounds() -> None:
    lim = limits_from_signals(load("van_de_vusse").y)
    assert lim["t_r"] == (273.15, 573.15)


@pytest.mark.parametrize(
    ("accept_uncertain", "expected_rejected"),
    [(False, ("c_b", "t_r")), (True, ("c_b",))],
    ids=["uncertain-rejected", "uncertain-accepted"],
)
def test_quality(accept_uncertain: bool, expected_rejected: tuple[str, ...]) -> None:
    cfg = ValidationConfig(accept_uncertain=accept_uncertain)
    q = (Quality.BAD, Quality.UNCERTAIN, Quality.GOOD)
    report = MeasurementValidator(cfg).validate(meas(0.0, BASE, q))
    assert report.rejected_names == expected_rejected
    assert report.reasons("c_b") == (RejectReason.BAD_QUALITY,)
    if not accept_uncertain:
        assert report.reasons("t_r") == (RejectReason.UNCERTAIN_QUALITY,)


def test_stale_source_timestamp() -> None:
    cfg = ValidationConfig(max_age_s=5.0)
    report = MeasurementValidator(cfg).validate(meas(100.0, BASE, source=[99.0, 94.0, 95.0]))
    assert report.rejected_names == ("t_r",)  # 6 s old > 5 s; 5 s old is still fine
    assert report.reasons("t_r") == (RejectReason.STALE,)


def test_frozen_by_samples_with_tolerance() -> None:
    cfg = ValidationConfig(frozen_samples=3, frozen_tolerance=1e-3, frozen_tolerances={"c_b": 0.5})
    v = MeasurementValidator(cfg)
    rng = np.random.default_rng(1)
    frozen_t_r = 387.3
    for k in range(6):
        values = [1090.0 + 0.4 * (k % 2), frozen_t_r + 1e-4 * k % 1e-3, 386.0 + rng.normal()]
        report = v.validate(meas(10.0 * k, values))
        # c_b moves by 0.4 < 0.5 (its own tolerance): frozen too; t_k moves: never frozen
        if k < 3:
            assert report.rejected == (), k
        else:
            assert report.rejected_names == ("c_b", "t_r"), k
            assert report.reasons("t_r") == (RejectReason.FROZEN,)
    # a real change releases the signal at once
    report = v.validate(meas(60.0, [1100.0, 388.0, 386.5]))
    assert report.rejected == ()


def test_frozen_by_time_and_exempt() -> None:
    cfg = ValidationConfig(frozen_time_s=25.0, frozen_exempt=("t_k",))
    v = MeasurementValidator(cfg)
    out = [v.validate(meas(10.0 * k, [1090.0 + k, 387.3, 386.0])) for k in range(5)]
    assert [r.rejected_names for r in out] == [(), (), (), ("t_r",), ("t_r",)]  # 30 s > 25 s
    v.reset()
    assert v.validate(meas(50.0, [1095.0, 387.3, 386.0])).rejected == ()


def test_several_reasons_and_missing() -> None:
    cfg = ValidationConfig(limits={"t_r": (300.0, 500.0)}, max_age_s=1.0)
    report = MeasurementValidator(cfg).validate(
        meas(
            10.0,
            [1090.0, 900.0, 386.0],
            (Quality.GOOD, Quality.BAD, Quality.GOOD),
            source=[10.0, 0.0, 10.0],
        ),
        ("t_r", "c_a"),
    )
    assert report.accepted == ()
    assert report.reasons("t_r") == (
        RejectReason.BAD_QUALITY,
        RejectReason.ABOVE_LIMIT,
        RejectReason.STALE,
    )
    assert report.reasons("c_a") == (RejectReason.MISSING,)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"limits": {"t_r": (2.0, 1.0)}}, "limits['t_r']"),
        ({"limits": {"t_r": "x"}}, "limits['t_r']"),
        ({"max_age_s": 0.0}, "max_age_s"),
        ({"frozen_time_s": -1.0}, "frozen_time_s"),
        ({"frozen_samples": 0}, "frozen_samples"),
        ({"frozen_tolerance": -1.0}, "frozen_tolerance"),
        ({"frozen_tolerance": "0.1"}, "frozen_tolerance"),
        ({"frozen_tolerances": {"t_r": math.nan}}, "frozen_tolerances['t_r']"),
        ({"accept_uncertain": "yes"}, "accept_uncertain"),
    ],
    ids=[
        "inverted",
        "not-pair",
        "age",
        "frozen-time",
        "frozen-samples",
        "tol",
        "tol-type",
        "tols",
        "bool",
    ],
)
def test_config_errors_name_the_field(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        ValidationConfig(**kwargs)


def test_malformed_measurement_raises_model_error() -> None:
    bad = Measurement(time_s=0.0, names=NAMES, values=np.zeros(2), quality=GOOD)
    with pytest.raises(ModelError, match="3 names but 2 values"):
        MeasurementValidator().validate(bad)
