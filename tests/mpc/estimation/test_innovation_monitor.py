"""Innovation monitor (CUSUM + windowed NIS), the new per-signal validation checks, and the
EKF leaving a flagged measurement out of its update (issue 14.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mpc.estimation import (
    DisturbanceModel,
    EstimatorConfig,
    ExtendedKalmanFilter,
    InnovationConfig,
    InnovationMonitor,
    MeasurementValidator,
    MheConfig,
    MovingHorizonEstimator,
    RejectReason,
    ValidationConfig,
)
from plant_models.errors import ConfigError
from plant_models.samples import Measurement, Quality
from plant_models.simulation import step

NAMES = ("c_b", "t_r", "t_k")


def _feed(monitor: InnovationMonitor, nus: np.ndarray) -> int | None:
    """Index of the first sample after which the monitor flags signal 'y' (None: never)."""
    for k, nu in enumerate(nus):
        if monitor.observe(("y",), (float(nu),), (1.0,)):
            return k
    return None


def test_cusum_no_false_alarm_on_white_noise_and_fast_on_a_2_sigma_shift() -> None:
    rng = np.random.default_rng(3)
    healthy = InnovationMonitor(InnovationConfig(signals=("y",)))
    assert _feed(healthy, rng.standard_normal(20_000)) is None
    detect = []
    for seed in range(20):
        m = InnovationMonitor(InnovationConfig(signals=("y",), nis_alpha=None))
        shifted = np.random.default_rng(seed).standard_normal(200) - 2.0
        k = _feed(m, shifted)
        assert k is not None
        detect.append(k + 1)
    # Siegmund's approximation for k = 0.5, h = 10 and a 2-sigma shift: about 7.2 samples
    assert 5.0 <= float(np.mean(detect)) <= 10.0


def test_nis_flags_an_erratic_sensor_whose_mean_is_right() -> None:
    rng = np.random.default_rng(5)
    m = InnovationMonitor(InnovationConfig(signals=("y",), cusum_h=1e9))
    assert _feed(m, 3.0 * rng.standard_normal(200)) is not None
    assert m.flagged == {"y": "innovation"}


def test_flag_holds_until_the_signal_is_healthy_for_clear_samples() -> None:
    cfg = InnovationConfig(signals=("y",), clear_samples=5, nis_alpha=None)
    m = InnovationMonitor(cfg)
    assert _feed(m, np.full(30, 3.0)) is not None
    for _ in range(4):
        assert m.observe(("y",), (0.1,), (1.0,))  # still flagged
    assert m.observe(("y",), (0.1,), (1.0,)) == ()
    assert m.flagged == {} and m.statistic("y") == (0.0, 0.0)


def test_bias_limit_flags_an_output_disturbance_beyond_its_bound() -> None:
    m = InnovationMonitor(InnovationConfig(bias_limits={"c_b": 50.0}))
    assert m.check_biases({"c_b": 49.0}) == ()
    (flag,) = m.check_biases({"c_b": -51.0})
    assert flag.name == "c_b" and flag.reason == "bias_limit" and "-51" in flag.detail


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cusum_h": 0.0}, "cusum_h"),
        ({"cusum_k": -1.0}, "cusum_k"),
        ({"nis_window": 0}, "nis_window"),
        ({"nis_alpha": 1.5}, "nis_alpha"),
        ({"clear_samples": 0}, "clear_samples"),
        ({"signals": ("a", "a")}, "signals"),
        ({"bias_limits": {"c_b": math.nan}}, "bias_limits"),
    ],
)
def test_bad_innovation_settings_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"InnovationConfig.{field}"):
        InnovationConfig(**kwargs)


def test_monitored_signal_must_be_measured() -> None:
    with pytest.raises(ConfigError, match="'t_k' is not a measured output"):
        EstimatorConfig(
            sample_time_s=20.0,
            measured=("c_b", "t_r"),
            innovation=InnovationConfig(signals=("t_k",)),
        )


def _m(t: float, values, quality=(Quality.GOOD,) * 3, src=None) -> Measurement:
    return Measurement(
        t,
        NAMES,
        np.asarray(values, dtype=float),
        tuple(quality),
        np.zeros(0) if src is None else np.asarray(src, dtype=float),
    )


def test_rate_of_change_rejects_a_jump_from_the_last_good_value() -> None:
    v = MeasurementValidator(ValidationConfig(max_rate_per_s={"t_r": 0.1}))
    assert v.validate(_m(0.0, [1090.0, 387.0, 386.0])).accepted == NAMES
    assert v.validate(_m(20.0, [1090.0, 388.9, 386.0])).accepted == NAMES  # 1.9 K < 2 K
    r = v.validate(_m(40.0, [1090.0, 398.0, 386.0]))  # 9.1 K in 20 s
    assert r.reasons("t_r") == (RejectReason.RATE_OF_CHANGE,) and "last good" in r.describe()
    # judged against the last GOOD value and its time: 9.1 K in 100 s is within 0.1 K/s
    assert v.validate(_m(120.0, [1090.0, 398.0, 386.0])).accepted == NAMES


def test_per_signal_stale_limits_and_exemptions() -> None:
    cfg = ValidationConfig(
        max_ages_s={"t_r": 30.0, "t_k": 30.0}, stale_exempt=("t_k",), quality_exempt=("c_b",)
    )
    r = MeasurementValidator(cfg).validate(
        _m(
            100.0,
            [1090.0, 387.0, 386.0],
            (Quality.BAD, Quality.GOOD, Quality.GOOD),
            src=[0.0, 50.0, 0.0],
        )
    )
    assert r.reasons("t_r") == (RejectReason.STALE,)
    assert r.accepted == ("c_b", "t_k")
    with pytest.raises(ConfigError, match=r"max_rate_per_s\['t_r'\]"):
        ValidationConfig(max_rate_per_s={"t_r": 0.0})


@pytest.mark.parametrize("kind", ["ekf", "mhe"])
def test_estimator_leaves_a_biased_sensor_out_and_keeps_estimating_from_the_others(
    vdv, kind: str
) -> None:
    """A -4 K bias on t_r: without the monitor the estimator follows the sensor; with it, t_r
    is flagged within a few samples and the t_r estimate stays within 1 K of the truth (the
    MHE screens against its arrival-cost filter's prediction)."""
    dt = 20.0
    base = EstimatorConfig(
        sample_time_s=dt,
        measured=NAMES,
        disturbances=DisturbanceModel(outputs=("c_b",)),
        measurement_std={"c_b": 4.0, "t_r": 0.2, "t_k": 0.2},
    )
    monitored = EstimatorConfig(**{**base.__dict__, "innovation": InnovationConfig(signals=NAMES)})
    rng = np.random.default_rng(1)
    x = vdv.nominal.x.copy()
    u, d, p = vdv.nominal.u, vdv.nominal.d, vdv.nominal.p

    def make(cfg: EstimatorConfig) -> ExtendedKalmanFilter | MovingHorizonEstimator:
        if kind == "mhe":
            return MovingHorizonEstimator(vdv, cfg, MheConfig(horizon_steps=5))
        return ExtendedKalmanFilter(vdv, cfg)

    plain, watched = make(base), make(monitored)
    flagged_at, err_plain, err_watched = None, [], []
    for k in range(60):
        u_k = u * np.array([1.0 + 0.1 * math.sin(k / 7.0), 1.0])
        x = step(vdv, x, u_k, d, p, dt)
        y = np.asarray(vdv.h(x, u_k, d, p)).reshape(-1)[[1, 2, 3]]
        y = y + rng.standard_normal(3) * np.array([2.0, 0.05, 0.05])
        if k >= 20:
            y[1] -= 4.0
        meas = _m((k + 1) * dt, y)
        rp = plain.update(meas, u_k, d)
        rw = watched.update(meas, u_k, d)
        if flagged_at is None and "t_r" in rw.validation.rejected_names:
            flagged_at = k
            assert rw.validation.reasons("t_r") == (RejectReason.INNOVATION,)
        if k >= 30:
            err_plain.append(abs(rp.estimate.x[2] - x[2]))
            err_watched.append(abs(rw.estimate.x[2] - x[2]))
    assert flagged_at is not None and flagged_at - 20 <= 3
    assert max(err_watched) < 1.0 < max(err_plain)
