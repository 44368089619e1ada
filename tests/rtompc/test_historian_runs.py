"""Historian runs: many runs per file, the run lifecycle, schema-1 migration, clear refusals.

Finding 13.1: a second ``rtompc run`` on an existing historian file crashed after
writing cycle 0 (``UNIQUE constraint failed: cycles.cycle``); here the same
command runs twice on one file and both runs are in it.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from plant_models.errors import ConfigError
from plant_models.library import load
from plant_models.samples import ControlMove, Mode
from rtompc.historian import ExportFormat, Historian, HistorianLayout, HistorianRow, export

VDV = load("van_de_vusse")


def _row(k: int, u: tuple[float, float] = (0.004, -300.0)) -> HistorianRow:
    return HistorianRow(k, 18.0 * k, Mode.ON, move=ControlMove(0.0, np.array(u)), written=u)


def test_second_run_on_one_file_appends_a_run(
    tmp_path: Path, app_config: Callable[[str], str]
) -> None:
    """13.1: OFF -> SHADOW -> ON with one config and one historian: every run is kept."""
    cfg = tmp_path / "app.toml"
    cfg.write_text(app_config("h.sqlite"))
    for mode in ("shadow", "on"):
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "rtompc",
                "run",
                str(cfg),
                "--mode",
                mode,
                "--steps",
                "3",
                "--print-every",
                "0",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        assert "Traceback" not in res.stderr
    with sqlite3.connect(tmp_path / "h.sqlite") as con:
        cycles = con.execute(
            "SELECT run_id, cycle, write_status FROM cycles ORDER BY run_id, cycle"
        )
        rows = cycles.fetchall()
    assert [(r[0], r[1]) for r in rows] == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    assert {r[2] for r in rows if r[0] == 1} == {"shadow"}
    assert {r[2] for r in rows if r[0] == 2} == {"verified"}


def test_run_lifecycle_is_recorded(tmp_path: Path) -> None:
    from rtompc.historian import RunKind

    path = tmp_path / "h.sqlite"
    with Historian(path, HistorianLayout.for_model(VDV)) as h:
        rid = h.begin_run(
            RunKind.STEPTEST,
            mode="steptest",
            config_hash="abc123",
            config_text="[plant]\nname = 'van_de_vusse'\n",
            meta={"operator": "jd"},
        )
        for k in range(3):
            h.append(_row(k))
        assert h.end_run("plan finished", 0)
        rid2 = h.begin_run("run", mode=Mode.ON)
        h.append(_row(0))
        h.end_run("watchdog trip", 3)
        runs = h.runs()
    assert (rid, rid2) == (1, 2)
    first, second = runs
    assert (first.kind, first.mode, first.config_hash, first.meta) == (
        "steptest",
        "steptest",
        "abc123",
        {"operator": "jd"},
    )
    assert first.config_text.startswith("[plant]") and first.cycles == 3
    assert first.stop_wall_time_s is not None and first.stop_wall_time_s >= first.start_wall_time_s
    assert (first.exit_reason, first.exit_code) == ("plan finished", 0)
    assert (second.kind, second.mode, second.exit_reason, second.exit_code, second.cycles) == (
        "run",
        "on",
        "watchdog trip",
        3,
        1,
    )


def test_run_not_ended_is_closed_and_kind_is_checked(tmp_path: Path) -> None:
    with Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(VDV)) as h:
        h.append(_row(0))  # no begin_run: an implicit run
        with pytest.raises(ConfigError, match="run kind 'nightly'.*steptest"):
            h.begin_run("nightly", mode=Mode.ON)
    with Historian(tmp_path / "h.sqlite") as h:
        (run,) = h.runs()
    assert run.exit_reason == "closed without end_run" and run.meta == {"implicit": True}


def _schema1_file(path: Path, n: int) -> None:
    """A file as the schema-1 historian wrote it (aebdd36): ``cycles`` keyed by ``cycle``."""
    layout = HistorianLayout.for_model(VDV)
    cols = [
        ("cycle", "INTEGER PRIMARY KEY"),
        ("time_s", "REAL"),
        ("wall_time_s", "REAL"),
        ("mode", "TEXT"),
    ]
    for name in layout.measured:
        cols += [(f"meas__{name}", "REAL"), (f"qual__{name}", "TEXT")]
    cols += [(f"est__{name}", "REAL") for name in layout.states]
    cols += [(f"target_y__{name}", "REAL") for name in layout.outputs]
    for prefix in ("target_u", "move", "written"):
        cols += [(f"{prefix}__{name}", "REAL") for name in layout.mvs]
    cols += [
        ("target_source", "TEXT"),
        ("write_status", "TEXT"),
        ("solver_status", "TEXT"),
        ("solver_iterations", "INTEGER"),
        ("solve_time_s", "REAL"),
        ("cycle_time_s", "REAL"),
        ("overrun", "INTEGER"),
        ("message", "TEXT"),
        ("extra", "TEXT"),
    ]
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    con.execute(f"CREATE TABLE cycles ({', '.join(f'{c} {t}' for c, t in cols)})")
    con.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("layout", layout.to_json()), ("schema_version", "1"), ("created_wall_time_s", "1.7e9")],
    )
    con.executemany(
        "INSERT INTO cycles (cycle, time_s, wall_time_s, mode, move__q_k, written__f_dil) "
        "VALUES (?, ?, ?, 'on', ?, ?)",
        [(k, 18.0 * k, 1.7e9 + k, -300.0 - k, 0.004) for k in range(n)],
    )
    con.commit()
    con.close()


def test_schema1_file_is_migrated_and_takes_a_second_run(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _schema1_file(path, 5)
    # the export reads a schema-1 file as it is (read-only, run 1)
    assert export(path, tmp_path / "old.csv", ExportFormat.CSV) == 5
    with Historian(path, HistorianLayout.for_model(VDV)) as h:
        for k in range(2):  # cycles 0 and 1 exist in run 1: the new run must not collide
            h.append(_row(k))
        runs = h.runs()
        old = list(h.rows(run_id=1))
    assert [(r.run_id, r.cycles) for r in runs] == [(1, 5), (2, 2)]
    assert runs[0].exit_reason.startswith("unknown") and runs[0].mode == "on"
    assert runs[0].start_wall_time_s == 1.7e9 and runs[0].stop_wall_time_s == 1.7e9 + 4
    assert [r["move__q_k"] for r in old] == [-300.0 - k for k in range(5)]
    assert old[0]["requested__q_k"] is None  # new columns are empty for old rows
    with sqlite3.connect(path) as con:
        version = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert version == ("2",)


def test_newer_schema_and_foreign_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    Historian(path, HistorianLayout.for_model(VDV)).close()
    with sqlite3.connect(path) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ConfigError, match=r"h\.sqlite: written by a newer rtompc \(schema 99\)"):
        Historian(path)
    junk = tmp_path / "notes.sqlite"
    junk.write_text("not a database\n" * 100)
    with pytest.raises(ConfigError, match=r"notes\.sqlite: file is not a database"):
        Historian(junk, HistorianLayout.for_model(VDV))


def test_export_picks_a_run(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with Historian(path, HistorianLayout.for_model(VDV)) as h:
        for run in range(3):
            h.begin_run("run", mode=Mode.ON)
            for k in range(run + 2):
                h.append(_row(k, (0.004, -100.0 * run)))
            h.end_run("done")
    assert export(path, tmp_path / "last.csv", ExportFormat.CSV) == 4
    assert export(path, tmp_path / "r1.csv", ExportFormat.CSV, run_id=1) == 2
    assert export(path, tmp_path / "all.csv", ExportFormat.CSV, all_runs=True) == 9
    lines = (tmp_path / "r1.csv").read_text().splitlines()
    assert lines[0].startswith("run_id,cycle,") and lines[1].startswith("1,0,")
    with pytest.raises(ConfigError, match="--run 7: no such run; runs: 1, 2, 3"):
        export(path, tmp_path / "x.csv", ExportFormat.CSV, run_id=7)


def test_list_runs_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from rtompc.commands import export as export_cmd

    path = tmp_path / "h.sqlite"
    with Historian(path, HistorianLayout.for_model(VDV)) as h:
        h.begin_run("demo", mode=Mode.ON)
        h.append(_row(0))
        h.end_run("done", 0)
    parser = argparse.ArgumentParser()
    export_cmd.register(parser.add_subparsers())
    assert export_cmd.run(parser.parse_args(["export", str(path), "--list-runs", "--json"])) == 0
    (run,) = json.loads(capsys.readouterr().out)
    assert (run["run_id"], run["kind"], run["cycles"], run["exit_reason"]) == (1, "demo", 1, "done")
