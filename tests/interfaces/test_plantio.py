"""PlantIO behaviour, the same tests over every implementation (in-process and OPC UA)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from conftest import DT, Harness

from interfaces.limits import MoveLimits
from interfaces.plantio import PlantIO, PlantMode, WriteStatus
from plant_models.model import PlantModel
from plant_models.samples import ControlMove, Quality


async def test_read_gives_nominal_outputs_in_si(harness: Harness, vdv: PlantModel) -> None:
    m = await harness.io.read()
    assert m.names == vdv.y.names + vdv.d.names
    expected = np.concatenate([vdv.outputs(), vdv.nominal.d])
    np.testing.assert_allclose(m.values, expected, rtol=1e-12)
    assert all(q is Quality.GOOD for q in m.quality)
    assert m.time_s == 0.0
    assert m.source_time_s.shape == (len(m.names),)
    # Klatt & Engell (1998) steady state: T = 114.2 degC
    assert m.value("t_r") == pytest.approx(114.2 + 273.15)


async def test_write_refused_in_local_mode_then_verified_in_remote(
    harness: Harness, vdv: PlantModel
) -> None:
    io = harness.io
    assert await io.mode() is PlantMode.LOCAL
    move = ControlMove(0.0, np.array([12.0 / 3600, -1500e3 / 3600]), vdv.u.names)
    res = await io.write(move)
    assert res.status is WriteStatus.REJECTED
    assert not res.ok
    act = await io.read_actuators()
    np.testing.assert_allclose(act.values, vdv.nominal.u)  # nothing changed on the plant
    assert await io.request_mode(True) is PlantMode.REMOTE
    res = await io.write(move)
    assert res.status is WriteStatus.VERIFIED, res.message
    np.testing.assert_allclose(res.written, move.u)
    np.testing.assert_allclose(res.readback, move.u, rtol=1e-12)
    act = await io.read_actuators()
    assert act.names == vdv.u.names
    np.testing.assert_allclose(act.values, move.u, rtol=1e-12)
    assert await io.request_mode(False) is PlantMode.LOCAL


async def test_write_clamps_to_mv_limits(harness: Harness, vdv: PlantModel) -> None:
    io = harness.io
    await io.request_mode(True)
    res = await io.write(ControlMove(0.0, np.array([1.0, 1e9]), vdv.u.names))
    assert res.status is WriteStatus.VERIFIED
    assert res.clamped == (True, True)
    np.testing.assert_allclose(res.written, vdv.u.upper)
    np.testing.assert_allclose((await io.read_actuators()).values, vdv.u.upper)


async def test_move_names_reorder_and_nan_holds(harness: Harness, vdv: PlantModel) -> None:
    io = harness.io
    await io.request_mode(True)
    # names in the other order are mapped by name
    res = await io.write(
        ControlMove(0.0, np.array([-1000e3 / 3600, 10.0 / 3600]), ("q_k", "f_dil"))
    )
    np.testing.assert_allclose(res.written, [10.0 / 3600, -1000e3 / 3600])
    # a NaN request holds the value the plant has
    res = await io.write(ControlMove(0.0, np.array([math.nan, -1200e3 / 3600]), vdv.u.names))
    assert res.status is WriteStatus.VERIFIED
    np.testing.assert_allclose(res.readback, [10.0 / 3600, -1200e3 / 3600])


async def test_advance_matches_open_loop_simulation(harness: Harness, vdv: PlantModel) -> None:
    io = harness.io
    assert io.lockstep
    await io.request_mode(True)
    u1 = np.array([20.0 / 3600, -2000e3 / 3600])
    assert (await io.write(ControlMove(0.0, u1, vdv.u.names))).ok
    t = await io.advance(3)
    assert t == pytest.approx(3 * DT)
    m = await io.read()
    assert m.time_s == pytest.approx(3 * DT)
    traj = vdv.simulate(None, np.tile(u1, (3, 1)), DT)
    np.testing.assert_allclose(m.values[: len(vdv.y)], traj.y[-1], rtol=1e-8)
    assert m.value("t_r") != pytest.approx(vdv.outputs()[2], rel=1e-6)  # the plant did move


async def test_heartbeat_wraps_at_32_bits(harness: Harness) -> None:
    await harness.io.heartbeat(2**32 + 7)
    assert harness.heartbeat_seen() == 7


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"bad_status": True}, Quality.BAD),
        ({"value": math.nan}, Quality.BAD),
        ({"value": 2000.0}, Quality.BAD),  # 2000 K: outside t_r's validity [273.15, 573.15] K
        ({"value": 400.0}, Quality.GOOD),  # inside validity: accepted as is
    ],
    ids=["bad-status", "nan", "out-of-validity", "valid-override"],
)
async def test_quality_flags(harness: Harness, fault: dict, expected: Quality) -> None:
    await harness.fault("t_r", **fault)
    m = await harness.io.read()
    i = m.names.index("t_r")
    assert m.quality[i] is expected
    assert m.good("t_r") is (expected is Quality.GOOD)
    others = [q for n, q in zip(m.names, m.quality, strict=True) if n != "t_r"]
    assert all(q is Quality.GOOD for q in others)
    if fault.get("value") == 400.0:
        assert m.value("t_r") == 400.0


async def test_readback_reveals_a_plant_that_holds_another_value(
    make_io: Callable[..., PlantIO], vdv: PlantModel
) -> None:
    """Client limits wider than the plant's: the plant clamps, the read-back says so."""
    wide = MoveLimits(vdv.u.names, vdv.u.lower, 2 * vdv.u.upper + 1.0, np.full(2, np.inf))
    async with make_io(limits=wide) as io:
        await io.request_mode(True)
        f_hi = vdv.u["f_dil"].upper
        res = await io.write(ControlMove(0.0, np.array([1.5 * f_hi, -2000.0]), vdv.u.names))
        assert res.status is WriteStatus.MISMATCH
        assert not res.ok and "f_dil" in res.message and "q_k" not in res.message
        assert res.written[0] == pytest.approx(1.5 * f_hi)
        assert res.readback[0] == pytest.approx(f_hi)
        assert res.readback[1] == pytest.approx(-2000.0)


