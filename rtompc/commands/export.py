"""``rtompc export HISTORIAN.sqlite --format csv|parquet --out FILE``: historian to a flat file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rtompc.historian import ExportFormat, export


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``export`` sub-command."""
    p = subparsers.add_parser(
        "export",
        help="export a historian file to CSV or Parquet",
        description="Export the per-cycle table of a historian (SQLite) to CSV or Parquet "
        "(Parquet needs pyarrow).",
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
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the export; returns the exit code."""
    fmt = ExportFormat(args.format)
    out = args.out or args.historian.with_suffix(f".{fmt.value}")
    n = export(args.historian, out, fmt)
    if args.json:
        json.dump({"rows": n, "out": str(out), "format": fmt.value}, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"exported {n} cycles to {out}\n")
    return 0
