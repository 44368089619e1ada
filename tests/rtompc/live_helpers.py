"""Shared by the live parameter tests: the Van de Vusse controller config and a loop stack
(in-process lockstep transport, real EKF and NMPC, live parameters journaled in a historian)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from interfaces.inprocess import InProcessPlantIO
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import DisturbanceModel, EstimatorConfig, ExtendedKalmanFilter
from plant_models.model import PlantModel
from plant_models.samples import Mode, OperatingTarget
from rtompc.cycle import CycleRecord
from rtompc.historian import Historian, HistorianLayout
from rtompc.historian.journal import HistorianJournal
from rtompc.live import LiveParameters
from rtompc.runtime import ControlLoop, LoopSettings

DT = 18.0
T_R_HIGH = 140.0 + 273.15
F_DIL_RATE = 2.0 / 3600 / DT  # 2 1/h per sample


def vdv_config() -> MpcConfig:
    """c_B tracked at 700 mol/m^3, t_r soft-limited at 140 degC, f_dil rate-limited."""
    return MpcConfig(
        horizon_steps=20,
        sample_time_s=DT,
        cvs=(
            CvSpec("c_b", weight=1.0, target=700.0),
            CvSpec("t_r", upper=T_R_HIGH, l1_penalty=1e3),
        ),
        mvs=(
            MvSpec("f_dil", move_weight=0.01, max_rate_per_s=F_DIL_RATE),
            MvSpec("q_k", move_weight=0.01),
        ),
    )


class Probe:
    """Collects the cycle records (a Recorder)."""

    def __init__(self) -> None:
        self.records: list[CycleRecord] = []

    def append(self, record: CycleRecord) -> None:
        self.records.append(record)


@dataclass
class LiveStack:
    """What a live-parameter loop test drives and checks."""

    io: InProcessPlantIO
    loop: ControlLoop
    live: LiveParameters
    hist: Historian
    probe: Probe


def live_stack(model: PlantModel, tmp: Path, *, mode: Mode = Mode.ON) -> LiveStack:
    """The loop with live parameters journaled into a historian under ``tmp``."""
    io = InProcessPlantIO(model, DT, start_remote=False)
    est = ExtendedKalmanFilter(
        model,
        EstimatorConfig(
            sample_time_s=DT,
            measured=("c_b", "t_r", "t_k"),
            disturbances=DisturbanceModel(outputs=("c_b",)),
            measurement_std={"c_b": 5.0, "t_r": 0.1, "t_k": 0.1},
        ),
    )
    cfg = vdv_config()
    hist = Historian(tmp / "live.sqlite", HistorianLayout.for_model(model))
    hist.begin_run("run", mode=mode, config_hash="live-test")
    live = LiveParameters(model, cfg, mode=mode, journal=HistorianJournal(hist))
    probe = Probe()
    loop = ControlLoop(
        model,
        io,
        est,
        NmpcController(model, cfg),
        LoopSettings(sample_time_s=DT, mode=mode),
        target=OperatingTarget(0.0, y={"c_b": 700.0}),
        recorders=[probe],
        live=live,
    )
    return LiveStack(io, loop, live, hist, probe)
