"""`rtompc run APP.toml` against a HIL server child process over OPC UA (lockstep).

SHADOW mode computes every move and writes nothing (the plant's actuators do
not move); ON mode closes the loop and tracks the c_B target; the historian
holds every cycle; a bad config names the file and key.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rtompc.hil_process import HilProcess, free_port, write_bench

APP = """
[plant]
name = "van_de_vusse"
params = {{ parameters = "do_mpc" }}

[transport]
kind = "opcua"
endpoint = "{endpoint}"
lockstep = true

[loop]
sample_time_s = 18.0
mode = "shadow"

[mpc]
horizon_steps = 20
sample_time_s = 18.0
[[mpc.cvs]]
name = "c_b"
weight = 1.0
target = 700.0
[[mpc.mvs]]
name = "f_dil"
move_weight = 0.01
[[mpc.mvs]]
name = "q_k"
move_weight = 0.01

[estimator]
measured = ["c_b", "t_r", "t_k"]
output_disturbances = ["c_b"]

[historian]
path = "{historian}"
"""


def _rtompc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtompc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.opcua
async def test_run_shadow_then_on_over_opcua(tmp_path: Path) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    bench = write_bench(
        tmp_path / "bench.toml",
        "van_de_vusse",
        {"parameters": "do_mpc"},
        endpoint=endpoint,
        sample_time_s=18.0,
        speed=None,
        secure=None,
    )
    async with HilProcess(bench, log_path=tmp_path / "hil.log"):
        shadow = tmp_path / "shadow.toml"
        shadow.write_text(APP.format(endpoint=endpoint, historian="shadow.sqlite"))
        res = _rtompc("run", str(shadow), "--steps", "5", cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-3000:]
        on = tmp_path / "on.toml"
        on.write_text(APP.format(endpoint=endpoint, historian="on.sqlite"))
        res_on = _rtompc(
            "run", str(on), "--mode", "on", "--steps", "60", "--print-every", "0", cwd=tmp_path
        )
        assert res_on.returncode == 0, res_on.stderr[-3000:]
    with sqlite3.connect(tmp_path / "shadow.sqlite") as con:
        rows = con.execute(
            "SELECT write_status, written__f_dil, move__f_dil, meas__c_b FROM cycles ORDER BY cycle"
        ).fetchall()
    assert len(rows) == 5
    assert all(r[0] == "shadow" and r[1] is None and r[2] is not None for r in rows)
    with sqlite3.connect(tmp_path / "on.sqlite") as con:
        rows = con.execute(
            "SELECT cycle, write_status, meas__c_b FROM cycles ORDER BY cycle"
        ).fetchall()
    assert [r[0] for r in rows] == list(range(60))
    assert all(r[1] == "verified" for r in rows)
    assert abs(rows[-1][2] - 700.0) < 5.0, f"c_b {rows[-1][2]:.1f} not at the 700 mol/m^3 target"
    assert "summary: cycles=60" in res_on.stdout


def test_run_rejects_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        APP.format(endpoint="opc.tcp://127.0.0.1:1", historian="h.sqlite").replace(
            'name = "f_dil"', 'name = "f_nope"'
        )
    )
    res = _rtompc("run", str(bad), "--steps", "1", cwd=tmp_path)
    assert res.returncode == 2
    assert "bad.toml" in res.stderr and "mpc" in res.stderr and "f_nope" in res.stderr


@pytest.mark.opcua
async def test_clock_mismatches_refuse_to_start(tmp_path: Path) -> None:
    """Issue 13, finding 7: a lockstep HIL stepping 1 s under an 18 s loop, and a HIL served
    at 20x under a loop that paces real time, both ran silently. Now the server's published
    clock is checked before anything is written (exit 2, nothing written)."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    bench = write_bench(
        tmp_path / "bench.toml",
        "van_de_vusse",
        {"parameters": "do_mpc"},
        endpoint=endpoint,
        sample_time_s=1.0,
        speed=None,
        secure=None,
    )
    app = tmp_path / "app.toml"
    app.write_text(APP.format(endpoint=endpoint, historian="h.sqlite"))
    async with HilProcess(bench, log_path=tmp_path / "hil.log"):
        res = _rtompc("run", str(app), "--mode", "on", "--steps", "3", cwd=tmp_path)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert "clock mismatch" in res.stderr and "steps 1 s per step" in res.stderr, res.stderr
    with sqlite3.connect(tmp_path / "h.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM cycles").fetchone()[0] == 0

    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    bench = write_bench(
        tmp_path / "bench20.toml",
        "van_de_vusse",
        {"parameters": "do_mpc"},
        endpoint=endpoint,
        sample_time_s=1.0,
        speed=20.0,
        secure=None,
    )
    real_time = APP.replace("lockstep = true", "lockstep = false")
    app.write_text(real_time.format(endpoint=endpoint, historian="h20.sqlite"))
    stated = tmp_path / "stated.toml"
    stated.write_text(
        real_time.replace("lockstep = false", "lockstep = false\nspeed = 20.0").format(
            endpoint=endpoint, historian="stated.sqlite"
        )
    )
    async with HilProcess(bench, log_path=tmp_path / "hil20.log"):
        res = _rtompc("run", str(app), "--mode", "on", "--steps", "3", cwd=tmp_path)
        ok = _rtompc("run", str(stated), "--mode", "on", "--steps", "6", cwd=tmp_path)
    assert res.returncode == 2 and "server runs at 20x real time" in res.stderr, res.stderr
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    with sqlite3.connect(tmp_path / "stated.sqlite") as con:
        walls = [r[0] for r in con.execute("SELECT wall_time_s FROM cycles ORDER BY cycle")]
    # the loop paces 18 plant s / 20 = 0.9 wall s per cycle
    assert len(walls) == 6
    gaps = [b - a for a, b in zip(walls, walls[1:], strict=False)]
    assert all(0.8 < g < 1.1 for g in gaps), gaps
