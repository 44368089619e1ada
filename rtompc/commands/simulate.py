"""``rtompc simulate CONFIG.toml``: run one scenario in-process (lockstep) and print its KPIs."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from rtompc.scenarios.reports import write_html, write_json
from rtompc.scenarios.result import to_jsonable
from rtompc.scenarios.runner import run_scenario


def _rt(kpis: dict[str, float]) -> float:
    """Real-time factor of a run (a plant-wide run: of the whole site)."""
    return kpis.get("realtime_factor", kpis.get("site.realtime_factor", math.nan))


def _run(args: argparse.Namespace) -> int:
    result = run_scenario(args.config)
    if args.out:
        write_json(result, args.out)
        write_html([result], f"{args.out}/{result.name}.html", title=f"rtompc: {result.name}")
    if args.json:
        print(json.dumps(to_jsonable(result, include_trace=False), indent=1, allow_nan=False))
    else:
        print(
            f"{result.name}: {result.status.value} ({result.wall_time_s:.1f} s wall, "
            f"{_rt(result.kpis):.0f}x real time)"
        )
        for key, value in sorted(result.kpis.items()):
            print(f"  {key:32s} {value:.6g}")
        for c in result.criteria:
            print(f"  criterion {c.describe()}")
        if args.out:
            print(f"wrote {args.out}/{result.name}.json and .html")
    return 0 if result.passed else 1


def register(sub: Any) -> None:
    """Add the ``simulate`` command."""
    p = sub.add_parser(
        "simulate",
        help="run one scenario file (lockstep, in-process by default), print KPIs; "
        "a plant-wide file ([[unit]] tables) runs every unit",
        description="Run a closed-loop scenario (plant simulated in-process, "
        "lockstep) and print its KPIs and criteria. Exit code 0 when "
        "every criterion holds, 1 otherwise.",
        epilog="A scenario file is an application config plus [[event]], [[fault]] and "
        "[[criterion]] tables: keys in docs/configuration.md, JSON Schema from "
        "`rtompc config schema --scenario`, offline check with `rtompc config check FILE`.",
    )
    p.add_argument("config", help="scenario TOML file")
    p.add_argument("--json", action="store_true", help="print the result (without trace) as JSON")
    p.add_argument("--out", default=None, help="also write <name>.json and <name>.html here")
    p.set_defaults(func=_run)
