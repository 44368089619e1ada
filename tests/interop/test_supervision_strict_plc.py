"""Actuator supervision against an independent PLC stand-in (issue 14.1).

The node-opcua strict PLC (node/strict_plc.js) reads back every setpoint as written and
reports the actuator positions separately (DB3, first-order lags: valve 2 s, pump 3 s,
heater 5 s), and can stick an actuator. Over the engine's own OPC UA client and tag map,
with those lags configured, a healthy run of setpoint steps on every MV raises no flag; a
stuck heater is declared stuck within the detection window, while the others stay OK.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest
from strict_plc import TAGS, StrictPlc, strict_plc_model

from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import OpcUaSettings
from interfaces.plantio import PlantMode, WriteStatus
from interfaces.tagmap import TagMap
from plant_models.samples import ControlMove
from rtompc.supervision import ActuatorCheck, ActuatorSupervision, ActuatorSupervisor, MvHealth

pytestmark = [pytest.mark.interop, pytest.mark.opcua, pytest.mark.timeout(180)]

SPEED = 5.0
DT = 2.0  # plant seconds per sample (0.4 s wall)


async def test_lagging_feedback_is_ok_and_a_stuck_heater_is_declared_stuck(
    strict_plc_factory: Callable[..., StrictPlc],
) -> None:
    plc = strict_plc_factory(speed=SPEED, watchdog_s=1e6)
    model = strict_plc_model()
    io = OpcUaPlantIO(
        model,
        OpcUaSettings(plc.endpoint, sample_time_s=DT),
        TagMap.from_mapping(TAGS, model, where="transport.tags"),
    )
    checks = ActuatorSupervision(
        mvs={
            "valve": ActuatorCheck(time_constant_s=2.0, deadband=0.03),
            "pump": ActuatorCheck(time_constant_s=3.0, deadband=0.5),
            "heater": ActuatorCheck(time_constant_s=5.0, deadband=3e3),
        }
    )
    async with io:
        assert io.actuator_feedback == model.u.names  # DB3 positions, not the setpoints
        mode = await io.request_mode(remote=True)
        for _ in range(50):
            if mode is PlantMode.REMOTE:
                break
            await asyncio.sleep(0.1)
            mode = await io.mode()
        assert mode is PlantMode.REMOTE
        sup = ActuatorSupervisor(model, DT, checks, io.actuator_feedback)
        held = np.asarray((await io.read_actuators()).values, dtype=float)
        plan = [
            (0.5, 1000 / 60, 40e3),
            (0.6, 1000 / 60, 40e3),
            (0.6, 1100 / 60, 50e3),
            (0.45, 900 / 60, 55e3),
            (0.5, 1000 / 60, 45e3),
        ]
        health: list[tuple[MvHealth, ...]] = []
        judged = False

        async def sample(k: int, target: tuple[float, float, float]) -> None:
            nonlocal held, judged
            meas = await io.read()
            rep = sup.observe(meas.time_s, held, await io.read_actuators(), judged)
            health.append(rep.health)
            wr = await io.write(ControlMove(meas.time_s, np.asarray(target), model.u.names))
            assert wr.status is WriteStatus.VERIFIED, wr.message  # the read-back proves nothing
            held, judged = np.asarray(wr.written, dtype=float), True
            await asyncio.sleep(DT / SPEED)

        for k in range(25):  # healthy: steps on every MV, each held 5 samples
            await sample(k, plan[k // 5])
        assert all(h == (MvHealth.OK,) * 3 for h in health), health
        plc.stick("heater")
        health.clear()
        for k in range(8):
            await sample(k, (0.5, 1000 / 60, 70e3))
        stuck_at = next(i for i, h in enumerate(health) if h[2] is MvHealth.STUCK)
        assert stuck_at <= 4  # 3 samples of disagreement after the first ignored move (+ jitter)
        assert all(h[:2] == (MvHealth.OK, MvHealth.OK) for h in health)
        fb = await io.read_actuators()
        assert 45e3 <= fb.value("heater") <= 55e3  # where it stuck, on its way from 55 to 45 kW
        assert sup.health("heater") is MvHealth.STUCK
