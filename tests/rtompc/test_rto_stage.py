"""RTO inside the closed-loop runtime: RtoStage over the in-process Williams-Otto plant.

The plant is the three-reaction Williams-Otto reactor (CVODES, 60 s samples)
behind :class:`interfaces.inprocess.InProcessPlantIO`; the loop runs the EKF
(offset-free output disturbances on X_P and X_G) and the NMPC on the same
three-reaction model, and :class:`rtompc.rto_stage.RtoStage` sets the targets,
gated by steady-state detection. Setting of Marchetti, Chachuat & Bonvin,
Ind. Eng. Chem. Res. 48 (2009) 6022-6033: start at F_B = 4 kg/s,
T_R = 75 °C; plant optimum F_B = 4.787 kg/s, T_R = 89.70 °C, 190.98 $/s.
With the two-reaction model, modifier adaptation must reach the plant optimum
(structural mismatch is corrected by the modifiers), while two-step RTO settles
at its own fixed point near 181.7 $/s (see tests/integration/test_rto_to_mpc.py).
Profit is always computed from the true plant state, not from what RTO believes.
"""

from __future__ import annotations

import numpy as np
import pytest

from interfaces.inprocess import InProcessPlantIO
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import DisturbanceModel, EstimatorConfig, ExtendedKalmanFilter
from plant_models.errors import ConfigError
from plant_models.library import load
from plant_models.library.williams_otto import C0, PRICES, PUBLISHED_OPTIMUM
from plant_models.model import PlantModel
from plant_models.samples import Measurement, OperatingTarget, Quality, StateEstimate
from rto import EstimationConfig, HandoffConfig, ModifierAdaptationConfig, RtoConfig
from rtompc.cycle import CycleRecord
from rtompc.rto_stage import RtoMethod, RtoStage, RtoStageConfig
from rtompc.runtime import ControlLoop, LoopSettings

DT = 60.0
RATE = {"f_b": 2e-4, "t_r": 0.02}  # kg/s per s, K per s: MPC rate limits and hand-off ramps
U0 = np.array([4.0, 75.0 + C0])
OPT = PUBLISHED_OPTIMUM["profit"]
MEASURED = ("x_a", "x_b", "x_c", "x_e", "x_g", "x_p")
STEADY = ("x_a", "x_b", "x_e", "x_g", "x_p", "f_b", "t_r")
TOLERANCE = {"x_a": 1e-5, "x_b": 1e-5, "x_e": 1e-5, "x_g": 1e-5, "x_p": 1e-5,
             "f_b": 1e-4, "t_r": 1e-2}


class Probe:
    """Collects the cycle records and the true plant profit of each cycle (a Recorder)."""

    def __init__(self, io: InProcessPlantIO) -> None:
        self.io = io
        self.records: list[CycleRecord] = []
        self.profit: list[float] = []

    def append(self, record: CycleRecord) -> None:
        self.records.append(record)
        # the plant has not been advanced yet: its state is the one this cycle measured
        self.profit.append(plant_profit(self.io.model, self.io.state, record.u_plant))

    def at_iterations(self) -> list[float]:
        """True plant profit at the steady points where an RTO iteration ran."""
        return [p for r, p in zip(self.records, self.profit, strict=True)
                if r.rto_status.startswith("rto iteration")]


@pytest.fixture(scope="module")
def plant() -> PlantModel:
    return load("williams_otto")


@pytest.fixture(scope="module")
def model_2r() -> PlantModel:
    return load("williams_otto_2r")


def stage_config(method: RtoMethod = RtoMethod.MODIFIER_ADAPTATION, **kw) -> RtoStageConfig:
    """The RtoStage settings used for Williams-Otto (also for the demo)."""
    settings = {
        "rto": RtoConfig(prices=PRICES),
        "handoff": HandoffConfig(cvs=("x_p", "x_g"), max_rate=RATE),
        "steady_signals": STEADY, "window_samples": 15, "average_samples": 3,
        "steady_tolerance": TOLERANCE, "max_spread": {"f_b": 0.01, "t_r": 0.1},
        "modifier": ModifierAdaptationConfig(gain=0.7, step={"f_b": 0.03, "t_r": 0.3},
                                             max_condition=20.0),
    }
    return RtoStageConfig(method=method, **{**settings, **kw})


