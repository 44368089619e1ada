"""``rtompc run SITE.toml``: a multi-unit application (``[[unit]]`` tables) in one engine.

Builds every unit (:class:`rtompc.site_run.SiteRun`), connects and checks all of
them before anything is written (all-or-nothing start-up, exit 2), runs them
concurrently until each has done ``--steps`` (or its ``loop.steps``) cycles or
SIGINT/SIGTERM, hands each plant back and prints one summary line per unit and
the site's exit code: the worst unit's. SIGUSR1 asks every unit's plant for
REMOTE again (``loop.remote_policy = "operator"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from pathlib import Path

from plant_models.samples import Mode
from rtompc.config.load import load_site
from rtompc.lifecycle import RunOutcome, StartupError
from rtompc.live.view import Surface
from rtompc.site_run import SiteRun


async def run_site(
    path: Path,
    mode: Mode | None,
    steps: int | None,
    every: int,
    surfaces: Sequence[Surface] = (),
) -> tuple[RunOutcome, dict[str, dict[str, float]]]:
    """Load, build, check, run and close a multi-unit application; its outcome and stats.
    ``surfaces`` (engine OPC UA namespace, console) get every unit's view after the
    start-up checks, before the first cycle."""
    site = load_site(path)
    run = SiteRun(site, mode=mode, print_every=every)
    ev_loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        run.stop(f"stopped by {sig.name}")

    def remote(_sig: signal.Signals) -> None:
        for u in run.units.values():
            u.loop.request_remote()

    handlers = {signal.SIGINT: stop, signal.SIGTERM: stop, signal.SIGUSR1: remote}
    for sig, handler in handlers.items():
        ev_loop.add_signal_handler(sig, handler, sig)
    try:
        await run.start()
        print(
            f"site {path.name}: {len(run.units)} unit(s): "
            + ", ".join(
                f"{n} ({u.mode.value}, {u.loop.settings.sample_time_s:g} s)"
                for n, u in run.units.items()
            ),
            flush=True,
        )
        stats: dict[str, dict[str, float]] = {}
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    for surface in surfaces:
                        await stack.enter_async_context(surface(run.views))
                except (OSError, ValueError) as exc:
                    raise StartupError(f"{path}: operator surface: {exc}") from None
                stats = await run.run(steps)
        finally:
            outcome = await run.close()
    finally:
        for sig in handlers:
            ev_loop.remove_signal_handler(sig)
    return outcome, stats


def run_site_command(
    path: Path,
    mode: Mode | None,
    steps: int | None,
    every: int,
    surfaces: Sequence[Surface] = (),
) -> int:
    """``rtompc run`` for a multi-unit file: prints a summary per unit and the exit code."""
    outcome, stats = asyncio.run(run_site(path, mode, steps, every, surfaces))
    for name, summary in stats.items():
        print(
            f"summary {name}: "
            + ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()
            ),
            flush=True,
        )
    print(f"exit {int(outcome.code)} ({outcome.code.name.lower()}): {outcome.reason}", flush=True)
    return int(outcome.code)
