"""Web console overhead: cycle time of a control loop with 5 headless Chromium sessions on the console vs none (not a test).

The loop is the Van de Vusse CSTR (do-mpc parameters, in-process lockstep plant, EKF +
NMPC with N = 20, live parameters, EngineView), paced at ``--period`` wall seconds per
cycle like a real-time loop. The console (uvicorn in its own thread) serves it on
loopback; ``--browsers`` real headless Chromium sessions (selenium, Debian's chromium)
log in and receive every frame over Server-Sent Events and redraw their trends.

Conditions, in rounds of blocks of ``--cycles`` cycles (browsers, idle, SSE, idle; so drifts
in the machine's load hit all alike, and each condition is paired with the idle block after it):

- ``idle console``: the browsers parked on ``about:blank`` (no stream open), and one block
  before the console started at all (``no console``);
- ``Chromium``: every browser on the console page, streaming and redrawing;
- ``SSE``: as many plain Server-Sent Events readers, each its own process (the server's
  cost without the browsers' rendering on the same cores).

After each switch ``--settle`` cycles run unmeasured in the blocks (the pages load their
history then); their cycle times are reported apart as the connect burst.

Prints the median and p95 of the loop's cycle time (``CycleRecord.cycle_time_s``) per
condition, the overhead (difference of medians) and the ratio, the process CPU time per
cycle (engine and console threads; the browsers are other processes), and the load
average. On this 2-core machine the browsers' rendering runs on the same cores as the
loop; an operator's browser runs on another machine.

    .venv/bin/python benchmarks/bench_console.py [--browsers 5] [--cycles 40] [--blocks 3]
    rtompc bench console -- --browsers 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from interfaces.inprocess import InProcessPlantIO
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import DisturbanceModel, EstimatorConfig, ExtendedKalmanFilter
from plant_models.library import load
from plant_models.samples import Mode, OperatingTarget
from rtompc.console import ConsoleSettings
from rtompc.console.auth import write_users_file
from rtompc.console.headless import NO_BROWSER, chromium, login, page_cycle, wait_for
from rtompc.console.server import ConsoleServer
from rtompc.live import LiveParameters
from rtompc.live.view import EngineViews, UnitView
from rtompc.runtime import ControlLoop, LoopSettings

DT = 18.0


def build_loop() -> tuple[ControlLoop, InProcessPlantIO, UnitView]:
    """Van de Vusse: c_B tracked, t_r soft-limited, live parameters and a view."""
    model = load("van_de_vusse", parameters="do_mpc")
    cfg = MpcConfig(
        horizon_steps=20,
        sample_time_s=DT,
        cvs=(
            CvSpec("c_b", weight=1.0, target=700.0),
            CvSpec("t_r", upper=140.0 + 273.15, l1_penalty=1e3),
        ),
        mvs=(MvSpec("f_dil", move_weight=0.01), MvSpec("q_k", move_weight=0.01)),
    )
    io = InProcessPlantIO(model, DT, start_remote=False)
    est = ExtendedKalmanFilter(
        model,
        EstimatorConfig(
            sample_time_s=DT,
            measured=("c_b", "t_r", "t_k"),
            disturbances=DisturbanceModel(outputs=("c_b",)),
            measurement_std={"c_b": 5.0, "t_r": 0.1, "t_k": 0.1},
        ),
    )
    live = LiveParameters(model, cfg, mode=Mode.ON)
    loop = ControlLoop(
        model,
        io,
        est,
        NmpcController(model, cfg),
        LoopSettings(sample_time_s=DT, mode=Mode.ON),
        target=OperatingTarget(0.0, y={"c_b": 700.0}),
        live=live,
    )
    return loop, io, UnitView.for_loop("vdv", loop)


async def paced_block(
    loop: ControlLoop,
    io: InProcessPlantIO,
    n: int,
    period_s: float,
) -> tuple[list[float], float]:
    """n cycles at one per ``period_s``; cycle times and process CPU seconds per cycle."""
    times: list[float] = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.monotonic()
        record = await loop.cycle()
        await io.advance(1)
        times.append(record.cycle_time_s)
        await asyncio.sleep(max(0.0, period_s - (time.monotonic() - t0)))
    return times, (time.process_time() - cpu0) / n


READER = """
import http.client, sys
con = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]))
con.request("GET", "/api/units/vdv/events", headers={"Cookie": sys.argv[3]})
r = con.getresponse()
assert r.status == 200, r.status
for line in r:
    pass
