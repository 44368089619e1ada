"""The HIL OPC UA server over real loopback sockets (asyncua client), lockstep clock.

Checks the address-space contract, lockstep determinism, the PLC-like mode
handshake and watchdog, bad writes (status codes, plant untouched), fault
effects seen by a client, and the real-time clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest
import pytest_asyncio
from asyncua import Client, ua

from hil.actuators import ActuatorSpec
from hil.address_space import NAMESPACE_URI
from hil.clock import ClockConfig, ClockMode
from hil.faults import Fault, FaultKind
from hil.plc import WatchdogConfig
from hil.server import HilServer, ServerConfig
from hil.simulator import PlantSimulator, SimulatorConfig

pytestmark = [pytest.mark.opcua, pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]

LOCKSTEP = ClockConfig(ClockMode.LOCKSTEP)


@dataclass
class Bench:
    server: HilServer
    client: Client
    ns: int

    def node(self, *parts: str):  # noqa: ANN201
        return self.client.get_node(ua.NodeId(".".join(("van_de_vusse", *parts)), self.ns))

    async def step(self, n: int) -> float:
        plant = self.node()
        out = await plant.call_method(ua.NodeId("van_de_vusse.step", self.ns), ua.Variant(n, ua.VariantType.UInt32))
        return float(out)

    async def write(self, parts: tuple[str, ...], value: object, vtype: ua.VariantType) -> ua.StatusCode:
        dv = ua.DataValue(ua.Variant(value, vtype))
        return (await self.client.write_values([self.node(*parts)], [dv], raise_on_partial_error=False))[0]


async def _bench(vdv, endpoint: str, sim_cfg: SimulatorConfig | None = None) -> AsyncIterator[Bench]:
    server = HilServer(PlantSimulator(vdv, sim_cfg or SimulatorConfig()), ServerConfig(endpoint, LOCKSTEP))
    async with server:
        async with Client(endpoint, timeout=3) as client:
            ns = await client.get_namespace_index(NAMESPACE_URI)
            yield Bench(server, client, ns)


def _cfg() -> SimulatorConfig:
    return SimulatorConfig(sample_time_s=2.0, actuators={"q_k": ActuatorSpec(upper=-100.0)},
                           watchdog=WatchdogConfig(timeout_s=6.0))


@pytest_asyncio.fixture(loop_scope="module")
async def bench(vdv, endpoint: str) -> AsyncIterator[Bench]:
    """A fresh lockstep server for tests that change the plant's state."""
    async for b in _bench(vdv, endpoint, _cfg()):
        yield b


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(vdv, port_factory) -> AsyncIterator[Bench]:
    """One lockstep server, in REMOTE, for read-only tests and writes that must not change anything."""
    cfg = SimulatorConfig(sample_time_s=2.0, actuators={"q_k": ActuatorSpec(upper=-100.0)},
                          watchdog=WatchdogConfig(timeout_s=1e9))
    async for b in _bench(vdv, f"opc.tcp://127.0.0.1:{port_factory()}", cfg):
        assert (await b.write(("Status", "mode_request"), 1, ua.VariantType.Int32)).is_good()
        yield b


