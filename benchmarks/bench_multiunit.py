"""Benchmark: several units in one engine, lockstep, in-process (``rtompc.multiunit``).

Two units (Van de Vusse CSTR, NMPC RTI + EKF, 20 s; quadruple tank, NMPC + EKF, 5 s), the
configs of ``tests/rtompc/site_helpers.py``, run ``--hours`` of plant time:

1. together in one :class:`~rtompc.multiunit.MultiUnitEngine` (lockstep: advanced together
   in plant time, solves in worker threads);
2. the peer, in the same process: each unit alone in its own engine, one after the other.

Printed per configuration: real-time factor of the site (plant time / wall time; the issue
asks >= 100x for the plant-wide case), wall and CPU time, and per unit the NMPC step median
and p95 against its sample time. Ratios: together / one after the other, in wall and CPU time
(> 1: the engine costs more than running the units back to back; < 1: the worker threads
overlap work). The machine load is printed: timings under load are noisy, compare CPU times.

Usage: ``.venv/bin/python benchmarks/bench_multiunit.py [--hours 2] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtompc.config.load import load_site  # noqa: E402
from rtompc.site_run import SiteRun  # noqa: E402
from tests.rtompc.site_helpers import REACTOR, TANKS, site_text  # noqa: E402


async def _run(path: Path, hours: float) -> dict[str, Any]:
    run = SiteRun(load_site(path), print_every=0, out=lambda s: None)
    await run.start()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    await run.run(duration_s=hours * 3600.0)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    await run.close()
    units = {}
    for name, u in run.units.items():
        solves = u.loop.stats.solve_times_s
        units[name] = {
            "dt": u.loop.settings.sample_time_s,
            "cycles": u.loop.stats.cycles,
            "solve_med_ms": 1e3 * solves.percentile(50),
            "solve_p95_ms": 1e3 * solves.percentile(95),
        }
    return {"wall": wall, "cpu": cpu, "units": units}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0, help="plant time per run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(
        f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, python "
        f"{sys.version.split()[0]}; {args.hours:g} h plant time, median of {args.repeat}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench_multiunit_"))
    inproc = 'kind = "inprocess"'
    both = tmp / "site.toml"
    both.write_text(site_text())
    alone = {
        "reactor": REACTOR.format(reactor_transport=inproc),
        "tanks": TANKS.format(tanks_transport=inproc),
    }
    paths = {}
    for name, text in alone.items():
        paths[name] = tmp / f"{name}.toml"
        paths[name].write_text(text)
    site_t, seq_t = [], []
    for _ in range(args.repeat):
        site_t.append(asyncio.run(_run(both, args.hours)))
        seq_t.append([asyncio.run(_run(p, args.hours)) for p in paths.values()])
    plant_s = args.hours * 3600.0

    def med(values: list[float]) -> float:
        return statistics.median(values)

    s_wall = med([r["wall"] for r in site_t])
    s_cpu = med([r["cpu"] for r in site_t])
    q_wall = med([sum(r["wall"] for r in rs) for rs in seq_t])
    q_cpu = med([sum(r["cpu"] for r in rs) for rs in seq_t])
    print(
        f"together (one engine)    : wall {s_wall:7.2f} s  cpu {s_cpu:7.2f} s  "
        f"real-time factor {plant_s / s_wall:5.0f}x (per CPU second {plant_s / s_cpu:5.0f}x)"
    )
    print(
        f"one after the other      : wall {q_wall:7.2f} s  cpu {q_cpu:7.2f} s  "
        f"real-time factor {plant_s / q_wall:5.0f}x (per CPU second {plant_s / q_cpu:5.0f}x)"
    )
    print(f"ratio together / alone   : wall {s_wall / q_wall:.2f}  cpu {s_cpu / q_cpu:.2f}")
    for name in alone:
        u = site_t[len(site_t) // 2]["units"][name]
        print(
            f"  {name:8s} NMPC step median {u['solve_med_ms']:6.2f} ms, p95 "
            f"{u['solve_p95_ms']:6.2f} ms vs sample time {u['dt']:g} s "
            f"({u['dt'] * 1e3 / u['solve_med_ms']:.0f}x headroom), {u['cycles']} cycles"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
