"""The strict PLC stand-in behaves like an S7-1500 / Kepware towards a plain asyncua client.

These tests pin the stand-in's own behaviour (node/strict_plc.js), so the field tests
that run the engine against it test the engine, not a lenient peer: timestamped writes
refused, declared types and EURange enforced node by node within one batch, access
levels without StatusWrite/TimestampWrite, read-only nodes, an edge-triggered REMOTE
handshake that can be refused, a heartbeat watchdog that trips to LOCAL and says so, a
PLC restart that resets the plant clock, and actuator feedback that lags (or sticks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from asyncua import Client, Node, ua
from strict_plc import NAMESPACE, StrictPlc

pytestmark = [pytest.mark.interop, pytest.mark.opcua, pytest.mark.timeout(120)]


def _dv(value: object, vtype: ua.VariantType) -> ua.DataValue:
    return ua.DataValue(ua.Variant(value, vtype), StatusCode=None)


class Plc:
    """A raw asyncua view of the stand-in's nodes."""

    def __init__(self, client: Client, ns: int) -> None:
        self.client, self.ns = client, ns

    def node(self, ident: str) -> Node:
        return self.client.get_node(f"ns={self.ns};s=PLC.{ident}")

    async def write(self, pairs: list[tuple[str, object, ua.VariantType]]) -> list[str]:
        nodes = [self.node(i).nodeid for i, _, _ in pairs]
        dvs = [_dv(v, t) for _, v, t in pairs]
        codes = await self.client.uaclient.write_attributes(nodes, dvs, ua.AttributeIds.Value)
        return [c.name for c in codes]

    async def read(self, ident: str) -> object:
        return await self.node(ident).read_value()

    async def wait_for(self, ident: str, value: object, timeout_s: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while await self.read(ident) != value:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"{ident} never became {value!r} (is {await self.read(ident)!r})"
                )
            await asyncio.sleep(0.02)

    async def remote(self) -> None:
        assert await self.write([("DB4.MODE_REQ", 1, ua.VariantType.Int32)]) == ["Good"]
        await self.wait_for("DB4.MODE", 1)


async def _connect(plc: StrictPlc) -> tuple[Client, Plc]:
    client = Client(plc.endpoint, timeout=5)
    await client.connect()
    return client, Plc(client, await client.get_namespace_index(NAMESPACE))


async def test_writes_are_checked_node_by_node_like_an_s7(strict_plc: StrictPlc) -> None:
    client, plc = await _connect(strict_plc)
    try:
        await plc.remote()
        # a write carrying a SourceTimestamp (what asyncua's write_value sends) is refused
        with pytest.raises(ua.UaStatusCodeError) as err:
            await plc.node("DB2.JH100_SP").write_value(ua.Variant(50.0, ua.VariantType.Double))
        assert err.value.code == ua.StatusCodes.BadWriteNotSupported
        # one batch, four nodes, four answers: type, range, read-only and a good one
        codes = await plc.write(
            [
                ("DB2.XV100_SP", 40.0, ua.VariantType.Double),  # declared Float
                ("DB2.JH100_SP", 95.0, ua.VariantType.Double),  # EURange 0..80 kW
                ("DB3.XV100_POS", 40.0, ua.VariantType.Float),  # feedback, read-only
                ("DB2.P100_SP", 1187, ua.VariantType.Int16),
            ]
        )
        assert codes == ["BadTypeMismatch", "BadOutOfRange", "BadNotWritable", "Good"]
        assert await plc.read("DB2.P100_SP") == 1187
        assert await plc.read("DB2.JH100_SP") == pytest.approx(40.0)
        assert await plc.write([("DB2.XV100_SP_ENG", 30.0, ua.VariantType.Float)]) == [
            "BadUserAccessDenied"
        ]
        # access levels: read+write for setpoints, never StatusWrite/TimestampWrite
        sp, ro, eng = plc.node("DB2.P100_SP"), plc.node("DB3.P100_PV"), plc.node("DB2.XV100_SP_ENG")
        level = ua.AccessLevel
        assert set(await sp.get_access_level()) == {level.CurrentRead, level.CurrentWrite}
        assert set(await ro.get_access_level()) == {level.CurrentRead}
        assert set(await eng.get_access_level()) == {level.CurrentRead, level.CurrentWrite}
        assert set(await eng.get_user_access_level()) == {level.CurrentRead}
        assert await sp.read_data_type_as_variant_type() == ua.VariantType.Int16
        rng = await (await sp.get_child("0:EURange")).read_value()
        assert (rng.Low, rng.High) == (0.0, 1500.0)
        state = strict_plc.state()
        assert state["refused_ts"] == 1 and state["refused"] >= 3 and state["sp"]["pump"] == 1187
    finally:
        await client.disconnect()


