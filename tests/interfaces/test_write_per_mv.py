"""Write results per MV (issue 13, finding 2) against the rtompc HIL and in-process.

A PLC answers every node of a write batch on its own. When the HIL refuses one MV
(BadOutOfRange) and accepts the other, the result must say so MV by MV: the accepted
MV is written and held, the refused one keeps the plant's value, with the status code
and the node id in the message. On aebdd36 the whole batch was only "rejected" and there
was no per-MV status nor a value the plant holds.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from conftest import DT, free_port, opcua_settings

from interfaces import plantio
from interfaces.inprocess import InProcessPlantIO
from interfaces.limits import MoveLimits
from interfaces.opcua_client import OpcUaPlantIO
from interfaces.plantio import PlantMode, WriteStatus
from plant_models.model import PlantModel
from plant_models.samples import ControlMove

hil_server = pytest.importorskip("hil.server")
from hil.clock import ClockConfig, ClockMode  # noqa: E402
from hil.plc import WatchdogConfig  # noqa: E402
from hil.simulator import PlantSimulator, SimulatorConfig  # noqa: E402

H = 3600.0
# looked up lazily, so each test fails on its own assertion where these did not exist (aebdd36)
MV = getattr(plantio, "MvWriteStatus", None)
A, R, C, OOS, NW = (
    getattr(MV, k, k) for k in ("ACCEPTED", "REJECTED", "CLAMPED", "OUT_OF_SERVICE", "NOT_WRITTEN")
)


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


def wide_limits(model: PlantModel) -> MoveLimits:
    """Client limits wider than the plant's range for q_k (up to +1000 kW of heating)."""
    upper = model.u.upper.copy()
    upper[model.u.index("q_k")] = 1000e3 / H
    return MoveLimits(model.u.names, model.u.lower, upper, np.full(len(model.u), np.inf))


@pytest.mark.opcua
async def test_partly_rejected_batch_against_hil(
    hil: hil_server.HilServer, vdv: PlantModel
) -> None:
    io = OpcUaPlantIO(vdv, opcua_settings(hil.endpoint), limits=wide_limits(vdv))
    async with io:
        assert await io.request_mode(True) is PlantMode.REMOTE
        before = (await io.read_actuators()).values
        for k in range(3):  # several cycles: the accepted MV moves on while q_k is refused
            f_dil = (22.0 + 2 * k) / H
            res = await io.write(ControlMove(0.0, np.array([f_dil, 500e3 / H]), vdv.u.names))
            assert res.status is WriteStatus.REJECTED
            assert res.mv_status == (A, R), res.mv_status
            assert res.codes == ("Good", "BadOutOfRange")
            assert "q_k: BadOutOfRange (nsu=urn:rtompc:hil;s=van_de_vusse.Setpoints.q_k)" in (
                res.message
            )
            # accepted: written and held; refused: not written, the plant keeps its value
            assert res.written[0] == pytest.approx(f_dil, rel=1e-12)
            assert np.isnan(res.written[1])
            np.testing.assert_allclose(res.held, [f_dil, before[1]], rtol=1e-12)
            np.testing.assert_allclose(res.readback, res.held, rtol=1e-12)
            await io.advance(1)
            act = (await io.read_actuators()).values
            np.testing.assert_allclose(act, res.held, rtol=1e-9)
            # the next rate-limit reference is what the plant holds
            np.testing.assert_allclose(io.reference, res.held, rtol=1e-12)


@pytest.mark.opcua
async def test_out_of_service_mv_is_not_written_over_opcua(
    hil: hil_server.HilServer, vdv: PlantModel
) -> None:
    async with OpcUaPlantIO(vdv, opcua_settings(hil.endpoint)) as io:
        await io.request_mode(True)
        held = (await io.read_actuators()).values
        res = await io.write(
            ControlMove(0.0, np.array([25.0 / H, -3000e3 / H]), vdv.u.names),
            in_service=(True, False),
        )
        assert res.status is WriteStatus.VERIFIED and res.mv_status == (A, OOS)
        assert res.codes == ("Good", "")
        np.testing.assert_allclose(res.held, [25.0 / H, held[1]], rtol=1e-12)
        # a move clamped by the client's limits is CLAMPED, and the plant holds the clamp
        res = await io.write(ControlMove(0.0, np.array([1.0, -3000e3 / H]), vdv.u.names))
        assert res.mv_status == (C, A) and res.status is WriteStatus.VERIFIED
        assert res.held[0] == pytest.approx(vdv.u.upper[0])


async def test_in_process_write_results_per_mv(vdv: PlantModel) -> None:
    async with InProcessPlantIO(vdv, DT) as io:
        u0 = (await io.read_actuators()).values
        res = await io.write(ControlMove(0.0, np.array([22.0 / H, -3000e3 / H]), vdv.u.names))
        assert res.status is WriteStatus.REJECTED and res.mv_status == (R, R)
        assert res.codes == ("BadInvalidState", "BadInvalidState")
        assert "plant is in LOCAL mode" in res.message
        np.testing.assert_allclose(res.held, u0)
        await io.request_mode(True)
        res = await io.write(
            ControlMove(0.0, np.array([22.0 / H, np.nan]), vdv.u.names), in_service=(True, True)
        )
        # a NaN request holds the plant's value (written again), never NaN
        assert res.status is WriteStatus.VERIFIED and res.mv_status == (A, A)
        np.testing.assert_allclose(res.held, [22.0 / H, u0[1]])
        res = await io.write(
            ControlMove(0.0, np.array([24.0 / H, -100.0]), vdv.u.names), in_service=(False, True)
        )
        assert res.mv_status == (OOS, A)
        np.testing.assert_allclose(res.held, [22.0 / H, -100.0])
        np.testing.assert_allclose((await io.read_actuators()).values, res.held)
        with pytest.raises(ValueError, match="in_service has 1 entries"):
            await io.write(ControlMove(0.0, u0, vdv.u.names), in_service=(True,))
    assert NW.value == "not_written"  # type: ignore[attr-defined]
