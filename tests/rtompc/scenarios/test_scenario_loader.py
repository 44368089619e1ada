"""Scenario files: the shipped suite loads; malformed files fail with file and key path."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mpc.config import MpcConfig
from plant_models.errors import ConfigError
from rtompc.scenarios.runner import load_scenario
from rtompc.scenarios.spec import Comparator, EventKind, ScenarioSpec, SensorFault

SCENARIO_DIR = Path(__file__).resolve().parents[3] / "scenarios"
SHIPPED = sorted(SCENARIO_DIR.glob("*.toml"))


def test_suite_has_at_least_twenty_scenarios_with_a_fast_subset() -> None:
    specs = [load_scenario(p) for p in SHIPPED]
    assert len(specs) >= 20
    fast = [s for s in specs if "fast" in s.tags]
    assert 5 <= len(fast) < len(specs)
    plants = {s.plant.name for s in specs}
    assert {"van_de_vusse", "quadruple_tank", "williams_otto"} <= plants
    assert len({s.name for s in specs}) == len(specs)
    assert all(s.criteria for s in specs), "every shipped scenario has acceptance criteria"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_loads_into_typed_frozen_spec(path: Path) -> None:
    spec = load_scenario(path)
    assert isinstance(spec, ScenarioSpec)
    assert isinstance(spec.mpc, MpcConfig)
    assert spec.name == path.stem
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    times = [e.t_s for e in spec.events]
    assert times == sorted(times)
    assert spec.n_cycles == round(spec.duration_s / spec.loop.sample_time_s)


def test_fields_of_a_scenario_are_read(write_scenario, tiny) -> None:
    extra = """
