"""Benchmark: campaign throughput and in-process closed-loop speed versus real time.

1. Throughput (scenarios per minute) of ``run_campaign`` over the fast scenario
   subset with 1 and 2 local worker processes (process start-up included).
   ``--dask`` adds the same files on a Dask LocalCluster (cluster start-up excluded).
2. Closed-loop speed of the Van de Vusse CSTR with NMPC (RTI) + EKF, in-process
   lockstep (``scenarios/vdv_setpoint_step.toml``): plant time / wall time of the
   loop, median of ``--repeat`` runs (target >= 200x), and the per-cycle time;
   then the same loop over OPC UA against the HIL server (lockstep, loopback).

Usage: ``.venv/bin/python benchmarks/bench_campaign.py [--repeat 3] [--tag fast|all]``
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
from pathlib import Path

from rtompc.scenarios.campaign import CampaignResult, discover, run_campaign
from rtompc.scenarios.runner import run_scenario

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="closed-loop repetitions")
    parser.add_argument(
        "--tag", default="fast", help="scenario tag for the throughput runs ('all': whole suite)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--dask", action="store_true", help="also run on a Dask LocalCluster with max(--workers)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")

    cstr = ROOT / "scenarios" / "vdv_setpoint_step.toml"
    factors, per_cycle = [], []
    for _ in range(args.repeat):
        r = run_scenario(cstr)
        factors.append(r.kpis["realtime_factor"])
        per_cycle.append(r.kpis["wall_time_s"] / r.kpis["cycles"] * 1e3)
        solve = r.kpis["solve_ms_median"], r.kpis["solve_ms_p95"]
    med = statistics.median(factors)
    print(
        f"closed loop, Van de Vusse CSTR + NMPC (RTI, N=20) + EKF, in-process lockstep, "
        f"{r.kpis['cycles']:.0f} cycles of 20 s:"
    )
    print(
        f"  speed vs real time: median {med:.0f}x (runs: "
        f"{', '.join(f'{f:.0f}x' for f in factors)}); target >= 200x: "
        f"{'met' if med >= 200 else 'NOT met'}"
    )
    print(
        f"  wall time per cycle: median {statistics.median(per_cycle):.2f} ms; "
        f"controller step median {solve[0]:.2f} ms, p95 {solve[1]:.2f} ms"
    )

    hil = run_scenario(ROOT / "scenarios" / "hil_vdv_setpoint_step.toml")
    print(
        f"  same loop over OPC UA against the HIL server (loopback, lockstep): "
        f"{hil.kpis['realtime_factor']:.0f}x real time, "
        f"{hil.kpis['wall_time_s'] / hil.kpis['cycles'] * 1e3:.2f} ms per cycle; "
        f"IAE c_B {hil.kpis['iae.c_b']:.6g} vs in-process {r.kpis['iae.c_b']:.6g}"
    )

    files = discover([ROOT / "scenarios"], tags=[] if args.tag == "all" else [args.tag])
    print(f"campaign throughput over {len(files)} scenarios tagged {args.tag!r}:")
    base = 0.0  # throughput of the first run, the reference of the ratios
    for w in args.workers:
        c = run_campaign(files, workers=w)
        base = base or c.throughput_per_min
        _print_throughput(f"{w} worker(s)", c, base)
    if args.dask:
        from distributed import LocalCluster

        logging.getLogger("distributed").setLevel(logging.ERROR)  # after import: it sets INFO
        n = max(args.workers)
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True) as cluster:
            c = run_campaign(files, scheduler=cluster.scheduler_address)
        _print_throughput(f"Dask LocalCluster, {n} worker processes", c, base)
    return 0


def _print_throughput(label: str, c: CampaignResult, base: float) -> None:
    """One throughput line: wall time, scenarios/min, ratio to the first run, outcome counts."""
    counts = c.counts()
    print(
        f"  {label}: {c.wall_time_s:.1f} s, {c.throughput_per_min:.1f} scenarios/min "
        f"(x{c.throughput_per_min / base:.2f}); {counts['passed']} passed, "
        f"{counts['failed']} failed, {counts['error']} errors"
    )


if __name__ == "__main__":
    sys.exit(main())
