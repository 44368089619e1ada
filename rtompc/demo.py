"""``rtompc demo``: RTO + NMPC closing the loop over OPC UA against the HIL simulator.

The demo is the Williams–Otto reactor of the RTO literature (Marchetti,
Chachuat & Bonvin, Ind. Eng. Chem. Res. 48 (2009) 6022–6033):

- a HIL server (``rtompc hil serve``, a child process) simulates the
  three-reaction plant on loopback, secured by default (Basic256Sha256
  SignAndEncrypt, certificate trust lists both ways, a user with the
  controller role and a random password), running in accelerated real time;
- the whole engine stack comes from one config file,
  ``rtompc/data/demo_williams_otto.toml`` (units in °C and kg/s, security on);
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

import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from mpc import NmpcController
from plant_models.library.williams_otto import C0, PRICES, PUBLISHED_OPTIMUM
from plant_models.model import PlantModel
from plant_models.samples import Mode, OperatingTarget
from rtompc.config import AppConfig, Security, build, load_app
from rtompc.cycle import CycleRecord
from rtompc.hil_process import HilProcess, free_port, make_secure_bench, write_bench
from rtompc.historian import Historian, HistorianLayout, HistorianRecorder
from rtompc.historian.journal import HistorianJournal
from rtompc.live import LiveParameters
from rtompc.live.startup import record_initial
from rtompc.live.view import EngineViews, Surface, UnitView
from rtompc.runtime import ControlLoop

logger = logging.getLogger(__name__)

CONFIG = Path(__file__).parent / "data" / "demo_williams_otto.toml"
"""The demo's whole stack as a config file (plant, secured OPC UA, EKF, NMPC, RTO)."""
UNIT = "williams_otto"
"""The demo's unit name (operator surfaces show it)."""
X_G_MAX = 0.11
"""Soft upper limit on the by-product mass fraction (``mpc.cvs`` x_g upper in the file)."""


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
    plots: bool = True
    """Write ``demo_trends.png`` at the end."""
    mode: Mode = Mode.ON
    """The mode the loop starts in (SHADOW: computed, not written, until switched ON from an
    operator surface)."""


def plant_profit(plant: PlantModel, y: dict[str, float], u: np.ndarray) -> float:
    """Profit rate of the plant from its measured outputs, $/s."""
    return (PRICES["f_p"] * y["f_p"] + PRICES["f_e"] * y["f_e"]
            + PRICES["f_a"] * plant.nominal.d[0] + PRICES["f_b"] * float(u[0]))


def demo_config(path: Path = CONFIG) -> AppConfig:
    """The demo's config (``rtompc config check`` runs on the same file)."""
    return load_app(path)


def build_stack(cfg: AppConfig, ms: build.Models, x_start: np.ndarray) -> tuple[
        Any, NmpcController, Any, OperatingTarget]:
    """Estimator, controller, RTO stage and the initial target, all from the config; the
    initial CV targets are the plant's steady outputs at the start (no bump at switch-on)."""
    ekf = build.estimator(cfg, ms.model)
    mpc = build.controller(cfg, ms.model)
    stage = build.rto_source(cfg, ms)
    u0 = ms.plant.u.vector(dict(cfg.plant.u0))
    y0 = ms.plant.y.mapping(ms.plant.outputs(x_start, u0))
    base = build.initial_target(cfg)
    start = OperatingTarget(0.0, y={n: y0[n] for n in base.y}, u=dict(base.u))
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


