"""Historian export of a 241,100-cycle run: streamed export vs loading every row (time, peak RSS).

Builds a historian with one run of ``--rows`` cycles (default 241,100, the size
of issue 14's soak) of the Van de Vusse layout, every column filled as the
runtime fills it. Then, each in a fresh child process so peak RSS is its own:

- ``rtompc export`` (streamed: 5000-row chunks, Parquet row groups of 50,000);
- the peer: the same query with ``fetchall()`` and one write, as the export of
  aebdd36 did.

Prints wall time and peak RSS (``wait4`` ru_maxrss) per format, medians of
``--repeat`` runs, and the ratios streamed / peer.

    .venv/bin/rtompc bench export [--rows 241100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from plant_models.library import load
from plant_models.results import SolveStatus
from plant_models.samples import (
    ControlMove,
    Measurement,
    Mode,
    OperatingTarget,
    Quality,
    StateEstimate,
)
from rtompc.historian import Historian, HistorianLayout, HistorianRow, row_values

PEER = r"""
import csv, sqlite3, sys
db, out, fmt = sys.argv[1:4]
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
cur = con.execute("SELECT * FROM cycles ORDER BY run_id, cycle")
names = [d[0] for d in cur.description]
rows = cur.fetchall()
if fmt == "csv":
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh); w.writerow(names); w.writerows(rows)
else:
    import pyarrow as pa, pyarrow.parquet as pq
    pq.write_table(pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}), out)
"""


def build(path: Path, n: int) -> None:
    """One run of ``n`` cycles with every column filled."""
    model = load("van_de_vusse")
    names = model.y.names + model.d.names
    layout = HistorianLayout.for_model(model, names)
    rng = np.random.default_rng(0)
    with Historian(path, layout) as h:
        rid = h.begin_run("simulate", mode=Mode.ON)
        batch = []
        for k in range(n):
            u = np.array([0.004, -300.0]) + rng.normal(0, 1e-3, 2)
            row = HistorianRow(
                k,
                18.0 * k,
                Mode.ON,
                measurement=Measurement(
                    18.0 * k, names, rng.normal(400, 5, len(names)), (Quality.GOOD,) * len(names)
                ),
                estimate=StateEstimate(18.0 * k, rng.normal(400, 5, len(model.x))),
                target=OperatingTarget(0.0, y={"c_b": 700.0}, source="config"),
                move=ControlMove(18.0 * k, u, model.u.names),
                written=u,
                requested=u,
                readback=u,
                mv_status=("accepted", "accepted"),
                write_status="verified",
                solver_status=SolveStatus.SUCCESS,
                solver_iterations=1,
                solve_time_s=6e-4,
                cycle_time_s=3e-3,
                plant_time_s=18.0 * k,
                plant_mode="REMOTE",
                extra={"connected": True, "fallback": False, "solver": "rti"},
                wall_time_s=1.7e9 + 0.01 * k,
            )
            batch.append(row_values(row, layout, rid))
            if len(batch) == 5000:
                h.insert_values(batch)
                batch = []
        if batch:
            h.insert_values(batch)
        h.end_run("built", 0)


def measure(cmd: list[str]) -> tuple[float, float]:
    """(wall s, peak RSS MB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return wall, usage.ru_maxrss / 1024


def main(rows: int, repeat: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="rtompc-export-"))
    db = work / "h.sqlite"
    t0 = time.perf_counter()
    build(db, rows)
    print(
        f"historian of {rows} cycles built in {time.perf_counter() - t0:.0f} s: "
        f"{db.stat().st_size / 1e6:.0f} MB ({db.stat().st_size / rows:.0f} B per cycle)"
    )
    print(
        f"{'format':8s} {'exporter':10s} {'wall s (median)':>16s} {'max':>6s} "
        f"{'peak RSS MB (median)':>21s} {'max':>6s}"
    )
    for fmt in ("csv", "parquet"):
        out = work / f"out.{fmt}"
        results = {}
        for name, cmd in (
            (
                "streamed",
                [
                    sys.executable,
                    "-m",
                    "rtompc",
                    "export",
                    str(db),
                    "--format",
                    fmt,
                    "--out",
                    str(out),
                ],
            ),
            ("peer", [sys.executable, "-c", PEER, str(db), str(out), fmt]),
        ):
            runs = [measure(cmd) for _ in range(repeat)]
            walls, peaks = [r[0] for r in runs], [r[1] for r in runs]
            results[name] = (statistics.median(walls), statistics.median(peaks))
            print(
                f"{fmt:8s} {name:10s} {statistics.median(walls):16.2f} {max(walls):6.2f} "
                f"{statistics.median(peaks):21.0f} {max(peaks):6.0f}"
            )
        s, p = results["streamed"], results["peer"]
        print(f"{fmt:8s} ratio streamed/peer: time x{s[0] / p[0]:.2f}, peak RSS x{s[1] / p[1]:.2f}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=241_100)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    main(a.rows, a.repeat)