"""
"""A Server-Sent Events client in its own process: reads every frame, renders nothing."""


def login_cookie(host: str, port: int, user: str, password: str) -> str:
    """``rtompc_session=...`` after logging in through the form (stdlib HTTP)."""
    import http.client
    from urllib.parse import urlencode

    con = http.client.HTTPConnection(host, port)
    con.request("GET", "/login")
    r = con.getresponse()
    form = r.read().decode()
    login = r.headers["set-cookie"].split(";")[0]
    token = form.split('name="csrf" value="')[1].split('"')[0]
    con.request(
        "POST",
        "/login",
        urlencode({"csrf": token, "user": user, "password": password}),
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": login},
    )
    r = con.getresponse()
    r.read()
    return r.headers["set-cookie"].split(";")[0]


def _stats(xs: list[float]) -> tuple[float, float]:
    return statistics.median(xs) * 1e3, float(np.percentile(xs, 95)) * 1e3


async def main(args: argparse.Namespace) -> None:
    if NO_BROWSER is not None and args.browsers:
        raise SystemExit(f"bench_console: {NO_BROWSER}")
    loop, io, view = build_loop()
    conds = ("no console", "none", "browsers", "sse")
    results: dict[str, list[float]] = {k: [] for k in conds}
    cpu: dict[str, list[float]] = {k: [] for k in conds}
    paired: dict[str, list[float]] = {"browsers": [], "sse": []}
    load_avg: list[float] = []
    burst: list[float] = []
    async with io:
        await paced_block(loop, io, 10, 0.0)  # warm-up (first solves)
        t, c = await paced_block(loop, io, args.cycles, args.period)
        results["no console"] += t
        cpu["no console"].append(c)
        with tempfile.TemporaryDirectory(prefix="rtompc-bench-console-") as tmp:
            users = Path(tmp) / "users.toml"
            write_users_file(users, {"op": ("operator", "bench-pw")}, iterations=1000)
            server = ConsoleServer(EngineViews([view]), ConsoleSettings(port=0, users=users))
            await asyncio.to_thread(server.start)
            cookie = login_cookie("127.0.0.1", server.port, "op", "bench-pw")
            with contextlib.ExitStack() as stack:
                drivers = [stack.enter_context(chromium()) for _ in range(args.browsers)]
                for d in drivers:
                    await asyncio.to_thread(login, d, server.url, "op", "bench-pw", 60.0)
                    await asyncio.to_thread(d.get, "about:blank")
                for block in range(args.blocks):
                    medians: dict[str, float] = {}
                    for condition in ("browsers", "none", "sse", "none"):
                        readers: list[subprocess.Popen[bytes]] = []
                        if condition == "browsers":
                            for d in drivers:
                                await asyncio.to_thread(d.get, server.url)
                        elif condition == "sse":
                            readers = [
                                subprocess.Popen(
                                    [
                                        sys.executable,
                                        "-c",
                                        READER,
                                        "127.0.0.1",
                                        str(server.port),
                                        cookie,
                                    ]
                                )
                                for _ in range(args.browsers)
                            ]
                        # settle: pages load their history (measured apart: the connect burst)
                        t, _ = await paced_block(loop, io, args.settle, args.period)
                        if condition == "browsers":
                            burst += t
                        t, c = await paced_block(loop, io, args.cycles, args.period)
                        results[condition] += t
                        cpu[condition].append(c)
                        load_avg.append(os.getloadavg()[0])
                        medians[condition] = statistics.median(t)
                        if condition == "browsers":  # each browser shows the last cycle
                            last = loop._cycle - 1  # noqa: SLF001 - the loop's own counter
                            for d in drivers:
                                await asyncio.to_thread(
                                    wait_for,
                                    f"cycle {last} on every page",
                                    lambda d=d, last=last: page_cycle(d) == last,
                                    30.0,
                                )
                                await asyncio.to_thread(d.get, "about:blank")
                        for r in readers:
                            r.terminate()
                            r.wait(10)
                        if condition != "none":
                            paired_with = condition
                        else:
                            paired[paired_with].append(medians[paired_with] - medians["none"])
                        print(
                            f"  block {block + 1} {condition:8s}: median "
                            f"{_stats(t)[0]:6.2f} ms, CPU {c * 1e3:6.2f} ms/cycle",
                            flush=True,
                        )
                sent = server.console.feeds["vdv"].frames_sent
            await asyncio.to_thread(server.stop)
    print(
        f"\nweb console overhead: Van de Vusse NMPC (N=20) loop, one cycle per {args.period} s, "
        f"{args.browsers} clients, {args.blocks} x {args.cycles} cycles per condition"
    )
    print(
        f"{'condition':12s} {'cycles':>6s} {'median ms':>10s} {'p95 ms':>8s} {'CPU ms/cycle':>13s}"
    )
    names = {
        "no console": "no console",
        "none": "idle console",
        "browsers": f"{args.browsers} Chromium",
        "sse": f"{args.browsers} SSE",
    }
    for k, xs in results.items():
        med, p95 = _stats(xs)
        print(
            f"{names[k]:12s} {len(xs):6d} {med:10.2f} {p95:8.2f} "
            f"{statistics.median(cpu[k]) * 1e3:13.2f}"
        )
    none = statistics.median(results["none"])
    for k in ("browsers", "sse"):
        med = statistics.median(results[k])
        print(
            f"overhead, {names[k]} vs idle: median {(med - none) * 1e3:+.2f} ms (ratio "
            f"{med / none:.3f}); median of the per-block differences "
            f"{statistics.median(paired[k]) * 1e3:+.2f} ms "
            f"({', '.join(f'{x * 1e3:+.2f}' for x in paired[k])})"
        )
        cpu_k, cpu_n = statistics.median(cpu[k]), statistics.median(cpu["none"])
        print(
            f"  process CPU per cycle (engine + console threads): {cpu_k * 1e3:.2f} vs "
            f"{cpu_n * 1e3:.2f} ms (ratio {cpu_k / cpu_n:.3f})"
        )
    print(
        f"while the {args.browsers} pages connect and load their history (the first "
        f"{args.settle} cycles after each connect): median {_stats(burst)[0]:.2f} ms, "
        f"p95 {_stats(burst)[1]:.2f} ms; frames pushed: {sent}"
    )
    print(
        f"load average during the blocks: {min(load_avg):.1f}-{max(load_avg):.1f} "
        f"on {os.cpu_count()} cores"
    )


def cli(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--browsers", type=int, default=5, help="headless Chromium sessions (5)")
    p.add_argument("--cycles", type=int, default=30, help="cycles per block (30)")
    p.add_argument("--blocks", type=int, default=4, help="rounds of the conditions (4)")
    p.add_argument("--period", type=float, default=0.4, help="wall seconds per cycle (0.4)")
    p.add_argument(
        "--settle",
        type=int,
        default=10,
        help="cycles after the browsers (dis)connect, not in the blocks (10)",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(cli()))
