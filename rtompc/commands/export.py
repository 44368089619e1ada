"""``rtompc export HISTORIAN.sqlite [--run ID | --all-runs] --format csv|parquet --out FILE``.

Streams one run of a historian (default: the latest) or all runs to CSV or
Parquet in bounded memory; the output file appears only when complete.
``--list-runs`` prints the runs the file holds instead.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

from plant_models.errors import ConfigError
from rtompc.historian import ExportFormat, export


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


def _list_runs(path: Path, as_json: bool) -> int:
    if not path.is_file():
        raise ConfigError(f"historian {path}: file not found")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT r.run_id, r.kind, r.mode, r.start_wall_time_s, r.stop_wall_time_s, "
            "r.exit_reason, r.exit_code, r.config_hash, "
            "(SELECT COUNT(*) FROM cycles c WHERE c.run_id = r.run_id) FROM runs r "
            "ORDER BY r.run_id"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"historian {path}: no runs table ({exc}); schema-1 files hold one run"
        ) from None
    finally:
        con.close()
    keys = (
        "run_id",
        "kind",
        "mode",
        "start_wall_time_s",
        "stop_wall_time_s",
        "exit_reason",
        "exit_code",
        "config_hash",
        "cycles",
    )
    if as_json:
        json.dump([dict(zip(keys, r, strict=True)) for r in rows], sys.stdout)
        sys.stdout.write("\n")
        return 0

    def when(t: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"

    for r in rows:
        sys.stdout.write(
            f"run {r[0]:4d}  {r[1]:9s} {r[2] or '-':7s} {when(r[3])} .. {when(r[4])}  "
            f"{r[8]:8d} cycles  exit {r[6] if r[6] is not None else '-'} {r[5] or ''}\n"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the export; returns the exit code."""
    if args.list_runs:
        return _list_runs(args.historian, args.json)
    fmt = ExportFormat(args.format)
    out = args.out or args.historian.with_suffix(f".{fmt.value}")
    n = export(args.historian, out, fmt, run_id=args.run, all_runs=args.all_runs)
    if args.json:
        json.dump({"rows": n, "out": str(out), "format": fmt.value}, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"exported {n} cycles to {out}\n")
    return 0
