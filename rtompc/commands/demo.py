"""``rtompc demo``: the README's main job — RTO + NMPC over OPC UA against the HIL simulator.

See :mod:`rtompc.demo` for what runs. Exit code 0 when the loop ran to the end;
the KPIs are printed (``--json`` for machines) and written to ``summary.json``
next to ``demo_trends.png`` and ``historian.sqlite`` in ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from rtompc.demo import DemoOptions, run_demo


def _run_steel(args: argparse.Namespace) -> int:
    from rtompc.steel_demo import SteelDemoOptions, kpi_lines, run_steel_demo

    if args.console is not None or args.engine_server is not None or args.insecure:
        print("rtompc demo --case steel-energy: --console, --engine-server and --insecure are "
              "not available for this case yet", file=sys.stderr)
        return 2
    opts = SteelDemoOptions(
        out=Path(args.out), event=args.event, hours=args.hours, use_rto=not args.fixed
    )
    if not args.json:
        print("rtompc demo --case steel-energy: steel works gas network on a HIL OPC UA server "
              f"(child process, lockstep, SignAndEncrypt); event {args.event}; EKF + NMPC, "
              + ("fixed setpoints" if args.fixed else "plant-wide RTO through the coordinator"),
              flush=True)
    kpis = asyncio.run(run_steel_demo(opts, (lambda s: None) if args.json else print))
    if args.json:
        print(json.dumps(kpis, indent=2))
    else:
        for line in kpi_lines(kpis):
            print(line)
        print(f"wrote {opts.out / 'steel_trends.png'}, {opts.out / 'steel.sqlite'}, "
              f"{opts.out / 'kpis.json'}")
    return int(kpis["exit_code"])


def _run(args: argparse.Namespace) -> int:
    if args.case == "steel-energy":
        return _run_steel(args)
    opts = DemoOptions(out_dir=Path(args.out), cycles=args.cycles, speed=args.speed,
                       lockstep=args.lockstep, secure=not args.insecure,
                       progress=not args.json)
    stream = None if args.json else sys.stdout
    surfaces = []
    if args.console is not None:
        from rtompc.console import launch

        users = Path(args.console_users) if args.console_users else None
        settings = launch.for_demo(Path(args.out), args.console, users)
        note = "" if users else (f"  (log in as operator or engineer; passwords in "
                                 f"{Path(args.out) / 'console-login.txt'})")
        surfaces.append(launch.surface(
            settings, lambda url: print(f"console: {url}{note}", flush=True)))
    if args.engine_server is not None:
        from rtompc.engine_namespace import demo_settings, engine_surface

        server = demo_settings(Path(args.out), args.engine_server)
        surfaces.append(engine_surface(server))
        print(f"engine OPC UA server: {server.endpoint} (urn:rtompc:engine; SignAndEncrypt; "
              f"trust your client by copying its certificate into {server.cert_dir}/trusted/; "
              f"users in {Path(args.out) / 'engine-login.txt'})", flush=True)
    if stream:
        print("rtompc demo: Williams-Otto reactor on a HIL OPC UA server (child process); "
              "EKF + NMPC + economic RTO (2-reaction model, modifier adaptation) over OPC UA")
    summary = asyncio.run(run_demo(opts, stream, surfaces=surfaces))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"ran {summary['cycles']} cycles ({summary['plant_time_h']:.1f} h of plant time) in "
          f"{summary['wall_time_s']:.0f} s wall time")
    print(f"  plant profit   {summary['initial_profit']:8.2f} -> {summary['final_profit']:8.2f} $/s "
          f"(plant optimum {summary['plant_optimum_profit']:.2f}; gap "
          f"{summary['gap_to_optimum_pct']:.2f} %) after {summary['rto_iterations']} RTO iterations")
    print(f"  F_B            {summary['final_f_b']:8.3f} kg/s (optimum {summary['optimum_f_b']:.3f})")
    print(f"  T_R            {summary['final_t_r_c']:8.2f} °C   (optimum {summary['optimum_t_r_c']:.2f})")
    print(f"  X_G max        {summary['x_g_max']:8.4f}      (soft limit {summary['x_g_limit']})")
    print(f"  MPC solve      median {summary['solve_ms_median']:.1f} ms, p95 {summary['solve_ms_p95']:.1f} ms,"
          f" max {summary['solve_ms_max']:.1f} ms; cycle median {summary['cycle_ms_median']:.1f} ms"
          f" (engine CPU {summary['engine_cpu_ms_per_cycle']:.1f} ms per cycle)")
    period = "" if summary["period_ms"] is None else (
        f" (cycles longer than the period, {summary['period_ms']:.0f} ms wall at {opts.speed:g}x)")
    print(f"  overruns {summary['overruns']}{period}, fallbacks {summary['fallbacks']}, writes "
          f"{summary['writes']}, write failures {summary['write_failures']}")
    phases = summary.get("cycle_breakdown_ms", {})
    if phases:
        print("  cycle phases   median / p95 ms: " + ", ".join(
            f"{name} {p['median_ms']:.1f}/{p['p95_ms']:.1f}" for name, p in phases.items()))
    print(f"wrote {opts.out_dir / 'demo_trends.png'}, {opts.out_dir / 'historian.sqlite'}, "
          f"{opts.out_dir / 'summary.json'}")
    return 0


def register(sub: Any) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser("demo", help="closed loop over OPC UA against the HIL simulator (main job)")
    p.add_argument("--out", default="rtompc-demo", help="output directory (default rtompc-demo)")
    p.add_argument("--case", choices=["williams-otto", "steel-energy"], default="williams-otto",
                   help="williams-otto (default: one reactor, RTO + NMPC) or steel-energy (the "
                   "steel works gas network: plant-wide RTO + NMPC, site KPIs)")
    p.add_argument("--event", default="bf_stop",
                   choices=["bf_stop", "price_swing", "ldg_high_level", "furnace_throughput"],
                   help="steel-energy: the event on the HIL (default bf_stop)")
    p.add_argument("--hours", type=float, default=3.0,
                   help="steel-energy: plant time in hours (default 3; 60 s cycles)")
    p.add_argument("--fixed", action="store_true",
                   help="steel-energy: fixed setpoints instead of the plant-wide RTO (the peer of "
                   "the economic comparison on the same event)")
    p.add_argument("--cycles", type=int, default=800, help="control cycles of 60 s plant time")
    p.add_argument("--speed", type=float, default=600.0, help="HIL real-time factor (default 600)")
    p.add_argument("--lockstep", action="store_true", help="deterministic lockstep instead of real time")
    p.add_argument("--insecure", action="store_true",
                   help="no OPC UA security (default: SignAndEncrypt, trust lists, user/password)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON only")
    p.add_argument("--console", metavar="HOST:PORT",
                   help="serve the live web console there while the demo runs (loopback; "
                   "e.g. 127.0.0.1:8080; raise --cycles to watch longer)")
    p.add_argument("--console-users", metavar="FILE",
                   help="console users file (default: viewer/operator/engineer with random "
                   "passwords, written to OUT/console-login.txt)")
    p.add_argument("--engine-server", metavar="URL",
                   help="serve the engine's OPC UA namespace there while the demo runs "
                   "(e.g. opc.tcp://127.0.0.1:4841; SignAndEncrypt, server PKI in OUT/engine-pki, "
                   "users viewer/operator/engineer with random passwords in OUT/engine-login.txt)")
    p.set_defaults(func=_run)
