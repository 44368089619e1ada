"""Historian faults never stop control (finding 14.4), on a real full disk and a read-only one.

The full disk is a small tmpfs mounted for the test (needs root; skipped otherwise)
with a filler file taking the rest of its space; the control loop (EKF + NMPC over
the in-process plant) must run every cycle, the recorder must report the fault,
and all held rows must reach the file once the filler is removed. The same
behaviour without root uses SQLite's ``max_page_count`` to make the database full.
A read-only directory must be a ConfigError naming the path before anything runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from interfaces.inprocess import InProcessPlantIO
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import EstimatorConfig, ExtendedKalmanFilter
from plant_models.errors import ConfigError
from plant_models.library import load
from plant_models.samples import ControlMove, Mode, OperatingTarget
from rtompc.historian import Historian, HistorianLayout, HistorianRecorder, HistorianRow
from rtompc.runtime import ControlLoop, LoopSettings

DT = 18.0
VDV = load("van_de_vusse", parameters="do_mpc")


def _loop(recorder: object) -> tuple[InProcessPlantIO, ControlLoop]:
    io = InProcessPlantIO(VDV, DT)
    est = ExtendedKalmanFilter(
        VDV, EstimatorConfig(sample_time_s=DT, measured=("c_b", "t_r", "t_k"))
    )
    cfg = MpcConfig(
        horizon_steps=10,
        sample_time_s=DT,
        cvs=(CvSpec("c_b", weight=1.0, target=700.0),),
        mvs=(MvSpec("f_dil", move_weight=0.01), MvSpec("q_k", move_weight=0.01)),
    )
    loop = ControlLoop(
        VDV,
        io,
        est,
        NmpcController(VDV, cfg),
        LoopSettings(sample_time_s=DT),
        target=OperatingTarget(0.0, y={"c_b": 700.0}),
        recorders=[recorder],
    )
    return io, loop


def _fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; returns the filler file."""
    filler = directory / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * size)
    return filler


async def test_full_disk_does_not_stop_control_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, tmpfs: Callable[..., Any]
) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        hist = Historian(
            disk / "h.sqlite", HistorianLayout.for_model(VDV, VDV.y.names + VDV.d.names)
        )
        recorder = HistorianRecorder(hist)
        io, loop = _loop(recorder)
        filler = _fill(disk)
        caplog.set_level(logging.WARNING, logger="rtompc.historian")
        async with io:
            stats = await loop.run(25)  # on aebdd36: sqlite3.OperationalError out of the loop
        assert stats["cycles"] == 25 and stats["writes"] == 25  # control went on
        assert not recorder.flush(1.0)
        health = recorder.health()
        assert health.degraded and "full" in health.last_error
        assert health.queued >= 20 and health.dropped == 0
        assert "DEGRADED" in health.line() and "rows held in memory" in health.line()
        failures = [r for r in caplog.records if "write failed" in r.getMessage()]
        assert len(failures) == 1, "logged once per state change, not per row"
        filler.unlink()  # space comes back
        assert recorder.flush(10.0)
        health = recorder.health()
        assert not health.degraded and health.queued == 0 and health.dropped == 0
        assert sum("writing again" in r.getMessage() for r in caplog.records) == 1
        rows = list(hist.rows())
        hist.end_run("done", 0)
        hist.close()
    assert [r["cycle"] for r in rows] == list(range(25))
    assert all(r["write_status"] == "verified" for r in rows)


