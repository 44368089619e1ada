"""Per-cycle I/O overhead: read 100 tags + write 10 MVs (value-only, read-back) + historian append.

An asyncua server on loopback (in a child process, so it has its own core)
serves 100 Double measurement tags and 10 Double setpoints in namespace
``urn:rtompc:bench``; the OPC UA PlantIO reads all 100 in one batched Read,
writes 10 with one batched Write and reads them back, and the historian (SQLite
WAL, synchronous=NORMAL) commits one row. Prints median and p95 in ms for each
part and for the whole cycle (wall time), the client's CPU time per cycle (less
sensitive to a busy machine), plus the in-process PlantIO for comparison.

    .venv/bin/python benchmarks/bench_io.py [--cycles 300]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

N_MEAS, N_MV = 100, 10
NS = "urn:rtompc:bench"


def bench_model():  # noqa: ANN201
    from plant_models.builder import build_model
    from plant_models.signals import Signal, signal_set

    x = signal_set("x", Signal("z", "1"))
    u = signal_set("u", *[Signal(f"u{i}", "1", -10.0, 10.0) for i in range(N_MV)])
    y = signal_set("y", *[Signal(f"y{i}", "1", -1e3, 1e3) for i in range(N_MEAS)])
    return build_model(
        "bench",
        x=x,
        u=u,
        y=y,
        rhs=lambda s: {"z": -s.z + sum(s[f"u{i}"] for i in range(N_MV))},
        output=lambda s: {f"y{i}": s.z + i for i in range(N_MEAS)},
        nominal={"x": {"z": 0.0}, "u": {f"u{i}": 0.0 for i in range(N_MV)}},
    )


def serve(port: int, ready) -> None:  # noqa: ANN001
    import logging

    logging.disable(logging.WARNING)

    async def main() -> None:
        from asyncua import Server, ua

        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/")
        idx = await server.register_namespace(NS)
        obj = await server.nodes.objects.add_object(ua.NodeId("bench", idx), "bench")
        for i in range(N_MEAS):
            await obj.add_variable(
                ua.NodeId(f"y{i}", idx), f"y{i}", ua.Variant(float(i), ua.VariantType.Double)
            )
        for i in range(N_MV):
            v = await obj.add_variable(
                ua.NodeId(f"sp{i}", idx), f"sp{i}", ua.Variant(0.0, ua.VariantType.Double)
            )
            await v.set_writable()
        async with server:
            ready.set()
            await asyncio.sleep(3600)

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stats(xs: list[float]) -> str:
    arr = np.array(xs) * 1e3
    return f"median {statistics.median(arr):7.3f} ms   p95 {np.percentile(arr, 95):7.3f} ms"


async def run_cycles(io, model, hist, cycles: int, warmup: int = 20) -> dict[str, list[float]]:  # noqa: ANN001
    from plant_models.samples import ControlMove, Mode
    from rtompc.historian import HistorianRow

    times: dict[str, list[float]] = {
        "read": [],
        "write": [],
        "historian": [],
        "cycle": [],
        "client_cpu": [],
    }
    rng = np.random.default_rng(0)
    for k in range(cycles + warmup):
        c0 = time.process_time()
        t0 = time.perf_counter()
        m = await io.read()
        t1 = time.perf_counter()
        move = ControlMove(float(k), rng.uniform(-1, 1, N_MV), model.u.names)
        res = await io.write(move)
        t2 = time.perf_counter()
        hist.append(
            HistorianRow(
                k,
                float(k),
                Mode.ON,
                measurement=m,
                move=move,
                written=res.written,
                write_status=res.status.value,
            )
        )
        t3 = time.perf_counter()
        c3 = time.process_time()
        if k >= warmup:
            times["client_cpu"].append(c3 - c0)
            for key, dt in (
                ("read", t1 - t0),
                ("write", t2 - t1),
                ("historian", t3 - t2),
                ("cycle", t3 - t0),
            ):
                times[key].append(dt)
        if not res.ok:
            raise RuntimeError(f"write failed: {res.message}")
    return times


async def main(cycles: int) -> None:
    from interfaces.inprocess import InProcessPlantIO
    from interfaces.opcua_client import OpcUaPlantIO
    from interfaces.opcua_settings import OpcUaSettings, ReadMethod
    from interfaces.tagmap import NodeRef, StatusTags, Tag, TagGroup, TagMap
    from rtompc.historian import Historian, HistorianLayout

    model = bench_model()
    port = free_port()
    ready = mp.get_context("spawn").Event()
    proc = mp.get_context("spawn").Process(target=serve, args=(port, ready), daemon=True)
    proc.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("bench server did not start")
        tags = TagMap(
            measurements=tuple(
                Tag(s.name, NodeRef(NS, s.name), TagGroup.MEASUREMENT, "1", "1", s.lower, s.upper)
                for s in model.y
            ),
            setpoints=tuple(
                Tag(s.name, NodeRef(NS, f"sp{i}"), TagGroup.SETPOINT, "1", "1")
                for i, s in enumerate(model.u)
            ),
            status=StatusTags(),
        )
        url = f"opc.tcp://127.0.0.1:{port}/"
        with tempfile.TemporaryDirectory() as tmp:
            io = OpcUaPlantIO(model, OpcUaSettings(url, 1.0), tags)
            with Historian(Path(tmp) / "opcua.sqlite", HistorianLayout.for_model(model)) as hist:
                async with io:
                    t_ua = await run_cycles(io, model, hist, cycles)
            io = OpcUaPlantIO(
                model, OpcUaSettings(url, 1.0, read_method=ReadMethod.SUBSCRIPTION), tags
            )
            with Historian(
                Path(tmp) / "opcua_sub.sqlite", HistorianLayout.for_model(model)
            ) as hist:
                async with io:
                    await asyncio.sleep(0.5)  # first notifications
                    t_sub = await run_cycles(io, model, hist, cycles)
            sim = InProcessPlantIO(model, 1.0, start_remote=True)
            with Historian(Path(tmp) / "inproc.sqlite", HistorianLayout.for_model(model)) as hist:
                async with sim:
                    t_ip = await run_cycles(sim, model, hist, cycles)
    finally:
        proc.terminate()
        proc.join(5)
    print(
        f"per-cycle I/O, {N_MEAS} tags read + {N_MV} written (+ read-back) + historian row, "
        f"{cycles} cycles"
    )
    for label, t in (
        ("OPC UA loopback, batched Read", t_ua),
        ("OPC UA loopback, subscription (queue size 1)", t_sub),
        ("in-process", t_ip),
    ):
        print(f"  {label}:")
        for key in ("read", "write", "historian", "cycle", "client_cpu"):
            print(f"    {key:10s} {stats(t[key])}")
    ratio = statistics.median(t_ua["cycle"]) / statistics.median(t_ip["cycle"])
    print(f"  ratio OPC UA batched / in-process (median cycle): {ratio:.1f}x")
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=300)
    asyncio.run(main(ap.parse_args().cycles))