[plant.p]
beta = 0.95
[[event]]
t_s = 100.0
kind = "sensor_fault"
signal = "t_r"
fault = "bias"
magnitude = 2.0
duration_s = 60.0
[[event]]
t_s = 200.0
kind = "setpoint"
signal = "c_b"
value = 1000.0
[[criterion]]
kpi = "iae.c_b"
op = "<="
threshold = 1e5
"""
    spec = load_scenario(write_scenario("s.toml", tiny(extra=extra)))
    assert spec.plant.p == {"beta": 0.95}
    assert spec.model.name == "van_de_vusse" and not spec.model.p
    ev = spec.events[0]
    assert ev.kind is EventKind.SENSOR_FAULT and SensorFault(ev.fault) is SensorFault.BIAS
    assert (ev.signal, ev.magnitude, ev.duration_s) == ("t_r", 2.0, 60.0)
    assert spec.events[1].kind is EventKind.SETPOINT and spec.events[1].value == 1000.0
    crit = spec.criteria[0]
    assert (crit.kpi, crit.op, crit.threshold) == ("iae.c_b", Comparator.LE, 1e5)
    assert spec.mpc.cv("t_r").upper == 400.0 and math.isinf(spec.mpc.cv("t_r").lower)
    assert spec.estimator.config.measured == ("c_b", "t_r", "t_k")


def _error(write_scenario, text: str) -> str:
    path = write_scenario("bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message, message
    return message


@pytest.mark.parametrize(
    ("extra", "key_path", "hint"),
    [
        (
            '[[event]]\nt_s = 10.0\nkind = "setpoint"\nsignal = "c_x"\nvalue = 1.0\n',
            "event[0].signal",
            "unknown signal 'c_x'",
        ),
        (
            '[[event]]\nt_s = 10.0\nkind = "disturbance_step"\nsignal = "c_b"\nvalue = 1.0\n',
            "event[0].signal",
            "measured disturbance",
        ),
        ('[[event]]\nt_s = 10.0\nkind = "explode"\n', "event[0].kind", "expected one of"),
        ('[[event]]\nt_s = 9999.0\nkind = "mode"\nmode = "off"\n', "event[0].t_s", "<= 400"),
        (
            '[[event]]\nt_s = 10.0\nkind = "sensor_fault"\nsignal = "t_r"\nfault = "melt"\n',
            "event[0].fault",
            "expected one of",
        ),
        (
            '[[event]]\nt_s = 200.0\nkind = "mode"\nmode = "off"\n'
            '[[event]]\nt_s = 100.0\nkind = "mode"\nmode = "on"\n',
            "event[1].t_s",
            "time order",
        ),
        (
            '[[criterion]]\nkpi = "iae.t_k"\nop = "<="\nthreshold = 1.0\n',
            "criterion[0].kpi",
            "not produced by this scenario",
        ),
        (
            '[[criterion]]\nkpi = "profit"\nop = ">="\nthreshold = 1.0\n',
            "criterion[0].kpi",
            "not produced",
        ),
        (
            '[[criterion]]\nkpi = "service_factor"\nop = ">"\nthreshold = 1.0\n',
            "criterion[0].threshold",
            "unreachable",
        ),
        (
            '[[criterion]]\nkpi = "iae.c_b"\nop = "<"\nthreshold = 0.0\n',
            "criterion[0].threshold",
            "unreachable",
        ),
        (
            '[[criterion]]\nkpi = "iae.c_b"\nop = "=="\nthreshold = 0.0\n',
            "criterion[0].op",
            "expected one of",
        ),
        ('[transport]\nkind = "carrier_pigeon"\n', "transport.kind", "expected one of"),
        ("[kpi]\nsettling_band = { nope = 1.0 }\n", "kpi.settling_band.nope", "unknown CV"),
        ("[loop]\nsample_time_s = 10.0\n", "mpc.sample_time_s", "differs from loop"),
        ("[loop]\nspeeed = 2.0\n", "loop.speeed", "unknown key"),
        (
            '[transport]\nkind = "opcua"\n[[event]]\nt_s = 1.0\nkind = "sensor_fault"\n'
            'signal = "t_r"\nfault = "value"\nmagnitude = 1.0\n',
            "event[0].fault",
            "opcua",
        ),
    ],
    ids=[
        "setpoint-signal",
        "disturbance-signal",
        "event-kind",
        "event-after-end",
        "fault-type",
        "out-of-order",
        "kpi-not-cv",
        "kpi-no-economics",
        "unreachable-service",
        "unreachable-iae",
        "bad-op",
        "transport",
        "settling-band",
        "loop-period",
        "typo",
        "hil-value-fault",
    ],
)
def test_invalid_scenarios_name_file_and_key(write_scenario, tiny, extra, key_path, hint) -> None:
    message = _error(write_scenario, tiny(extra=extra))
    assert key_path in message, message
    assert hint in message, message


def test_syntax_error_names_file(write_scenario) -> None:
    message = _error(write_scenario, "[scenario\nname = 1\n")
    assert "not valid TOML" in message and ":1:" in message


def test_missing_tables_and_wrong_types(write_scenario, tiny) -> None:
    msg = _error(write_scenario, tiny().replace("[estimator]", "[estimatorx]"))
    assert "estimator: missing required key" in msg
    assert "estimatorx: unknown key; did you mean 'estimator'?" in msg
    assert "mpc.horizon_steps: missing required key" in _error(
        write_scenario, tiny().replace("horizon_steps = 10", "")
    )
    msg = _error(write_scenario, tiny().replace("duration_s = 400.0", 'duration_s = "long"'))
    assert "scenario.duration_s: expected a number" in msg
    msg = _error(write_scenario, tiny().replace('name = "c_b"\nweight', 'name = "c_z"\nweight'))
    assert "mpc.cvs[0].name" in msg and "unknown CV 'c_z'" in msg
    msg = _error(write_scenario, tiny().replace("weight = 10.0", "weight = -1.0"))
    assert "mpc" in msg and "weight" in msg
    msg = _error(write_scenario, tiny().replace('measured = ["c_b"', 'measured = ["c_q"'))
    assert "estimator.measured" in msg and "'c_q'" in msg
    msg = _error(write_scenario, tiny().replace('name = "van_de_vusse"', 'name = "no_such"'))
    assert "plant.name" in msg and "no_such" in msg


def test_rto_needs_economics(write_scenario, tiny) -> None:
    msg = _error(write_scenario, tiny(extra="[rto]\nevery_s = 100.0\n"))
    assert "rto" in msg and "[economics]" in msg


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_scenario("/nonexistent/scenario.toml")
