"""Soak: N lockstep cycles (default 1,000,000) of NMPC + EKF in ON mode against the HIL, memory slope.

The Van de Vusse CSTR (do-mpc parameters) is served by ``rtompc hil serve`` in a
child process in lockstep; the engine runs the EKF and the NMPC every cycle over
OPC UA, writes with read-back, sends the heartbeat and records every cycle in
the SQLite historian through the non-blocking recorder, with size retention on
(``--retention-mb``, checked every 5 s). The c_B target changes every 500
cycles. Every ``--every`` cycles a probe records the engine's and the HIL's
resident and anonymous memory (``/proc/PID/status`` VmRSS, RssAnon) and the
historian's size (database + WAL). At the end it prints the least-squares slope
of each per 1000 cycles after the warm-up, cycle and solve time statistics, and
the figures of aebdd36 for comparison (engine anonymous memory +71 kB per 1000
cycles, historian +513 bytes per cycle, from issue 14's 241,100-cycle soak).

    .venv/bin/rtompc bench soak [--cycles 1000000] [--warmup 20000] [--every 1000] [--csv FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import OpcUaSettings
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import DisturbanceModel, EstimatorConfig, ExtendedKalmanFilter
from plant_models.library import load
from plant_models.samples import OperatingTarget
from rtompc.cycle import CycleRecord
from rtompc.hil_process import HilProcess, free_port, write_bench
from rtompc.historian import Historian, HistorianLayout, RetentionSettings
from rtompc.runtime import ControlLoop, LoopSettings

DT = 18.0
BASELINE = (
    "aebdd36 (issue 14, 241,100 cycles): engine anon +71 kB / 1000 cycles, historian +513 B / cycle"
)


def proc_memory_kb(pid: int | str) -> tuple[int, int]:
    """(VmRSS, RssAnon) of a process in kB, from /proc."""
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                fields[key] = int(rest.split()[0])
    return fields.get("VmRSS", 0), fields.get("RssAnon", 0)


class Probe:
    """A Recorder: memory and historian size every ``every`` cycles; moves the c_B target."""

    def __init__(
        self,
        every: int,
        hil_pid: int,
        hist_path: Path,
        loop_ref: list[ControlLoop],
        csv: Path | None,
    ) -> None:
        self.every, self.hil_pid, self.hist_path = every, hil_pid, hist_path
        self.loop_ref = loop_ref
        self.rows: list[tuple[float, ...]] = []
        self.t0 = time.monotonic()
        self.csv = open(csv, "w", encoding="utf-8") if csv else None  # noqa: SIM115
        if self.csv:
            self.csv.write(
                "cycle,wall_s,engine_rss_kb,engine_anon_kb,hil_rss_kb,hil_anon_kb,historian_bytes\n"
            )

    def hist_bytes(self) -> int:
        return sum(
            p.stat().st_size
            for p in (self.hist_path, Path(str(self.hist_path) + "-wal"))
            if p.exists()
        )

    def append(self, record: CycleRecord) -> None:
        k = record.cycle + 1
        if record.cycle % 500 == 499:
            cb = 700.0 if (record.cycle // 500) % 2 == 0 else 600.0
            self.loop_ref[0].target = OperatingTarget(record.time_s, y={"c_b": cb})
        if k % self.every:
            return
        e_rss, e_anon = proc_memory_kb("self")
        h_rss, h_anon = proc_memory_kb(self.hil_pid)
        row = (k, time.monotonic() - self.t0, e_rss, e_anon, h_rss, h_anon, self.hist_bytes())
        self.rows.append(row)
        if self.csv:
            self.csv.write(
                ",".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row) + "\n"
            )
            self.csv.flush()
        if k % (self.every * 20) == 0:
            print(
                f"  cycle {k:9d}  {row[1]:8.0f} s  engine anon {e_anon / 1024:7.1f} MB  "
                f"HIL anon {h_anon / 1024:7.1f} MB  historian {row[6] / 1e6:7.2f} MB",
                flush=True,
            )


def slope_per_1000(cycles: np.ndarray, values: np.ndarray) -> float:
    """Least-squares slope of ``values`` per 1000 cycles."""
    if len(cycles) < 3:
        return float("nan")
    return float(np.polyfit(cycles / 1000.0, values, 1)[0])


async def main(cycles: int, warmup: int, every: int, retention_mb: float, csv: Path | None) -> None:
    model = load("van_de_vusse", parameters="do_mpc")
    work = Path(tempfile.mkdtemp(prefix="rtompc-soak-"))
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    bench = write_bench(
        work / "bench.toml",
        "van_de_vusse",
        {"parameters": "do_mpc"},
        endpoint=endpoint,
        sample_time_s=DT,
        speed=None,
        secure=None,
        watchdog_timeout_s=600.0,
    )
    ekf = ExtendedKalmanFilter(
        model,
        EstimatorConfig(
            sample_time_s=DT,
            measured=("c_b", "t_r", "t_k"),
            disturbances=DisturbanceModel(outputs=("c_b",)),
        ),
    )
    mpc = NmpcController(
        model,
        MpcConfig(
            horizon_steps=20,
            sample_time_s=DT,
            cvs=(
                CvSpec("c_b", weight=1.0, target=600.0),
                CvSpec("t_r", upper=140.0 + 273.15, l1_penalty=1e3),
            ),
            mvs=(MvSpec("f_dil", move_weight=0.01), MvSpec("q_k", move_weight=0.01)),
        ),
    )
    retention = RetentionSettings(max_size_bytes=int(retention_mb * 1e6), check_every_s=5.0)
    hist_path = work / "h.sqlite"
    async with HilProcess(bench, log_path=work / "hil.log") as hil:
        io = OpcUaPlantIO(model, OpcUaSettings(endpoint=endpoint, sample_time_s=DT, lockstep=True))
        async with io:
            hist = Historian(
                hist_path,
                HistorianLayout.for_model(model, io.measurement_names),
                retention=retention,
            )
            hist.begin_run("simulate", mode="on", meta={"benchmark": "soak", "cycles": cycles})
            recorder = hist.recorder()
            ref: list[ControlLoop] = []
            probe = Probe(every, hil.pid or 0, hist_path, ref, csv)
            loop = ControlLoop(
                model,
                io,
                ekf,
                mpc,
                LoopSettings(sample_time_s=DT),
                target=OperatingTarget(0.0, y={"c_b": 600.0}),
                recorders=[recorder, probe],
            )
            ref.append(loop)
            print(
                f"soak: {cycles} lockstep cycles against the HIL (pid {hil.pid}), historian "
                f"{hist_path} with retention {retention_mb:g} MB; samples every {every}",
                flush=True,
            )
            t0 = time.monotonic()
            stats = await loop.run(cycles)
            wall = time.monotonic() - t0
            health = recorder.health()
            hist.end_run("benchmark finished", 0)
            hist.close()
    data = np.array(probe.rows, dtype=float)
    after = data[data[:, 0] > warmup] if len(data) else data
    print(
        f"\n{int(stats['cycles'])} cycles in {wall:.0f} s ({stats['cycles'] / wall:.0f} cycles/s), "
        f"fallbacks {stats['fallbacks']}, write failures {stats['write_failures']}"
    )
    for key in (
        "cycle_ms_median",
        "cycle_ms_p95",
        "cycle_ms_max",
        "solve_ms_median",
        "solve_ms_p95",
        "solve_ms_max",
    ):
        print(f"  {key:18s} {stats[key]:8.2f}")
    print(f"  historian: {health.line()}")
    if len(after) < 3:
        print(f"not enough samples after the warm-up ({warmup} cycles) for a slope")
        return
    c = after[:, 0]
    print(
        f"memory after the warm-up ({int(c[0])}..{int(c[-1])} cycles, {len(c)} samples), "
        "least-squares slope per 1000 cycles:"
    )
    for name, col in (("engine RSS", 2), ("engine anon", 3), ("HIL RSS", 4), ("HIL anon", 5)):
        print(
            f"  {name:12s} {slope_per_1000(c, after[:, col]):+8.2f} kB / 1000 cycles   "
            f"(first {after[0, col] / 1024:.1f} MB, last {after[-1, col] / 1024:.1f} MB, "
            f"max {after[:, col].max() / 1024:.1f} MB)"
        )
    full = data[:, 6]
    print(
        f"  historian    {slope_per_1000(c, after[:, 6]) / 1000:+8.2f} B / cycle after the "
        f"warm-up; size first {full[0] / 1e6:.2f} MB, max {full.max() / 1e6:.2f} MB, last "
        f"{full[-1] / 1e6:.2f} MB (limit {retention_mb:g} MB)"
    )
    print(f"  baseline     {BASELINE}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=1_000_000)
    ap.add_argument("--warmup", type=int, default=20_000, help="cycles left out of the slope")
    ap.add_argument("--every", type=int, default=1000, help="probe every N cycles")
    ap.add_argument("--retention-mb", type=float, default=8.0, help="historian size limit, MB")
    ap.add_argument("--csv", type=Path, help="write the memory samples to this CSV file")
    a = ap.parse_args()
    if not sys.platform.startswith("linux"):
        raise SystemExit("bench soak reads /proc: Linux only")
    asyncio.run(main(a.cycles, a.warmup, a.every, a.retention_mb, a.csv))
