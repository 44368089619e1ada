"""OPC UA client behaviour over real loopback sockets against the layout test server:
value-only writes in the declared type, engineering units, staleness, namespace
resolution by URI, subscriptions, reconnect, bumpless re-initialisation."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from asyncua import Client, ua
from asyncua.ua.ua_binary import struct_to_binary
from conftest import DT, free_port, opcua_settings
from layout_server import NS, LayoutServer

from interfaces.limits import MoveLimits
from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_session import value_only
from interfaces.opcua_settings import ReadMethod
from interfaces.plantio import LockstepNotSupported, PlantMode, WriteStatus
from interfaces.quality import Issue
from interfaces.tagmap import TagMap
from plant_models.errors import PlantIOError
from plant_models.model import PlantModel
from plant_models.samples import ControlMove, Measurement, Quality

pytestmark = pytest.mark.opcua
H = 3600.0


def test_value_only_datavalue_has_no_status_and_no_timestamps() -> None:
    """Encoding mask 0x01 (value only) on the wire, variant type as declared."""
    for vtype, value, payload in [
        (ua.VariantType.Double, 1.5, 1.5),
        (ua.VariantType.Float, 1.5, 1.5),
        (ua.VariantType.UInt32, 7.4, 7),
        (ua.VariantType.Int32, -1.6, -2),
    ]:
        dv = value_only(value, vtype)
        assert dv.SourceTimestamp is None and dv.ServerTimestamp is None and dv.StatusCode is None
        assert dv.Value.VariantType is vtype and dv.Value.Value == payload
        assert struct_to_binary(dv)[0] == 0x01


async def test_server_refuses_timestamped_writes_but_accepts_ours(
    server: LayoutServer, vdv: PlantModel
) -> None:
    """asyncua's node.write_value sends a SourceTimestamp: refused as by open62541/S7 PLCs."""
    async with Client(server.endpoint) as client:
        idx = await client.get_namespace_index(NS)
        node = client.get_node(ua.NodeId("van_de_vusse.Status.heartbeat", idx))
        with pytest.raises(ua.UaStatusCodeError) as err:
            await node.write_value(ua.Variant(5, ua.VariantType.UInt32))
        assert err.value.code == ua.StatusCodes.BadWriteNotSupported
        # a value-only write in the wrong type is refused by the type check
        (code,) = await client.uaclient.write_attributes(
            [node.nodeid], [value_only(5.0, ua.VariantType.Double)], ua.AttributeIds.Value
        )
        assert code.value == ua.StatusCodes.BadTypeMismatch
    assert server.refused_timestamped == 1
    io = OpcUaPlantIO(vdv, opcua_settings(server.endpoint))
    async with io:
        await io.heartbeat(5)
        assert server.heartbeat == 5
        await io.request_mode(True)
        res = await io.write(ControlMove(0.0, np.array([15.0 / H, -1000e3 / H]), vdv.u.names))
        assert res.status is WriteStatus.VERIFIED
    assert server.refused_timestamped == 1
    assert [w[0] for w in server.writes] == ["f_dil", "q_k"]


