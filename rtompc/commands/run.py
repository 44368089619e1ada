"""``rtompc run APP.toml [--mode off|shadow|on] [--steps N]``: the closed loop against a plant.

Reads the application config (:mod:`rtompc.config`: plant, transport — OPC UA
to a PLC or HIL server, or in-process —, loop, ``[mpc]``, ``[estimator]``,
historian), builds the PlantIO, the estimator (EKF or MHE) and the NMPC, and
runs :class:`rtompc.runtime.ControlLoop` until ``loop.steps`` cycles or
SIGINT/SIGTERM. SHADOW (the default of the config loader) computes and logs
every move and writes nothing: the commissioning mode. An ``[rto]`` section is
not run by this command yet (the RTO stage runs in ``rtompc demo`` and in
scenarios); it is refused rather than ignored.

Lifecycle (:mod:`rtompc.lifecycle`): every start-up check runs before the first
write (config complete, objective defined, historian writable, plant reachable,
clocks agree); SIGINT/SIGTERM let the current cycle complete, then the heartbeat
stops and the plant is handed back (``loop.on_stop``: ``local`` asks for LOCAL,
``hold`` leaves the last setpoints to the plant's watchdog); SIGUSR1 is an
operator's request for REMOTE (``loop.remote_policy = "operator"``). The exit
code is one of :class:`rtompc.lifecycle.ExitCode`.

A multi-unit config (``[[unit]]`` tables) is run by
:mod:`rtompc.commands.run_site`: every unit in one engine, the exit code the
worst unit's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import signal
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from plant_models.errors import PlantIOError
from plant_models.samples import Mode
from rtompc.config import AppConfig, build, load_app
from rtompc.config.engine_server_section import engine_server_settings
from rtompc.console import launch
from rtompc.cycle import CycleRecord
from rtompc.engine_namespace import engine_surface
from rtompc.historian.recorder import HistorianHealth
from rtompc.lifecycle import (
    ExitCode,
    RunOutcome,
    StartupError,
    check_clock,
    decide_exit,
    hand_back,
)
from rtompc.live.startup import live_for_run
from rtompc.live.view import EngineViews, Surface, UnitView
from rtompc.runtime import ControlLoop, LoopSettings
from rtompc.status import CvLimits, StatusFormatter

logger = logging.getLogger(__name__)


class _Printer:
    """Prints a status line every ``every`` cycles and one line per state change (a Recorder)."""

    def __init__(self, every: int, fmt: StatusFormatter) -> None:
        self.every = every
        self.fmt = fmt
        self.historian_health: Callable[[], HistorianHealth] | None = None
        """The historian recorder's health (None: no historian): a line when it degrades or
        recovers, and on every status line while it is degraded."""
        self._degraded = False

    def append(self, rec: CycleRecord) -> None:
        for line in self.fmt.event_lines(rec):
            print(line, flush=True)
        health = self.historian_health() if self.historian_health is not None else None
        if health is not None and health.degraded != self._degraded:
            self._degraded = health.degraded
            print(
                health.line() if health.degraded else f"historian back: {health.line()}", flush=True
            )
        if self.every and rec.cycle % self.every == 0:
            print(self.fmt.line(rec), flush=True)
            if health is not None and health.degraded:
                print(health.line(), flush=True)


async def run_app(
    path: Path,
    mode: Mode | None,
    steps: int | None,
    every: int,
    surfaces: Sequence[Surface] = (),
) -> tuple[RunOutcome, dict[str, float]]:
    """Build everything from the config file, check, run the loop, hand back; the outcome.

    ``surfaces``: operator surfaces (engine OPC UA server, web console) started beside the
    loop once the plant is connected, each given the application's :class:`EngineViews`,
    and stopped after the hand-back."""
    cfg = load_app(path)
    ms = build.models(cfg)
    model = ms.model
    estimator = build.estimator(cfg, model)
    controller = build.controller(cfg, model)
    target_source = build.rto_source(cfg, ms)
    io = build.plantio(cfg, ms.plant)
    settings = build.loop_settings(cfg, default_mode=Mode.SHADOW, mode=mode)
    run_mode = settings.mode
    tags = getattr(io, "tags", None)
    mpc_cfg, _ = build.mpc_config(cfg)
    cv_limits = {c.name: CvLimits(c.target, c.lower, c.upper) for c in mpc_cfg.cvs}
    fmt = (
        StatusFormatter.for_tags(model, cv_limits, (*tags.measurements, *tags.setpoints))
        if tags is not None
        else StatusFormatter(model, cv_limits)
    )
    printer = _Printer(every, fmt)
    recorders: list[Any] = [printer, *build.rto_recorders(target_source)]
    try:
        hist = build.historian(cfg, ms.plant, io.measurement_names)
    except (OSError, sqlite3.Error) as exc:
        raise StartupError(f"{path}: historian.path: not writable: {exc}") from None
    text = path.read_text()
    config_hash = hashlib.sha256(text.encode()).hexdigest()
    if hist is not None:
        hist.begin_run(
            "run",
            mode=run_mode,
            config_hash=config_hash,
            config_text=text,
            meta={"config": str(path)},
        )
        recorder = hist.recorder()
        printer.historian_health = recorder.health
        recorders.append(recorder)
    live = live_for_run(
        model,
        getattr(controller, "base_config", mpc_cfg),
        mode=run_mode,
        rto_enable=target_source is not None,
        historian=hist,
        config_hash=config_hash,
    )
    loop = ControlLoop(
        model,
        io,
        estimator,
        controller,
        settings,
        target=build.initial_target(cfg),
        target_source=target_source,
        recorders=recorders,
        supervision=build.supervision(cfg, model),
        live=live,
    )
    views = EngineViews([UnitView.for_loop(cfg.unit_name(), loop)])
    n = steps if steps is not None else cfg.loop.steps
    ev_loop = asyncio.get_running_loop()
    stopped_by: list[str] = []

    def stop(sig: signal.Signals) -> None:
        stopped_by.append(f"stopped by {sig.name}")
        loop.stop()

    handlers = {
        signal.SIGINT: stop,
        signal.SIGTERM: stop,
        signal.SIGUSR1: lambda _sig: loop.request_remote(),
    }
    for sig, handler in handlers.items():
        ev_loop.add_signal_handler(sig, handler, sig)
    outcome = RunOutcome(ExitCode.INTERNAL, "internal error")
    try:
        try:
            await io.connect()
        except PlantIOError as exc:
            outcome = RunOutcome(ExitCode.STARTUP, f"transport: {exc}")
            raise StartupError(f"{path}: transport: {exc}") from None
        try:
            _check_nodes(io, cfg, run_mode)
            await _check_clock(io, cfg, settings)
        except StartupError as exc:
            outcome = RunOutcome(ExitCode.STARTUP, str(exc))
            await io.close()
            raise
        async with contextlib.AsyncExitStack() as stack:
            try:
                for surface in surfaces:
                    await stack.enter_async_context(surface(views))
            except (OSError, ValueError) as exc:
                outcome = RunOutcome(ExitCode.STARTUP, f"operator surface: {exc}")
                await io.close()
                raise StartupError(f"{path}: operator surface: {exc}") from None
            try:
                stats = await loop.run(n)
            finally:
                if run_mode is Mode.ON:
                    handed = await hand_back(io, cfg.loop.on_stop, cfg.transport.mode_timeout_s)
                    print(f"hand-back ({cfg.loop.on_stop.value}): {handed}", flush=True)
                await io.close()
        outcome = (
            # stopped while starting (e.g. the operator surfaces): the loop never read its
            # plant, so its link and handshake say nothing about how the plant was left
            RunOutcome(ExitCode.OK, f"{stopped_by[0]}, before its first cycle")
            if stopped_by and loop.stats.cycles == 0
            else decide_exit(
                on=run_mode is Mode.ON,
                connected=loop.connected,
                in_control=loop.handshake.in_control,
                watchdog_trips=loop.handshake.watchdog_trips,
                last_drop=loop.handshake.last_drop,
                writes=loop.write_attempts - loop.stats.write_failures,
                write_failures=loop.stats.write_failures,
                max_write_failure_share=cfg.loop.max_write_failure_share,
                stopped_by=stopped_by[0] if stopped_by else "normal end",
            )
        )
    finally:
        for sig in handlers:
            ev_loop.remove_signal_handler(sig)
        if hist is not None:
            hist.end_run(outcome.reason, int(outcome.code))
            hist.close()
    return outcome, stats


def _check_nodes(io: Any, cfg: AppConfig, mode: Mode) -> None:
    """The transport's connect-time node checks (data type, access level, EURange vs MV
    limits): errors before an ON run (nothing written), warnings in SHADOW and OFF."""
    problems = list(getattr(io, "node_problems", ()))
    if not problems:
        return
    text = "; ".join(str(p) for p in problems)
    if mode is Mode.ON:
        raise StartupError(
            f"{cfg.source or 'config'}: transport.tags: {len(problems)} node problem(s), "
            f"nothing written: {text}"
        )
    print(
        f"warning: transport.tags: {len(problems)} node problem(s) (an ON run would refuse "
        f"to start): {text}",
        flush=True,
    )


async def _check_clock(io: Any, cfg: AppConfig, settings: LoopSettings) -> None:
    """Refuse to start when the loop's clock settings disagree with the server's."""
    info = getattr(io, "server_clock", None)
    if info is None:
        return
    clock = await info()
    problems = check_clock(
        lockstep=io.lockstep,
        sample_time_s=settings.sample_time_s,
        speed=settings.speed,
        server_lockstep=getattr(clock, "lockstep", None),
        server_step_s=getattr(clock, "step_s", None),
        server_speed=getattr(clock, "speed", None),
    )
    if problems:
        raise StartupError(f"{cfg.source or 'config'}: clock mismatch: " + "; ".join(problems))


def _run(args: argparse.Namespace) -> int:
    mode = Mode(args.mode) if args.mode else None
    from rtompc.config.load import is_multi_unit, read_toml

    _, data = read_toml(Path(args.config))
    if is_multi_unit(data):
        from rtompc.commands.run_site import run_site_command
        from rtompc.config.load import load_site

        site_path = Path(args.config)
        site = load_site(site_path)
        site_surfaces: list[Surface] = []
        site_console = launch.for_run(site, site_path, args.console)
        if site_console is not None:
            site_surfaces.append(
                launch.surface(site_console, lambda url: print(f"console: {url}", flush=True))
            )
        if site.engine_server is not None or args.engine_server is not None:
            server = engine_server_settings(site.engine_server, args.engine_server, str(site_path))
            site_surfaces.append(engine_surface(server))
            print(f"engine OPC UA server: {server.endpoint} (one object per unit)", flush=True)
        return run_site_command(site_path, mode, args.steps, args.print_every, site_surfaces)
    path = Path(args.config)
    surfaces: list[Surface] = []
    # the console's settings are checked before anything starts (a refused bind: exit 2)
    cfg = load_app(path)
    console = launch.for_run(cfg, path, args.console)
    if console is not None:
        surfaces.append(launch.surface(console, lambda url: print(f"console: {url}", flush=True)))
    if cfg.engine_server is not None or args.engine_server is not None:
        server = engine_server_settings(cfg.engine_server, args.engine_server, str(path))
        surfaces.append(engine_surface(server))
        print(f"engine OPC UA server: {server.endpoint} (namespace urn:rtompc:engine)", flush=True)
    outcome, stats = asyncio.run(
        run_app(path, mode, args.steps, args.print_every, surfaces=surfaces)
    )
    print(
        "summary: "
        + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()
        ),
        file=sys.stdout,
    )
    print(f"exit {int(outcome.code)} ({outcome.code.name.lower()}): {outcome.reason}", flush=True)
    return int(outcome.code)


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
        "run",
        help="run the closed loop from an application config (OPC UA or in-process)",
        description="Run the closed loop from an application config. " + CONFIG_HELP,
        epilog="exit codes: "
        + ", ".join(f"{int(c)} {c.name.lower()}" for c in ExitCode)
        + ". A multi-unit config ([[unit]] tables) runs every unit in one engine; its exit code "
        "is the worst unit's (internal > startup > link_lost > not_in_control > write_failures "
        "> ok); --steps counts each unit's own cycles.",
    )
    p.add_argument("config", help="application config (TOML)")
    p.add_argument("--mode", choices=[m.value for m in Mode], help="override loop.mode")
    p.add_argument(
        "--steps", type=int, help="number of cycles (default: loop.steps, or until stopped)"
    )
    p.add_argument(
        "--print-every",
        type=int,
        default=10,
        help="status line every N cycles (0: state changes only)",
    )
    p.add_argument(
        "--engine-server",
        metavar="URL",
        help="serve the engine's OPC UA namespace urn:rtompc:engine there (overrides "
        "engine_server.endpoint; security, cert_dir and users from [engine_server]); see "
        "docs/operator-surface.md",
    )
    p.add_argument(
        "--console",
        metavar="HOST:PORT",
        help="serve the live web console there (overrides console.bind; login from "
        "console.users; a non-loopback address also needs console.certificate and "
        "console.private_key); see docs/console.md",
    )
    p.set_defaults(func=_run)
