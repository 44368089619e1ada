"""Base layer (mode handshake, setpoint checks, watchdog) and fault injection, without OPC UA."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hil.faults import Fault, FaultInjector, FaultKind, load_faults
from hil.plc import BaseLayer, ControlMode, FallbackPolicy, WatchdogConfig, WriteOutcome
from plant_models.errors import ConfigError


def _layer(vdv, **wd) -> BaseLayer:
    lo, hi = vdv.u.lower, vdv.u.upper
    return BaseLayer(vdv.u, WatchdogConfig(**wd), vdv.nominal.u, lo, np.array([hi[0], -100.0]))


def test_setpoints_only_in_remote_range_checked_and_clamped(vdv) -> None:
    base = _layer(vdv)
    sp0 = base.setpoints.copy()
    assert base.write_setpoint(0, 0.005) is WriteOutcome.NOT_REMOTE
    np.testing.assert_array_equal(base.setpoints, sp0)
    base.request_mode(ControlMode.REMOTE, 0.0)
    assert base.write_setpoint(0, 0.005) is WriteOutcome.ACCEPTED
    assert base.write_setpoint(0, math.nan) is WriteOutcome.OUT_OF_RANGE
    assert base.write_setpoint(0, 1.0) is WriteOutcome.OUT_OF_RANGE  # above 35 1/h
    assert base.setpoints[0] == 0.005
    # q_k: signal range [-2500, 0] W, actuator limit -100 W -> clamped
    assert base.write_setpoint(1, -50.0) is WriteOutcome.CLAMPED
    assert base.setpoints[1] == -100.0


def test_watchdog_trips_after_timeout_and_holds_last(vdv) -> None:
    base = _layer(vdv, timeout_s=5.0)
    base.request_mode(ControlMode.REMOTE, 10.0)
    pos = np.array([0.004, -300.0])
    for t in (11.0, 12.0, 13.0, 14.0):
        base.write_heartbeat(int(t), t)
        base.scan(t, 1.0, pos)
    base.scan(18.0, 1.0, pos)
    assert base.mode is ControlMode.REMOTE  # 4 s since the last change
    sp = base.scan(19.0, 1.0, pos)
    assert base.mode is ControlMode.LOCAL and base.watchdog_tripped
    assert "heartbeat unchanged for 5.000 s" in base.status_text and "holding last" in base.status_text
    np.testing.assert_array_equal(sp, pos)
    base.request_mode(ControlMode.REMOTE, 20.0)
    assert not base.watchdog_tripped and base.mode is ControlMode.REMOTE


def test_watchdog_ramps_to_safe_values_at_fallback_rate(vdv) -> None:
    base = _layer(vdv, timeout_s=2.0, fallback=FallbackPolicy.SAFE_VALUES,
                  safe_values={"q_k": -500.0}, fallback_rate_per_s={"q_k": 40.0})
    base.request_mode(ControlMode.REMOTE, 0.0)
    pos = np.array([0.004, -300.0])
    sps = [base.scan(t, 1.0, pos)[1] for t in (1.0, 2.0, 3.0, 4.0)]
    # trips at t=2, starts bumplessly from the actuator position (-300 W), moves 40 W per 1 s scan
    assert sps == [pytest.approx(vdv.nominal.u[1]), -340.0, -380.0, -420.0]
    assert base.scan(10.0, 1.0, pos)[0] == 0.004  # not listed: holds


def test_fault_injector_applies_each_sensor_fault_and_logs_sim_time() -> None:
    faults = [
        Fault(FaultKind.BIAS, 2.0, "a", duration_s=2.0, magnitude=1.5),
        Fault(FaultKind.DRIFT, 1.0, "b", magnitude=0.1),
        Fault(FaultKind.FREEZE, 1.0, "c", duration_s=3.0),
        Fault(FaultKind.BAD_STATUS, 3.0, "a", duration_s=1.0, status="BadSensorFailure"),
        Fault(FaultKind.SPIKE, 2.0, "c", duration_s=0.0, magnitude=100.0),
        Fault(FaultKind.ACTUATOR_STUCK, 1.0, "u1", duration_s=1.0),
    ]
    inj = FaultInjector(["a", "b", "c"], ["u1"], faults)
    rows = []
    for t in range(6):
        inj.update(float(t))
        vals, status = inj.apply(float(t), np.array([10.0, 20.0, 30.0 + t]))
        rows.append((vals.tolist(), status, bool(inj.stuck()[0])))
    assert rows[0] == ([10.0, 20.0, 30.0], (0, 0, 0), False)
    assert rows[1] == ([10.0, 20.0, 31.0], (0, 0, 0), True)  # freeze holds 31
    assert rows[2][0] == pytest.approx([11.5, 20.1, 131.0]) and not rows[2][2]  # spike on frozen value
    assert rows[3][0] == pytest.approx([11.5, 20.2, 31.0]) and rows[3][1] == (0x808C0000, 0, 0)
    assert rows[4][0] == pytest.approx([10.0, 20.3, 34.0]) and rows[4][1] == (0, 0, 0)
    starts = [(e.time_s, e.fault.kind) for e in inj.log if e.started]
    assert (2.0, FaultKind.BIAS) in starts and (1.0, FaultKind.ACTUATOR_STUCK) in starts
    ends = [(e.time_s, e.fault.kind) for e in inj.log if not e.started]
    assert (4.0, FaultKind.BIAS) in ends and (3.0, FaultKind.SPIKE) in ends


def test_fault_file_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(
        '[[fault]]\nkind = "bias"\nsignal = "t_r"\nstart_s = 60.0\nmagnitude = 2.0\n'
        '[[fault]]\nkind = "server_pause"\nstart_s = 10.0\nduration_s = 0.5\n'
    )
    faults = load_faults(path)
    assert faults[0] == Fault(FaultKind.BIAS, 60.0, "t_r", magnitude=2.0)
    assert faults[1].kind.is_server
    path.write_text('[[fault]]\nkind = "melt"\nstart_s = 1\n')
    with pytest.raises(ConfigError, match=r"fault\[0\].*melt"):
        load_faults(path)
    path.write_text('[[fault]]\nkind = "bias"\nsignal = "t_r"\nstart = 1\n')
    with pytest.raises(ConfigError, match=r"fault\[0\]: unknown key\(s\) start"):
        load_faults(path)
    with pytest.raises(ConfigError, match="needs duration_s"):
        Fault(FaultKind.SERVER_PAUSE, 1.0)
    with pytest.raises(ConfigError, match="not a measurement"):
        FaultInjector(["a"], ["u"], [Fault(FaultKind.BIAS, 0.0, "zz")])
