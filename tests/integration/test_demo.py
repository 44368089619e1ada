"""`rtompc demo`, the README's main job, end to end in a child process.

Runs a short demo from a scratch working directory with the default relative
``--out`` (the HIL bench file names certificate and user files by path, so
relative paths must be resolved), over the secured link, and checks the
summary: every cycle wrote a verified move, no fallback, plant profit finite.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.opcua
def test_demo_runs_secured_over_opcua(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rtompc", "demo", "--cycles", "20", "--speed", "300"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads((tmp_path / "rtompc-demo" / "summary.json").read_text())
    assert summary["secure"] is True
    assert summary["cycles"] == 20 and summary["writes"] == 20
    assert summary["fallbacks"] == 0 and summary["write_failures"] == 0
    assert math.isfinite(summary["final_profit"]) and summary["final_profit"] > 140.0
    assert (tmp_path / "rtompc-demo" / "demo_trends.png").stat().st_size > 10_000
    assert "plant profit" in proc.stdout
    # where the cycle's time goes, per phase, in the summary and on the console
    from rtompc.stats import PHASES

    phases = summary["cycle_breakdown_ms"]
    assert list(phases) == [name for name, _ in PHASES]
    assert all(p["median_ms"] >= 0 and p["max_ms"] >= p["median_ms"] for p in phases.values())
    assert summary["period_ms"] == pytest.approx(200.0)  # 60 s at 300x
    assert 0 < summary["engine_cpu_ms_per_cycle"] < summary["wall_time_s"] * 1e3 / 20 * 2
    assert "cycle phases" in proc.stdout and "period, 200 ms" in proc.stdout
    # the historian's run is closed with its outcome (rtompc report shows it as finished)
    from rtompc.historian.reader import HistorianReader

    with HistorianReader(tmp_path / "rtompc-demo" / "historian.sqlite") as reader:
        runs = reader.runs()
    assert len(runs) == 1 and runs[0].kind == "demo", runs
    assert runs[0].exit_reason == "demo finished: 20 cycles" and runs[0].exit_code == 0, runs[0]
    # the operators' CV setpoints start at the target the loop starts with (the plant's
    # outputs at the start), not at the file's nominal 0.1: those overrode the start target,
    # fought its MV targets (T_R chattered by its full rate limit every cycle) and the RTO's
    # steady-state gate never opened in the 600x demo (0 RTO iterations in 800 cycles)
    import sqlite3

    con = sqlite3.connect(tmp_path / "rtompc-demo" / "historian.sqlite")
    first = con.execute(
        "SELECT target_y__x_p, target_y__x_g FROM cycles WHERE cycle = 0"
    ).fetchone()
    con.close()
    live0 = runs[0].meta["live_initial"]
    assert live0["cv.x_p.setpoint"] == pytest.approx(first[0], rel=1e-9)
    assert live0["cv.x_g.setpoint"] == pytest.approx(first[1], rel=1e-9)