async def test_declared_float_type_and_engineering_units(vdv: PlantModel) -> None:
    """A PLC-like server in degC, 1/h and kJ/h with a Float setpoint: the client speaks SI."""
    raw = {"t_r": (1.0, -273.15), "t_k": (1.0, -273.15), "f_dil": (H, 0.0), "q_k": (H / 1e3, 0.0)}
    srv = LayoutServer(
        vdv,
        free_port(),
        sample_time_s=DT,
        raw_units=raw,
        setpoint_types={"q_k": ua.VariantType.Float},
        extra_namespaces=("urn:a", "urn:b"),
    )
    await srv.start()
    try:
        base = "van_de_vusse"
        tags = TagMap.from_mapping(
            {
                "namespace": NS,
                "measurements": {
                    "c_a": f"s={base}.Measurements.c_a",
                    "t_r": {
                        "node": f"s={base}.Measurements.t_r",
                        "unit": "degC",
                        "valid": [0, 300],
                    },
                    "t_k": {"node": f"s={base}.Measurements.t_k", "unit": "degC"},
                },
                "actuators": {
                    "f_dil": {"node": f"s={base}.Actuators.f_dil", "unit": "1/h"},
                    "q_k": {"node": f"s={base}.Actuators.q_k", "unit": "kJ/h"},
                },
                "setpoints": {
                    "f_dil": {"node": f"s={base}.Setpoints.f_dil", "unit": "1/h"},
                    "q_k": {"node": f"s={base}.Setpoints.q_k", "unit": "kJ/h"},
                },
                "status": {
                    "mode": f"s={base}.Status.mode",
                    "mode_request": f"s={base}.Status.mode_request",
                    "heartbeat": f"s={base}.Status.heartbeat",
                },
            },
            vdv,
        )
        io = OpcUaPlantIO(
            vdv, opcua_settings(srv.endpoint, lockstep=False, readback_rel_tol=1e-6), tags
        )
        async with io:
            m = await io.read()
            assert m.names == ("c_a", "t_r", "t_k")
            y = vdv.outputs()
            np.testing.assert_allclose(m.values, [y[0], y[2], y[3]], rtol=1e-12)
            np.testing.assert_allclose(
                (await io.read_actuators()).values, vdv.nominal.u, rtol=1e-12
            )
            assert await io.request_mode(True) is PlantMode.REMOTE
            u = np.array([20.0 / H, -2500e3 / H])
            res = await io.write(ControlMove(0.0, u, vdv.u.names))
            assert res.status is WriteStatus.VERIFIED, res.message
            assert srv.writes == [("f_dil", pytest.approx(20.0)), ("q_k", pytest.approx(-2500.0))]
            np.testing.assert_allclose(res.readback, u, rtol=1e-7)  # q_k went through float32
            with pytest.raises(LockstepNotSupported):
                await io.advance(1)
    finally:
        await srv.stop()


async def test_stale_values_are_uncertain(server: LayoutServer, vdv: PlantModel) -> None:
    server.age_fault["c_b"] = 60.0
    await server.publish()
    io = OpcUaPlantIO(vdv, opcua_settings(server.endpoint, stale_after_s=5.0))
    async with io:
        m = await io.read()
        i = m.names.index("c_b")
        assert m.quality[i] is Quality.UNCERTAIN
        assert io.issues["c_b"] == (Issue.STALE,)
        assert m.time_s - m.source_time_s[i] == pytest.approx(60.0, abs=0.5)
        assert sum(q is Quality.GOOD for q in m.quality) == len(m.names) - 1


async def test_bad_status_reason_is_reported(server: LayoutServer, vdv: PlantModel) -> None:
    server.status_fault["t_k"] = ua.StatusCodes.UncertainLastUsableValue
    server.status_fault["c_a"] = ua.StatusCodes.BadSensorFailure
    await server.publish()
    async with OpcUaPlantIO(vdv, opcua_settings(server.endpoint)) as io:
        m = await io.read()
        assert m.quality[m.names.index("t_k")] is Quality.UNCERTAIN
        assert m.quality[m.names.index("c_a")] is Quality.BAD
        assert Issue.STATUS_BAD in io.issues["c_a"]
        assert (
            io.status_codes["c_a"] == ua.StatusCodes.BadSensorFailure
            and io.status_codes["c_b"] == 0
        )
        assert not m.good("t_k") and m.good("c_b")


async def test_unknown_namespace_is_refused_at_connect(
    server: LayoutServer, vdv: PlantModel
) -> None:
    io = OpcUaPlantIO(
        vdv, opcua_settings(server.endpoint), TagMap.for_hil(vdv, namespace_uri="urn:nope")
    )
    with pytest.raises(PlantIOError, match="urn:nope"):
        await io.connect()
    assert not io.connected


async def test_unreachable_endpoint_raises_plantioerror(vdv: PlantModel) -> None:
    io = OpcUaPlantIO(vdv, opcua_settings(f"opc.tcp://127.0.0.1:{free_port()}"))
    with pytest.raises(PlantIOError, match="cannot reach|no answer"):
        await io.connect()


async def test_subscription_reads_follow_the_plant(server: LayoutServer, vdv: PlantModel) -> None:
    io = OpcUaPlantIO(vdv, opcua_settings(server.endpoint, read_method=ReadMethod.SUBSCRIPTION))
    async with io:
        await io.request_mode(True)
        await io.write(ControlMove(0.0, np.array([25.0 / H, -3000e3 / H]), vdv.u.names))
        await io.advance(2)
        for _ in range(100):
            m = await io.read()
            if m.time_s == pytest.approx(2 * DT):
                break
            await asyncio.sleep(0.02)
        assert m.time_s == pytest.approx(2 * DT)
        expected = vdv.simulate(None, np.tile([25.0 / H, -3000e3 / H], (2, 1)), DT).y[-1]
        np.testing.assert_allclose(m.values[: len(vdv.y)], expected, rtol=1e-8)
        assert all(q is Quality.GOOD for q in m.quality)


