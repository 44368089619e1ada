"""Sensor supervision (issue 14.2): frozen, biased and drifting sensors are flagged, left out
of the estimator and recorded; a healthy plant with measurement noise raises no flag.

Reproduces the findings on the Van de Vusse reactor temperature t_r: frozen for 150 cycles
(on aebdd36 never flagged: the app could not switch the checks on), a -4 K bias and a
drift (never flagged: nothing watched the innovation). Detection times are asserted
against the documented defaults (frozen: more than 10 unchanged samples; innovation:
CUSUM k = 0.5, h = 10 and a windowed NIS, in units of the declared measurement noise).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mpc.estimation import EstimatorConfig, InnovationConfig, ValidationConfig
from plant_models.errors import ConfigError
from plant_models.library import load
from rtompc.scenarios.result import ScenarioResult, ScenarioStatus
from rtompc.scenarios.runner import load_scenario, run_scenario
from rtompc.scenarios.spec import ScenarioSpec, TransportKind, TransportSpec
from rtompc.supervision import MeasurementChecks, SensorSupervision, with_sensor_checks

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"


def _run(name: str, transport: TransportKind = TransportKind.INPROCESS) -> ScenarioResult:
    spec = load_scenario(SCENARIOS / f"{name}.toml")
    spec = dataclasses.replace(spec, transport=TransportSpec(transport))
    r = run_scenario(spec)
    assert r.status is ScenarioStatus.PASSED, r.message
    assert r.trace is not None
    return r


@pytest.mark.parametrize(
    "transport",
    [TransportKind.INPROCESS, pytest.param(TransportKind.OPCUA, marks=pytest.mark.opcua)],
    ids=["inprocess", "hil-opcua"],
)
def test_frozen_t_r_is_flagged_and_the_estimate_follows_the_plant(transport) -> None:
    r = _run("vdv_sensor_freeze_t_r", transport)
    tr = r.trace
    assert tr is not None
    i = tr.cv_names.index("t_r")
    onset, end = 600.0, 3600.0
    detect = r.kpis["detect_s.t_r:frozen"]
    assert detect <= 220.0
    during = (tr.t >= onset + detect) & (tr.t < end)
    assert all("t_r:frozen" in tr.flags[k] for k in np.flatnonzero(during))
    stale = np.abs(tr.y_measured[during, i] - tr.y[during, i])
    err = np.abs(tr.y_estimated[during, i] - tr.y[during, i])
    assert float(np.max(stale)) > 5.0  # the frozen reading goes far wrong ...
    assert float(np.max(err)) < 1.0  # ... the estimate does not
    assert not any("t_r:frozen" in f for f in tr.flags[-5:])  # cleared once it moves again
    assert r.kpis["false_flag_cycles"] == 0


def test_minus_4k_bias_on_t_r_is_flagged_and_the_limit_held_on_the_estimate() -> None:
    r = _run("vdv_sensor_bias_t_r_4k")
    tr = r.trace
    assert tr is not None
    i = tr.cv_names.index("t_r")
    assert r.kpis["detect_s.t_r:innovation"] <= 60.0
    after = tr.t >= 3600.0 + r.kpis["detect_s.t_r:innovation"]
    assert all("t_r:innovation" in tr.flags[k] for k in np.flatnonzero(after))
    # trusting the sensor the controller would run 4 K above the 372 K limit; it does not
    assert float(np.max(tr.y[after, i])) <= 372.0 + 0.2
    assert r.kpis["hidden_violation.t_r"] <= 0.5


def test_drift_on_t_r_is_flagged() -> None:
    r = _run("vdv_sensor_drift_t_r")
    tr = r.trace
    assert tr is not None
    i = tr.cv_names.index("t_r")
    detect = r.kpis["detect_s.t_r:innovation"]
    assert detect <= 600.0  # 0.01 K/s: flagged before the drift reaches 6 K
    tail = tr.t >= tr.t[-1] - 1200.0
    assert float(np.max(np.abs(tr.y_estimated[tail, i] - tr.y[tail, i]))) < 0.5
    assert float(np.max(tr.y[tail, i])) <= 372.0 + 0.2


NOISE = {
    "van_de_vusse": ({"c_b": 2.0, "t_r": 0.05, "t_k": 0.05}, {"c_b": 4.0, "t_r": 0.2, "t_k": 0.2}),
    "quadruple_tank": ({"h1": 0.0005, "h2": 0.0005}, {"h1": 0.002, "h2": 0.002}),
}


def _noisy(spec: ScenarioSpec, seed: int) -> ScenarioSpec:
    noise, declared = NOISE[spec.plant.name]
    plant = dataclasses.replace(spec.plant, noise_std=noise, seed=seed)
    est = dataclasses.replace(
        spec.estimator,
        config=dataclasses.replace(spec.estimator.config, measurement_std=declared),
    )
    return dataclasses.replace(spec, plant=plant, estimator=est)


@pytest.mark.parametrize(
    "name",
    ["vdv_setpoint_step", "vdv_setpoint_sequence", "vdv_feed_temp_step", "qt_setpoint_steps"],
)
def test_no_flag_on_a_healthy_plant_with_measurement_noise(name: str) -> None:
    """Every check on (including the innovation monitor: the noise is declared), 3 seeds."""
    for seed in (1, 2, 3):
        spec = _noisy(load_scenario(SCENARIOS / f"{name}.toml"), seed)
        r = run_scenario(spec)
        assert r.status is ScenarioStatus.PASSED, r.message
        assert r.kpis["flagged_cycles"] == 0, [e for e in r.events if "flag" in e][:5]


def test_with_sensor_checks_turns_the_switches_into_estimator_settings() -> None:
    vdv = load("van_de_vusse")
    base = EstimatorConfig(
        sample_time_s=20.0, measured=("c_b", "t_r", "t_k"), measurement_std={"t_r": 0.2}
    )
    sup = SensorSupervision(
        signals={
            "t_k": MeasurementChecks(
                frozen=False,
                stale=False,
                rate=False,
                range=False,
                bad_status=False,
                innovation=True,
                bias_limit=3.0,
            )
        }
    )
    cfg = with_sensor_checks(base, vdv, sup)
    v, inn = cfg.validation, cfg.innovation
    assert v.limits["t_r"] == (vdv.y["t_r"].lower, vdv.y["t_r"].upper) and "t_k" not in v.limits
    assert v.frozen_samples == 10 and v.frozen_exempt == ("t_k",)
    assert v.max_ages_s["t_r"] == 200.0 and "t_k" not in v.max_ages_s
    assert v.max_rate_per_s["t_r"] == pytest.approx(300.0 / 40.0) and "t_k" not in v.max_rate_per_s
    assert v.quality_exempt == ("t_k",)
    # innovation: on where the noise is declared (t_r), or switched on (t_k); c_b: default
    # noise, so off
    assert inn.signals == ("t_r", "t_k") and inn.bias_limits == {"t_k": 3.0}
    off = with_sensor_checks(base, vdv, SensorSupervision(enabled=False))
    assert off.validation == ValidationConfig() and off.innovation == InnovationConfig()
    with pytest.raises(ConfigError, match="x_q not measured by the estimator"):
        with_sensor_checks(base, vdv, SensorSupervision(signals={"x_q": MeasurementChecks()}))
    with pytest.raises(ConfigError, match="frozen_samples"):
        SensorSupervision(frozen_samples=0)
