"""``rtompc export HISTORIAN.sqlite [--run ID | --all-runs] --format csv|parquet --out FILE``.

Streams one run of a historian (default: the latest) or all runs to CSV or
Parquet in bounded memory; the output file appears only when complete.
``--list-runs`` prints the runs the file holds instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rtompc.historian import ExportFormat, export
from rtompc.historian.reader import list_runs


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``export`` sub-command."""
    p = subparsers.add_parser(
        "export",
        help="export a historian file to CSV or Parquet",
        description="Export the per-cycle rows of a historian (SQLite) to CSV or Parquet "
        "(Parquet needs pyarrow), streamed in chunks; one run (default: the latest) or all.",
    )
    p.add_argument("historian", type=Path, help="historian SQLite file")
    p.add_argument(
        "--format",
        choices=[f.value for f in ExportFormat],
        default="csv",
        help="output format (default: csv)",
    )
    p.add_argument(
        "--out", type=Path, help="output file (default: historian name with the format's suffix)"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--run", type=int, metavar="ID", help="run to export (default: latest)")
    which.add_argument(
        "--all-runs", action="store_true", help="export every run (all columns, run_id first)"
    )
    which.add_argument("--list-runs", action="store_true", help="list the runs and exit")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the export; returns the exit code."""
    if args.list_runs:
        sys.stdout.write(list_runs(args.historian, args.json) + "\n")
        return 0
    fmt = ExportFormat(args.format)
    out = args.out or args.historian.with_suffix(f".{fmt.value}")
    n = export(args.historian, out, fmt, run_id=args.run, all_runs=args.all_runs)
    if args.json:
        json.dump({"rows": n, "out": str(out), "format": fmt.value}, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"exported {n} cycles to {out}\n")
    return 0
