"""``rtompc steptest`` against the strict PLC stand-in (node-opcua, S7-like), in real time.

The PLC (tests/interop/node/strict_plc.js) starts in LOCAL, grants REMOTE only on an
edge of its mode request, refuses writes in LOCAL, drops to LOCAL when the
heartbeat stops changing for 10 s, takes value-only writes in the nodes' declared
types (the pump speed on an Int16 node in r/min, the valve in %, the heater in
kW). The app config is written by ``rtompc config init --from-server`` (the
user's path); the plan moves the pump (doublet +-100 r/min) and the valve (GBN
+-5 %) for 24 s and holds the heater (not in test).

Checked, driving the running command with signals as an engineer would: nothing
is written before REMOTE is granted; the heartbeat keeps the PLC's watchdog quiet
for the whole test; when the operator takes the PLC to LOCAL mid-test, the refused
write is recorded, REMOTE is asked again and the plan goes on; SIGUSR1 pauses (MVs
at their start values, recorded as paused), SIGUSR2 resumes (the plan moves
again), SIGINT (Ctrl-C) stops: exit 0, status "stopped", and every MV is back at
its start value on the PLC.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from strict_plc import StrictPlc

from rtompc.cli import main

pytestmark = [pytest.mark.interop, pytest.mark.opcua, pytest.mark.timeout(240)]

MODEL = f"{Path(__file__).resolve().parent / 'strict_plc.py'}:strict_plc_model"
MAP = (
    "level=DB1.LT100",
    "t_tank=DB1.TT100",
    "t_in=DB1.TT101",
    "valve=DB2.XV100_SP",
    "valve=DB3.XV100_POS",
    "pump=DB2.P100_SP",
    "pump=DB3.P100_PV",
    "heater=DB2.JH100_SP",
    "heater=DB3.JH100_PV",
)

PLAN = """
duration = "24 s"
lead_in = "2 s"
moves = "simultaneous"

[[mv]]
name = "pump"
signal = "step"
amplitude = "100 r/min"
min_switch_time = "6 s"

[[mv]]
name = "valve"
signal = "gbn"
amplitude = "5 %"
min_switch_time = "2 s"

[[mv]]
name = "heater"
in_test = false