def build_loop(plant: PlantModel, rto_model: PlantModel, config: RtoStageConfig,
               x0: np.ndarray | None = None):
    """Plant I/O, EKF, NMPC, RtoStage and ControlLoop, starting at U0."""
    x_start = plant.steady_state(u=U0).x  # the EKF starts at the steady state of U0
    io = InProcessPlantIO(plant, DT, x0=x_start if x0 is None else x0, u0=U0)
    ekf = ExtendedKalmanFilter(plant, EstimatorConfig(
        sample_time_s=DT, measured=MEASURED,
        disturbances=DisturbanceModel(outputs=("x_p", "x_g")),
        measurement_std={n: 1e-4 for n in MEASURED}), x0=x_start)
    mpc = NmpcController(plant, MpcConfig(
        horizon_steps=20, sample_time_s=DT,
        cvs=(CvSpec("x_p", weight=10.0, target=0.1),
             CvSpec("x_g", weight=1.0, target=0.1, upper=0.11, l1_penalty=100.0)),
        mvs=(MvSpec("f_b", weight=1.0, target=U0[0], move_weight=1.0,
                    max_rate_per_s=RATE["f_b"]),
             MvSpec("t_r", weight=1.0, target=U0[1], move_weight=1.0,
                    max_rate_per_s=RATE["t_r"]))))
    stage = RtoStage(rto_model, plant, config)
    y0 = plant.y.mapping(plant.outputs(x_start, U0))
    start = OperatingTarget(0.0, y={"x_p": y0["x_p"], "x_g": y0["x_g"]},
                            u={"f_b": U0[0], "t_r": U0[1]})
    probe = Probe(io)
    loop = ControlLoop(plant, io, ekf, mpc, LoopSettings(sample_time_s=DT, rto_every_n=1),
                       target=start, target_source=stage, recorders=[probe])
    return io, loop, stage, probe


def plant_profit(plant: PlantModel, x: np.ndarray, u: np.ndarray) -> float:
    """Profit rate of the true plant, $/s (Marchetti et al. 2009)."""
    y = plant.y.mapping(plant.outputs(x, u))
    return (PRICES["f_p"] * y["f_p"] + PRICES["f_e"] * y["f_e"]
            + PRICES["f_a"] * plant.nominal.d[0] + PRICES["f_b"] * u[0])


async def run(io: InProcessPlantIO, loop: ControlLoop, cycles: int) -> tuple[float, dict]:
    async with io:
        stats = await loop.run(cycles)
        u = (await io.read_actuators()).values
    return plant_profit(io.model, io.state, u), stats


def _check_targets(records: list[CycleRecord]) -> None:
    """Every target issued came from RTO and moved no faster than the ramp allows."""
    rto = [r.target for r in records if r.target is not None and r.target.source == "rto"]
    assert rto, "RTO never issued a target"
    for a, b in zip(rto, rto[1:], strict=False):
        dt = b.time_s - a.time_s
        for n, rate in RATE.items():
            if dt > 0:
                assert abs(b.u[n] - a.u[n]) <= rate * dt * (1 + 1e-6) + 1e-9