async def test_remote_handshake_refusal_watchdog_and_restart(
    strict_plc_factory: Callable[..., StrictPlc],
) -> None:
    plc_proc = strict_plc_factory(speed=10.0, watchdog_s=5.0, refuse_remote="silent")
    client, plc = await _connect(plc_proc)
    try:
        # refused silently: the request is accepted, the PLC stays LOCAL and says why
        assert await plc.write([("DB4.MODE_REQ", 1, ua.VariantType.Int32)]) == ["Good"]
        await plc.wait_for("DB4.STATUS", "LOCAL: REMOTE refused: operator key switch in LOCAL")
        assert await plc.read("DB4.MODE") == 0
        assert await plc.write([("DB2.P100_SP", 900, ua.VariantType.Int16)]) == ["BadInvalidState"]
        plc_proc.refuse_remote("status", reason="maintenance lock")
        assert await plc.write([("DB4.MODE_REQ", 1, ua.VariantType.Int32)]) == ["BadInvalidState"]
        assert await plc.read("DB4.STATUS") == "LOCAL: REMOTE refused: maintenance lock"
        # granted once allowed; without a heartbeat the watchdog trips to LOCAL (5 plant s)
        plc_proc.refuse_remote(False)
        await plc.remote()
        assert (await plc.read("DB4.STATUS")).startswith("REMOTE: granted")
        assert await plc.write([("DB2.P100_SP", 1100, ua.VariantType.Int16)]) == ["Good"]
        await plc.wait_for("DB4.MODE", 0, timeout_s=5.0)
        text = await plc.read("DB4.STATUS")
        assert text.startswith("LOCAL: heartbeat watchdog tripped"), text
        assert await plc.read("DB4.WD_TRIPPED") is True
        # the PLC holds what the actuators had at the trip (bumpless), not the last setpoint
        state = plc_proc.state()
        assert (
            state["sp"]["pump"] == round(state["pos"]["pump"])
            or abs(state["sp"]["pump"] - state["pos"]["pump"]) < 1.0
        )
        # a heartbeat keeps REMOTE alive past the timeout
        await plc.remote()
        for k in range(15):
            await plc.write([("DB4.HEARTBEAT", k + 1, ua.VariantType.UInt32)])
            await asyncio.sleep(0.1)
        assert await plc.read("DB4.MODE") == 1 and await plc.read("DB4.WD_TRIPPED") is False
        # PLC program restart: defaults, LOCAL, clock back to ~0
        before = await plc.read("DB4.T_PLANT")
        plc_proc.reset()
        after = await plc.read("DB4.T_PLANT")
        assert before > 2.0 and after < 1.0
        assert await plc.read("DB4.MODE") == 0 and await plc.read("DB2.P100_SP") == 1000
    finally:
        await client.disconnect()


async def test_actuator_feedback_lags_and_can_stick(
    strict_plc_factory: Callable[..., StrictPlc],
) -> None:
    plc_proc = strict_plc_factory(speed=10.0, watchdog_s=1e6)
    client, plc = await _connect(plc_proc)
    try:
        await plc.remote()
        plc_proc.stick("heater")
        assert await plc.write(
            [
                ("DB2.JH100_SP", 70.0, ua.VariantType.Double),
                ("DB2.XV100_SP", 60.0, ua.VariantType.Float),
            ]
        ) == ["Good", "Good"]
        await asyncio.sleep(2.0)  # 20 plant s: 10 valve time constants
        assert await plc.read("DB2.JH100_SP") == pytest.approx(70.0)  # the setpoint reads back fine
        assert await plc.read("DB3.JH100_PV") == pytest.approx(40.0)  # the heater did not move
        assert await plc.read("DB3.XV100_POS") == pytest.approx(60.0, abs=0.01)
        plc_proc.stick("heater", on=False)
        await asyncio.sleep(3.0)  # 30 plant s: 6 heater time constants
        assert await plc.read("DB3.JH100_PV") == pytest.approx(70.0, abs=0.3)
    finally:
        await client.disconnect()


async def test_power_cycle_drops_sessions_and_resets_the_clock(strict_plc: StrictPlc) -> None:
    client, plc = await _connect(strict_plc)
    await asyncio.sleep(1.0)
    t_before = await plc.read("DB4.T_PLANT")
    await client.disconnect()
    strict_plc.restart()
    client, plc = await _connect(strict_plc)
    try:
        assert strict_plc.starts == 2
        assert t_before >= 0.5 and await plc.read("DB4.T_PLANT") < t_before
        assert await plc.read("DB4.STATUS") == "LOCAL: start at defaults"
    finally:
        await client.disconnect()


async def test_engine_model_and_tag_map_fit_the_stand_in(strict_plc: StrictPlc) -> None:
    """The Python model of the process has the stand-in's steady state; the tag map connects."""
    from strict_plc import TAGS, strict_plc_model

    from interfaces.opcua_client import OpcUaPlantIO
    from interfaces.opcua_settings import OpcUaSettings
    from interfaces.tagmap import TagMap

    model = strict_plc_model()
    ss = model.steady_state(u=model.nominal.u, d=model.nominal.d, p=model.nominal.p)
    io = OpcUaPlantIO(
        model,
        OpcUaSettings(strict_plc.endpoint, sample_time_s=5.0),
        TagMap.from_mapping(TAGS, model, where="transport.tags"),
    )
    async with io:
        meas = await io.read()
        act = await io.read_actuators()
    state = strict_plc.state()
    assert meas.value("level") == pytest.approx(ss.x[0], abs=1e-3)
    assert meas.value("t_tank") == pytest.approx(ss.x[1], abs=0.01)
    assert meas.value("level") == pytest.approx(state["level_m"], abs=1e-3)
    assert act.values == pytest.approx([0.5, 1000.0 / 60, 40e3])