async def test_address_space_follows_the_contract(shared: Bench, vdv) -> None:
    bench = shared
    plant = bench.node()
    assert (await plant.read_browse_name()).Name == "van_de_vusse"
    folders = {(await n.read_browse_name()).Name: n for n in await plant.get_children()}
    assert set(folders) == {"Measurements", "Actuators", "Setpoints", "Status", "step"}
    expected = {
        "Measurements": [*vdv.y.names, *vdv.d.names], "Actuators": list(vdv.u.names),
        "Setpoints": list(vdv.u.names),
        "Status": ["sim_time_s", "heartbeat", "mode", "mode_request", "watchdog_tripped", "status_text",
                   "realtime_factor", "pacing_jitter_p99_s", "lockstep", "step_size_s", "speed_factor"],
    }
    for folder, names in expected.items():
        assert folders[folder].nodeid == ua.NodeId(f"van_de_vusse.{folder}", bench.ns)
        children = await folders[folder].get_children()
        assert [(await c.read_browse_name()).Name for c in children] == names
        for child, name in zip(children, names, strict=True):
            assert child.nodeid == ua.NodeId(f"van_de_vusse.{folder}.{name}", bench.ns)
            props = {(await p.read_browse_name()).Name: p for p in await child.get_properties()}
            assert {"EngineeringUnits", "EURange"} <= set(props), (folder, name)
    f_dil = bench.node("Setpoints", "f_dil")
    rng = await (await f_dil.get_child(["0:EURange"])).read_value()
    assert (rng.Low, rng.High) == pytest.approx((3.0 / 3600, 35.0 / 3600))
    eu = await (await f_dil.get_child(["0:EngineeringUnits"])).read_value()
    assert eu.DisplayName.Text == "1/s" and eu.UnitId == 0x433937  # UNECE C97
    sim_rng = await (await bench.node("Status", "sim_time_s").get_child(["0:EURange"])).read_value()
    assert sim_rng.High == 1e300
    types = {
        ("Status", "heartbeat"): ua.VariantType.UInt32, ("Status", "mode"): ua.VariantType.Int32,
        ("Status", "watchdog_tripped"): ua.VariantType.Boolean, ("Status", "status_text"): ua.VariantType.String,
        ("Measurements", "t_in"): ua.VariantType.Double,
    }
    for parts, vtype in types.items():
        assert (await bench.node(*parts).read_data_type_as_variant_type()) == vtype
        dv = await bench.node(*parts).read_data_value()
        assert dv.SourceTimestamp is not None and dv.StatusCode.is_good(), parts
    access = await bench.node("Measurements", "t_r").read_attribute(ua.AttributeIds.AccessLevel)
    assert not access.Value.Value & ua.AccessLevel.CurrentWrite.mask
    access = await bench.node("Setpoints", "q_k").read_attribute(ua.AttributeIds.UserAccessLevel)
    assert access.Value.Value & ua.AccessLevel.CurrentWrite.mask


async def test_measurements_have_source_timestamps_and_good_status(shared: Bench, vdv) -> None:
    bench = shared
    await bench.step(3)
    dv = await bench.node("Measurements", "c_b").read_data_value()
    assert dv.StatusCode.is_good()
    age = dt.datetime.now(dt.UTC) - dv.SourceTimestamp.replace(tzinfo=dt.UTC)
    assert dt.timedelta(0) <= age < dt.timedelta(seconds=30)
    assert dv.Value.Value == pytest.approx(1.09e3, rel=5e-3)  # Klatt & Engell steady state


async def test_lockstep_advances_exactly_and_matches_in_process_simulation(vdv, endpoint: str) -> None:
    cfg = SimulatorConfig(sample_time_s=2.0, seed=3, noise_std={"t_r": 0.1, "c_b": 2.0},
                          initial_mode=1, watchdog=WatchdogConfig(timeout_s=1e6))
    ref = PlantSimulator(vdv, cfg)
    async for b in _bench(vdv, endpoint, cfg):
        assert await b.step(1) == 2.0
        assert await b.step(4) == 10.0
        ref.step(5)
        assert (await b.write(("Setpoints", "f_dil"), 0.005, ua.VariantType.Double)).is_good()
        ref.write_setpoint("f_dil", 0.005)
        assert await b.step(7) == 24.0
        snap = ref.step(7)
        names = ref.measurement_names
        got = await b.client.read_values([b.node("Measurements", n) for n in names])
        assert got == list(snap.measurements)  # bit-identical: same seed, same steps
        assert await b.node("Status", "sim_time_s").read_value() == 24.0
        assert await b.node("Actuators", "f_dil").read_value() == 0.005


BAD_WRITES = [
    (("Setpoints", "f_dil"), 5, ua.VariantType.Int32, "BadTypeMismatch"),
    (("Setpoints", "f_dil"), 0.004, ua.VariantType.Float, "BadTypeMismatch"),
    (("Setpoints", "f_dil"), "0.004", ua.VariantType.String, "BadTypeMismatch"),
    (("Setpoints", "f_dil"), [0.004, 0.005], ua.VariantType.Double, "BadTypeMismatch"),
    (("Setpoints", "f_dil"), math.nan, ua.VariantType.Double, "BadOutOfRange"),
    (("Setpoints", "f_dil"), math.inf, ua.VariantType.Double, "BadOutOfRange"),
    (("Setpoints", "f_dil"), 1.0, ua.VariantType.Double, "BadOutOfRange"),
    (("Setpoints", "q_k"), -1e7, ua.VariantType.Double, "BadOutOfRange"),
    (("Measurements", "t_r"), 300.0, ua.VariantType.Double, "BadNotWritable"),
    (("Actuators", "q_k"), -100.0, ua.VariantType.Double, "BadNotWritable"),
    (("Status", "sim_time_s"), 5.0, ua.VariantType.Double, "BadNotWritable"),
    (("Status", "mode"), 1, ua.VariantType.Int32, "BadNotWritable"),
    (("Status", "mode_request"), 2, ua.VariantType.Int32, "BadOutOfRange"),
    (("Status", "mode_request"), 1.0, ua.VariantType.Double, "BadTypeMismatch"),
    (("Status", "heartbeat"), 3, ua.VariantType.Int64, "BadTypeMismatch"),
]


