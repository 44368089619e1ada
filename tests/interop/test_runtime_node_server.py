"""Interop: the rtompc runtime closes the loop against a node-opcua server standing in for a PLC.

The server (tests/interop/node/plc_server.js, Node.js, not asyncua) has nothing in
common with the rtompc HIL: its own namespace URI (``urn:example:tank-plc``), string
NodeIds in PLC style (``PLC1.DB10.LT101``), engineering units other than SI (level in
cm, temperatures in °C, flow in m^3/h, heater power in kW, as UNECE EUInformation), a
LOCAL/REMOTE handshake, a heartbeat watchdog, and a write guard that refuses any write
carrying a timestamp or status code (BadWriteNotSupported), as open62541 and S7 servers
do. Inside runs a heated tank with throughflow (see the JS file header)::

    A dh/dt = f_in - K h,     A h dT/dt = f_in (T_in - T) + (q - UA (T - T_amb)) / (rho c_p)

The engine gets the same tank *without* the heat loss ``UA`` (plant-model mismatch),
built here with :func:`plant_models.builder.build_model`, a tag map from a mapping (as
in an application config), EKF with output disturbances and NMPC. Checked: the loop
reaches the level and temperature setpoints within tight bands, every write is verified
by read-back and the server saw only value-only writes (its counter of refused
timestamped writes holds exactly the one the test sent on purpose), and the values the
engine used are the raw PLC values converted (cm -> m, °C -> K). A second test holds the
PLC in LOCAL by its operator key switch: the loop must go on (REMOTE refused, setpoint
writes refused, nothing counted as written) and take over bumplessly once released.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from asyncua import Client, ua
from asyncua.common.node import Node

from interfaces.limits import MoveLimits
from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import OpcUaSettings
from interfaces.tagmap import TagMap
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import DisturbanceModel, EstimatorConfig, ExtendedKalmanFilter
from plant_models.builder import build_model
from plant_models.model import PlantModel
from plant_models.samples import OperatingTarget
from plant_models.signals import Signal, SignalSet
from rtompc.cycle import CycleRecord
from rtompc.hil_process import free_port
from rtompc.runtime import ControlLoop, LoopSettings

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")
NS = "urn:example:tank-plc"
C0 = 273.15
DT = 10.0
"""Control period, plant seconds."""
SPEED = 50.0
"""Plant seconds per wall second of the node-opcua plant."""
RATE = {"f_in": 1.0 / 3600 / DT, "q_h": 20e3 / DT}
"""MV rate limits, SI per second (1 m^3/h and 20 kW per control period)."""
LEVEL_SP, T_SP = 1.2, 30.0 + C0

pytestmark = [
    pytest.mark.interop,
    pytest.mark.opcua,
    pytest.mark.timeout(180),
    pytest.mark.skipif(NODE is None, reason="Node.js ('node') is not on PATH"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / "node-opcua-server").is_dir(),
        reason="node-opcua-server is not installed: run `npm ci --prefix tests/interop/node`",
    ),
]

TAGS = {
    "namespace": NS,
    "measurements": {
        "level": {"node": "s=PLC1.DB10.LT101", "unit": "cm", "valid": [0.0, 300.0]},
        "t_tank": {"node": "s=PLC1.DB10.TT101", "unit": "degC", "valid": [0.0, 100.0]},
        "t_in": {"node": "s=PLC1.DB10.TT100", "unit": "degC"},
    },
    "setpoints": {
        "f_in": {"node": "s=PLC1.DB20.FIC101_SP", "unit": "m^3/h"},
        "q_h": {"node": "s=PLC1.DB20.JQ101_SP", "unit": "kW"},
    },
    "actuators": {
        "f_in": {"node": "s=PLC1.DB20.FIC101_PV", "unit": "m^3/h"},
        "q_h": {"node": "s=PLC1.DB20.JQ101_PV", "unit": "kW"},
    },
    "status": {
        "heartbeat": "s=PLC1.DB30.HEARTBEAT",
        "mode": "s=PLC1.DB30.MODE",
        "mode_request": "s=PLC1.DB30.MODE_REQ",
        "sim_time": "s=PLC1.DB30.T_PLANT",
        "status_text": "s=PLC1.DB30.STATUS",
    },
}
"""The tag map as it would stand in ``[transport.tags]`` of an application config."""


def tank_model() -> PlantModel:
    """The heated tank of plc_server.js without its heat loss (SI units)."""
    area, k_out, rho_cp = 0.5, 2.5e-3, 4.18e6
    x = SignalSet(
        (
            Signal("level", "m", 0.05, 3.0, 1.0, "tank level"),
            Signal("t_tank", "K", C0, C0 + 100, 300.0, "tank temperature"),
        ),
        kind="x",
    )
    u = SignalSet(
        (
            Signal("f_in", "m^3/s", 0.0, 12.0 / 3600, 2.5e-3, "inflow"),
            Signal("q_h", "W", 0.0, 250e3, 1e5, "heater power"),
        ),
        kind="u",
    )
    d = SignalSet((Signal("t_in", "K", C0, C0 + 100, 300.0, "inlet temperature"),), kind="d")
    y = SignalSet(
        (
            Signal("level", "m", 0.0, 3.0, 1.0, "measured level"),
            Signal("t_tank", "K", C0, C0 + 100, 300.0, "measured temperature"),
        ),
        kind="y",
    )
    return build_model(
        "heated_tank",
        x=x,
        u=u,
        d=d,
        y=y,
        rhs=lambda s: {
            "level": (s.f_in - k_out * s.level) / area,
            "t_tank": (s.f_in * (s.t_in - s.t_tank) + s.q_h / rho_cp) / (area * s.level),
        },
        output=lambda s: {"level": s.level, "t_tank": s.t_tank},
        nominal={
            "x": {"level": 1.0, "t_tank": 24.0 + C0},
            "u": {"f_in": 2.5e-3, "q_h": 1e5},
            "d": {"t_in": 15.0 + C0},
        },
        description="heated tank with throughflow (interop PLC stand-in)",
    )


class Probe:
    """Collects the cycle records (a Recorder)."""

    def __init__(self) -> None:
        self.records: list[CycleRecord] = []

    def append(self, record: CycleRecord) -> None:
        self.records.append(record)


async def _start_plc(tmp_path: Path, **extra: object) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    cfg = tmp_path / "plc.json"
    cfg.write_text(
        json.dumps(
            {
                "port": port,
                "speed": SPEED,
                "step_s": 1.0,
                "initial": {"f_in_m3h": 9.0, "q_kw": 100.0},
                "t_in_c": 15.0,
                "watchdog_timeout_s": 120.0,
                **extra,
            }
        )
    )
    proc = await asyncio.create_subprocess_exec(
        str(NODE),
        str(NODE_DIR / "plc_server.js"),
        str(cfg),
        cwd=str(NODE_DIR),
        stdout=asyncio.subprocess.PIPE,
        stderr=open(tmp_path / "plc.log", "wb"),  # noqa: SIM115
    )
    assert proc.stdout is not None
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            raise AssertionError(
                f"plc_server.js exited: {(tmp_path / 'plc.log').read_text()[-2000:]}"
            )
        if line.startswith(b"READY "):
            return proc, line.decode().split(" ", 1)[1].strip()


async def test_runtime_reaches_setpoints_on_node_opcua_plc(tmp_path: Path) -> None:
    model = tank_model()
    tags = TagMap.from_mapping(TAGS, model, where="transport.tags")
    proc, endpoint = await _start_plc(tmp_path)
    probe = Probe()
    try:
        async with Client(endpoint) as client:
            ns = await client.get_namespace_index(NS)

            def node(ident: str) -> Node:
                return client.get_node(f"ns={ns};s=PLC1.{ident}")

            # the PLC really checks: a write with a SourceTimestamp (asyncua's write_value) is refused
            await client.write_values(
                [node("DB30.MODE_REQ")], [ua.DataValue(ua.Variant(1, ua.VariantType.Int32))]
            )
            with pytest.raises(ua.UaStatusCodeError) as err:
                await node("DB20.FIC101_SP").write_value(10.0)
            assert err.value.code == ua.StatusCodes.BadWriteNotSupported
            await client.write_values(
                [node("DB30.MODE_REQ")], [ua.DataValue(ua.Variant(0, ua.VariantType.Int32))]
            )
            for _ in range(100):  # the PLC publishes MODE on its next scan
                if await node("DB30.MODE").read_value() == 0:
                    break
                await asyncio.sleep(0.02)
            assert await node("DB30.MODE").read_value() == 0

            settings = OpcUaSettings(endpoint=endpoint, sample_time_s=DT, request_timeout_s=2.0)
            io = OpcUaPlantIO(model, settings, tags, limits=MoveLimits.from_model(model, RATE))
            ekf = ExtendedKalmanFilter(
                model,
                EstimatorConfig(
                    sample_time_s=DT,
                    measured=("level", "t_tank"),
                    disturbances=DisturbanceModel(outputs=("level", "t_tank")),
                    measurement_std={"level": 0.002, "t_tank": 0.05},
                    process_std={"dy_level": 0.002, "dy_t_tank": 0.1},
                ),
                x0=model.steady_state(u=model.nominal.u, d=model.nominal.d).x,
            )
            mpc = NmpcController(
                model,
                MpcConfig(
                    horizon_steps=30,
                    sample_time_s=DT,
                    cvs=(
                        CvSpec("level", weight=100.0, target=LEVEL_SP),
                        CvSpec("t_tank", weight=1e4, target=T_SP),
                    ),
                    mvs=(
                        MvSpec("f_in", move_weight=0.1, max_rate_per_s=RATE["f_in"]),
                        MvSpec("q_h", move_weight=0.1, max_rate_per_s=RATE["q_h"]),
                    ),
                ),
            )
            async with io:
                loop = ControlLoop(
                    model,
                    io,
                    ekf,
                    mpc,
                    LoopSettings(sample_time_s=DT, speed=SPEED),
                    target=OperatingTarget(0.0, y={"level": LEVEL_SP, "t_tank": T_SP}),
                    recorders=[probe],
                )
                stats = await loop.run(60)
                mode_after = await node("DB30.MODE").read_value()
                raw = {i: await node(i).read_value() for i in ("DB10.LT101", "DB10.TT101")}
                last = await io.read()
            writes_ok = await node("DIAG.WRITES_OK").read_value()
            refused = await node("DIAG.WRITES_REFUSED_TS").read_value()
            status_text = await node("DB30.STATUS").read_value()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    recs = probe.records
    assert stats["cycles"] == 60 and stats["fallbacks"] == 0
    assert mode_after == 1 and "REMOTE requested by client" in status_text
    # every write verified by read-back, and the PLC saw value-only writes only
    # the PLC publishes REMOTE at its next scan: nothing is written before, all verified after
    granted = next(i for i, r in enumerate(recs) if r.plant_mode == "REMOTE")
    assert granted <= 2 and all(r.write_status == "held: plant LOCAL" for r in recs[:granted])
    assert all(r.write_status == "verified" for r in recs[granted:])
    assert refused == 1, "only the test's own timestamped write may have been refused"
    assert writes_ok >= 2 * len(recs)
    # the plant clock of the PLC is the measurement time (plant seconds, DT apart)
    t = np.array([r.time_s for r in recs])
    assert np.all(np.diff(t) > 0) and np.median(np.diff(t)) == pytest.approx(DT, abs=2.0)
    # setpoints reached despite the unmodelled heat loss (offset-free)
    level = np.array([r.measurement.value("level") for r in recs])
    temp = np.array([r.measurement.value("t_tank") for r in recs])
    assert abs(level[0] - 1.0) < 0.01 and temp[0] < T_SP - 4.0
    assert np.all(np.abs(level[-10:] - LEVEL_SP) < 0.01), level[-10:]
    assert np.all(np.abs(temp[-10:] - T_SP) < 0.2), temp[-10:] - C0
    inside = (np.abs(level - LEVEL_SP) < 0.01) & (np.abs(temp - T_SP) < 0.2)
    settled = next(k for k in range(len(recs)) if inside[k:].all())
    print(
        f"\nnode-opcua PLC: settled at cycle {settled} ({settled * DT:.0f} plant s); final "
        f"level error {1e3 * (level[-1] - LEVEL_SP):+.2f} mm, temperature error "
        f"{temp[-1] - T_SP:+.3f} K; y_bias {recs[-1].estimate.y_bias}; "
        f"cycle median {stats['cycle_ms_median']:.1f} ms, overruns {stats['overruns']}"
    )
    # the output-disturbance estimate took up the heat loss: the model without it predicts
    # the tank too warm
    assert recs[-1].estimate.y_bias[1] < -0.03
    # rate limits held on what was written (SI)
    u = np.array([r.u_written for r in recs[granted:]])
    steps = np.array([RATE["f_in"], RATE["q_h"]]) * DT
    assert np.all(np.abs(np.diff(u, axis=0)) <= steps * (1 + 1e-6))
    # units: the engine's SI values are the PLC's raw cm / °C converted
    assert last.value("level") == pytest.approx(raw["DB10.LT101"] / 100.0, abs=0.005)
    assert last.value("t_tank") == pytest.approx(raw["DB10.TT101"] + C0, abs=0.1)
    assert recs[-1].measurement.value("t_in") == pytest.approx(15.0 + C0)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_plc_refusing_remote_loop_goes_on_then_takes_over(tmp_path: Path) -> None:
    """The operator's key switch holds the PLC in LOCAL: REMOTE is refused (BadInvalidState).

    The loop must not end: it keeps cycling, nothing is written while the plant is LOCAL,
    the refusal is in the records; once the key switch is released the engine asks again
    (every 5 cycles by default), gets REMOTE and its writes are verified.
    """
    model = tank_model()
    tags = TagMap.from_mapping(TAGS, model, where="transport.tags")
    proc, endpoint = await _start_plc(tmp_path, key_local=True)
    probe = Probe()
    try:
        async with Client(endpoint) as client:
            ns = await client.get_namespace_index(NS)
            key = client.get_node(f"ns={ns};s=PLC1.DB30.KEY_LOCAL")
            f_sp = client.get_node(f"ns={ns};s=PLC1.DB20.FIC101_SP")
            settings = OpcUaSettings(endpoint=endpoint, sample_time_s=DT, request_timeout_s=2.0)
            io = OpcUaPlantIO(model, settings, tags, limits=MoveLimits.from_model(model, RATE))
            ekf = ExtendedKalmanFilter(
                model,
                EstimatorConfig(
                    sample_time_s=DT,
                    measured=("level", "t_tank"),
                    disturbances=DisturbanceModel(outputs=("level", "t_tank")),
                ),
                x0=model.steady_state(u=model.nominal.u, d=model.nominal.d).x,
            )
            mpc = NmpcController(
                model,
                MpcConfig(
                    horizon_steps=20,
                    sample_time_s=DT,
                    cvs=(
                        CvSpec("level", weight=100.0, target=LEVEL_SP),
                        CvSpec("t_tank", weight=1e4, target=T_SP),
                    ),
                    mvs=(
                        MvSpec("f_in", move_weight=0.1, max_rate_per_s=RATE["f_in"]),
                        MvSpec("q_h", move_weight=0.1, max_rate_per_s=RATE["q_h"]),
                    ),
                ),
            )
            async with io:
                loop = ControlLoop(
                    model,
                    io,
                    ekf,
                    mpc,
                    LoopSettings(sample_time_s=DT, speed=SPEED),
                    target=OperatingTarget(0.0, y={"level": LEVEL_SP, "t_tank": T_SP}),
                    recorders=[probe],
                )
                await loop.run(5)
                sp_locked = await f_sp.read_value()
                mode_locked = (await io.mode()).name
                await client.write_values(
                    [key], [ua.DataValue(ua.Variant(False, ua.VariantType.Boolean))]
                )
                await loop.run(5)
                mode_after = (await io.mode()).name
    finally:
        await _stop(proc)

    locked, released = probe.records[:5], probe.records[5:]
    assert len(locked) == 5 and len(released) == 5
    assert mode_locked == "LOCAL" and sp_locked == pytest.approx(9.0)
    assert all(r.connected for r in probe.records)
    # nothing is written while the plant is LOCAL (the engine does not pretend to control)
    assert all(r.write_status == "held: plant LOCAL" for r in locked)
    assert all(np.all(np.isnan(r.u_written)) for r in locked)
    assert any("REMOTE" in e and "refused" in e for e in locked[0].events), locked[0].events
    assert all(np.all(np.isfinite(r.u_computed)) for r in locked)
    assert mode_after == "REMOTE"
    granted = next(i for i, r in enumerate(released) if r.plant_mode == "REMOTE")
    assert granted <= 1 and all(r.write_status == "verified" for r in released[granted:])
    # bumpless take-over: the first write is one rate step at most from what the PLC held
    steps = np.array([RATE["f_in"], RATE["q_h"]]) * DT
    first = released[granted]
    np.testing.assert_allclose(first.u_plant, [9.0 / 3600, 100e3], rtol=1e-9)
    assert np.all(np.abs(first.u_written - first.u_plant) <= steps * (1 + 1e-6))
