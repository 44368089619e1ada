"""``rtompc campaign DIR``: run scenario files in parallel (process pool or Dask) with reports."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from rtompc.scenarios.campaign import run_campaign
from rtompc.scenarios.reports import write_html, write_json, write_junit
from rtompc.scenarios.result import ScenarioResult


class _ProgressBar:
    """Campaign progress on stderr: a bar, counts, failures so far and an ETA, one line per result.

    One line per finished scenario (not a carriage-return redraw) so that a nightly job's log keeps
    the order in which scenarios finished and why any failed.
    """

    WIDTH = 24

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._bad = 0

    def __call__(self, done: int, total: int, result: ScenarioResult) -> None:
        if not result.passed:
            self._bad += 1
        filled = round(self.WIDTH * done / total) if total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        elapsed = time.perf_counter() - self._t0
        eta = elapsed / done * (total - done) if done else 0.0
        reason = f"  {result.message.splitlines()[0]}" if result.message else ""
        line = (
            f"[{bar}] [{done}/{total}] {result.status.value.upper():6s} {result.name} "
            f"({result.wall_time_s:.1f} s; {self._bad} not passed; "
            f"elapsed {elapsed:.0f} s, ETA {eta:.0f} s){reason}"
        )
        print(line[:240], file=sys.stderr, flush=True)


def _worker_logging(level: int) -> None:
    """Spawned workers start without logging: give them the CLI's level and format."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _run(args: argparse.Namespace) -> int:
    campaign = run_campaign(
        args.dirs,
        workers=args.workers,
        scheduler=args.scheduler,
        tags=tuple(args.filter or ()),
        progress=None if args.quiet else _ProgressBar(),
        worker_init=_worker_logging,
        worker_init_args=(logging.getLogger().getEffectiveLevel(),),
    )
    out = Path(args.out)
    for r in campaign.results:
        write_json(r, out / "json")
    html = write_html(campaign.results, out / "report.html")
    junit = write_junit(campaign.results, args.junit or out / "junit.xml")
    counts = campaign.counts()
    print(
        f"{len(campaign.results)} scenarios in {campaign.wall_time_s:.1f} s "
        f"({campaign.throughput_per_min:.1f}/min, {campaign.workers} workers, "
        f"{campaign.backend}): {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['error']} errors"
    )
    for r in campaign.results:
        if not r.passed:
            print(
                f"  {r.status.value.upper()} {r.name}: {r.message.splitlines()[0] if r.message else ''}"
            )
    print(f"reports: {html}, {junit}, {out / 'json'}/")
    return 0 if campaign.passed else 1


def register(sub: Any) -> None:
    """Add the ``campaign`` command."""
    p = sub.add_parser(
        "campaign",
        help="run a directory of scenarios in parallel, write reports",
        description="Run scenario TOML files in parallel on a local process pool "
        "or a Dask cluster; write JSON per scenario, an HTML report and "
        "JUnit XML. Exit code 0 when every scenario passed.",
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="scenario directories or files")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (local)")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler address (e.g. tcp://127.0.0.1:8786) instead of local",
    )
    p.add_argument("--out", default="rtompc-campaign", help="output directory for the reports")
    p.add_argument(
        "--junit", default=None, metavar="FILE", help="JUnit XML path (default OUT/junit.xml)"
    )
    p.add_argument(
        "--filter",
        action="append",
        metavar="TAG",
        help="only scenarios with this tag (repeatable: any of the tags)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-scenario progress lines")
    p.set_defaults(func=_run)
