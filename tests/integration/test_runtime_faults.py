"""Fault tests of the closed loop over OPC UA against a HIL server child process.

The Van de Vusse CSTR (do-mpc parameters) runs in ``rtompc hil serve`` (a real
child process, real loopback sockets); the engine is the real stack of
``tests/rtompc/test_runtime.py``: EKF with an output-disturbance state on c_B,
NMPC with a rate limit on F_dil, the :class:`~rtompc.runtime.ControlLoop`, an
SQLite historian. Checked behaviour, not timings of the machine:

- the HIL server is killed (SIGKILL) mid-run and restarted on the same port: the
  loop keeps cycling, sees the loss at once, writes nothing while the plant is
  gone, re-initialises bumplessly from the MV values the *restarted* plant holds
  (which differ on purpose from the engine's last writes by several rate steps),
  and the historian holds every cycle;
- the engine goes away (loop stopped, session closed): the HIL PLC watchdog
  trips, the plant falls back to LOCAL and ramps to its safe values, and
  ``Status.status_text`` says why (read with a plain asyncua client);
- sensor faults scheduled on the HIL side (Bad status code, out-of-range spike,
  frozen value) are rejected by the estimator's validation and shown in
  ``CycleRecord.estimate.rejected``, while the loop goes on without fallback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from asyncua import Client, ua

from interfaces.limits import MoveLimits
from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import OpcUaSettings
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import DisturbanceModel, EstimatorConfig, ExtendedKalmanFilter
from mpc.estimation.validation import ValidationConfig
from plant_models.library import load
from plant_models.model import PlantModel
from plant_models.samples import OperatingTarget
from rtompc.cycle import CycleRecord
from rtompc.hil_process import HilProcess, free_port, write_bench
from rtompc.historian import Historian, HistorianLayout, HistorianRecorder
from rtompc.runtime import ControlLoop, LoopSettings

pytestmark = [pytest.mark.opcua, pytest.mark.timeout(300)]

DT = 18.0
"""Control period, plant seconds."""
SPEED = 36.0
"""HIL real-time factor: one control period per half wall second."""
PARAMS = {"parameters": "do_mpc"}
RATE = {"f_dil": 2.0 / 3600 / DT, "q_k": 200.0 / DT}
"""MV rate limits, SI per second (F_dil: 2 1/h per sample, Q_K: 200 W per sample)."""
STEP = np.array([RATE["f_dil"] * DT, RATE["q_k"] * DT])
"""Largest move per control period."""
CB_TARGET = 700.0
NS = "urn:rtompc:hil"


class Probe:
    """Collects the cycle records (a Recorder)."""

    def __init__(self) -> None:
        self.records: list[CycleRecord] = []

    def append(self, record: CycleRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def cstr() -> PlantModel:
    return load("van_de_vusse", **PARAMS)


def _estimator(model: PlantModel, validation: ValidationConfig | None = None) -> ExtendedKalmanFilter:
    return ExtendedKalmanFilter(
        model,
        EstimatorConfig(sample_time_s=DT, measured=("c_b", "t_r", "t_k"),
                        disturbances=DisturbanceModel(outputs=("c_b",)),
                        measurement_std={"c_b": 5.0, "t_r": 0.1, "t_k": 0.1},
                        validation=validation or ValidationConfig()),
        x0=model.steady_state(u=model.nominal.u).x,
    )


def _controller(model: PlantModel) -> NmpcController:
    return NmpcController(model, MpcConfig(
        horizon_steps=20, sample_time_s=DT,
        cvs=(CvSpec("c_b", weight=1.0, target=CB_TARGET),
             CvSpec("t_r", upper=140.0 + 273.15, l1_penalty=1e3)),
        mvs=(MvSpec("f_dil", move_weight=0.01, max_rate_per_s=RATE["f_dil"]),
             MvSpec("q_k", move_weight=0.01, max_rate_per_s=RATE["q_k"])),
    ))


def _bench(path: Path, model: PlantModel, endpoint: str, *, lockstep: bool = False,
           u0: np.ndarray | None = None, watchdog_timeout_s: float = 600.0,
           extra: str = "") -> Path:
    u0 = model.nominal.u if u0 is None else u0
    x0 = model.steady_state(u=u0).x
    write_bench(path, "van_de_vusse", PARAMS, endpoint=endpoint,
                sample_time_s=DT if lockstep else 1.0, speed=None if lockstep else SPEED,
                secure=None, noise_std={"c_b": 1.0, "t_r": 0.02, "t_k": 0.02}, seed=3,
                watchdog_timeout_s=watchdog_timeout_s, initial_state=model.x.mapping(x0),
                initial_inputs=model.u.mapping(u0))
    if extra:
        path.write_text(path.read_text() + extra)
    return path


def _io(model: PlantModel, endpoint: str, *, lockstep: bool = False) -> OpcUaPlantIO:
    settings = OpcUaSettings(endpoint=endpoint, sample_time_s=DT, lockstep=lockstep,
                             watchdog_interval_s=0.25, reconnect_initial_delay_s=0.1,
                             reconnect_max_delay_s=0.5, request_timeout_s=1.0)
    return OpcUaPlantIO(model, settings, limits=MoveLimits.from_model(model, RATE))


async def _wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_server_killed_and_restarted_loop_survives(cstr: PlantModel, tmp_path: Path) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    hil = HilProcess(_bench(tmp_path / "bench1.toml", cstr, endpoint),
                     log_path=tmp_path / "hil1.log")
    hil2: HilProcess | None = None
    probe = Probe()
    hist = Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(
        cstr, tuple(s.name for s in (*cstr.y, *cstr.d))))
    io = _io(cstr, endpoint)
    loop = ControlLoop(cstr, io, _estimator(cstr), _controller(cstr),
                       LoopSettings(sample_time_s=DT, speed=SPEED),
                       target=OperatingTarget(0.0, y={"c_b": CB_TARGET}),
                       recorders=[probe, HistorianRecorder(hist)])
    task: asyncio.Task[dict[str, float]] | None = None
    try:
        await hil.start()
        await io.connect()
        task = asyncio.create_task(loop.run())
        await _wait_for(lambda: len(probe.records) >= 8, 60, "8 connected cycles")
        n_before = len(probe.records)
        t_kill_wall, t_kill_mono = time.time(), time.monotonic()
        await hil.kill()
        assert await io.wait_disconnected(5.0), "loss of the killed server not detected in 5 s"
        down_since = io.link_state().down_since_s
        assert down_since is not None
        link_detection_s = down_since - t_kill_mono
        await _wait_for(lambda: sum(not r.connected for r in probe.records) >= 3, 30,
                        "3 disconnected cycles")
        # the restarted plant holds MVs several rate steps away from the engine's last writes
        last_written = next(r.u_written for r in reversed(probe.records[:n_before])
                            if np.all(np.isfinite(r.u_written)))
        toward_middle = np.where(last_written < (cstr.u.lower + cstr.u.upper) / 2, 1.0, -1.0)
        u_restart = last_written + 6.0 * toward_middle * STEP  # spans are > 12 steps wide
        hil2 = HilProcess(_bench(tmp_path / "bench2.toml", cstr, endpoint, u0=u_restart),
                          log_path=tmp_path / "hil2.log")
        await hil2.start()
        assert await io.wait_connected(30.0), "no reconnect to the restarted server in 30 s"
        n_reconnect = len(probe.records)
        await _wait_for(lambda: len(probe.records) >= n_reconnect + 8, 60,
                        "8 cycles after the restart")
        loop.stop()
        stats = await asyncio.wait_for(task, 30)
    finally:
        if task is not None and not task.done():
            task.cancel()
        await io.close()
        hist_rows = list(hist.rows())
        hist.close()
        await hil.stop()
        if hil2 is not None:
            await hil2.stop()

    recs = probe.records
    # every cycle ran and is in the historian, numbered without gaps
    assert [r.cycle for r in recs] == list(range(len(recs)))
    assert [row["cycle"] for row in hist_rows] == list(range(len(recs)))
    assert stats["cycles"] == len(recs) and stats["reconnects"] == 1
    # before the kill: connected, verified writes
    before = [r for r in recs if r.wall_time_s < t_kill_wall - 1.0]
    assert before and all(r.connected and r.write_status == "verified" for r in before)
    # loss detected within 2 s: by the link, and in the cycle records
    assert link_detection_s < 2.0, f"link saw the loss after {link_detection_s:.3f} s"
    first_down = next(r for r in recs if not r.connected)
    record_detection_s = first_down.wall_time_s - t_kill_wall
    assert record_detection_s < 2.0, f"first disconnected cycle {record_detection_s:.3f} s after kill"
    assert any("link lost" in e for e in first_down.events)
    # while down: nothing written, the loop goes on
    down = [r for r in recs if not r.connected]
    assert len(down) >= 3
    assert all(r.write_status == "not_connected" for r in down)
    assert all(np.all(np.isnan(r.u_written)) for r in down)
    assert all(np.all(np.isfinite(r.estimate.x)) for r in down)
    down_rows = [row for row in hist_rows if row["cycle"] in {r.cycle for r in down}]
    assert all(row["write_status"] == "not_connected" for row in down_rows)
    # the records are contiguous: down cycles form one block between the kill and the restart
    down_idx = [r.cycle for r in down]
    assert down_idx == list(range(down_idx[0], down_idx[-1] + 1))
    # reconnect: re-initialised from what the restarted plant holds, bumpless first write
    back = recs[down_idx[-1] + 1]
    assert back.connected and any("link back" in e for e in back.events)
    # the restarted HIL's clock starts again at 0: engine time goes on, the jump is logged
    assert np.all(np.diff([r.time_s for r in recs]) > 0)
    assert back.plant_time_s is not None and first_down.plant_time_s is not None
    assert back.plant_time_s < first_down.plant_time_s
    assert any("plant clock went back" in e for r in recs[back.cycle : back.cycle + 2]
               for e in r.events)
    np.testing.assert_allclose(back.u_plant, u_restart, rtol=1e-6)
    assert np.all(np.abs(last_written - u_restart) > 5 * STEP)  # a non-bumpless restart would jump
    first_write = next(r for r in recs[back.cycle:] if r.write_status == "verified")
    assert first_write.cycle == back.cycle
    assert np.all(np.abs(first_write.u_written - back.u_plant) <= STEP * (1 + 1e-6) + 1e-12), (
        f"first write {first_write.u_written} vs plant {back.u_plant}, step {STEP}")
    after = recs[back.cycle:]
    assert all(r.connected and r.write_status == "verified" for r in after)
    written = np.array([r.u_written for r in after])
    assert np.all(np.abs(np.diff(written, axis=0)) <= STEP * (1 + 1e-6) + 1e-12)
    print(f"\nloss detection: link {link_detection_s * 1e3:.0f} ms, first disconnected cycle "
          f"{record_detection_s * 1e3:.0f} ms after SIGKILL; {len(down)} cycles down, "
          f"{len(recs)} cycles in all")


async def _read(client: Client, path: str) -> object:
    return await client.get_node(f"ns={await client.get_namespace_index(NS)};s=van_de_vusse.{path}"
                                 ).read_value()


@pytest.mark.slow
async def test_engine_gone_watchdog_trips_to_safe_values(cstr: PlantModel, tmp_path: Path) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    safe = {"f_dil": 0.004, "q_k": -600.0}
    timeout_s = 90.0  # plant seconds = 2.5 wall seconds at 36x
    bench = _bench(tmp_path / "bench.toml", cstr, endpoint, watchdog_timeout_s=timeout_s)
    text = bench.read_text().replace(
        'fallback = "hold_last"',
        'fallback = "safe_values"\n'
        f'safe_values = {{ f_dil = {safe["f_dil"]!r}, q_k = {safe["q_k"]!r} }}\n'
        'fallback_rate_per_s = { f_dil = 1e-3, q_k = 100.0 }')
    bench.write_text(text)
    probe = Probe()
    async with HilProcess(bench, log_path=tmp_path / "hil.log"):
        io = _io(cstr, endpoint)
        async with io:
            loop = ControlLoop(cstr, io, _estimator(cstr), _controller(cstr),
                               LoopSettings(sample_time_s=DT, speed=SPEED),
                               target=OperatingTarget(0.0, y={"c_b": CB_TARGET}), recorders=[probe])
            await loop.run(8)  # > timeout_s of plant time: only the heartbeat keeps REMOTE
            remote_while_running = (await io.mode()).name
        # engine gone: no heartbeat, no session
        t_gone = time.monotonic()
        async with Client(endpoint) as client:
            mode = await _read(client, "Status.mode")
            while mode != 0 and time.monotonic() - t_gone < 60:
                await asyncio.sleep(0.2)
                mode = await _read(client, "Status.mode")
            tripped = await _read(client, "Status.watchdog_tripped")
            text = str(await _read(client, "Status.status_text"))
            sim_trip = await _read(client, "Status.sim_time_s")
            # wait until the fallback ramp has reached the safe values
            act = [await _read(client, f"Actuators.{n}") for n in safe]
            while (not np.allclose(act, list(safe.values()), rtol=1e-6)
                   and time.monotonic() - t_gone < 90):
                await asyncio.sleep(0.2)
                act = [await _read(client, f"Actuators.{n}") for n in safe]
            sp = [await _read(client, f"Setpoints.{n}") for n in safe]
            # a controller write is refused now that the plant is LOCAL
            ns = await client.get_namespace_index(NS)
            node = client.get_node(f"ns={ns};s=van_de_vusse.Setpoints.f_dil")
            (res,) = await client.write_values(
                [node], [ua.DataValue(ua.Variant(0.005, ua.VariantType.Double))],
                raise_on_partial_error=False)
    assert remote_while_running == "REMOTE"
    assert all(r.write_status == "verified" for r in probe.records)
    assert mode == 0, "plant did not fall back to LOCAL within 60 s of the engine going away"
    assert tripped is True
    assert "watchdog tripped" in text and "heartbeat unchanged" in text, text
    assert "LOCAL" in text and "safe values" in text, text
    assert f"timeout {timeout_s:g} s" in text
    # the trip came after the timeout measured from the last heartbeat (plant clock)
    idle = float(text.split("heartbeat unchanged for ")[1].split(" s")[0])
    assert timeout_s <= idle < timeout_s + 2 * 1.0 + 1e-6
    assert float(text.split("at sim time ")[1].split(" s")[0]) <= float(sim_trip)  # type: ignore[arg-type]
    np.testing.assert_allclose(sp, list(safe.values()), rtol=1e-9)
    np.testing.assert_allclose(act, list(safe.values()), rtol=1e-6)
    assert res.value == ua.StatusCodes.BadInvalidState


async def test_bad_sensor_faults_flagged_loop_goes_on(cstr: PlantModel, tmp_path: Path) -> None:
    """Lockstep (deterministic): three sensor faults scheduled by plant time on the HIL side."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    faults = (
        # (kind, signal, start, duration, extra); the loop reads at t = k * DT
        ("bad_status", "t_r", 5 * DT, 3 * DT, 'status = "BadSensorFailure"'),
        ("spike", "c_b", 10 * DT, 2 * DT, "magnitude = 9000.0"),   # c_b + 9000 > 5100 bound
        ("freeze", "t_k", 15 * DT, 8 * DT, ""),
    )
    extra = "".join(
        f"\n[[simulator.fault]]\nkind = \"{k}\"\nsignal = \"{s}\"\nstart_s = {t0!r}\n"
        f"duration_s = {dur!r}\n{more}\n" for k, s, t0, dur, more in faults)
    bench = _bench(tmp_path / "bench.toml", cstr, endpoint, lockstep=True)
    # [[simulator.fault]] must come before [server]: insert it there
    body = bench.read_text()
    head, server = body.split("\n[server]")
    bench.write_text(head + extra + "\n[server]" + server)
    validation = ValidationConfig(limits={"c_b": (0.0, 5100.0), "t_r": (273.15, 573.15),
                                          "t_k": (273.15, 573.15)},
                                  frozen_samples=2, frozen_tolerance=0.0)
    probe = Probe()
    async with HilProcess(bench, log_path=tmp_path / "hil.log"):
        io = _io(cstr, endpoint, lockstep=True)
        async with io:
            loop = ControlLoop(cstr, io, _estimator(cstr, validation), _controller(cstr),
                               LoopSettings(sample_time_s=DT),
                               target=OperatingTarget(0.0, y={"c_b": CB_TARGET}), recorders=[probe])
            await loop.run(30)
    recs = probe.records
    assert len(recs) == 30

    def window(t0: float, dur: float) -> list[CycleRecord]:
        return [r for r in recs if t0 - 1e-6 <= r.time_s < t0 + dur - 1e-6]

    bad_tr = window(5 * DT, 3 * DT)
    spike = window(10 * DT, 2 * DT)
    frozen = window(15 * DT, 8 * DT)
    assert len(bad_tr) == 3 and len(spike) == 2 and len(frozen) == 8
    assert all("t_r" in r.estimate.rejected for r in bad_tr)
    assert all(r.measurement.quality[r.measurement.names.index("t_r")].name == "BAD" for r in bad_tr)
    assert all("c_b" in r.estimate.rejected for r in spike)
    # a frozen value is caught once it has not changed for more than 2 samples
    assert all("t_k" in r.estimate.rejected for r in frozen[2:])
    assert len({r.measurement.value("t_k") for r in frozen}) == 1
    # outside the fault windows nothing is rejected (noise keeps real values moving)
    faulty = {r.cycle for r in bad_tr + spike + frozen}
    clean = [r for r in recs if r.cycle not in faulty and r.time_s > 23 * DT + 1e-6]
    assert clean and all(r.estimate.rejected == () for r in clean)
    # the loop went on: no fallback, every write verified, the estimate stayed sane
    assert all(not r.fallback for r in recs)
    assert all(r.write_status == "verified" for r in recs)
    assert all(np.all(np.isfinite(r.estimate.x)) for r in recs)
    cb_est = np.array([r.estimate.x[1] for r in spike])
    assert np.all(np.abs(cb_est - np.array([r.measurement.value("c_b") for r in spike])) > 1000.0)
