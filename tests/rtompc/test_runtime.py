"""The closed-loop runtime over the in-process transport, with the real EKF and NMPC.

Checks answers, not only that the loop runs: the CSTR reaches the c_B target
with plant-model mismatch (offset-free through the output-disturbance model),
SHADOW mode writes nothing, a forced solver failure engages the fallback and
an out-of-service MV is held at the plant's value.
"""

from __future__ import annotations

import numpy as np
import pytest

from interfaces.inprocess import InProcessPlantIO
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import DisturbanceModel, EstimatorConfig, ExtendedKalmanFilter
from mpc.fallback import FallbackPolicy
from plant_models.library import load
from plant_models.samples import Mode, OperatingTarget, Quality
from rtompc.cycle import CycleRecord
from rtompc.runtime import ControlLoop, LoopSettings

DT = 18.0


class Probe:
    """Collects the cycle records (a Recorder)."""

    def __init__(self) -> None:
        self.records: list[CycleRecord] = []

    def append(self, record: CycleRecord) -> None:
        self.records.append(record)


def _stack(model, plant_p=None, *, cv_target=700.0, mode=Mode.ON, mv_in_service=None,
           ipopt_max_iter=200):
    io = InProcessPlantIO(model, DT, p=plant_p, start_remote=False)
    est = ExtendedKalmanFilter(
        model,
        EstimatorConfig(sample_time_s=DT, measured=("c_b", "t_r", "t_k"),
                        disturbances=DisturbanceModel(outputs=("c_b",)),
                        measurement_std={"c_b": 5.0, "t_r": 0.1, "t_k": 0.1}),
    )
    cfg = MpcConfig(
        horizon_steps=20, sample_time_s=DT,
        cvs=(CvSpec("c_b", weight=1.0, target=cv_target),
             CvSpec("t_r", upper=140.0 + 273.15, l1_penalty=1e3)),
        mvs=(MvSpec("f_dil", move_weight=0.01, max_rate_per_s=2.0 / 3600 / DT),
             MvSpec("q_k", move_weight=0.01)),
        ipopt_max_iter=ipopt_max_iter,
    )
    ctrl = NmpcController(model, cfg)
    probe = Probe()
    loop = ControlLoop(model, io, est, ctrl,
                       LoopSettings(sample_time_s=DT, mode=mode, mv_in_service=mv_in_service),
                       target=OperatingTarget(0.0, y={"c_b": cv_target}), recorders=[probe])
    return io, loop, probe


@pytest.fixture(scope="module")
def cstr():
    return load("van_de_vusse", parameters="do_mpc")


async def test_offset_free_tracking_with_mismatch(cstr) -> None:
    io, loop, probe = _stack(cstr, plant_p={"alpha": 1.0, "beta": 1.1})
    async with io:
        stats = await loop.run(80)
    cb = np.array([r.measurement.value("c_b") for r in probe.records])
    assert stats["cycles"] == 80 and stats["fallbacks"] == 0
    assert abs(cb[-1] - 700.0) < 2.0, f"offset {cb[-1] - 700.0:.2f} mol/m^3"
    assert abs(cb[-10:].mean() - 700.0) < 2.0
    u = np.array([r.u_written for r in probe.records])
    assert np.all(u[:, 0] <= cstr.u.upper[0] + 1e-12) and np.all(u[:, 0] >= cstr.u.lower[0] - 1e-12)
    # the f_dil rate limit (2 1/h per sample) holds on what was written
    assert np.max(np.abs(np.diff(u[:, 0]))) <= 2.0 / 3600 * (1 + 1e-6)
    assert io.last_heartbeat == 80


async def test_shadow_mode_writes_nothing(cstr) -> None:
    io, loop, probe = _stack(cstr, mode=Mode.SHADOW)
    async with io:
        u0 = (await io.read_actuators()).values.copy()
        await loop.run(5)
        u1 = (await io.read_actuators()).values.copy()
    assert all(r.write_status == "shadow" for r in probe.records)
    assert all(np.all(np.isnan(r.u_written)) for r in probe.records)
    assert all(np.all(np.isfinite(r.u_computed)) for r in probe.records)
    # the controller wanted to move (c_B is far from its target), the plant did not
    assert np.max(np.abs(probe.records[-1].u_computed - u0) / cstr.u.nominal) > 1e-3
    np.testing.assert_array_equal(u1, u0)


