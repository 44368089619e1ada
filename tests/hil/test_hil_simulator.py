"""PlantSimulator: the plant integrated behind actuators, base layer, disturbances, noise, faults."""

from __future__ import annotations

import numpy as np
import pytest

from hil.actuators import ActuatorSpec
from hil.disturbances import DisturbanceEvent, DisturbanceProfile, ProfileKind
from hil.faults import Fault, FaultKind
from hil.plc import ControlMode, WatchdogConfig, WriteOutcome
from hil.simulator import PlantSimulator, SimulatorConfig
from plant_models.errors import ConfigError
from plant_models.library.van_de_vusse import PUBLISHED_STEADY_STATE


def test_holds_published_steady_state(vdv) -> None:
    """Klatt & Engell (1998): at F/V = 14.19 1/h, Q_K = -1113.5 kJ/h, c_B = 1.09 mol/l, T = 114.2 °C."""
    sim = PlantSimulator(vdv, SimulatorConfig(sample_time_s=10.0))
    snap = sim.step(60)  # 10 minutes
    names = sim.measurement_names
    pub = PUBLISHED_STEADY_STATE["states"]
    assert snap.time_s == 600.0 and snap.step == 60
    assert snap.measurements[names.index("c_b")] == pytest.approx(pub["c_b"], rel=5e-3)
    assert snap.measurements[names.index("t_r")] == pytest.approx(pub["t_r"], abs=0.3)
    assert snap.measurements[names.index("t_in")] == pytest.approx(104.9 + 273.15)


def test_matches_open_loop_simulation_of_the_model(vdv) -> None:
    """With ideal actuators the simulator reproduces model.simulate for the same input sequence."""
    sim = PlantSimulator(vdv, SimulatorConfig(sample_time_s=5.0, initial_mode=ControlMode.REMOTE,
                                              watchdog=WatchdogConfig(timeout_s=1e9)))
    u = np.tile(vdv.nominal.u, (12, 1))
    u[4:, 0] = 20.0 / 3600
    u[8:, 1] = -2000.0e3 / 3600
    ys = []
    for k in range(12):
        for i, name in enumerate(vdv.u.names):
            assert sim.write_setpoint(name, u[k, i]) is WriteOutcome.ACCEPTED
        ys.append(sim.step(1).measurements[:4])
    ref = vdv.simulate(None, u, 5.0)
    np.testing.assert_allclose(np.array(ys), ref.x[1:], rtol=1e-9)


def test_noise_is_seeded_with_the_configured_std(vdv) -> None:
    cfg = SimulatorConfig(sample_time_s=1.0, seed=7, noise_std={"t_r": 0.2})
    a = np.array([PlantSimulator(vdv, cfg).step(1).measurements for _ in range(1)])
    sim1, sim2 = PlantSimulator(vdv, cfg), PlantSimulator(vdv, cfg)
    r1 = np.array([sim1.step(1).measurements for _ in range(400)])
    r2 = np.array([sim2.step(1).measurements for _ in range(400)])
    np.testing.assert_array_equal(r1, r2)
    clean = PlantSimulator(vdv, SimulatorConfig(sample_time_s=1.0))
    r0 = np.array([clean.step(1).measurements for _ in range(400)])
    err = (r1 - r0)[:, sim1.measurement_names.index("t_r")]
    assert 0.17 < err.std() < 0.23
    np.testing.assert_array_equal(np.delete(r1 - r0, 2, axis=1), 0.0)
    other = PlantSimulator(vdv, SimulatorConfig(sample_time_s=1.0, seed=8, noise_std={"t_r": 0.2}))
    assert other.step(1).measurements[2] != a[0, 2]


def test_disturbance_step_and_ramp_reach_the_plant(vdv) -> None:
    events = (
        DisturbanceEvent("t_in", 10.0, 380.0),
        DisturbanceEvent("beta", 20.0, 1.2, ProfileKind.RAMP, 20.0),
    )
    sim = PlantSimulator(vdv, SimulatorConfig(sample_time_s=5.0, disturbances=events))
    i = sim.measurement_names.index("t_in")
    seen = [sim.step(1).measurements[i] for _ in range(3)]
    assert seen == [pytest.approx(378.05), 380.0, 380.0]
    d, p = DisturbanceProfile(vdv, events).values(30.0)  # half-way up the ramp
    assert p[vdv.p.index("beta")] == pytest.approx(1.1) and d[0] == 380.0
    base = PlantSimulator(vdv, SimulatorConfig(sample_time_s=5.0))
    i_tr = sim.measurement_names.index("t_r")
    # a warmer feed (+1.95 K from t = 10 s; beta ramps too) warms the reactor vs the undisturbed plant
    assert sim.step(10).measurements[i_tr] > base.step(13).measurements[i_tr] + 0.1
    with pytest.raises(ConfigError, match="exactly one d or p signal"):
        PlantSimulator(vdv, SimulatorConfig(disturbances=(DisturbanceEvent("c_a", 1.0, 2.0),)))


def test_actuator_dynamics_and_stuck_fault_reach_the_plant(vdv) -> None:
    cfg = SimulatorConfig(
        sample_time_s=1.0, initial_mode=ControlMode.REMOTE, watchdog=WatchdogConfig(timeout_s=1e9),
        actuators={"q_k": ActuatorSpec(rate_limit_per_s=10.0)},
        faults=(Fault(FaultKind.ACTUATOR_STUCK, 3.0, "f_dil", duration_s=4.0),),
    )
    sim = PlantSimulator(vdv, cfg)
    q0, f0 = vdv.nominal.u[1], vdv.nominal.u[0]
    sim.write_setpoint("q_k", q0 - 100.0)
    sim.write_setpoint("f_dil", 0.005)
    acts = [sim.step(1).actuators for _ in range(3)]
    acts += [sim.step(1).actuators for _ in range(2)]
    np.testing.assert_allclose([a[1] for a in acts], q0 - 10.0 * np.arange(1, 6))
    # f_dil moves at once (no dynamics configured) ...
    assert acts[0][0] == 0.005
    # ... then sticks from t = 3 s to 7 s while its setpoint goes back to nominal
    sim2 = PlantSimulator(vdv, cfg)
    sim2.write_setpoint("f_dil", 0.005)
    sim2.step(3)
    sim2.write_setpoint("f_dil", f0)
    held = [sim2.step(1).actuators[0] for _ in range(4)]
    assert held == [0.005] * 4
    assert sim2.step(1).actuators[0] == pytest.approx(f0)
    sim = sim2
    assert [(e.time_s, e.started) for e in sim.fault_log] == [(3.0, True), (7.0, False)]


def test_watchdog_trip_is_reported_in_snapshots(vdv) -> None:
    sim = PlantSimulator(vdv, SimulatorConfig(sample_time_s=1.0, watchdog=WatchdogConfig(timeout_s=3.0)))
    sim.request_mode(ControlMode.REMOTE)
    sim.write_heartbeat(1)
    snaps = [sim.step(1) for _ in range(4)]
    assert [s.mode for s in snaps] == [ControlMode.REMOTE] * 3 + [ControlMode.LOCAL]
    assert snaps[-1].watchdog_tripped and "watchdog tripped at sim time 3.000 s" in snaps[-1].status_text


def test_bad_config_is_named(vdv) -> None:
    with pytest.raises(ConfigError, match="noise_std: unknown measurement.*bogus"):
        PlantSimulator(vdv, SimulatorConfig(noise_std={"bogus": 1.0}))
    with pytest.raises(ConfigError, match="sample_time_s"):
        SimulatorConfig(sample_time_s=0.0)