async def test_modifier_adaptation_with_the_2r_model_reaches_the_plant_optimum(
        plant, model_2r) -> None:
    """Two-reaction model for RTO, three-reaction plant: the modifiers remove the mismatch.

    Gradients come from past steady operating points, with probes (two extra steady
    points) where those are ill-conditioned or too far apart. Measured here (900
    cycles, 15 h plant time, 7 iterations from 19 steady points): RTO iterations at
    plant profits 151.10, 184.84, 188.66, 190.07, 190.59, 190.90, 190.92 $/s; the
    true plant is within 0.04 % of the optimum at every steady point from the sixth
    iteration on.
    """
    io, loop, stage, probe = build_loop(plant, model_2r, stage_config())
    _, stats = await run(io, loop, 900)
    its = stage.iterations
    assert stats["fallbacks"] == 0
    assert len(its) >= 7 and all(it.accepted for it in its)
    profits = [it.plant_profit for it in its]
    assert profits[0] == pytest.approx(151.10, abs=0.05)  # the plant at F_B 4 kg/s, T_R 75 °C
    assert profits[1] > 184.0 and profits[2] > 188.5 and profits[3] > 190.0
    true = probe.at_iterations()
    assert len(true) == len(its)
    assert min(true[5:]) > OPT * (1 - 0.001)  # within 0.1 % once converged
    assert min(profits[5:]) > OPT * (1 - 0.0005)
    assert any(it.plant_evaluations == 1 for it in its)  # past points replaced probes
    _check_targets(probe.records)


@pytest.mark.slow
async def test_modifier_adaptation_stays_at_the_plant_optimum(plant, model_2r) -> None:
    """A long run (3000 cycles, 50 h plant time): no excursion once converged.

    Measured: 49 iterations; from the sixth on the true plant profit at every steady
    point is 190.92-190.98 $/s (within 0.03 % of 190.98), mostly above 190.96.
    """
    io, loop, stage, probe = build_loop(plant, model_2r, stage_config())
    await run(io, loop, 3000)
    true = probe.at_iterations()
    assert len(true) >= 20 and all(it.accepted for it in stage.iterations)
    assert min(true[5:]) > OPT * (1 - 0.001)


async def test_modifier_adaptation_with_the_plant_model_is_at_the_optimum_fast(plant) -> None:
    """RTO on the true (three-reaction) model: one iteration, then the plant optimum.

    The first iteration needs two gradient probes (no past points yet); the modifiers
    are then only the finite-difference error, so the plant goes (nearly) to the optimum
    in one hand-off ramp.
    """
    io, loop, stage, probe = build_loop(plant, plant, stage_config())
    final, stats = await run(io, loop, 300)
    assert stats["fallbacks"] == 0
    first = stage.iterations[0]
    assert first.accepted and first.plant_evaluations == 3
    # forward differences with 1 % steps leave a small gradient error: measured target
    # F_B 4.734 kg/s, T_R 89.18 °C (vs 4.787, 89.70), plant profit 190.93 $/s at the end
    assert first.target[0] == pytest.approx(PUBLISHED_OPTIMUM["f_b"], abs=0.08)
    assert first.target[1] == pytest.approx(PUBLISHED_OPTIMUM["t_r"], abs=0.8)
    assert final == pytest.approx(OPT, rel=0.005)
    assert final > OPT * (1 - 0.001)  # measured gap 0.024 %
    statuses = [r.rto_status for r in probe.records]
    assert any("probing the plant gradient, point 2/2" in s for s in statuses)
    assert any("target ramping" in s for s in statuses)
    _check_targets(probe.records)


async def test_rto_waits_while_the_plant_moves(plant) -> None:
    """Start away from steady state: the stage names the moving signals and runs no RTO."""
    x_away = plant.steady_state(u=np.array([4.787, 89.7 + C0])).x  # the optimum's state
    io, loop, stage, probe = build_loop(plant, plant, stage_config(), x0=x_away)
    start = loop.target
    await run(io, loop, 20)
    statuses = [r.rto_status for r in probe.records]
    assert all(s.startswith("waiting for steady state") for s in statuses)
    assert statuses[5] == "waiting for steady state: window 6/15 samples"
    moving = statuses[14:]  # full windows
    assert all("moving" in s and "x_p (R=" in s and "x_b (R=" in s for s in moving)
    assert stage.iterations == [] and stage.steady_points == []
    assert loop.stats.rto_updates == 0 and loop.target is start


