"""A 10 Hz control loop over OPC UA against the HIL server, held for N minutes (not a test).

The Van de Vusse CSTR (do-mpc parameters) is served by ``rtompc hil serve`` in a
child process at 180x real time, so one 18 s control period is 0.1 s of wall
time: a 10 Hz loop. The engine runs the EKF and the NMPC (RTI) every cycle over
a SignAndEncrypt link with subscription reads, writes with read-back, a
heartbeat and the SQLite historian, with c_B setpoint changes every 100
cycles. Prints cycles, overruns (cycle longer than its period), pacing jitter
p99 and cycle / solve time statistics.

    .venv/bin/python benchmarks/bench_runtime_10hz.py [--minutes 10] [--insecure]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import OpcUaSettings, ReadMethod
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import DisturbanceModel, EstimatorConfig, ExtendedKalmanFilter
from plant_models.library import load
from plant_models.samples import OperatingTarget
from rtompc.cycle import CycleRecord
from rtompc.hil_process import HilProcess, free_port, make_secure_bench, write_bench
from rtompc.historian import Historian, HistorianLayout, HistorianRecorder
from rtompc.runtime import ControlLoop, LoopSettings

DT = 18.0
SPEED = 180.0


class SetpointSchedule:
    """A Recorder that changes the c_B target every 100 cycles (between 600 and 700 mol/m^3)."""

    def __init__(self, loop_ref: list[ControlLoop]) -> None:
        self.loop_ref = loop_ref

    def append(self, record: CycleRecord) -> None:
        if record.cycle % 100 == 99:
            cb = 700.0 if (record.cycle // 100) % 2 == 0 else 600.0
            self.loop_ref[0].target = OperatingTarget(record.time_s, y={"c_b": cb})


async def main(minutes: float, secure_on: bool) -> None:
    model = load("van_de_vusse", parameters="do_mpc")
    work = Path(tempfile.mkdtemp(prefix="rtompc-10hz-"))
    secure = make_secure_bench(work / "pki") if secure_on else None
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    bench = write_bench(work / "bench.toml", "van_de_vusse", {"parameters": "do_mpc"},
                        endpoint=endpoint, sample_time_s=1.0, speed=SPEED, secure=secure,
                        watchdog_timeout_s=120.0)
    settings = OpcUaSettings(endpoint=endpoint, sample_time_s=DT, read_method=ReadMethod.SUBSCRIPTION,
                             **({"security": secure.client, "username": secure.username,
                                 "password": secure.password} if secure else {}))
    ekf = ExtendedKalmanFilter(model, EstimatorConfig(
        sample_time_s=DT, measured=("c_b", "t_r", "t_k"),
        disturbances=DisturbanceModel(outputs=("c_b",))))
    mpc = NmpcController(model, MpcConfig(
        horizon_steps=20, sample_time_s=DT,
        cvs=(CvSpec("c_b", weight=1.0, target=600.0),
             CvSpec("t_r", upper=140.0 + 273.15, l1_penalty=1e3)),
        mvs=(MvSpec("f_dil", move_weight=0.01), MvSpec("q_k", move_weight=0.01))))
    cycles = int(minutes * 60 * SPEED / DT)
    async with HilProcess(bench, log_path=work / "hil.log"):
        io = OpcUaPlantIO(model, settings)
        async with io:
            hist = Historian(work / "h.sqlite", HistorianLayout.for_model(model, io.measurement_names))
            ref: list[ControlLoop] = []
            loop = ControlLoop(model, io, ekf, mpc, LoopSettings(sample_time_s=DT, speed=SPEED),
                               target=OperatingTarget(0.0, y={"c_b": 600.0}),
                               recorders=[HistorianRecorder(hist), SetpointSchedule(ref)])
            ref.append(loop)
            t0 = time.monotonic()
            stats = await loop.run(cycles)
            wall = time.monotonic() - t0
            hist.close()
    print(f"10 Hz loop over OPC UA ({'SignAndEncrypt' if secure else 'no security'}, subscription "
          f"reads), {cycles} cycles in {wall:.1f} s wall ({minutes:g} min requested)")
    for key in ("cycles", "overruns", "fallbacks", "writes", "write_failures", "disconnected_cycles"):
        print(f"  {key:20s} {stats[key]}")
    for key in ("cycle_ms_median", "cycle_ms_p95", "cycle_ms_max", "solve_ms_median", "solve_ms_p95",
                "solve_ms_max", "jitter_ms_p99"):
        print(f"  {key:20s} {stats[key]:.2f}")
    print(f"  load average         {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  overrun share        {100 * stats['overruns'] / max(1, stats['cycles']):.2f} %")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--insecure", action="store_true")
    a = ap.parse_args()
    asyncio.run(main(a.minutes, not a.insecure))
