"""Benchmark: the plant-wide steel site (two units on two PLCs) in lockstep over secured OPC UA.

Runs ``rtompc demo --case steel-energy`` (:func:`rtompc.steel_demo.run_steel_demo`: gas
network 60 s + reheating furnace 300 s on a two-endpoint HIL bench in a child process,
SignAndEncrypt, plant-wide RTO from ``[plantwide]``) and, as the peer in the same process, the
same site with fixed setpoints (no plant-wide RTO), on the same event. Printed per run: the
site's real-time factor (plant time / wall time; issue 16 asks >= 100x), per CPU second of
the engine process, each unit's NMPC step median and p95 against its sample time, the number
of RTO runs, the profit with the holder inventory valued, and the load average. Ratios: RTO /
fixed in wall and CPU speed, and the economic gain of the RTO. Under load compare the CPU
figures: the wall ones move with what else runs on the machine.

Usage: ``.venv/bin/python benchmarks/bench_steel_site.py [--hours 3] [--event bf_stop]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rtompc.steel_demo import SteelDemoOptions, run_steel_demo  # noqa: E402
from rtompc.steel_site_config import FURNACE, NETWORK  # noqa: E402


def _run(out: Path, event: str, hours: float, use_rto: bool) -> dict[str, Any]:
    opts = SteelDemoOptions(out=out, event=event, hours=hours, use_rto=use_rto, plots=False)
    return asyncio.run(run_steel_demo(opts, lambda s: None))


def _line(name: str, k: dict[str, Any]) -> str:
    units = "; ".join(
        f"{u} NMPC median {k[f'{u}_nmpc_ms_median']:.0f} ms, p95 {k[f'{u}_nmpc_ms_p95']:.0f} ms "
        f"per {k[f'{u}_sample_s']:.0f} s ({k[f'{u}_sample_s'] * 1e3 / k[f'{u}_nmpc_ms_p95']:.0f}x "
        "headroom at p95)"
        for u in (NETWORK, FURNACE)
    )
    return (
        f"{name:16s} {k['realtime_factor']:6.0f}x real time, {k['realtime_factor_cpu']:6.0f}x per "
        f"CPU s; {units}; RTO runs {k['rto_runs']}; profit with inventory "
        f"{k['profit_with_inventory_usd']:,.0f} USD; load {k['load_average']:.1f}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--event", default="bf_stop")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(f"load average before: {os.getloadavg()[0]:.1f} (2 cores shared: compare CPU figures)")
    with tempfile.TemporaryDirectory() as tmp:
        rto = _run(Path(tmp) / "rto", args.event, args.hours, True)
        fixed = _run(Path(tmp) / "fixed", args.event, args.hours, False)
    print(f"steel site, {args.event}, {args.hours:g} h plant time, lockstep over SignAndEncrypt")
    print(_line("plant-wide RTO", rto))
    print(_line("fixed setpoints", fixed))
    print(
        f"ratio RTO / fixed: speed {rto['realtime_factor'] / fixed['realtime_factor']:.2f} wall, "
        f"{rto['realtime_factor_cpu'] / fixed['realtime_factor_cpu']:.2f} CPU; economic gain of "
        f"the RTO {rto['profit_with_inventory_usd'] - fixed['profit_with_inventory_usd']:+,.0f} "
        f"USD in {args.hours:g} h (holder inventory valued)"
    )
    ok = min(rto["realtime_factor"], fixed["realtime_factor"]) >= 100.0
    print(f">= 100x real time: {'yes' if ok else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
