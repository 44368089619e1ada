"""The scenario plant: faults, parameter drift and link loss behave as specified."""

from __future__ import annotations

import numpy as np
import pytest

from interfaces.plantio import WriteStatus
from plant_models.library import load
from plant_models.samples import ControlMove, Mode, Quality
from rtompc.scenarios.bench import InProcessBench
from rtompc.scenarios.events import EventScheduler
from rtompc.scenarios.plant_io import ScenarioPlantIO
from rtompc.scenarios.runner import load_scenario
from rtompc.scenarios.spec import Event, EventKind, SensorFault

DT = 20.0


@pytest.fixture
def plant():
    return load("van_de_vusse")


async def _io(plant) -> ScenarioPlantIO:
    io = ScenarioPlantIO(plant, DT)
    await io.connect()
    await io.request_mode(remote=True)
    return io


async def test_sensor_faults_corrupt_only_the_reading(plant) -> None:
    io = await _io(plant)
    true_tr = io.true_outputs()[plant.y.index("t_r")]
    io.add_sensor_fault("t_r", SensorFault.BIAS, 2.0, duration_s=2 * DT)
    io.add_sensor_fault("c_b", SensorFault.BAD, 0.0, duration_s=0.0)
    m = await io.read()
    assert m.value("t_r") == pytest.approx(true_tr + 2.0)
    assert m.quality[m.names.index("c_b")] is Quality.BAD
    assert io.true_outputs()[plant.y.index("t_r")] == pytest.approx(true_tr)
    await io.advance(2)
    m = await io.read()
    assert m.value("t_r") == pytest.approx(io.true_outputs()[plant.y.index("t_r")]), "bias expired"
    assert m.quality[m.names.index("c_b")] is Quality.BAD, "a fault with duration 0 stays"


async def test_freeze_and_drift(plant) -> None:
    io = await _io(plant)
    await io.write(ControlMove(0.0, plant.nominal.u * np.array([1.3, 1.0])))
    first = (await io.read()).value("c_b")
    io.add_sensor_fault("c_b", SensorFault.FREEZE, 0.0, duration_s=0.0)
    io.add_sensor_fault("t_r", SensorFault.DRIFT, 0.01, duration_s=0.0)
    await io.advance(5)
    m = await io.read()
    assert m.value("c_b") == first
    assert io.true_outputs()[plant.y.index("c_b")] != pytest.approx(first, abs=1e-3)
    assert m.value("t_r") - io.true_outputs()[plant.y.index("t_r")] == pytest.approx(0.01 * 5 * DT)


async def test_stuck_actuator_holds_and_only_the_feedback_shows_it(plant) -> None:
    """As on a PLC: the setpoint reads back what was written; the actuator feedback and the
    plant keep the stuck position (issue 14.1: a read-back proves nothing about the valve)."""
    io = await _io(plant)
    u0 = io.u_actual
    io.stick_actuator("f_dil", duration_s=DT)
    wr = await io.write(ControlMove(0.0, u0 * np.array([1.1, 1.1])))
    assert wr.status is WriteStatus.VERIFIED
    assert wr.readback[0] == pytest.approx(u0[0] * 1.1)
    assert io.u_actual[0] == u0[0] and io.u_actual[1] == pytest.approx(u0[1] * 1.1)
    act = await io.read_actuators()
    assert act.value("f_dil") == u0[0] and act.value("q_k") == pytest.approx(u0[1] * 1.1)
    assert io.actuator_feedback == plant.u.names
    await io.advance(1)
    wr = await io.write(ControlMove(0.0, u0 * np.array([1.1, 1.1])))
    assert wr.status is WriteStatus.VERIFIED and io.u_actual[0] == pytest.approx(u0[0] * 1.1)


async def test_link_loss_holds_values_and_plant_keeps_running(plant) -> None:
    io = await _io(plant)
    await io.write(ControlMove(0.0, plant.nominal.u * np.array([1.3, 1.0])))
    before = await io.read()
    io.lose_link(3 * DT)
    assert not io.connected
    x0 = io.state
    await io.advance(1)
    assert not np.allclose(io.state, x0), "the plant runs on during the outage"
    m = await io.read()
    assert all(q is Quality.BAD for q in m.quality)
    np.testing.assert_array_equal(m.values, before.values)
    wr = await io.write(ControlMove(0.0, plant.nominal.u))
    assert wr.status is WriteStatus.NOT_CONNECTED
    await io.advance(2)
    assert io.connected
    assert (await io.read()).quality[0] is Quality.GOOD


async def test_scheduler_ramps_parameters_and_disturbances(plant, write_scenario, tiny) -> None:
    bench = InProcessBench(load_scenario(write_scenario("s.toml", tiny())), plant)
    await bench.start()
    io = bench.io
    events = (
        Event(0, 0.0, EventKind.PARAMETER_DRIFT, "beta", 0.8, duration_s=100.0),
        Event(1, 20.0, EventKind.DISTURBANCE_STEP, "t_in", 370.0),
        Event(2, 40.0, EventKind.SETPOINT, "c_b", 1000.0),
        Event(3, 40.0, EventKind.PRICE, "c_b", 2.0),
        Event(4, 60.0, EventKind.MODE, mode=Mode.SHADOW),
    )
    sched = EventScheduler(
        events,
        plant,
        setpoints_y={"c_b": 1090.0},
        setpoints_u={},
        prices={"c_b": 1.0},
        mode=Mode.ON,
    )
    seen = {}
    for t in np.arange(0.0, 140.0, 20.0):
        sched.apply(float(t), bench)
        seen[float(t)] = (io.p_actual[plant.p.index("beta")], io.d_actual[0], dict(sched.changed_y))
    assert seen[0.0][0] == pytest.approx(1.0)
    assert seen[40.0][0] == pytest.approx(1.0 - 0.2 * 0.4)
    assert seen[120.0][0] == pytest.approx(0.8)
    assert seen[0.0][1] == pytest.approx(plant.nominal.d[0])
    assert plant.nominal.d[0] == pytest.approx(104.9 + 273.15), "the model is not changed"
    assert seen[20.0][1] == 370.0, seen
    assert seen[40.0][2] == {"c_b": 1000.0} and seen[60.0][2] == {}
    assert sched.prices == {"c_b": 2.0} and sched.mode is Mode.SHADOW
    assert len(sched.log) == 5


async def test_measurement_noise_is_seeded_and_leaves_the_truth_alone(plant) -> None:
    async def readings(seed: int) -> np.ndarray:
        io = ScenarioPlantIO(plant, DT, noise_std={"t_r": 0.5}, seed=seed)
        await io.connect()
        return np.array([(await io.read()).value("t_r") - io.true_outputs()[2] for _ in range(400)])

    a, b, c = await readings(1), await readings(1), await readings(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert abs(np.mean(a)) < 4 * 0.5 / np.sqrt(400)
    assert np.std(a) == pytest.approx(0.5, rel=0.15)