async def run_demo(opts: DemoOptions, stream: TextIO | None = None,
                   surfaces: Sequence[Surface] = ()) -> dict[str, Any]:
    """Run the whole demo; returns the summary (also written to ``summary.json``).

    ``surfaces``: operator surfaces served beside the loop (engine OPC UA server, web
    console), given the demo's :class:`EngineViews` (one unit, ``williams_otto``); their
    changes go through the demo's live parameters, journaled in its historian."""
    out = opts.out_dir.expanduser().resolve()  # the bench file names paths; make them absolute
    out.mkdir(parents=True, exist_ok=True)
    cfg = demo_config()
    ms = build.models(cfg)
    plant = ms.plant
    dt = build.sample_time(cfg)
    secure = make_secure_bench(out / "pki") if opts.secure else None
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    u0 = plant.u.vector(dict(cfg.plant.u0))
    x_start = plant.steady_state(u=u0).x
    if x_start is None:  # pragma: no cover - steady_state raises unless usable
        raise RuntimeError("no steady state at the start inputs")
    bench = write_bench(out / "hil_bench.toml", cfg.plant.name, {}, endpoint=endpoint,
                        sample_time_s=dt if opts.lockstep else 10.0,
                        speed=None if opts.lockstep else opts.speed,
                        secure=secure, watchdog_timeout_s=600.0,
                        initial_state=plant.x.mapping(x_start), initial_inputs=plant.u.mapping(u0))
    ekf, mpc, stage, start = build_stack(cfg, ms, x_start)
    # the PKI is made fresh for each run: the file's certificate paths point into it
    if secure is not None:
        sec = secure.client
        transport = cfg.transport.model_copy(update={
            "certificate": sec.certificate, "private_key": sec.private_key,
            "trust_list": list(sec.trust_locations), "application_uri": sec.application_uri,
            "user": secure.username, "lockstep": opts.lockstep, "speed": opts.speed})
        password: str | None = secure.password
    else:
        transport = cfg.transport.model_copy(update={
            "security": Security.NONE, "user": None, "password_env": None,
            "lockstep": opts.lockstep, "speed": opts.speed})
        password = None
    run_cfg = cfg.model_copy(update={"transport": transport})
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
        io = build.plantio(run_cfg, plant, endpoint=endpoint, password=password)
        # the plant starts where the HIL simulator starts: at u0, steady
        async with io:
            await io.request_mode(remote=True)
            hist = Historian(hist_path, HistorianLayout.for_model(plant, io.measurement_names))
            hist.begin_run("demo", mode=opts.mode.value, meta={"cycles": opts.cycles},
                           config_text=CONFIG.read_text(encoding="utf-8"))
            settings = build.loop_settings(run_cfg, default_mode=Mode.ON, mode=opts.mode)
            # the operators' CV setpoints start where the loop starts: the plant's outputs at
            # the start, held until the RTO moves them (not the file's nominal CV targets,
            # which would override the start target and fight its MV targets)
            live_base = dataclasses.replace(mpc.base_config, cvs=tuple(
                dataclasses.replace(c, target=start.y.get(c.name, c.target))
                for c in mpc.base_config.cvs))
            live = LiveParameters(ms.model, live_base, mode=settings.mode,
                                  rto_enable=stage is not None, journal=HistorianJournal(hist))
            record_initial(hist, live)  # limits over the run for `rtompc report`
            loop = ControlLoop(ms.model, io, ekf, mpc, settings,
                               target=start, target_source=stage,
                               recorders=[progress, HistorianRecorder(hist)],
                               supervision=build.supervision(run_cfg), live=live)
            views = EngineViews([UnitView.for_loop(UNIT, loop)])
            async with contextlib.AsyncExitStack() as stack:
                for surface in surfaces:
                    await stack.enter_async_context(surface(views))
                cpu0 = time.process_time()
                try:
                    stats = await loop.run(opts.cycles)
                except BaseException as exc:
                    hist.end_run(f"demo failed: {type(exc).__name__}: {exc}", 1)
                    hist.close()
                    raise
            # the engine's CPU per cycle (all its threads; the HIL is another process): a
            # figure that load on the machine changes far less than the wall times
            cpu_ms = (time.process_time() - cpu0) * 1e3 / max(1, stats.get("cycles", 1))
            hist.end_run(f"demo finished: {stats.get('cycles', opts.cycles):g} cycles", 0)
            hist.close()
    wall = time.monotonic() - t_start
    if stream:
        stream.write("\n")
    summary = summarise(progress, {**stats, "engine_cpu_ms_per_cycle": cpu_ms}, wall, opts, dt,
                        loop.stats.breakdown())
    if opts.plots:
        plot_trends(progress, out / "demo_trends.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def summarise(progress: Progress, stats: dict[str, float], wall_s: float,
              opts: DemoOptions, dt: float = 60.0,
              breakdown: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """KPIs of the run; ``breakdown``: the cycle's phases (``LoopStats.breakdown``)."""
    recs = progress.records
    profit = np.array(progress.profit)
    tail = profit[-20:]
    xg = np.array([r.measurement.value("x_g") for r in recs])
    u = np.array([r.u_plant for r in recs])
    rto_iters = sum(1 for r in recs if r.rto_status.startswith("rto iteration"))
    final_profit = float(np.nanmean(tail))
    return {
        "plant": "williams_otto (HIL over OPC UA)", "rto_model": "williams_otto_2r",
        "cycles": len(recs), "plant_time_h": len(recs) * dt / 3600, "wall_time_s": wall_s,
        "speed": "lockstep" if opts.lockstep else opts.speed, "secure": opts.secure,
        "period_ms": None if opts.lockstep else dt / opts.speed * 1e3,
        "initial_profit": float(profit[0]), "final_profit": final_profit,
        "plant_optimum_profit": PUBLISHED_OPTIMUM["profit"],
        "gap_to_optimum_pct": 100 * (PUBLISHED_OPTIMUM["profit"] - final_profit)
        / PUBLISHED_OPTIMUM["profit"],
        "final_f_b": float(u[-1, 0]), "final_t_r_c": float(u[-1, 1] - C0),
        "optimum_f_b": PUBLISHED_OPTIMUM["f_b"], "optimum_t_r_c": PUBLISHED_OPTIMUM["t_r"] - C0,
        "rto_iterations": rto_iters,
        "x_g_max": float(np.max(xg)), "x_g_limit": X_G_MAX,
        "x_g_violation_time_s": float(np.sum(np.maximum(xg - X_G_MAX - 1e-4, 0) > 0) * dt),
        **{k: v for k, v in stats.items()},
        "cycle_breakdown_ms": breakdown or {},
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
