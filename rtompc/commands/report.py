"""``rtompc report HISTORIAN.sqlite [--run ID] [-o OUT.html] [--list]``.

Writes a self-contained HTML report of one historian run (default: the latest):
metadata, CV/MV trends with limits and targets, controller/solver status, RTO targets
and profit, supervision flags and events, KPIs and the change journal. ``--list``
prints the runs instead. Errors (no such file, not a historian, no such run) exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from plant_models.errors import ConfigError
from rtompc.historian.reader import list_runs
from rtompc.report import MAX_POINTS, make_report


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``report`` sub-command."""
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report of a historian run",
        description="Write one self-contained HTML file (no network needed: uPlot and the data are "
        "inlined) "
        "with a run's metadata, CV and MV trends with limits and targets, controller and "
        "solver status, RTO targets and profit, supervision flags and events, KPIs and the "
        "change journal. Long runs are read in one streamed pass and the trends are "
        "downsampled (min/max per bucket) to --max-points; KPIs use every cycle.",
        epilog="Exit codes: 0 written, 2 bad input (no such file, not a historian, no such "
        "run). See docs/historian.md.",
    )
    p.add_argument("historian", type=Path, help="historian SQLite file")
    p.add_argument("--run", type=int, metavar="ID", help="run to report (default: the latest)")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        help="output HTML file (default: <historian stem>-run<ID>.html next to the historian)",
    )
    p.add_argument("--list", action="store_true", help="list the runs in the file and exit")
    p.add_argument(
        "--max-points",
        type=int,
        default=MAX_POINTS,
        metavar="N",
        help=f"at most N points per trend (default {MAX_POINTS}, at least 100)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report (or list the runs); returns the exit code."""
    if args.list:
        sys.stdout.write(list_runs(args.historian, args.json) + "\n")
        return 0
    if args.max_points < 100:
        raise ConfigError(f"--max-points {args.max_points}: expected at least 100")
    t0 = time.perf_counter()
    info, out = make_report(args.historian, args.out, run_id=args.run, max_points=args.max_points)
    elapsed = time.perf_counter() - t0
    if args.json:
        summary = {
            "run_id": info.run_id,
            "cycles": info.cycles,
            "out": str(out),
            "seconds": elapsed,
        }
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        sys.stdout.write(
            f"report of run {info.run_id} ({info.kind}, {info.cycles} cycles) written to {out} "
            f"in {elapsed:.2f} s\n"
        )
    return 0
