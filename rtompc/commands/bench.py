"""``rtompc bench NAME [ARGS...]``: run a benchmark script from the repository's benchmarks/.

Benchmarks are scripts, not tests: each prints medians and ratios against a
peer run in the same process. ``rtompc bench --list`` shows them; the
remaining arguments go to the script.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path
from typing import Any

from plant_models.errors import ConfigError

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def available() -> dict[str, Path]:
    """Benchmark names (file stem without ``bench_``) and their paths."""
    if not BENCH_DIR.is_dir():
        return {}
    return {p.stem.removeprefix("bench_"): p for p in sorted(BENCH_DIR.glob("bench_*.py"))}


def _run(args: argparse.Namespace) -> int:
    benches = available()
    if args.list or not args.name:
        if not benches:
            print(f"no benchmarks found (expected scripts in {BENCH_DIR}; they ship with the "
                  "source checkout, not the wheel)")
            return 0
        for name, path in benches.items():
            doc = (path.read_text().split('"""')[1].strip().splitlines() or [""])[0]
            print(f"{name:16s} {doc}")
        return 0
    if args.name not in benches:
        raise ConfigError(f"unknown benchmark {args.name!r}; known: {', '.join(benches) or '(none)'}")
    sys.argv = [str(benches[args.name]), *args.args]
    runpy.run_path(str(benches[args.name]), run_name="__main__")
    return 0


def register(sub: Any) -> None:
    """Add the ``bench`` command."""
    p = sub.add_parser("bench", help="run a benchmark script (median timings and ratios)")
    p.add_argument("name", nargs="?", help="benchmark name, e.g. mpc_cstr, hil, io, campaign")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark script")
    p.add_argument("--list", action="store_true", help="list the benchmarks")
    p.set_defaults(func=_run)