async def test_rate_limits_start_from_the_plant_value(
    make_io: Callable[..., PlantIO], vdv: PlantModel
) -> None:
    limits = MoveLimits.from_model(vdv, max_rate={"f_dil": 0.1 / 3600 / DT})  # 0.1 (1/h) per sample
    async with make_io(limits=limits) as io:
        await io.request_mode(True)
        res = await io.write(
            ControlMove(0.0, np.array([30.0 / 3600, -1113.5e3 / 3600]), vdv.u.names)
        )
        assert res.rate_limited == (True, False) and res.ok
        assert res.written[0] == pytest.approx((14.19 + 0.1) / 3600)
        res = await io.write(ControlMove(0.0, np.array([0.0, -1113.5e3 / 3600]), vdv.u.names))
        assert res.written[0] == pytest.approx(14.19 / 3600)


async def test_per_mv_results_status_text_and_clock_agree_across_transports(
    harness: Harness, vdv: PlantModel
) -> None:
    """Every transport judges a write per MV, says what the plant holds, and answers
    status_text / server_clock without waiting (issue 13, decisions 4 and 7)."""
    from interfaces.plantio import MvWriteStatus

    io = harness.io
    u0 = (await io.read_actuators()).values
    move = ControlMove(0.0, np.array([12.0 / 3600, -1500e3 / 3600]), vdv.u.names)
    res = await io.write(move)
    assert res.mv_status == (MvWriteStatus.REJECTED,) * 2
    assert all(c.startswith("Bad") for c in res.codes), res.codes  # each plant's own reason
    np.testing.assert_allclose(res.held, u0, rtol=1e-12)
    assert await io.request_mode(True) is PlantMode.REMOTE
    res = await io.write(move, in_service=(True, False))
    assert res.mv_status == (MvWriteStatus.ACCEPTED, MvWriteStatus.OUT_OF_SERVICE)
    np.testing.assert_allclose(res.held, [move.u[0], u0[1]], rtol=1e-12)
    np.testing.assert_allclose((await io.read_actuators()).values, res.held, rtol=1e-12)
    assert isinstance(await io.status_text(), str)
    clock = await io.server_clock()
    assert clock.lockstep in (True, None) and clock.speed is None
