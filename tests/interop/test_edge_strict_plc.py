"""The OPC UA edge against the strict PLC stand-in (issue 13, findings 2, 3, 4, 5 and 8).

Each test reproduces what was seen against an S7-like peer, through the engine's own
OPC UA PlantIO over loopback, and checks the answer:

- finding 2: a batch where the PLC refuses the heater (BadOutOfRange) and accepts valve
  and pump gives a status per MV, the accepted MVs written and held, the heater keeping
  the PLC's value, over several cycles (the held values follow the PLC);
- finding 3: an Int16 r/min setpoint is rounded before the write and verified against
  the rounded value (no ``mismatch``), written holds the rounded value, requested the
  unrounded one; per-tag deadband and read-back tolerance work in engineering units;
- finding 4 (edge side): ``request_mode`` returns at once while the PLC refuses REMOTE,
  and ``status_text`` tells why; a watchdog trip shows as LOCAL with the PLC's words;
- finding 5: a setpoint mapped to a read-only node, a user-read-only node, and an MV limit
  of 100 kW against the PLC's 0-80 kW are found at connect, before anything is written;
- finding 8: a PLC power cycle gives one line when the link is lost and one when it is
  back (with the outage), and asyncua's own warnings stay out of the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from strict_plc import TAGS, StrictPlc, node, strict_plc_model

from interfaces import plantio
from interfaces.limits import MoveLimits
from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import OpcUaSettings
from interfaces.plantio import PlantMode, WriteStatus
from interfaces.tagmap import TagMap
from plant_models.model import PlantModel
from plant_models.samples import ControlMove

pytestmark = [pytest.mark.interop, pytest.mark.opcua, pytest.mark.timeout(120)]

# looked up lazily, so each test fails on its own assertion where these did not exist (aebdd36)
MV = getattr(plantio, "MvWriteStatus", None)
A, R, D = (getattr(MV, k, k) for k in ("ACCEPTED", "REJECTED", "DEADBAND"))
DT = 5.0


def settings(plc: StrictPlc, **kw: Any) -> OpcUaSettings:
    base: dict[str, Any] = {
        "sample_time_s": DT,
        "watchdog_interval_s": 0.3,
        "reconnect_initial_delay_s": 0.05,
        "reconnect_max_delay_s": 0.5,
    }
    return OpcUaSettings(plc.endpoint, **{**base, **kw})


def io_for(
    plc: StrictPlc, model: PlantModel, tags: dict[str, Any] = TAGS, **kw: Any
) -> OpcUaPlantIO:
    return OpcUaPlantIO(model, settings(plc, **kw), TagMap.from_mapping(tags, model))


async def remote(io: OpcUaPlantIO) -> None:
    """Ask until the PLC grants REMOTE (it handles the request at its next scan)."""
    for _ in range(100):
        if await io.request_mode(True) is PlantMode.REMOTE:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"REMOTE not granted: {await io.status_text()}")


def move(model: PlantModel, valve: float, rpm: float, kw: float) -> ControlMove:
    return ControlMove(0.0, np.array([valve, rpm / 60.0, kw * 1e3]), model.u.names)


async def test_partly_rejected_batch_is_judged_per_mv(
    strict_plc_factory: Callable[..., StrictPlc],
) -> None:
    plc = strict_plc_factory(speed=5.0, watchdog_s=1e6)
    model = strict_plc_model(heater_max_w=100e3)  # engine allows 100 kW, the PLC 0-80 kW
    io = io_for(plc, model)
    async with io:
        await remote(io)
        for k in range(5):
            valve, rpm = 0.45 + 0.02 * k, 1050.0 + 25 * k
            res = await io.write(move(model, valve, rpm, 90.0))
            assert res.status is WriteStatus.REJECTED
            # what the plant holds: the accepted values, the PLC's 40 kW for the heater
            np.testing.assert_allclose(res.held, [valve, rpm / 60.0, 40e3], rtol=1e-6)
            assert res.mv_status == (A, A, R), res.message
            assert res.codes == ("Good", "Good", "BadOutOfRange")
            assert "heater: BadOutOfRange (nsu=urn:rtompc:strict-plc;s=PLC.DB2.JH100_SP)" in (
                res.message
            )
            np.testing.assert_allclose(res.written[:2], [valve, rpm / 60.0], rtol=1e-6)
            assert np.isnan(res.written[2])
            state = plc.state()
            assert state["sp"]["valve"] == pytest.approx(100 * valve, rel=1e-6)
            assert state["sp"]["pump"] == rpm and state["sp"]["heater"] == 40.0
            await asyncio.sleep(0.1)


async def test_int16_setpoint_rounded_and_verified(
    strict_plc_factory: Callable[..., StrictPlc],
) -> None:
    plc = strict_plc_factory(speed=5.0, watchdog_s=1e6)
    model = strict_plc_model()
    rng = np.random.default_rng(13)
    io = io_for(plc, model)
    async with io:
        await remote(io)
        statuses = []
        for _ in range(30):
            rpm = float(rng.uniform(900.0, 1300.0))
            res = await io.write(move(model, float(rng.uniform(0.3, 0.7)), rpm, 40.0))
            statuses.append(res.status)
            assert res.status is WriteStatus.VERIFIED, res.message
            assert res.mv("pump") is A, res.message
            assert res.requested[1] * 60 == pytest.approx(rpm)  # the request, unrounded
            assert res.written[1] * 60 == pytest.approx(round(rpm), abs=1e-9)  # what was sent
            assert res.readback[1] == pytest.approx(res.written[1], abs=1e-12)  # PLC holds it
            assert res.held[1] == res.readback[1]
            # the Float valve reads back within float32 precision and counts as held
            assert res.mv("valve") is A
        assert statuses.count(WriteStatus.VERIFIED) == 30, [s.value for s in statuses]
        assert plc.state()["sp"]["pump"] == round(rpm)


async def test_per_tag_deadband_and_readback_tolerance(
    strict_plc_factory: Callable[..., StrictPlc],
) -> None:
    plc = strict_plc_factory(speed=5.0, watchdog_s=1e6)
    model = strict_plc_model()
    tags = {**TAGS, "setpoints": {**TAGS["setpoints"]}}
    tags["setpoints"]["pump"] = {
        "node": node("DB2.P100_SP"),
        "unit": "r/min",
        "deadband": 3,
        "readback_tolerance": 1,
    }
    # a Float node written with a tolerance of 0.001 %: float32 rounding still fits
    tags["setpoints"]["valve"] = {
        "node": node("DB2.XV100_SP"),
        "unit": "%",
        "readback_tolerance": 0.001,
    }
    io = io_for(plc, model, tags)
    async with io:
        await remote(io)
        res = await io.write(move(model, 0.4477, 1000.0, 40.0))
        assert res.status is WriteStatus.VERIFIED and res.mv_status[0] is A
        writes = plc.state()["writes_ok"]
        res = await io.write(move(model, 0.4477, 1002.4, 40.0))  # 2.4 r/min < deadband 3
        assert res.mv("pump") is D and res.codes[1] == "" and res.status is WriteStatus.VERIFIED
        assert res.held[1] * 60 == pytest.approx(1000.0)
        assert plc.state()["writes_ok"] == writes + 2  # valve and heater only
        res = await io.write(move(model, 0.4477, 1003.6, 40.0))  # 3.6 r/min: written as 1004
        assert res.mv("pump") is A and res.written[1] * 60 == pytest.approx(1004.0)


async def test_mode_request_does_not_wait_and_status_text_tells_why(
    strict_plc_factory: Callable[..., StrictPlc],
) -> None:
    plc = strict_plc_factory(speed=10.0, watchdog_s=3.0, refuse_remote="silent")
    model = strict_plc_model()
    # a long mode timeout: a request_mode that waited for it would take >= 30 s, one that does
    # not takes well under a second (a few seconds on a loaded 2-core machine)
    io = io_for(plc, model, mode_timeout_s=30.0)
    async with io:
        t0 = time.monotonic()
        modes = []
        for _ in range(3):
            modes.append(await io.request_mode(True))
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - t0
        assert modes == [PlantMode.LOCAL] * 3
        assert elapsed < 30.0, f"request_mode waited ({elapsed:.1f} s for 3 requests)"
        assert await io.status_text() == "LOCAL: REMOTE refused: operator key switch in LOCAL"
        # a refusal by status code raises, with the PLC's words
        plc.refuse_remote("status", reason="maintenance lock")
        with pytest.raises(Exception, match="BadInvalidState.*maintenance lock"):
            await io.request_mode(True)
        plc.refuse_remote(False)
        await remote(io)
        assert (await io.status_text()).startswith("REMOTE: granted")
        # no heartbeat: the watchdog trips after 3 plant s; mode and text say so
        for _ in range(100):
            if await io.mode() is PlantMode.LOCAL:
                break
            await asyncio.sleep(0.05)
        assert await io.mode() is PlantMode.LOCAL
        assert (await io.status_text()).startswith("LOCAL: heartbeat watchdog tripped")
        assert await io.server_clock() == plantio.ServerClock(None, None, None)  # a PLC: unsaid


async def test_node_problems_found_at_connect(
    strict_plc_factory: Callable[..., StrictPlc],
) -> None:
    from interfaces.node_checks import ProblemKind, check_endpoint

    plc = strict_plc_factory()
    good = await check_endpoint(settings(plc), TagMap.from_mapping(TAGS, strict_plc_model()))
    assert good == []
    model = strict_plc_model(heater_max_w=100e3)
    tags = {**TAGS, "setpoints": {**TAGS["setpoints"]}, "status": {**TAGS["status"]}}
    tags["setpoints"]["valve"] = {"node": node("DB3.XV100_POS"), "unit": "%"}  # the feedback
    tags["status"]["mode_request"] = node("DB4.MODE")  # read-only
    tag_map = TagMap.from_mapping(tags, model)
    problems = await check_endpoint(settings(plc), tag_map, MoveLimits.from_model(model))
    kinds = {(p.tag, p.kind) for p in problems}
    assert kinds == {
        ("setpoints.valve", ProblemKind.NOT_WRITABLE),
        ("status.mode_request", ProblemKind.NOT_WRITABLE),
        ("setpoints.heater", ProblemKind.RANGE),
    }, problems
    heater = next(p for p in problems if p.kind is ProblemKind.RANGE)
    assert str(heater) == (
        "setpoints.heater (nsu=urn:rtompc:strict-plc;s=PLC.DB2.JH100_SP): EURange 0..80 kW; "
        "expected the MV limits 0..100 kW inside it (narrow the MV limits or fix the tag's unit)"
    )
    # the same problems are on the PlantIO after connect, before anything is written
    eng = {
        **TAGS,
        "setpoints": {
            **TAGS["setpoints"],
            "valve": {"node": node("DB2.XV100_SP_ENG"), "unit": "%"},
        },
    }
    io = io_for(plc, model, eng)
    async with io:
        found = {(p.tag, p.kind) for p in io.node_problems}
        assert found == {
            ("setpoints.valve", ProblemKind.USER_NOT_WRITABLE),
            ("setpoints.heater", ProblemKind.RANGE),
        }, io.node_problems
    assert plc.state()["writes_ok"] == 0


async def test_power_cycle_logs_lost_and_back_once_and_asyncua_stays_quiet(
    strict_plc_factory: Callable[..., StrictPlc], caplog: pytest.LogCaptureFixture
) -> None:
    from rtompc.logs import configure_logging, reset_logging

    plc = strict_plc_factory(speed=1.0, watchdog_s=1e6)
    model = strict_plc_model()
    configure_logging(verbosity=1)
    caplog.set_level(logging.INFO)
    try:
        io = io_for(plc, model)
        async with io:
            plc.kill()
            assert await io.wait_disconnected(5.0)
            await asyncio.sleep(1.0)  # reconnect attempts fail while the PLC is down
            plc.start()
            t_ready = time.monotonic()
            assert await io.wait_connected(10.0)
            reconnect_s = time.monotonic() - t_ready
            assert (await io.read()).good("level")
            print(f"\nreconnect after the PLC was READY again: {1e3 * reconnect_s:.0f} ms")
    finally:
        reset_logging()
    ours = [r for r in caplog.records if r.name.startswith("interfaces")]
    lost = [r for r in ours if "lost" in r.getMessage()]
    back = [r for r in ours if "back" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelno == logging.WARNING, [r.getMessage() for r in ours]
    assert len(back) == 1 and back[0].levelno == logging.INFO, [r.getMessage() for r in ours]
    assert "after" in back[0].getMessage()
    noise = [
        r for r in caplog.records if r.name.startswith("asyncua") and r.levelno >= logging.WARNING
    ]
    assert noise == [], [r.getMessage() for r in noise]
