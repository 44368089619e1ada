"""Identified model to closed loop: step-test, identify, load, control the nonlinear plant.

Plant: Johansson's quadruple tank at the minimum-phase point P- (IEEE TCST
8(3) (2000) 456-465), nonlinear, simulated with CVODES behind
:class:`InProcessPlantIO` (lockstep, 5 s sample time), with 0.1 mm white noise
added to the recorded levels.

1. Automated step test through the PlantIO seam: GBN +-0.3 V on both pumps
   (mean switching 60 s, 1200 samples = 100 min), guarded by CV limits
   (h1, h2 in [5, 19] cm, 5 mm margin; not reached at this amplitude).
2. n4sid (order by held-back fit) on 70 % of the record; the model's gains and
   transmission zeros are compared with the linearised first-principles model
   (gains within 3 %, continuous-time zeros within 3e-3 1/s of the
   paper's -0.060 / -0.018 1/s as computed from the model).
3. The model file is loaded through the plant registry as a discrete-time
   PlantModel and used by the NMPC, with an EKF carrying integrating output
   disturbances on h1 and h2 (offset-free), to control the *nonlinear* plant
   through setpoint changes on h1 (+10 mm, then -5 mm) and h2 (+5, then +10 mm
   from the operating point). The plant's valves have drifted since the test
   (gamma1 = gamma2 = 0.65 instead of 0.70 / 0.60), so the model is wrong in
   gain and steady state: the steady offset over the last 10 samples of each
   setpoint must still be below 0.2 mm (tolerance), with every MV within its
   bounds and no fallback; without the disturbance model the same loop keeps an
   offset above 2 mm (measured: about 8-10 mm), so the test would catch a loop
   that is not offset-free.
"""

from __future__ import annotations

import numpy as np
import pytest

from interfaces.inprocess import InProcessPlantIO
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import DisturbanceModel, EstimatorConfig, ExtendedKalmanFilter
from plant_models.identification import ExcitationSpec, SignalKind, design_experiment, n4sid
from plant_models.identification.validation import validate
from plant_models.library import load
from plant_models.model import TimeDomain
from plant_models.samples import OperatingTarget
from rtompc.runtime import ControlLoop, LoopSettings
from rtompc.step_test import CvLimit, StepTestSettings, StepTestStatus, run_step_test

DT = 5.0
N_TEST = 1200
OFFSET_TOL = 2e-4  # m: 0.2 mm steady offset
CYCLES_PER_SETPOINT = 150
DRIFTED = {"gamma1": 0.65, "gamma2": 0.65}  # valve ratios of the plant in closed loop


class Probe:
    """Collects the cycle records."""

    def __init__(self) -> None:
        self.records: list = []

    def append(self, record) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def tank():
    return load("quadruple_tank")


async def _step_test(tank):
    plan = design_experiment([ExcitationSpec(SignalKind.GBN, 0.3, 60.0)] * 2, N_TEST, DT,
                             seed=3, lead_in_samples=20)
    limits = tuple(CvLimit(n, lower=0.05, upper=0.19, margin=5e-3) for n in ("h1", "h2"))
    io = InProcessPlantIO(tank, DT)
    async with io:
        return await run_step_test(io, plan, StepTestSettings(cvs=("h1", "h2"), limits=limits))


async def test_step_test_identify_and_control_the_nonlinear_tank(tank, tmp_path) -> None:
    record = await _step_test(tank)
    assert record.status is StepTestStatus.COMPLETED and record.back_off_events == 0
    noisy = record.y + 1e-4 * np.random.default_rng(0).standard_normal(record.y.shape)
    from dataclasses import replace

    data = replace(record, y=noisy).prepare(u_units=("V", "V"), y_units=("m", "m"))
    est, _ = data.split(0.7)
    fit = n4sid(est)
    lin = tank.linearize()
    np.testing.assert_allclose(fit.model.gain(), lin.gain(), rtol=0.03)
    zeros = np.sort(np.log(fit.model.transmission_zeros().astype(complex)).real / DT)
    np.testing.assert_allclose(zeros, np.sort(lin.transmission_zeros().real), atol=3e-3)
    assert min(validate(fit.model, data, score_from=est.n_samples).fit_percent) > 90.0
    path = fit.model.save(tmp_path / "tank_identified.json")

    model = load(str(path))
    assert model.time_domain is TimeDomain.DISCRETE and model.sample_time_s == DT
    y0 = fit.model.y0
    setpoints = [y0 + np.array([0.010, 0.005]), y0 + np.array([-0.005, 0.010])]
    h, u, fallbacks = await _closed_loop(tank, model, setpoints, offset_free=True)
    assert fallbacks == 0
    assert np.all((u >= 0.0) & (u <= 6.0))
    for i, sp in enumerate(setpoints):
        seg = h[(i + 1) * CYCLES_PER_SETPOINT - 10:(i + 1) * CYCLES_PER_SETPOINT]
        offset = np.abs(seg.mean(axis=0) - sp)
        assert np.all(offset < OFFSET_TOL), f"setpoint {i}: offset {offset * 1e3} mm"
        assert np.all(np.ptp(seg, axis=0) < OFFSET_TOL)  # and it has settled
    # without the disturbance model the valve drift leaves a steady offset of millimetres
    h, _, _ = await _closed_loop(tank, model, setpoints[:1], offset_free=False)
    assert np.max(np.abs(h[-10:].mean(axis=0) - setpoints[0])) > 10 * OFFSET_TOL


async def _closed_loop(tank, model, setpoints, *, offset_free: bool):
    """NMPC + EKF on the identified model, controlling the nonlinear plant with drifted valves."""
    est_cfg = EstimatorConfig(
        sample_time_s=DT, measured=("h1", "h2"),
        disturbances=DisturbanceModel(outputs=("h1", "h2")) if offset_free else DisturbanceModel(),
        measurement_std={"h1": 1e-4, "h2": 1e-4})
    ekf = ExtendedKalmanFilter(model, est_cfg)
    cfg = MpcConfig(
        horizon_steps=30, sample_time_s=DT,
        cvs=(CvSpec("h1", weight=100.0, target=float(setpoints[0][0])),
             CvSpec("h2", weight=100.0, target=float(setpoints[0][1]))),
        mvs=(MvSpec("v1", move_weight=10.0, lower=0.0, upper=6.0),
             MvSpec("v2", move_weight=10.0, lower=0.0, upper=6.0)),
    )
    ctrl = NmpcController(model, cfg)
    io = InProcessPlantIO(tank, DT, p=DRIFTED)  # nonlinear plant, starts at the nominal levels
    probe = Probe()
    loop = ControlLoop(model, io, ekf, ctrl, LoopSettings(sample_time_s=DT), recorders=[probe])
    async with io:
        for sp in setpoints:
            loop.target = OperatingTarget(0.0, y={"h1": float(sp[0]), "h2": float(sp[1])})
            await loop.run(CYCLES_PER_SETPOINT)
    h = np.array([[r.measurement.value("h1"), r.measurement.value("h2")] for r in probe.records])
    u = np.array([r.u_written for r in probe.records])
    return h, u, loop.stats.fallbacks
