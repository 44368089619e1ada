"""The OPC UA PlantIO against the real rtompc HIL server (hil.server) in lockstep on loopback:
handshake, verified writes, simulation agreement, sensor faults, dropped and hung connections."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from conftest import DT, free_port, opcua_settings

from interfaces.opcua_client import OpcUaPlantIO
from interfaces.plantio import PlantMode, WriteStatus
from interfaces.quality import Issue
from plant_models.errors import PlantIOError
from plant_models.model import PlantModel
from plant_models.samples import ControlMove, Quality

hil_server = pytest.importorskip("hil.server")
from hil.clock import ClockConfig, ClockMode  # noqa: E402
from hil.faults import Fault, FaultKind  # noqa: E402
from hil.plc import WatchdogConfig  # noqa: E402
from hil.simulator import PlantSimulator, SimulatorConfig  # noqa: E402

pytestmark = pytest.mark.opcua
H = 3600.0


@pytest_asyncio.fixture(loop_scope="session")
async def hil(vdv: PlantModel) -> AsyncIterator[hil_server.HilServer]:
    sim = PlantSimulator(
        vdv, SimulatorConfig(sample_time_s=DT, watchdog=WatchdogConfig(timeout_s=math.inf))
    )
    srv = hil_server.HilServer(
        sim,
        hil_server.ServerConfig(
            endpoint=f"opc.tcp://127.0.0.1:{free_port()}", clock=ClockConfig(ClockMode.LOCKSTEP)
        ),
    )
    await srv.start()
    yield srv
    await srv.stop()


async def test_lockstep_loop_against_hil(hil: hil_server.HilServer, vdv: PlantModel) -> None:
    async with OpcUaPlantIO(vdv, opcua_settings(hil.endpoint)) as io:
        m = await io.read()
        np.testing.assert_allclose(
            m.values, np.concatenate([vdv.outputs(), vdv.nominal.d]), rtol=1e-12
        )
        assert all(q is Quality.GOOD for q in m.quality)
        assert await io.mode() is PlantMode.LOCAL
        u1 = np.array([20.0 / H, -2000e3 / H])
        assert (await io.write(ControlMove(0.0, u1, vdv.u.names))).status is WriteStatus.REJECTED
        assert await io.request_mode(True) is PlantMode.REMOTE
        res = await io.write(ControlMove(0.0, u1, vdv.u.names))
        assert res.status is WriteStatus.VERIFIED, res.message
        assert await io.advance(3) == pytest.approx(3 * DT)
        m = await io.read()
        assert m.time_s == pytest.approx(3 * DT)
        expected = vdv.simulate(None, np.tile(u1, (3, 1)), DT).y[-1]
        np.testing.assert_allclose(m.values[: len(vdv.y)], expected, rtol=1e-8)
        np.testing.assert_allclose((await io.read_actuators()).values, u1, rtol=1e-12)
        res = await io.write(ControlMove(0.0, np.array([1.0, 1e9]), vdv.u.names))
        assert res.clamped == (True, True) and res.status is WriteStatus.VERIFIED
        await io.heartbeat(41)


async def test_sensor_fault_is_flagged(hil: hil_server.HilServer, vdv: PlantModel) -> None:
    hil.add_fault(Fault(FaultKind.BAD_STATUS, start_s=DT, signal="t_r"))
    async with OpcUaPlantIO(vdv, opcua_settings(hil.endpoint)) as io:
        assert (await io.read()).good("t_r")
        await io.advance(1)
        m = await io.read()
        assert m.quality[m.names.index("t_r")] is Quality.BAD
        assert Issue.STATUS_BAD in io.issues["t_r"]
        assert m.good("t_k")


@pytest.mark.parametrize(
    "kind", [FaultKind.DROP_CONNECTIONS, FaultKind.SERVER_PAUSE], ids=["dropped", "hung"]
)
async def test_link_loss_detected_within_2s_and_recovered(
    hil: hil_server.HilServer, vdv: PlantModel, kind: FaultKind
) -> None:
    duration = 2.5 if kind is FaultKind.SERVER_PAUSE else None
    hil.add_fault(Fault(kind, start_s=DT, duration_s=duration))
    io = OpcUaPlantIO(
        vdv, opcua_settings(hil.endpoint, watchdog_interval_s=0.5, request_timeout_s=1.0)
    )
    async with io:
        await io.request_mode(True)
        try:
            await io.advance(1)  # the fault fires on this step
        except Exception:  # noqa: BLE001 - the step answer itself may be lost
            pass
        assert await io.wait_disconnected(2.0), f"{kind.value}: loss not detected within 2 s"
        res = await io.write(ControlMove(0.0, vdv.nominal.u, vdv.u.names))
        assert res.status is WriteStatus.NOT_CONNECTED
        assert await io.wait_connected(10.0)
        assert io.link_state().reconnects >= 1
        m = await io.read()
        assert all(q is Quality.GOOD for q in m.quality)
        assert (await io.write(ControlMove(0.0, vdv.nominal.u, vdv.u.names))).ok


async def test_tag_unit_is_checked_against_engineering_units(
    hil: hil_server.HilServer, vdv: PlantModel
) -> None:
    """The HIL server publishes EngineeringUnits: a tag map claiming degC for a K node is refused."""
    from interfaces.tagmap import TagMap

    base = "van_de_vusse"
    table = {
        "namespace": "urn:rtompc:hil",
        "measurements": {"t_r": {"node": f"s={base}.Measurements.t_r", "unit": "degC"}},
        "setpoints": {"f_dil": f"s={base}.Setpoints.f_dil", "q_k": f"s={base}.Setpoints.q_k"},
    }
    io = OpcUaPlantIO(vdv, opcua_settings(hil.endpoint), TagMap.from_mapping(table, vdv))
    with pytest.raises(PlantIOError, match=r"measurements.t_r: the server says the node is in 'K'"):
        await io.connect()
    table["measurements"]["t_r"]["unit"] = "K"
    async with OpcUaPlantIO(
        vdv, opcua_settings(hil.endpoint), TagMap.from_mapping(table, vdv)
    ) as io:
        assert (await io.read()).good("t_r")