async def test_forced_solver_failure_engages_fallback(cstr) -> None:
    io, loop, probe = _stack(cstr)
    async with io:
        await loop.run(3)
        good = probe.records[-1]
        # an infeasible hard-bound request: the controller must fail, the runtime falls back
        loop.controller = NmpcController(
            cstr, MpcConfig(horizon_steps=20, sample_time_s=DT,
                            cvs=(CvSpec("c_b", weight=1.0, target=700.0),),
                            mvs=(MvSpec("f_dil"), MvSpec("q_k")), ipopt_max_iter=0),
        )
        loop.settings = LoopSettings(sample_time_s=DT, fallback=FallbackPolicy.HOLD_LAST)
        await loop.run(2)
    failed = probe.records[-2:]
    assert all(r.fallback for r in failed)
    assert all(r.solver_status != "success" for r in failed)
    np.testing.assert_allclose(failed[0].u_computed, good.u_written, rtol=1e-9)
    assert loop.stats.fallbacks == 2


async def test_mv_out_of_service_is_held(cstr) -> None:
    io, loop, probe = _stack(cstr, mv_in_service=("q_k",))
    async with io:
        f0 = (await io.read_actuators()).values[0]
        await loop.run(10)
    assert all(r.u_written[0] == pytest.approx(f0) for r in probe.records)
    assert np.ptp([r.u_written[1] for r in probe.records]) > 0


async def test_bad_sensor_is_flagged_and_loop_goes_on(cstr) -> None:
    io, loop, probe = _stack(cstr)
    async with io:
        await loop.run(3)
        io.inject("c_b", value=float("nan"))
        await loop.run(3)
        io.clear_faults()
        io.inject("t_r", quality=Quality.BAD)
        await loop.run(3)
    assert all("c_b" in r.estimate.rejected for r in probe.records[3:6])
    assert all("t_r" in r.estimate.rejected for r in probe.records[6:9])
    assert all(not r.fallback for r in probe.records)
    assert all(np.all(np.isfinite(r.estimate.x)) for r in probe.records)


async def test_historian_records_every_cycle(cstr, tmp_path) -> None:
    from rtompc.historian import Historian, HistorianLayout, HistorianRecorder

    io, loop, probe = _stack(cstr)
    hist = Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(cstr, io.measurement_names))
    loop.recorders.append(HistorianRecorder(hist))
    async with io:
        await loop.run(6)
    rows = list(hist.rows())
    hist.close()
    assert [r["cycle"] for r in rows] == list(range(6))
    assert rows[-1]["written__q_k"] == pytest.approx(probe.records[-1].u_written[1])
    assert rows[-1]["est__c_b"] == pytest.approx(probe.records[-1].estimate.x[1])
    assert rows[0]["solver_status"] == "success" and rows[0]["write_status"] == "verified"


async def test_cycle_breakdown_covers_every_phase(cstr) -> None:
    """The loop splits each cycle into its phases (LoopStats.breakdown): every phase is
    there, in cycle order; the NMPC and estimator phases hold their solves; the heartbeat,
    sent beside the write, is still written every ON cycle."""
    from rtompc.stats import PHASES

    io, loop, probe = _stack(cstr)
    async with io:
        await loop.run(6)
    breakdown = loop.stats.breakdown()
    assert list(breakdown) == [name for name, _ in PHASES]
    assert sum(p["share_pct"] for p in breakdown.values()) == pytest.approx(100.0)
    nmpc = loop.stats.phases["nmpc"].recent()
    est = loop.stats.phases["estimator"].recent()
    for k, rec in enumerate(probe.records):
        assert nmpc[k] >= rec.solve_time_s > 0
        assert est[k] >= rec.estimator_time_s > 0
    assert all(r.write_status == "verified" for r in probe.records[1:])
    assert io.last_heartbeat == 6  # one per cycle, the write's cycles included
    phases_sum = sum(loop.stats.phases[n].recent() for n, _ in PHASES if n != "publish")
    cycle = loop.stats.cycle_times_s.recent()
    assert np.all(phases_sum >= 0.5 * cycle)  # the phases account for the cycle's time
