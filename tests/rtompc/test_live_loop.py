"""Live parameters in the closed loop (Van de Vusse, in-process lockstep, real EKF + NMPC).

A change submitted between cycles takes effect at the start of the next cycle and
is journaled; the checks are on the plant's response: a tightened CV limit moves
the CV below it, an MV out of service holds while the other re-plans and comes
back without a bump, SHADOW -> ON starts writing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from live_helpers import DT, F_DIL_RATE, T_R_HIGH, live_stack

from plant_models.library import load
from plant_models.model import PlantModel
from plant_models.samples import Mode
from rtompc.historian.journal import read_journal
from rtompc.live import Role, Source


@pytest.fixture(scope="module")
def cstr() -> PlantModel:
    return load("van_de_vusse", parameters="do_mpc")


def _t_r(records: list) -> np.ndarray:  # type: ignore[type-arg]
    return np.array([r.measurement.value("t_r") for r in records])


async def test_tightened_cv_high_limit_moves_the_cv_below_it(
    cstr: PlantModel, tmp_path: Path
) -> None:
    s = live_stack(cstr, tmp_path)
    new_high = 126.0 + 273.15
    async with s.io:
        await s.loop.run(20)
        before = _t_r(s.probe.records)
        assert before[-1] > new_high + 2.0  # the limit binds: t_r runs at ~130 degC
        s.live.submit("cv.t_r.high", new_high, role=Role.OPERATOR, user="op1", source=Source.OPCUA)
        assert s.loop.controller.config.cv("t_r").upper == T_R_HIGH  # not mid-cycle
        await s.loop.run(40)
    after = _t_r(s.probe.records[20:])
    assert any("live change cv.t_r.high" in e for e in s.probe.records[20].events)
    assert s.loop.controller.config.cv("t_r").upper == new_high
    assert np.all(after[-15:] <= new_high + 0.05), after[-15:] - 273.15
    # the limit has priority over the c_B target (exact penalty): c_B gives way
    cb = np.array([r.measurement.value("c_b") for r in s.probe.records[-5:]])
    assert np.all(np.abs(cb - 700.0) > 5.0), cb
    rows = read_journal(s.hist, s.hist.run_id)
    assert [(r.key, r.user, r.source, r.old, r.new, r.outcome) for r in rows] == [
        ("cv.t_r.high", "op1", "opcua", T_R_HIGH, new_high, "accepted")
    ]
    s.hist.close()


async def test_mv_out_of_service_holds_others_replan_back_bumpless(
    cstr: PlantModel, tmp_path: Path
) -> None:
    s = live_stack(cstr, tmp_path)
    async with s.io:
        await s.loop.run(15)
        s.live.submit("mv.f_dil.in_service", False, role=Role.OPERATOR, user="op1")
        await s.loop.run(1)
        held = s.probe.records[-1].u_written[0]
        s.live.submit("cv.c_b.setpoint", 650.0, role=Role.OPERATOR, user="op1")
        await s.loop.run(30)
        out = s.probe.records[15:]
        spec = s.loop.controller.config.mv("f_dil")  # planned with f_dil fixed where it is
        assert spec.lower == spec.upper == held
        s.live.submit("mv.f_dil.in_service", True, role=Role.OPERATOR, user="op1")
        await s.loop.run(20)
    assert s.loop.live is not None and s.loop.live.bounds == {}  # back to the configured bounds
    assert s.loop.controller.config.mv("f_dil").upper in (None, cstr.u["f_dil"].upper)
    f_out = np.array([r.u_written[0] for r in out])
    assert np.all(f_out == held), "f_dil moved while out of service"
    q_k = np.array([r.u_written[1] for r in out])
    assert np.ptp(q_k) > 10.0  # q_k re-planned to take c_B to the new setpoint alone
    cb_out = out[-1].measurement.value("c_b")
    assert abs(cb_out - 650.0) < 5.0, cb_out
    back = s.probe.records[46:]
    f_back = np.array([r.u_written[0] for r in back])
    # bumpless: the first move starts from the held value within one rate step
    assert abs(f_back[0] - held) <= F_DIL_RATE * DT * (1 + 1e-6)
    assert np.max(np.abs(np.diff(np.r_[held, f_back]))) <= F_DIL_RATE * DT * (1 + 1e-6)
    assert np.ptp(f_back) > 0.0  # and it is used again
    assert abs(back[-1].measurement.value("c_b") - 650.0) < 5.0
    keys = [r.key for r in read_journal(s.hist, s.hist.run_id)]
    assert keys == ["mv.f_dil.in_service", "cv.c_b.setpoint", "mv.f_dil.in_service"]
    s.hist.close()


async def test_shadow_to_on_through_the_live_model(cstr: PlantModel, tmp_path: Path) -> None:
    s = live_stack(cstr, tmp_path, mode=Mode.SHADOW)
    async with s.io:
        u0 = (await s.io.read_actuators()).values.copy()
        await s.loop.run(5)
        assert all(r.write_status == "shadow" for r in s.probe.records)
        np.testing.assert_array_equal((await s.io.read_actuators()).values, u0)
        assert s.live.value("controller.mode") is Mode.SHADOW
        s.live.submit("controller.mode_request", "on", role=Role.OPERATOR, user="op1")
        await s.loop.run(10)
    on = s.probe.records[5:]
    assert all(r.mode is Mode.ON for r in on)
    assert s.live.value("controller.mode") is Mode.ON
    assert all(np.all(np.isfinite(r.u_written)) for r in on[1:])
    assert np.max(np.abs(on[-1].u_written - u0) / cstr.u.nominal) > 1e-3
    s.hist.close()


async def test_a_slow_controller_rebuild_keeps_the_heartbeat_going(
    cstr: PlantModel, tmp_path: Path
) -> None:
    """An operator's MV change rebuilds the controller; on a large model that outlasts a sample
    period (and the PLC's watchdog, several periods): the heartbeat must go on meanwhile."""
    import dataclasses
    import time

    s = live_stack(cstr, tmp_path)
    s.loop.settings = dataclasses.replace(s.loop.settings, speed=DT / 0.05)  # 50 ms periods
    restrict = s.loop.controller.restrict_mvs

    def slow_restrict(bounds: object) -> None:
        time.sleep(0.6)  # a rebuild of 12 periods, as on a large model
        restrict(bounds)  # type: ignore[arg-type]

    s.loop.controller.restrict_mvs = slow_restrict  # type: ignore[method-assign]
    async with s.io:
        await s.loop.run(5)
        before = s.io._heartbeat
        s.live.submit("mv.f_dil.in_service", False, role=Role.OPERATOR, user="op1")
        await s.loop.run(1)
        beats = s.io._heartbeat - before
    rec = s.probe.records[-1]
    assert beats >= 6, beats  # ~12 periods of rebuild: about 12 beats, plus the cycle's own
    assert any("heartbeat(s) sent meanwhile" in e for e in rec.events), rec.events
    assert s.loop.controller.config.mv("f_dil").lower == s.loop.controller.config.mv("f_dil").upper
    s.hist.close()