async def test_reconnect_after_server_restart_is_bumpless(vdv: PlantModel) -> None:
    """Loss seen within 2 s; no writes while down; on reconnect the rate-limit reference is what
    the plant holds (here changed by an operator during the outage), not the last write."""
    srv = LayoutServer(vdv, free_port(), sample_time_s=DT)
    await srv.start()
    seen: list[Measurement] = []

    async def on_reconnect(act: Measurement) -> None:
        seen.append(act)

    limits = MoveLimits.from_model(vdv, max_rate={"f_dil": 1.0 / H / DT})  # 1 (1/h) per sample
    io = OpcUaPlantIO(vdv, opcua_settings(srv.endpoint), limits=limits, on_reconnect=on_reconnect)
    try:
        await io.connect()
        await io.request_mode(True)
        res = await io.write(ControlMove(0.0, np.array([15.0 / H, -1113.5e3 / H]), vdv.u.names))
        assert res.ok and res.written[0] == pytest.approx(15.0 / H)
        before = await io.read()
        seen.clear()
        n_writes = len(srv.writes)
        await srv.stop()
        assert await io.wait_disconnected(2.0), "loss not detected within 2 s"
        assert not io.connected
        res = await io.write(ControlMove(0.0, np.array([16.0 / H, -1113.5e3 / H]), vdv.u.names))
        assert res.status is WriteStatus.NOT_CONNECTED and np.isnan(res.written).all()
        m = await io.read()
        assert all(q is Quality.BAD for q in m.quality)
        np.testing.assert_array_equal(m.values, before.values)  # held last values, flagged BAD
        assert io.issues["c_a"] == (Issue.NOT_CONNECTED,)
        await srv.set_actuator("f_dil", 10.0 / H)  # operator moved the MV while we were away
        await srv.start()
        assert await io.wait_connected(5.0)
        assert io.link_state().reconnects == 1
        assert len(seen) == 1 and seen[0].values[0] == pytest.approx(10.0 / H)
        assert io.reference[0] == pytest.approx(10.0 / H)
        assert len(srv.writes) == n_writes  # nothing was replayed
        assert await io.mode() is PlantMode.REMOTE
        res = await io.write(ControlMove(0.0, np.array([16.0 / H, -1113.5e3 / H]), vdv.u.names))
        assert res.rate_limited[0] and res.written[0] == pytest.approx(11.0 / H)  # from 10, not 15
        assert res.status is WriteStatus.VERIFIED
    finally:
        await io.close()
        await srv.stop()


async def test_one_request_reads_measurements_mode_status_and_actuators(
    server: LayoutServer, vdv: PlantModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A polled read fetches the plant's mode, status text and actuator feedback with the
    measurements: the calls the loop makes right after it take those values (each once)
    without a request of their own; after a write they are read afresh. Counted on the
    server: every Read service request it answers."""
    from asyncua.server.internal_session import InternalSession

    reads: list[int] = []
    original = InternalSession.read
    assert server.server is not None
    own = server.server.iserver.isession

    async def counting_read(self: InternalSession, params: ua.ReadParameters) -> object:
        if self is not own:  # not the test server's own reads
            reads.append(len(params.NodesToRead))
        return await original(self, params)

    async with OpcUaPlantIO(vdv, opcua_settings(server.endpoint)) as io:
        assert io.actuator_feedback, "the layout server has actuator tags"
        monkeypatch.setattr(InternalSession, "read", counting_read)
        before = io.round_trips
        m = await io.read()
        mode, text, act = await io.mode(), await io.status_text(), await io.read_actuators()
        assert len(reads) == 1 and reads[0] > len(m.names)  # one request served all four
        assert mode is PlantMode.LOCAL and text == ""
        np.testing.assert_allclose(act.values, vdv.nominal.u, rtol=1e-6)
        assert all(q is Quality.GOOD for q in act.quality)
        # taken once: a second call reads again (and sees what the plant says now)
        server.mode = 1
        await server.publish()
        assert await io.mode() is PlantMode.REMOTE
        assert len(reads) == 2
        # a write in between: the mode after it is read afresh, not the batch's
        await io.read()
        assert await io.request_mode(False) is PlantMode.LOCAL
        assert len(reads) == 4  # the batched read, then the mode after the request
        assert io.round_trips - before == len(reads) + 1  # and the one write