[[cv]]
name = "level"
lower = "20 cm"
upper = "240 cm"
guard_band = "2 cm"
"""


def _config(plc: StrictPlc, tmp_path: Path) -> Path:
    out = tmp_path / "plc.toml"
    argv = ["config", "init", MODEL, "--from-server", plc.endpoint, "--out", str(out)]
    for m in MAP:
        argv += ["--map", m]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0
    head = out.read_text().split("\n[loop]", 1)[0]  # [plant] and [transport] as init wrote them
    out.write_text(head + '\n[loop]\nsample_time_s = 1.0\n\n[historian]\npath = "plc.sqlite"\n')
    return out


def _rows(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db)) as con:
        try:
            return con.execute(
                "SELECT cycle, write_status, json_extract(extra, '$.paused'), requested__pump, "
                "requested__valve FROM cycles ORDER BY cycle"
            ).fetchall()
        except sqlite3.OperationalError:
            return []


def _wait_rows(db: Path, n: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while len(_rows(db)) < n and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert len(_rows(db)) >= n, f"the step test did not reach sample {n}"


def test_steptest_on_a_strict_plc_local_pause_resume_stop(strict_plc_factory, tmp_path) -> None:
    plc = strict_plc_factory(watchdog_s=10.0)
    start = plc.state()
    cfg = _config(plc, tmp_path)
    (tmp_path / "plan.toml").write_text(PLAN)
    db = tmp_path / "plc.sqlite"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rtompc",
            "steptest",
            cfg.name,
            "plan.toml",
            "--json",
            "--print-every",
            "0",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_rows(db, 6, proc)
        assert plc.state()["mode"] == 1  # REMOTE granted to the test
        plc.take_local("operator took the unit")
        _wait_rows(db, 10, proc)
        proc.send_signal(signal.SIGUSR1)  # pause
        _wait_rows(db, 14, proc)
        proc.send_signal(signal.SIGUSR2)  # resume
        _wait_rows(db, 19, proc)
        proc.send_signal(signal.SIGINT)  # stop, as Ctrl-C does
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err[-3000:]
    summary = json.loads(out[out.index("{") :])
    assert summary["status"] == "stopped" and summary["message"] == "stopped by SIGINT"
    rows = _rows(db)
    status = [r[1] for r in rows]
    # nothing is written before the PLC grants REMOTE ("not_remote": no write sent)
    granted = status.index("verified")
    assert set(status[:granted]) <= {"not_remote"} and granted <= 3
    assert "rejected" in status  # the write the PLC refused in LOCAL is in the record ...
    first_bad = status.index("rejected")
    back = first_bad + status[first_bad:].index("verified")
    assert set(status[first_bad + 1 : back]) <= {"not_remote"} and back - first_bad <= 4
    # ... REMOTE was asked again at once, and every other write verified: the heartbeat kept
    # the PLC's 10 s watchdog quiet over the whole test
    assert set(status[granted:first_bad]) == {"verified"} and set(status[back:]) == {"verified"}
    # paused between the signals: the MVs at their start values (pump in r/min on the wire)
    paused = [r for r in rows if r[2]]
    assert 2 <= len(paused) <= 8
    pump0 = paused[0][3]
    assert all(r[3] == pump0 and r[4] == paused[0][4] for r in paused)
    assert pump0 * 60 == pytest.approx(start["sp"]["pump"], abs=1.0)
    assert any(r[3] != pump0 for r in rows[rows.index(paused[-1]) + 1 :])  # moving again
    state = plc.state()
    # back at the start values: the engine takes them from the actuator feedback it reads at
    # the start (the drive's speed feedback is an Int16 in r/min: one count of rounding)
    tol = {"pump": 1.0, "valve": 1e-3, "heater": 1e-3}
    for mv in ("pump", "valve", "heater"):
        assert state["sp"][mv] == pytest.approx(start["sp"][mv], abs=tol[mv]), mv


def test_steptest_keys_pause_resume_and_stop_from_a_terminal(strict_plc_factory, tmp_path) -> None:
    """The keys a test engineer types on the terminal running the test (``p`` pause, ``r``
    resume, ``q`` stop, each with Enter): read only when stdin is a terminal (here a
    pseudo-terminal), with the same effect as the signals."""
    import os
    import pty

    plc = strict_plc_factory(watchdog_s=10.0)
    start = plc.state()
    cfg = _config(plc, tmp_path)
    (tmp_path / "plan.toml").write_text(PLAN)
    db = tmp_path / "plc.sqlite"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rtompc",
            "steptest",
            cfg.name,
            "plan.toml",
            "--json",
            "--print-every",
            "0",
        ],
        cwd=tmp_path,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(slave)
    try:
        _wait_rows(db, 6, proc)
        os.write(master, b"p\n")
        _wait_rows(db, 10, proc)
        os.write(master, b"r\n")
        _wait_rows(db, 14, proc)
        os.write(master, b"q\n")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert proc.returncode == 0, out + err[-3000:]
    summary = json.loads(out[out.index("{") :])
    assert summary["status"] == "stopped", summary
    assert summary["message"] == "stopped from the keyboard", summary
    rows = _rows(db)
    assert len(rows) < 24  # stopped before the plan's end
    paused = [r for r in rows if r[2]]
    assert 2 <= len(paused) <= 6, [r[:3] for r in rows]
    pump0 = paused[0][3]
    assert all(r[3] == pump0 for r in paused)
    assert pump0 * 60 == pytest.approx(start["sp"]["pump"], abs=1.0)  # paused at the start value
    after = rows[rows.index(paused[-1]) + 1 :]
    assert after and not any(r[2] for r in after)  # resumed
    assert plc.state()["sp"]["pump"] == pytest.approx(start["sp"]["pump"], abs=1.0)
