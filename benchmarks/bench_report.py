"""rtompc report on a 241,100-cycle run: wall time, CPU time and peak RSS vs two peers.

Builds the historian of ``bench_export.py`` (one run of ``--rows`` cycles of the Van de
Vusse layout, every column filled; 241,100 is issue 14's soak), adds initial live values
and three journaled limit changes (so the limit timelines are exercised), then runs, each
in a fresh child process (peak RSS = ``wait4`` ru_maxrss of that child):

- ``rtompc report`` (one streamed pass, trends downsampled to 4000 points per series);
- peer ``export``: ``rtompc export --format csv`` of the same run (a streamed read of every
  row: what one pass over the run costs in Python);
- peer ``naive``: every row of the run with ``fetchall()`` dumped as JSON, undownsampled
  (a report that loads everything).

Prints medians of ``--repeat`` runs, ratios report/peer, the report of a tenth of the run
(peak RSS must not grow with the run; CPU time does), the report size and the load.

    .venv/bin/rtompc bench report [--rows 241100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run by path (rtompc bench report)
from bench_export import build  # type: ignore[import-not-found]  # noqa: E402

NAIVE = r"""
import json, sqlite3, sys
db, out = sys.argv[1:3]
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
cur = con.execute("SELECT * FROM cycles WHERE run_id = 1 ORDER BY cycle")
names = [d[0] for d in cur.description]
rows = cur.fetchall()
cols = {n: [r[i] for r in rows] for i, n in enumerate(names)}
with open(out, "w") as fh:
    json.dump(cols, fh)
"""


def add_live(db: Path) -> None:
    """Initial live values in the run's meta and three accepted limit changes."""
    con = sqlite3.connect(db)
    start, stop = con.execute("SELECT MIN(wall_time_s), MAX(wall_time_s) FROM cycles").fetchone()
    initial = {"cv.t_r.low": 380.0, "cv.t_r.high": 413.15, "mv.q_k.low": -9000.0}
    initial |= {"mv.q_k.high": 0.0, "mv.q_k.in_service": True, "mv.f_dil.in_service": True}
    con.execute(
        "UPDATE runs SET meta = ? WHERE run_id = 1", (json.dumps({"live_initial": initial}),)
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER, "
        "wall_time_s REAL NOT NULL, user TEXT, role TEXT, source TEXT, key TEXT NOT NULL, "
        "old TEXT, new TEXT, outcome TEXT NOT NULL)"
    )
    for i, (key, old, new) in enumerate(
        [
            ("cv.t_r.high", 413.15, 405.0),
            ("mv.q_k.in_service", True, False),
            ("mv.q_k.in_service", False, True),
        ]
    ):
        w = start + (i + 1) * (stop - start) / 4
        con.execute(
            "INSERT INTO journal (run_id, wall_time_s, user, role, source, key, old, new, outcome) "
            "VALUES (1, ?, 'op', 'operator', 'web', ?, ?, ?, 'accepted')",
            (w, key, json.dumps(old), json.dumps(new)),
        )
    con.commit()
    con.close()


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main(rows: int, repeat: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="rtompc-report-"))
    db = work / "h.sqlite"
    t0 = time.perf_counter()
    build(db, rows)
    add_live(db)
    print(
        f"historian of {rows} cycles built in {time.perf_counter() - t0:.0f} s: "
        f"{db.stat().st_size / 1e6:.0f} MB"
    )
    py = [sys.executable, "-m", "rtompc"]
    cmds = {
        "report": [*py, "report", str(db), "-o", str(work / "r.html")],
        "export": [*py, "export", str(db), "--format", "csv", "--out", str(work / "r.csv")],
        "naive": [sys.executable, "-c", NAIVE, str(db), str(work / "naive.json")],
    }
    print(f"{'what':8s} {'wall s':>8s} {'CPU s':>8s} {'peak RSS MB':>12s}   (medians of {repeat})")
    res: dict[str, tuple[float, float, float]] = {}
    for name, cmd in cmds.items():
        runs = [measure(cmd) for _ in range(repeat)]
        res[name] = tuple(statistics.median(r[i] for r in runs) for i in range(3))  # type: ignore[assignment]
        w, c, m = res[name]
        print(f"{name:8s} {w:8.2f} {c:8.2f} {m:12.0f}")
    r = res["report"]
    for peer in ("export", "naive"):
        p = res[peer]
        print(
            f"report/{peer}: wall x{r[0] / p[0]:.2f}, CPU x{r[1] / p[1]:.2f}, "
            f"peak RSS x{r[2] / p[2]:.2f}"
        )
    small = work / "small.sqlite"  # memory must not grow with the run: the same at a tenth
    build(small, rows // 10)
    add_live(small)
    cmd = [*py, "report", str(small), "-o", str(work / "small.html")]
    runs = [measure(cmd) for _ in range(repeat)]
    w, c, m = (statistics.median(r[i] for r in runs) for i in range(3))
    print(
        f"report of {rows // 10} cycles: wall {w:.2f} s, CPU {c:.2f} s, peak RSS {m:.0f} MB "
        f"(x{r[2] / m:.2f} RSS and x{r[1] / c:.2f} CPU for {rows} cycles)"
    )
    size = (work / "r.html").stat().st_size
    naive = (work / "naive.json").stat().st_size
    print(f"report {size / 1e6:.1f} MB (naive JSON of every row: {naive / 1e6:.0f} MB)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=241_100)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    main(a.rows, a.repeat)
