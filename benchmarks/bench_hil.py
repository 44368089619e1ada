"""Benchmark of the HIL server: real-time pacing at 100x with >= 100 subscribed items, lockstep rate.

Runs the server as a subprocess (``rtompc hil serve``, as the demo does) and an
asyncua client in this process, both on loopback:

1. Van de Vusse CSTR at ``--speed 100`` (sample time 1 s -> one step every 10 ms).
   The plant has 17 variables; the client creates 6 subscriptions that each
   monitor all of them (102 monitored items, publishing interval 50 ms) and
   counts notifications. Seeded measurement noise makes every measurement and
   ``sim_time_s`` change at every step (actuators, setpoints and mode do not,
   so they notify only on change). Reported: achieved real-time factor (from sim time
   seen by the client over wall time, and the server's own ``realtime_factor``),
   the server's pacing jitter p99 (target < 10 ms), notifications per second.
2. Lockstep: ``step(1)`` calls per second; a full controller cycle per step
   (read 5 measurements + 2 actuators, write 2 setpoints + heartbeat, step);
   and simulated steps per second with ``step(100)``.
3. The in-process simulator step alone, for the overhead ratio.

Usage: ``python benchmarks/bench_hil.py [--seconds 10]``. Prints figures; no pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asyncua import Client, ua

from hil.address_space import NAMESPACE_URI
from hil.simulator import PlantSimulator, SimulatorConfig
from plant_models.library import load

PLANT = "van_de_vusse"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BENCH_CONFIG = """
[plant]
name = "van_de_vusse"
[simulator]
seed = 1
noise_std = { c_a = 5.0, c_b = 5.0, t_r = 0.05, t_k = 0.05, t_in = 0.05 }
"""
"""Measurement noise on every measurement, so each one changes (and notifies) every step."""


async def _start(*flags: str) -> tuple[subprocess.Popen[str], str]:
    url = f"opc.tcp://127.0.0.1:{_free_port()}"
    config = Path(tempfile.mkdtemp(prefix="bench_hil_")) / "bench.toml"
    config.write_text(BENCH_CONFIG)
    proc = subprocess.Popen([sys.executable, "-m", "rtompc", "hil", "serve", str(config), "--endpoint", url, *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, url


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def datachange_notification(self, node: object, val: object, data: object) -> None:
        self.n += 1


async def realtime(seconds: float, speed: float = 100.0, n_subs: int = 6) -> None:
    proc, url = await _start("--speed", str(speed), "--sample-time", "1.0")
    try:
        async with Client(url, timeout=5) as client:
            ns = await client.get_namespace_index(NAMESPACE_URI)
            plant = client.get_node(ua.NodeId(PLANT, ns))
            variables = [v for folder in await plant.get_children()
                         if (await folder.read_browse_name()).Name != "step"
                         for v in await folder.get_children()]
            counter = _Counter()
            subs = []
            for _ in range(n_subs):
                sub = await client.create_subscription(50, counter)
                await sub.subscribe_data_change(variables, queuesize=1)
                subs.append(sub)
            items = len(variables) * n_subs
            t_node = client.get_node(ua.NodeId(f"{PLANT}.Status.sim_time_s", ns))
            await asyncio.sleep(1.0)  # settle
            n0, w0, s0 = counter.n, time.perf_counter(), await t_node.read_value()
            await asyncio.sleep(seconds)
            n1, w1, s1 = counter.n, time.perf_counter(), await t_node.read_value()
            rtf = await client.get_node(ua.NodeId(f"{PLANT}.Status.realtime_factor", ns)).read_value()
            jitter = await client.get_node(ua.NodeId(f"{PLANT}.Status.pacing_jitter_p99_s", ns)).read_value()
            for sub in subs:
                await sub.delete()
    finally:
        _stop(proc)
    print(f"realtime {speed:g}x, {items} monitored items ({len(variables)} variables x {n_subs} subscriptions, "
          f"publishing 50 ms), {seconds:g} s wall:")
    print(f"  achieved speed (client view)     {(s1 - s0) / (w1 - w0):8.1f} x   (asked {speed:g} x)")
    print(f"  achieved speed (server, window)  {rtf:8.1f} x")
    print(f"  pacing jitter p99 (server)       {jitter * 1e3:8.2f} ms  (target < 10 ms)")
    print(f"  notifications received           {(n1 - n0) / (w1 - w0):8.0f} /s")


async def lockstep(seconds: float) -> None:
    proc, url = await _start("--lockstep", "--sample-time", "1.0")
    try:
        async with Client(url, timeout=5) as client:
            ns = await client.get_namespace_index(NAMESPACE_URI)
            plant = client.get_node(ua.NodeId(PLANT, ns))
            step_id = ua.NodeId(f"{PLANT}.step", ns)
            one = ua.Variant(1, ua.VariantType.UInt32)

            async def timed(fn, duration: float) -> list[float]:  # noqa: ANN001
                lat: list[float] = []
                end = time.perf_counter() + duration
                while time.perf_counter() < end:
                    t = time.perf_counter()
                    await fn()
                    lat.append(time.perf_counter() - t)
                return lat

            lat_step = await timed(lambda: plant.call_method(step_id, one), seconds / 3)
            meas = [client.get_node(ua.NodeId(f"{PLANT}.{p}", ns)) for p in (
                "Measurements.c_a", "Measurements.c_b", "Measurements.t_r", "Measurements.t_k",
                "Measurements.t_in", "Actuators.f_dil", "Actuators.q_k")]
            writes = [client.get_node(ua.NodeId(f"{PLANT}.{p}", ns)) for p in (
                "Setpoints.f_dil", "Setpoints.q_k", "Status.heartbeat")]
            await client.write_values([client.get_node(ua.NodeId(f"{PLANT}.Status.mode_request", ns))],
                                      [ua.DataValue(ua.Variant(1, ua.VariantType.Int32))])
            beat = [0]

            async def cycle() -> None:
                vals = await client.read_values(meas)
                beat[0] += 1
                await client.write_values(writes, [
                    ua.DataValue(ua.Variant(vals[5], ua.VariantType.Double)),
                    ua.DataValue(ua.Variant(vals[6], ua.VariantType.Double)),
                    ua.DataValue(ua.Variant(beat[0], ua.VariantType.UInt32))])
                await plant.call_method(step_id, one)

            lat_cycle = await timed(cycle, seconds / 3)
            hundred = ua.Variant(100, ua.VariantType.UInt32)
            lat_100 = await timed(lambda: plant.call_method(step_id, hundred), seconds / 3)
    finally:
        _stop(proc)
    sim = PlantSimulator(load(PLANT), SimulatorConfig(sample_time_s=1.0))
    t = time.perf_counter()
    sim.step(2000)
    inproc = (time.perf_counter() - t) / 2000
    med = statistics.median
    print("lockstep through OPC UA (sample time 1 s):")
    print(f"  step(1) calls                    {1 / med(lat_step):8.0f} /s   (median {med(lat_step) * 1e3:.2f} ms)")
    print(f"  controller cycle (read 7, write 3, step 1) {1 / med(lat_cycle):6.0f} /s   "
          f"(median {med(lat_cycle) * 1e3:.2f} ms)")
    print(f"  step(100): simulated steps       {100 / med(lat_100):8.0f} /s")
    print(f"  in-process simulator step        {inproc * 1e3:8.3f} ms   "
          f"(OPC UA step(1) / in-process = {med(lat_step) / inproc:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="wall time of each measurement")
    parser.add_argument("--speed", type=float, default=100.0, help="real-time factor asked for")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    asyncio.run(realtime(args.seconds, args.speed))
    asyncio.run(lockstep(args.seconds))


if __name__ == "__main__":
    main()