@pytest.mark.parametrize("parts,value,vtype,status", BAD_WRITES,
                         ids=[f"{p[-1]}-{v!r}-{t.name}" for p, v, t, _ in BAD_WRITES])
async def test_bad_writes_get_status_and_never_reach_the_plant(
    shared: Bench, parts: tuple[str, ...], value: object, vtype: ua.VariantType, status: str
) -> None:
    sim = shared.server.simulator
    before = sim.plc_status()
    t0 = await shared.node("Status", "sim_time_s").read_value()
    result = await shared.write(parts, value, vtype)
    assert result.value == getattr(ua.StatusCodes, status), result
    after = sim.plc_status()
    assert after[0] == before[0] == 1 and np.array_equal(after[3], before[3])
    assert await shared.step(1) == t0 + 2.0  # the server still works


async def test_step_method_rejects_wrong_argument_type(shared: Bench) -> None:
    t0 = await shared.node("Status", "sim_time_s").read_value()
    with pytest.raises(ua.UaStatusCodeError) as err:
        await shared.node().call_method(ua.NodeId("van_de_vusse.step", shared.ns), ua.Variant(3, ua.VariantType.Int32))
    assert err.value.code == ua.StatusCodes.BadTypeMismatch
    assert await shared.node("Status", "sim_time_s").read_value() == t0


async def test_mode_handshake_clamping_and_local_refusal(bench: Bench, vdv) -> None:
    sp = ("Setpoints", "q_k")
    before = await bench.node(*sp).read_value()
    assert (await bench.write(sp, -200.0, ua.VariantType.Double)).value == ua.StatusCodes.BadInvalidState
    assert await bench.node(*sp).read_value() == before
    assert (await bench.write(("Status", "mode_request"), 1, ua.VariantType.Int32)).is_good()
    assert await bench.node("Status", "mode").read_value() == 1
    assert "REMOTE requested" in await bench.node("Status", "status_text").read_value()
    assert (await bench.write(sp, -200.0, ua.VariantType.Double)).is_good()
    # inside the EURange but above the actuator limit of -100 W: clamped
    result = await bench.write(sp, -50.0, ua.VariantType.Double)
    assert result.value == ua.StatusCodes.GoodClamped
    assert await bench.node(*sp).read_value() == -100.0
    await bench.step(1)
    assert await bench.node("Actuators", "q_k").read_value() == -100.0
    assert (await bench.write(("Status", "mode_request"), 0, ua.VariantType.Int32)).is_good()
    assert await bench.node("Status", "mode").read_value() == 0


async def test_watchdog_falls_back_to_local_when_heartbeat_stops(bench: Bench) -> None:
    hb = ("Status", "heartbeat")
    await bench.write(("Status", "mode_request"), 1, ua.VariantType.Int32)
    for k in range(1, 4):  # heartbeat alive: 3 steps of 2 s
        assert (await bench.write(hb, k, ua.VariantType.UInt32)).is_good()
        await bench.step(1)
    assert await bench.node("Status", "mode").read_value() == 1
    await bench.write(("Setpoints", "q_k"), -400.0, ua.VariantType.Double)
    await bench.step(2)  # heartbeat last changed at t=4 s; timeout 6 s -> trips in the scan at t=10 s
    assert await bench.node("Status", "mode").read_value() == 1
    await bench.step(1)
    assert await bench.node("Status", "mode").read_value() == 0
    assert await bench.node("Status", "watchdog_tripped").read_value() is True
    text = await bench.node("Status", "status_text").read_value()
    assert "watchdog tripped at sim time 10.000 s" in text and "timeout 6 s" in text
    held = await bench.node("Actuators", "q_k").read_value()
    assert held == -400.0
    assert (await bench.write(("Setpoints", "q_k"), -300.0, ua.VariantType.Double)).value == \
        ua.StatusCodes.BadInvalidState


