"""``rtompc run APP.toml [--mode off|shadow|on] [--steps N]``: the closed loop against a plant.

Reads the application config (:mod:`rtompc.config`: plant, transport — OPC UA
to a PLC or HIL server, or in-process —, loop, ``[mpc]``, ``[estimator]``,
historian), builds the PlantIO, the estimator (EKF or MHE) and the NMPC, and
runs :class:`rtompc.runtime.ControlLoop` until ``loop.steps`` cycles or
SIGINT/SIGTERM. SHADOW (the default of the config loader) computes and logs
every move and writes nothing: the commissioning mode. An ``[rto]`` section is
not run by this command yet (the RTO stage runs in ``rtompc demo`` and in
scenarios); it is refused rather than ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from mpc import NmpcController, SolverKind
from mpc.estimation import ExtendedKalmanFilter, MheConfig, MovingHorizonEstimator
from plant_models.errors import ConfigError
from plant_models.samples import Mode, OperatingTarget
from rtompc.config import load_config
from rtompc.cycle import CycleRecord
from rtompc.historian import HistorianRecorder
from rtompc.runtime import ControlLoop, LoopSettings
from rtompc.scenarios.loader import estimator_from_table, mpc_from_table
from rtompc.scenarios.spec import EstimatorKind

logger = logging.getLogger(__name__)


class _Printer:
    """Prints one line every ``every`` cycles (a Recorder)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def append(self, rec: CycleRecord) -> None:
        if self.every and (rec.cycle % self.every == 0 or rec.events):
            u = ", ".join(f"{n}={v:.6g}" for n, v in zip(rec.mv_names, rec.u_computed, strict=True))
            events = f"  [{'; '.join(rec.events)}]" if rec.events else ""
            print(f"cycle {rec.cycle:6d} t={rec.time_s:10.1f}s {rec.mode.value:6s} "
                  f"{'link up' if rec.connected else 'LINK DOWN'} solver={rec.solver_status:10s} "
                  f"write={rec.write_status:13s} u: {u}{events}", flush=True)


async def run_app(path: Path, mode: Mode | None, steps: int | None, every: int) -> dict[str, float]:
    """Build everything from the config file and run the loop; returns the loop statistics."""
    cfg = load_config(path)
    if cfg.rto:
        raise ConfigError(f"{path}: rto: not supported by 'rtompc run' yet (remove the section)")
    model = cfg.load_plant()
    if not cfg.mpc:
        raise ConfigError(f"{path}: mpc: section required")
    if not cfg.estimator:
        raise ConfigError(f"{path}: estimator: section required")
    mpc_cfg, solver = mpc_from_table(path, cfg.section("mpc"), model)
    est = estimator_from_table(path, cfg.section("estimator"), model, cfg.loop.sample_time_s)
    x0 = dict(est.x0) or None
    estimator: Any = (
        MovingHorizonEstimator(model, est.config, MheConfig(horizon_steps=est.mhe_horizon_steps), x0=x0)
        if est.kind is EstimatorKind.MHE else ExtendedKalmanFilter(model, est.config, x0=x0)
    )
    controller = NmpcController(model, mpc_cfg, SolverKind(solver))
    io = cfg.build_plantio(model)
    recorders: list[Any] = [_Printer(every)]
    hist = cfg.open_historian(model, io.measurement_names) if cfg.historian else None
    if hist is not None:
        recorders.append(HistorianRecorder(hist))
    targets_y = {c.name: c.target for c in mpc_cfg.cvs if c.target is not None}
    targets_u = {m.name: m.target for m in mpc_cfg.mvs if m.target is not None}
    loop = ControlLoop(
        model, io, estimator, controller,
        LoopSettings(sample_time_s=cfg.loop.sample_time_s, mode=mode or cfg.loop.mode),
        target=OperatingTarget(0.0, y=targets_y, u=targets_u), recorders=recorders,
    )
    n = steps if steps is not None else cfg.loop.steps
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    ev_loop = asyncio.get_running_loop()
    for sig in stop_signals:
        ev_loop.add_signal_handler(sig, loop.stop)
    try:
        async with io:
            return await loop.run(n)
    finally:
        for sig in stop_signals:
            ev_loop.remove_signal_handler(sig)
        if hist is not None:
            hist.close()


def _run(args: argparse.Namespace) -> int:
    mode = Mode(args.mode) if args.mode else None
    stats = asyncio.run(run_app(Path(args.config), mode, args.steps, args.print_every))
    print("summary: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in stats.items()), file=sys.stdout)
    return 0


def register(sub: Any) -> None:
    """Add the ``run`` command."""
    p = sub.add_parser("run", help="run the closed loop from an application config (OPC UA or in-process)")
    p.add_argument("config", help="application config (TOML)")
    p.add_argument("--mode", choices=[m.value for m in Mode], help="override loop.mode")
    p.add_argument("--steps", type=int, help="number of cycles (default: loop.steps, or until stopped)")
    p.add_argument("--print-every", type=int, default=10, help="print a line every N cycles (0: quiet)")
    p.set_defaults(func=_run)
