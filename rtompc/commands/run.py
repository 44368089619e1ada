"""``rtompc run APP.toml [--mode off|shadow|on] [--steps N]``: the closed loop against a plant.

Reads the application config (:func:`rtompc.config.load_app`: plant, transport
— OPC UA to a PLC or HIL server, or in-process —, loop, ``[mpc]``,
``[estimator]``, ``[economics]`` + ``[rto]``, historian), builds the stack
(:mod:`rtompc.config.build`: PlantIO, EKF or MHE, NMPC, RTO stage) and runs
:class:`rtompc.runtime.ControlLoop` until ``loop.steps`` cycles or
SIGINT/SIGTERM. SHADOW (the default for ``run``) computes and logs every move
and writes nothing: the commissioning mode.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from plant_models.samples import Mode
from rtompc.config import build, load_app
from rtompc.cycle import CycleRecord
from rtompc.historian import HistorianRecorder
from rtompc.runtime import ControlLoop

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
    cfg = load_app(path)
    ms = build.models(cfg)
    model = ms.model
    estimator = build.estimator(cfg, model)
    controller = build.controller(cfg, model)
    target_source = build.rto_source(cfg, ms)
    io = build.plantio(cfg, ms.plant)
    recorders: list[Any] = [_Printer(every)]
    hist = build.historian(cfg, ms.plant, io.measurement_names)
    if hist is not None:
        recorders.append(HistorianRecorder(hist))
    loop = ControlLoop(
        model, io, estimator, controller,
        build.loop_settings(cfg, default_mode=Mode.SHADOW, mode=mode),
        target=build.initial_target(cfg), target_source=target_source, recorders=recorders,
        supervision=build.supervision(cfg),
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


CONFIG_HELP = (
    "The config file: every section and key with type, unit, default and meaning in "
    "docs/configuration.md; JSON Schema for editors: `rtompc config schema`; check a file "
    "before running it: `rtompc config check APP.toml [--connect]`; a starter file: "
    "`rtompc config init`. Commissioning a unit step by step: docs/commissioning.md."
)
"""Where ``rtompc run --help`` sends a person writing a config."""


def register(sub: Any) -> None:
    """Add the ``run`` command."""
    p = sub.add_parser(
        "run", help="run the closed loop from an application config (OPC UA or in-process)",
        description="Run the closed loop from an application config. " + CONFIG_HELP,
    )
    p.add_argument("config", help="application config (TOML)")
    p.add_argument("--mode", choices=[m.value for m in Mode], help="override loop.mode")
    p.add_argument("--steps", type=int, help="number of cycles (default: loop.steps, or until stopped)")
    p.add_argument("--print-every", type=int, default=10, help="print a line every N cycles (0: quiet)")
    p.set_defaults(func=_run)