async def test_sensor_fault_status_reaches_the_client(vdv, endpoint: str) -> None:
    faults = (Fault(FaultKind.BAD_STATUS, 4.0, "t_r", duration_s=4.0, status="BadSensorFailure"),
              Fault(FaultKind.BIAS, 4.0, "c_b", magnitude=50.0))
    async for b in _bench(vdv, endpoint, SimulatorConfig(sample_time_s=2.0, faults=faults)):
        await b.step(1)
        clean = await b.node("Measurements", "c_b").read_value()
        await b.step(1)
        dv = await b.node("Measurements", "t_r").read_data_value(raise_on_bad_status=False)
        assert dv.StatusCode.value == ua.StatusCodes.BadSensorFailure
        assert await b.node("Measurements", "c_b").read_value() == pytest.approx(clean + 50.0, abs=0.5)
        await b.step(2)
        dv = await b.node("Measurements", "t_r").read_data_value()
        assert dv.StatusCode.is_good()
        kinds = [(e.time_s, e.fault.kind, e.started) for e in b.server.simulator.fault_log]
        assert (4.0, FaultKind.BAD_STATUS, True) in kinds and (8.0, FaultKind.BAD_STATUS, False) in kinds


async def test_subscription_delivers_every_step(shared: Bench) -> None:
    bench = shared
    got: list[float] = []

    class Handler:
        def datachange_notification(self, node, val, data) -> None:  # noqa: ANN001
            got.append(val)

    t0 = await bench.node("Status", "sim_time_s").read_value()
    sub = await bench.client.create_subscription(20, Handler())
    await sub.subscribe_data_change(bench.node("Status", "sim_time_s"), queuesize=10)
    for _ in range(3):
        await bench.step(1)
        await asyncio.sleep(0.05)
    for _ in range(100):
        if got and got[-1] == t0 + 6.0:
            break
        await asyncio.sleep(0.02)
    assert got == [t0, t0 + 2.0, t0 + 4.0, t0 + 6.0]
    await sub.delete()


async def test_drop_connections_and_pause_faults(vdv, endpoint: str) -> None:
    faults = (Fault(FaultKind.DROP_CONNECTIONS, 4.0), Fault(FaultKind.SERVER_PAUSE, 8.0, duration_s=1.0))
    server = HilServer(PlantSimulator(vdv, SimulatorConfig(sample_time_s=2.0, faults=faults)),
                       ServerConfig(endpoint, LOCKSTEP))
    async with server:
        client = Client(endpoint, timeout=1)
        await client.connect()
        ns = await client.get_namespace_index(NAMESPACE_URI)
        await server.step(2)  # the fault closes every connection
        with pytest.raises((ConnectionError, asyncio.TimeoutError, ua.UaError)):
            for _ in range(50):
                await client.get_node(ua.NodeId("van_de_vusse.Status.sim_time_s", ns)).read_value()
                await asyncio.sleep(0.02)
        try:
            await client.disconnect()
        except Exception:  # noqa: BLE001 - the connection is gone already
            pass
        async with Client(endpoint, timeout=1) as again:  # new connections are served
            node = again.get_node(ua.NodeId("van_de_vusse.Status.sim_time_s", ns))
            assert await node.read_value() == 4.0
            await server.step(2)  # server_pause at t=8: stops answering for 1 s
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(node.read_value(), 0.3)
            await asyncio.sleep(1.0)
            assert await asyncio.wait_for(node.read_value(), 2.0) == 8.0


async def test_realtime_clock_advances_by_itself(vdv, endpoint: str) -> None:
    server = HilServer(PlantSimulator(vdv, SimulatorConfig(sample_time_s=1.0)),
                       ServerConfig(endpoint, ClockConfig(ClockMode.REALTIME, speed=50.0)))
    async with server, Client(endpoint, timeout=3) as client:
        ns = await client.get_namespace_index(NAMESPACE_URI)
        t_node = client.get_node(ua.NodeId("van_de_vusse.Status.sim_time_s", ns))
        await asyncio.sleep(0.4)
        t1 = await t_node.read_value()
        await asyncio.sleep(0.2)
        assert await t_node.read_value() > t1 > 0
        rtf = await client.get_node(ua.NodeId("van_de_vusse.Status.realtime_factor", ns)).read_value()
        assert rtf > 0
        with pytest.raises(ua.UaStatusCodeError) as err:
            await client.get_node(ua.NodeId("van_de_vusse", ns)).call_method(
                ua.NodeId("van_de_vusse.step", ns), ua.Variant(1, ua.VariantType.UInt32))
        assert err.value.code == ua.StatusCodes.BadInvalidState