async def test_database_full_holds_then_drops_with_a_count(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Without root: SQLite's max_page_count makes the database full."""
    hist = Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(VDV))
    hist.begin_run("run", mode=Mode.ON)
    recorder = hist.recorder(max_held_rows=40, retry_interval_s=0.02)
    with hist._lock:
        pages = hist.con.execute("PRAGMA page_count").fetchone()[0]
        hist.con.execute(f"PRAGMA max_page_count = {pages}")
    caplog.set_level(logging.WARNING, logger="rtompc.historian")
    t_max = 0.0
    for k in range(300):
        t0 = time.perf_counter()
        recorder.append(
            HistorianRow(k, 18.0 * k, Mode.ON, move=ControlMove(0.0, np.array([0.004, -300.0])))
        )
        t_max = max(t_max, time.perf_counter() - t0)
        time.sleep(0.0005)
    recorder.flush(0.5)
    health = recorder.health()
    assert health.degraded and health.last_error.endswith("database or disk is full")
    assert health.queued <= 40 and health.written + health.dropped + health.queued == 300
    assert health.dropped > 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("write failed" in m for m in messages) == 1
    assert sum("dropping the oldest" in m for m in messages) == 1
    with hist._lock:
        hist.con.execute("PRAGMA max_page_count = 1073741823")
    assert recorder.flush(5.0)
    cycles = [r["cycle"] for r in hist.rows()]
    hist.close()
    assert len(cycles) == health.written + health.queued and cycles[-1] == 299
    assert cycles[-health.queued :] == list(range(300 - health.queued, 300))  # newest kept


def test_full_disk_at_start_up_is_a_config_error(tmp_path: Path, tmpfs: Callable[..., Any]) -> None:
    with tmpfs(tmp_path / "full", "1m") as disk:
        _fill(disk)
        path = disk / "h.sqlite"
        with pytest.raises(ConfigError, match=rf"historian {path}: .*No space left on device"):
            Historian(path, HistorianLayout.for_model(VDV))


def _read_only_dir(
    tmp_path: Path, tmpfs: Callable[..., Any]
) -> contextlib.AbstractContextManager[Path]:
    if os.geteuid() == 0:  # root ignores permission bits: use a read-only file system
        return tmpfs(tmp_path / "ro", "1m", read_only=True)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return contextlib.nullcontext(ro)


def test_read_only_directory_is_a_config_error_naming_the_path(
    tmp_path: Path, app_config: Callable[[Path], str], tmpfs: Callable[..., Any]
) -> None:
    with _read_only_dir(tmp_path, tmpfs) as ro:
        path = ro / "h.sqlite"
        with pytest.raises(ConfigError, match=rf"historian {path}: directory {ro} is not writable"):
            Historian(path, HistorianLayout.for_model(VDV))
        nested = ro / "unit" / "h.sqlite"
        with pytest.raises(ConfigError, match=rf"historian {nested}: cannot create directory"):
            Historian(nested, HistorianLayout.for_model(VDV))
        # the command says so before touching the plant, without a traceback (exit code 2)
        cfg = tmp_path / "app.toml"
        cfg.write_text(app_config(path))
        res = subprocess.run(
            [sys.executable, "-m", "rtompc", "run", str(cfg), "--steps", "1"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"historian {path}: directory {ro} is not writable" in res.stderr
    assert "Traceback" not in res.stderr


async def test_run_status_shows_a_degraded_historian_and_its_recovery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rtompc run`'s printer says when the historian degrades and when it is back."""
    from rtompc.commands.run import _Printer
    from rtompc.status import StatusFormatter

    hist = Historian(
        tmp_path / "h.sqlite", HistorianLayout.for_model(VDV, VDV.y.names + VDV.d.names)
    )
    hist.begin_run("run", mode=Mode.ON)
    recorder = hist.recorder(retry_interval_s=0.02)
    printer = _Printer(5, StatusFormatter(VDV, {}))
    printer.historian_health = recorder.health
    io, loop = _loop(recorder)
    loop.recorders.append(printer)
    with hist._lock:
        pages = hist.con.execute("PRAGMA page_count").fetchone()[0]
        hist.con.execute(f"PRAGMA max_page_count = {pages}")
    async with io:
        stats = await loop.run(12)
        assert stats["cycles"] == 12 and stats["writes"] == 12
        out = capsys.readouterr().out
        assert "historian DEGRADED: OperationalError: database or disk is full" in out
        with hist._lock:
            hist.con.execute("PRAGMA max_page_count = 1073741823")
        assert recorder.flush(5.0)
        await loop.run(2)
    out = capsys.readouterr().out
    assert "historian back: historian ok" in out
    hist.close()
