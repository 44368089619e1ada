"""EngineView (rtompc.live.view) fed by a real closed loop (Van de Vusse, in-process
lockstep, EKF + NMPC, live parameters): frames agree with the cycle records and the
controller's predictions, the ring is bounded, subscribers never block the loop."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest
from live_helpers import DT, T_R_HIGH, live_stack

from plant_models.library import load
from plant_models.model import PlantModel
from plant_models.samples import Mode
from rtompc.live import Role
from rtompc.live.view import EngineViews, UnitView, unit_name


@pytest.fixture(scope="module")
def cstr() -> PlantModel:
    return load("van_de_vusse", parameters="do_mpc")


async def test_frames_follow_records_predictions_and_live_values(
    cstr: PlantModel, tmp_path: Path
) -> None:
    s = live_stack(cstr, tmp_path)
    view = UnitView.for_loop("vdv", s.loop, capacity=5)
    assert s.loop.view is view and view.live is s.live
    sub = view.subscribe(maxsize=100)
    async with s.io:
        await s.loop.run(8)
        s.live.submit("cv.t_r.high", T_R_HIGH - 2.0, role=Role.OPERATOR, user="op1")
        s.live.submit("controller.mode_request", "shadow", role=Role.OPERATOR, user="op1")
        await s.loop.run(1)
    frames = view.frames()
    assert [f.cycle for f in frames] == [4, 5, 6, 7, 8]  # bounded ring, newest last
    got = []
    while (f := sub.get_nowait()) is not None:
        got.append(f.cycle)
    assert got == list(range(9)) and sub.dropped == 0
    rec, frame = s.probe.records[7], frames[-2]
    assert frame.mode is Mode.ON and frame.connected
    result = None
    # the frame of cycle 7 carries that cycle's measurement and the controller's prediction
    cb = frame.cv("c_b")
    assert cb.measured == rec.measurement.value("c_b")
    assert cb.unit == cstr.y["c_b"].unit and cb.target == 700.0 and cb.weight == 1.0
    assert len(cb.prediction.values) == 21
    assert np.allclose(np.diff(cb.prediction.times_s), DT)
    assert cb.prediction.times_s[0] == rec.time_s
    assert cb.prediction_end == cb.prediction.values[-1]
    assert math.isfinite(cb.estimate) and abs(cb.estimate - cb.measured) < 50.0
    f_dil = frame.mv("f_dil")
    assert f_dil.value == rec.u_plant[0] and f_dil.written == rec.u_written[0]
    assert f_dil.in_service and f_dil.write_status in ("accepted", "verified")
    assert frame.status.solver_status == rec.solver_status
    assert frame.status.service_factor == 1.0 and frame.status.fallbacks == 0
    # the last frame: the new limit and mode are in force, the prediction ends in the limit
    last = frames[-1]
    assert last.mode is Mode.SHADOW and last.mode_request is Mode.SHADOW
    assert last.cv("t_r").high == T_R_HIGH - 2.0 and s.loop.last_result is not None
    result = s.loop.last_result
    j = cstr.y.index("t_r")
    assert last.cv("t_r").prediction.values == tuple(float(v) for v in result.y_pred[:, j])
    assert last.status.service_factor == pytest.approx(8 / 9)
    doc = json.dumps(last.to_json(), allow_nan=False)
    assert '"mode": "shadow"' in doc and '"prediction_end"' in doc
    s.hist.close()


async def test_a_request_shows_before_it_is_applied(cstr: PlantModel, tmp_path: Path) -> None:
    s = live_stack(cstr, tmp_path)
    view = UnitView.for_loop("vdv", s.loop)
    async with s.io:
        rec = await s.loop.cycle()
    s.live.submit("controller.mode_request", Mode.OFF, role=Role.OPERATOR, user="op1")
    frame = view.publish(rec, s.loop.last_result)
    assert frame.mode is Mode.ON and frame.mode_request is Mode.OFF
    s.hist.close()


async def test_slow_subscribers_lose_oldest_frames_and_never_block(
    cstr: PlantModel, tmp_path: Path
) -> None:
    s = live_stack(cstr, tmp_path)
    view = UnitView.for_loop("vdv", s.loop)
    slow = view.subscribe(maxsize=2)
    fast = view.subscribe(maxsize=64)
    seen: list[int] = []

    async def consume() -> None:
        async for f in fast:
            seen.append(f.cycle)

    thread_seen: list[int] = []
    thread_sub = view.subscribe(maxsize=64)

    def in_thread() -> None:
        while (f := thread_sub.wait(5.0)) is not None:
            thread_seen.append(f.cycle)
            if f.cycle == 5:
                return

    th = threading.Thread(target=in_thread)
    th.start()
    task = asyncio.create_task(consume())
    async with s.io:
        await s.loop.run(6)
    await asyncio.sleep(0.05)
    task.cancel()
    th.join(10.0)
    fast.close()
    assert seen == list(range(6))
    assert thread_seen == list(range(6))
    assert slow.dropped == 4 and [slow.get_nowait().cycle, slow.get_nowait().cycle] == [4, 5]
    assert slow.get_nowait() is None
    s.hist.close()


async def test_frames_published_from_another_thread_reach_an_asyncio_consumer(
    cstr: PlantModel, tmp_path: Path
) -> None:
    s = live_stack(cstr, tmp_path)
    view = UnitView.for_loop("vdv", s.loop)
    async with s.io:
        rec = await s.loop.cycle()
    sub = view.subscribe()
    th = threading.Thread(target=view.publish, args=(rec, None))
    th.start()
    frame = await asyncio.wait_for(sub.get(), 5.0)
    th.join()
    assert frame.cycle == 0 and frame.cv("c_b").prediction.values == ()
    assert math.isnan(frame.cv("c_b").prediction_end)
    s.hist.close()


def test_engine_views_and_unit_names(cstr: PlantModel, tmp_path: Path) -> None:
    s = live_stack(cstr, tmp_path)
    views = EngineViews([UnitView.for_loop("reactor_1", s.loop)])
    assert list(views) == ["reactor_1"] and views["reactor_1"].live is s.live
    with pytest.raises(KeyError, match="known \\['reactor_1'\\]"):
        views["nope"]
    with pytest.raises(ValueError, match="two units"):
        views.add(UnitView.for_loop("reactor_1", s.loop))
    assert unit_name("configs/My-Plant.v2.toml") == "my_plant_v2"
    assert unit_name("2nd.toml") == "unit_2nd"
    s.hist.close()