async def test_failing_rto_keeps_the_previous_target(plant, model_2r) -> None:
    """An infeasible economic problem: every iteration fails and the targets stay put."""
    cfg = stage_config(RtoMethod.TWO_STEP,
                       rto=RtoConfig(prices=PRICES, limits={"x_g": (0.0, 1e-3)}),
                       estimation=EstimationConfig(parameters=("nu1", "nu2"),
                                                   measured=("x_a", "x_b", "x_e", "x_g", "x_p")))
    io, loop, stage, probe = build_loop(plant, model_2r, cfg)
    start = loop.target
    await run(io, loop, 40)
    failed = [r.rto_status for r in probe.records if r.rto_status.startswith("rto iteration")]
    assert len(failed) >= 2 and len(stage.iterations) == len(failed)
    assert all(not it.accepted for it in stage.iterations)
    assert all("failed (infeasible), previous targets kept" in s and "x_g" in s for s in failed)
    assert loop.stats.rto_updates == 0
    assert all(r.target is start for r in probe.records)
    assert loop.stats.fallbacks == 0


async def test_failing_rto_after_a_success_keeps_the_rto_target(plant, model_2r) -> None:
    """F_out >= 7.75 kg/s is feasible at F_A = 1.8275 kg/s (F_B >= 5.92); after F_A drops
    to 1.7 kg/s it needs F_B >= 6.05 kg/s, beyond its bound: the RTO target in force stays."""
    cfg = stage_config(RtoMethod.TWO_STEP,
                       rto=RtoConfig(prices=PRICES, limits={"f_out": (7.75, 20.0)}),
                       estimation=EstimationConfig(parameters=("nu1", "nu2"),
                                                   measured=("x_a", "x_b", "x_e", "x_g", "x_p")))
    io, loop, stage, probe = build_loop(plant, model_2r, cfg)
    async with io:
        await loop.run(185)
        io.set_disturbance("f_a", 1.7)
        await loop.run(80)
    first = stage.iterations[0]
    assert first.accepted and first.target[0] == pytest.approx(7.75 - 1.8275, abs=2e-3)
    k = next(i for i, r in enumerate(probe.records)
             if r.rto_status.startswith("rto iteration") and "failed" in r.rto_status)
    kept = probe.records[k - 1].target
    assert kept is not None and kept.source == "rto"
    assert kept.u["f_b"] == pytest.approx(first.target[0], abs=1e-6)  # the ramp had finished
    later = probe.records[k:]
    assert all(r.target is kept for r in later)
    failed = [r.rto_status for r in later if r.rto_status.startswith("rto iteration")]
    assert len(failed) >= 2
    assert all("failed (infeasible), previous targets kept" in s and "f_out" in s
               for s in failed)
    assert all(not it.accepted for it in stage.iterations[1:])


async def test_two_step_settles_at_its_own_fixed_point(plant, model_2r) -> None:
    """Two-step RTO with the 2R model improves the plant but stops short of its optimum.

    Measured: iterations at 151.10, 169.67, 180.18, 181.27, 181.64, 181.72 $/s.
    """
    cfg = stage_config(RtoMethod.TWO_STEP, estimation=EstimationConfig(
        parameters=("nu1", "nu2"), measured=("x_a", "x_b", "x_e", "x_g", "x_p")))
    io, loop, stage, probe = build_loop(plant, model_2r, cfg)
    await run(io, loop, 300)
    profits = [it.plant_profit for it in stage.iterations]
    assert len(profits) >= 5 and all(it.accepted for it in stage.iterations)
    assert all(a < b for a, b in zip(profits, profits[1:], strict=False))  # 151.1 ... 181.7
    true = probe.at_iterations()
    # the two-step fixed point of the offline study (tests/rto/test_williams_otto_rto.py)
    assert true[-1] == pytest.approx(181.74, rel=0.002)
    assert true[-1] < OPT * 0.96  # about 5 % below the plant optimum: structural mismatch
    _check_targets(probe.records)


