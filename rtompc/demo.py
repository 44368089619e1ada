"""``rtompc demo``: RTO + NMPC closing the loop over OPC UA against the HIL simulator.

The demo is the Williams–Otto reactor of the RTO literature (Marchetti,
Chachuat & Bonvin, Ind. Eng. Chem. Res. 48 (2009) 6022–6033):

- a HIL server (``rtompc hil serve``, a child process) simulates the
  three-reaction plant on loopback, secured by default (Basic256Sha256
  SignAndEncrypt, certificate trust lists both ways, a user with the
  controller role and a random password), running in accelerated real time;
- the engine connects over OPC UA, estimates the state with an EKF with
  output-disturbance states (offset-free), drives the plant with NMPC
  (real-time iterations) within MV rate limits and a soft limit on the
  by-product X_G, and sets the NMPC targets from an economic RTO on the
  *two*-reaction model, corrected by modifier adaptation and gated by
  steady-state detection;
- every cycle goes to a SQLite historian; at the end the demo prints KPIs
  (plant profit against the known plant optimum 190.98 $/s, limit violations,
  solve and cycle times, overruns) and writes trend plots.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from interfaces.limits import MoveLimits
from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import OpcUaSettings
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import DisturbanceModel, EstimatorConfig, ExtendedKalmanFilter
from plant_models.library import load
from plant_models.library.williams_otto import C0, PRICES, PUBLISHED_OPTIMUM
from plant_models.model import PlantModel
from plant_models.samples import OperatingTarget
from rto import HandoffConfig, ModifierAdaptationConfig, RtoConfig
from rtompc.cycle import CycleRecord
from rtompc.hil_process import HilProcess, free_port, make_secure_bench, write_bench
from rtompc.historian import Historian, HistorianLayout, HistorianRecorder
from rtompc.rto_stage import RtoMethod, RtoStage, RtoStageConfig
from rtompc.runtime import ControlLoop, LoopSettings

logger = logging.getLogger(__name__)

DT = 60.0
"""Control period, plant seconds."""
RATE = {"f_b": 2e-4, "t_r": 0.02}
"""MV rate limits (kg/s per s, K per s), also the RTO hand-off ramps."""
U0 = np.array([4.0, 75.0 + C0])
"""Start: F_B = 4 kg/s, T_R = 75 °C (Marchetti et al. 2009)."""
MEASURED = ("x_a", "x_b", "x_c", "x_e", "x_g", "x_p")
STEADY = ("x_a", "x_b", "x_e", "x_g", "x_p", "f_b", "t_r")
TOLERANCE = {"x_a": 1e-5, "x_b": 1e-5, "x_e": 1e-5, "x_g": 1e-5, "x_p": 1e-5,
             "f_b": 1e-4, "t_r": 1e-2}
X_G_MAX = 0.11
"""Soft upper limit on the by-product mass fraction."""


@dataclass(frozen=True)
class DemoOptions:
    """How the demo runs."""

    out_dir: Path
    """Where plots, the historian, the summary and the bench files go."""
    cycles: int = 800
    """Control cycles (of 60 s plant time)."""
    speed: float = 600.0
    """Real-time factor of the HIL server (plant seconds per wall second)."""
    lockstep: bool = False
    """Advance the HIL plant only through its step method (deterministic) instead."""
    secure: bool = True
    """Secure the OPC UA link (certificates, trust lists, user/password)."""
    progress: bool = True
    """Print a progress line while running."""


def plant_profit(plant: PlantModel, y: dict[str, float], u: np.ndarray) -> float:
    """Profit rate of the plant from its measured outputs, $/s."""
    return (PRICES["f_p"] * y["f_p"] + PRICES["f_e"] * y["f_e"]
            + PRICES["f_a"] * plant.nominal.d[0] + PRICES["f_b"] * float(u[0]))


def build_stack(plant: PlantModel, rto_model: PlantModel, x_start: np.ndarray) -> tuple[
        ExtendedKalmanFilter, NmpcController, RtoStage, OperatingTarget]:
    """Estimator, controller, RTO stage and the initial target of the Williams–Otto demo."""
    ekf = ExtendedKalmanFilter(plant, EstimatorConfig(
        sample_time_s=DT, measured=MEASURED,
        disturbances=DisturbanceModel(outputs=("x_p", "x_g")),
        measurement_std={n: 1e-4 for n in MEASURED}), x0=x_start)
    mpc = NmpcController(plant, MpcConfig(
        horizon_steps=20, sample_time_s=DT,
        cvs=(CvSpec("x_p", weight=10.0, target=0.1),
             CvSpec("x_g", weight=1.0, target=0.1, upper=X_G_MAX, l1_penalty=100.0)),
        mvs=(MvSpec("f_b", weight=1.0, target=U0[0], move_weight=1.0,
                    max_rate_per_s=RATE["f_b"]),
             MvSpec("t_r", weight=1.0, target=U0[1], move_weight=1.0,
                    max_rate_per_s=RATE["t_r"]))))
    stage = RtoStage(rto_model, plant, RtoStageConfig(
        method=RtoMethod.MODIFIER_ADAPTATION,
        rto=RtoConfig(prices=PRICES),
        handoff=HandoffConfig(cvs=("x_p", "x_g"), max_rate=RATE),
        steady_signals=STEADY, window_samples=15, average_samples=3,
        steady_tolerance=TOLERANCE, max_spread={"f_b": 0.01, "t_r": 0.1},
        modifier=ModifierAdaptationConfig(gain=0.7, step={"f_b": 0.03, "t_r": 0.3},
                                          max_condition=20.0),
    ))
    y0 = plant.y.mapping(plant.outputs(x_start, U0))
    start = OperatingTarget(0.0, y={"x_p": y0["x_p"], "x_g": y0["x_g"]},
                            u={"f_b": float(U0[0]), "t_r": float(U0[1])})
    return ekf, mpc, stage, start


class Progress:
    """A Recorder that keeps the trends and prints one progress line now and then."""

    def __init__(self, plant: PlantModel, cycles: int, stream: TextIO | None) -> None:
        self.plant = plant
        self.cycles = cycles
        self.stream = stream
        self.records: list[CycleRecord] = []
        self.profit: list[float] = []
        self.t0 = time.monotonic()

    def append(self, record: CycleRecord) -> None:
        meas = record.measurement
        y: dict[str, float] = {n: meas.value(n) for n in ("f_p", "f_e") if n in meas.names}
        u = record.u_plant
        self.records.append(record)
        self.profit.append(plant_profit(self.plant, y, u) if len(y) == 2 else math.nan)
        k = record.cycle + 1
        if self.stream is not None and (k % 10 == 0 or k == self.cycles):
            tgt = record.target
            end = "\r" if self.stream.isatty() else "\n"
            self.stream.write(
                f"{end if end == chr(13) else ''}  cycle {k:4d}/{self.cycles}  t={record.time_s / 3600:5.2f} h  "
                f"F_B={u[0]:.3f} kg/s  T_R={u[1] - C0:6.2f} °C  profit={self.profit[-1]:7.2f} $/s  "
                f"solve={record.solve_time_s * 1e3:5.1f} ms  "
                f"target src={tgt.source if tgt else '-':6s}  {record.write_status:9s}"
                + ("" if end == "\r" else "\n")
            )
            self.stream.flush()


async def run_demo(opts: DemoOptions, stream: TextIO | None = None) -> dict[str, Any]:
    """Run the whole demo; returns the summary (also written to ``summary.json``)."""
    out = opts.out_dir.expanduser().resolve()  # the bench file names paths; make them absolute
    out.mkdir(parents=True, exist_ok=True)
    plant = load("williams_otto")
    rto_model = load("williams_otto_2r")
    secure = make_secure_bench(out / "pki") if opts.secure else None
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    x_start = plant.steady_state(u=U0).x
    if x_start is None:  # pragma: no cover - steady_state raises unless usable
        raise RuntimeError("no steady state at the start inputs")
    bench = write_bench(out / "hil_bench.toml", "williams_otto", {}, endpoint=endpoint,
                        sample_time_s=DT if opts.lockstep else 10.0,
                        speed=None if opts.lockstep else opts.speed,
                        secure=secure, watchdog_timeout_s=600.0,
                        initial_state=plant.x.mapping(x_start), initial_inputs=plant.u.mapping(U0))
    ekf, mpc, stage, start = build_stack(plant, rto_model, x_start)
    credentials: dict[str, Any] = (
        {"security": secure.client, "username": secure.username, "password": secure.password}
        if secure else {}
    )
    settings = OpcUaSettings(endpoint=endpoint, sample_time_s=DT, lockstep=opts.lockstep,
                             **credentials)
    hist_path = out / "historian.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(hist_path) + suffix).unlink(missing_ok=True)
    progress = Progress(plant, opts.cycles, stream)
    hil = HilProcess(bench, log_path=out / "hil_server.log")
    t_start = time.monotonic()
    if stream:
        stream.write(f"starting HIL server (williams_otto, "
                     f"{'lockstep' if opts.lockstep else f'{opts.speed:g}x real time'}, "
                     f"{'SignAndEncrypt + user' if secure else 'no security'}) ...\n")
    async with hil:
        if stream:
            stream.write(f"HIL server ready at {hil.endpoint}; connecting the engine\n")
        io = OpcUaPlantIO(plant, settings, limits=MoveLimits.from_model(plant, RATE))
        # the plant starts where the HIL simulator starts: at U0, steady
        async with io:
            await io.request_mode(remote=True)
            hist = Historian(hist_path, HistorianLayout.for_model(plant, io.measurement_names))
            hist.begin_run("demo", mode="on", meta={"cycles": opts.cycles})
            loop = ControlLoop(plant, io, ekf, mpc,
                               LoopSettings(sample_time_s=DT, rto_every_n=1, speed=opts.speed),
                               target=start, target_source=stage,
                               recorders=[progress, HistorianRecorder(hist)])
            stats = await loop.run(opts.cycles)
            hist.close()
    wall = time.monotonic() - t_start
    if stream:
        stream.write("\n")
    summary = summarise(progress, stats, wall, opts)
    plot_trends(progress, out / "demo_trends.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def summarise(progress: Progress, stats: dict[str, float], wall_s: float,
              opts: DemoOptions) -> dict[str, Any]:
    """KPIs of the run."""
    recs = progress.records
    profit = np.array(progress.profit)
    tail = profit[-20:]
    xg = np.array([r.measurement.value("x_g") for r in recs])
    u = np.array([r.u_plant for r in recs])
    rto_iters = sum(1 for r in recs if r.rto_status.startswith("rto iteration"))
    final_profit = float(np.nanmean(tail))
    return {
        "plant": "williams_otto (HIL over OPC UA)", "rto_model": "williams_otto_2r",
        "cycles": len(recs), "plant_time_h": len(recs) * DT / 3600, "wall_time_s": wall_s,
        "speed": "lockstep" if opts.lockstep else opts.speed, "secure": opts.secure,
        "initial_profit": float(profit[0]), "final_profit": final_profit,
        "plant_optimum_profit": PUBLISHED_OPTIMUM["profit"],
        "gap_to_optimum_pct": 100 * (PUBLISHED_OPTIMUM["profit"] - final_profit)
        / PUBLISHED_OPTIMUM["profit"],
        "final_f_b": float(u[-1, 0]), "final_t_r_c": float(u[-1, 1] - C0),
        "optimum_f_b": PUBLISHED_OPTIMUM["f_b"], "optimum_t_r_c": PUBLISHED_OPTIMUM["t_r"] - C0,
        "rto_iterations": rto_iters,
        "x_g_max": float(np.max(xg)), "x_g_limit": X_G_MAX,
        "x_g_violation_time_s": float(np.sum(np.maximum(xg - X_G_MAX - 1e-4, 0) > 0) * DT),
        **{k: v for k, v in stats.items()},
    }


def plot_trends(progress: Progress, path: Path) -> None:
    """Profit, CVs and MVs against time, with the targets and limits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = progress.records
    t = np.array([r.time_s for r in recs]) / 3600
    meas = {n: np.array([r.measurement.value(n) for r in recs]) for n in ("x_p", "x_g")}
    tgt = {n: np.array([(r.target.y.get(n, np.nan) if r.target else np.nan) for r in recs])
           for n in ("x_p", "x_g")}
    u = np.array([r.u_plant for r in recs])
    fig, ax = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    ax[0].plot(t, progress.profit, label="plant profit")
    ax[0].axhline(PUBLISHED_OPTIMUM["profit"], ls="--", color="k", label="plant optimum")
    ax[0].set_ylabel("$/s")
    ax[1].plot(t, meas["x_p"], label="X_P measured")
    ax[1].plot(t, tgt["x_p"], ls="--", label="X_P target (RTO)")
    ax[1].plot(t, meas["x_g"], label="X_G measured")
    ax[1].plot(t, tgt["x_g"], ls="--", label="X_G target (RTO)")
    ax[1].axhline(X_G_MAX, color="r", lw=0.8, label="X_G limit")
    ax[1].set_ylabel("mass fraction")
    ax[2].plot(t, u[:, 0], label="F_B held by plant")
    ax[2].axhline(PUBLISHED_OPTIMUM["f_b"], ls="--", color="k", label="optimum")
    ax[2].set_ylabel("kg/s")
    ax[3].plot(t, u[:, 1] - C0, label="T_R held by plant")
    ax[3].axhline(PUBLISHED_OPTIMUM["t_r"] - C0, ls="--", color="k", label="optimum")
    ax[3].set_ylabel("°C")
    ax[3].set_xlabel("plant time [h]")
    for a in ax:
        a.legend(fontsize=8, loc="best")
        a.grid(True, alpha=0.3)
    fig.suptitle("rtompc demo: Williams–Otto over OPC UA — RTO (2-reaction model + modifier "
                 "adaptation) + NMPC", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