def _steady_samples(plant: PlantModel, n: int, t_r_swing: float = 0.0, *, f_a: float = 1.8275,
                    start: int = 0):
    """n steady measurements at U0 (cycles from ``start``), with T_R alternating by
    +-t_r_swing (a limit cycle) and the A feed at ``f_a``."""
    d = np.array([f_a])
    x = plant.steady_state(u=U0, d=d).x
    names = plant.y.names + plant.d.names
    values = np.concatenate([plant.outputs(x, U0, d), d])
    for k in range(start, start + n):
        meas = Measurement(k * DT, names, values, (Quality.GOOD,) * len(names))
        yield k, meas, StateEstimate(k * DT, x), U0 + [0.0, t_r_swing * (-1) ** k], d


def test_oscillation_and_bad_quality_are_not_steady(plant) -> None:
    """The R-statistic takes a sample-to-sample oscillation for noise; max_spread does not."""
    naive = RtoStage(plant, plant, stage_config(max_spread={}))
    for k, meas, est, u, d in _steady_samples(plant, 15, 0.3):
        target, status = naive.update(k, meas, est, u, d)
    assert target is not None and naive.steady_points  # called steady: R is small
    stage = RtoStage(plant, plant, stage_config())
    for k, meas, est, u, d in _steady_samples(plant, 15, 0.3):
        target, status = stage.update(k, meas, est, u, d)
    assert target is None and not stage.steady_points
    assert status.startswith("waiting for steady state: t_r (spread 0.6 > 0.1) moving")
    bad = Measurement(15 * DT, meas.names, meas.values,
                      tuple(Quality.BAD if n == "x_p" else Quality.GOOD for n in meas.names))
    target, status = stage.update(15, bad, est, U0, d)
    assert target is None
    assert status == "waiting for steady state: no good value for x_p; window restarted"


def test_a_disturbance_change_restarts_the_gradient_probes(plant) -> None:
    """Probe points must share the base point's disturbances; otherwise probing starts over."""
    stage = RtoStage(plant, plant, stage_config())
    for k, meas, est, u, d in _steady_samples(plant, 15):
        target, status = stage.update(k, meas, est, u, d)
    assert target is not None and "probing the plant gradient, point 1/2" in status
    for k, meas, est, u, d in _steady_samples(plant, 30, f_a=1.7, start=15):
        target, status = stage.update(k, meas, est, u, d)
        if "changed" in status:
            break
    assert status.startswith("rto: f_a changed during gradient probing, probes restarted; "
                             "probing the plant gradient, point 1/2")
    assert target is not None and stage.iterations == []
    assert [p.d[0] for p in stage.steady_points] == pytest.approx([1.8275, 1.7])


def test_config_errors_name_the_field(plant, model_2r) -> None:
    with pytest.raises(ConfigError, match="window_samples"):
        stage_config(window_samples=5)
    with pytest.raises(ConfigError, match="average_samples"):
        stage_config(average_samples=0)
    with pytest.raises(ConfigError, match="estimation"):
        stage_config(RtoMethod.TWO_STEP)
    with pytest.raises(ConfigError, match="method"):
        stage_config("gradient_descent")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"steady_tolerance\['f_a'\]"):
        RtoStageConfig(rto=RtoConfig(prices=PRICES), handoff=HandoffConfig(),
                       steady_signals=("x_p",), steady_tolerance={"f_a": 1e-3})
    with pytest.raises(ConfigError, match=r"max_spread\['t_r'\]"):
        stage_config(max_spread={"t_r": 1e-3})  # below its steady_tolerance of 1e-2
    with pytest.raises(ConfigError, match="steady_signals"):
        RtoStageConfig(rto=RtoConfig(prices=PRICES), handoff=HandoffConfig(),
                       steady_signals=())
    with pytest.raises(ConfigError, match="steady_signals: 'x_q'"):
        RtoStage(model_2r, plant, RtoStageConfig(
            rto=RtoConfig(prices=PRICES), handoff=HandoffConfig(), steady_signals=("x_q",)))
    assert stage_config("two_step", estimation=EstimationConfig(  # type: ignore[arg-type]
        parameters=("nu1",), measured=("x_p",))).method is RtoMethod.TWO_STEP
