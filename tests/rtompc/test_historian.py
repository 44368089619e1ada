"""Historian: per-cycle rows, survival of SIGKILL, layout checks, CSV/Parquet export, CLI."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from plant_models.errors import ConfigError
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
from rtompc.cli import COMMAND_MODULES
from rtompc.historian import (
    Durability,
    ExportFormat,
    Historian,
    HistorianLayout,
    HistorianRow,
    export,
)

VDV = load("van_de_vusse")


def record(k: int) -> HistorianRow:
    meas = Measurement(
        10.0 * k,
        VDV.y.names + VDV.d.names,
        np.array([2140.0 + k, 1090.0, 387.35, 386.05, math.nan]),
        (Quality.GOOD, Quality.GOOD, Quality.UNCERTAIN, Quality.GOOD, Quality.BAD),
    )
    return HistorianRow(
        cycle=k,
        time_s=10.0 * k,
        mode=Mode.ON,
        measurement=meas,
        estimate=StateEstimate(10.0 * k, np.array([2140.0, 1090.0, 387.3, 386.0])),
        target=OperatingTarget(0.0, y={"c_b": 1100.0}, u={}, source="rto"),
        move=ControlMove(10.0 * k, np.array([-300.0, 0.004]), ("q_k", "f_dil")),
        written=[0.004, math.nan],
        write_status="verified",
        solver_status=SolveStatus.SUCCESS,
        solver_iterations=3,
        solve_time_s=0.002,
        cycle_time_s=0.01,
        message="",
        extra={"kkt": 1e-9},
        requested=[0.004, -300.0],  # ordered like the model's u: f_dil, q_k
        readback=[0.004, math.nan],
        measured=[0.0041, -290.0],
        mv_status=("accepted", "rejected"),
        plant_time_s=5.0 * k,
        plant_mode="REMOTE",
        plant_status_text="REMOTE: ok",
        flags=("q_k:stuck",),
    )


def test_rows_hold_every_field(tmp_path: Path) -> None:
    with Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(VDV)) as h:
        for k in range(3):
            h.append(record(k))
        assert h.count() == 3
        rows = list(h.rows())
    r = rows[2]
    assert r["cycle"] == 2 and r["time_s"] == 20.0 and r["mode"] == "on"
    assert r["meas__c_a"] == 2142.0 and r["qual__t_r"] == "uncertain"
    assert r["meas__t_in"] is None and r["qual__t_in"] == "bad"  # NaN stored as NULL, quality kept
    assert r["est__t_k"] == 386.0
    assert (
        r["target_y__c_b"] == 1100.0 and r["target_y__c_a"] is None and r["target_source"] == "rto"
    )
    assert r["move__f_dil"] == 0.004 and r["move__q_k"] == -300.0  # mapped by name
    assert r["written__f_dil"] == 0.004 and r["written__q_k"] is None
    assert r["write_status"] == "verified" and r["solver_status"] == "success"
    assert r["solver_iterations"] == 3 and r["overrun"] == 0 and '"kkt"' in r["extra"]
    # requested, written, read-back and measured values per MV, each with its status (13.2)
    assert r["requested__q_k"] == -300.0 and r["readback__q_k"] is None
    assert r["readback__f_dil"] == 0.004 and r["measured__q_k"] == -290.0
    assert r["mv_status__q_k"] == "rejected" and r["mv_status__f_dil"] == "accepted"
    assert r["plant_time_s"] == 10.0 and r["plant_mode"] == "REMOTE"
    assert r["plant_status_text"] == "REMOTE: ok" and r["flags"] == '["q_k:stuck"]'
    assert r["run_id"] == 1


def test_wal_mode_and_durability_setting(tmp_path: Path) -> None:
    h = Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(VDV), durability=Durability.FULL)
    assert h._con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert h._con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    h.close()
    h = Historian(tmp_path / "h.sqlite")
    assert h._con.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL (default)
    h.close()


def test_reopen_appends_runs_and_another_model_gets_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with Historian(path, HistorianLayout.for_model(VDV)) as h:
        h.append(record(0))
    with Historian(path) as h:  # layout read from the file; a new run, cycles from 0 again
        h.append(record(0))
        h.append(record(1))
        assert h.count() == 3 and h.count(run_id=2) == 2
    other = HistorianLayout(("a",), ("x1",), ("a",), ("u1",), "other")
    with Historian(path, other) as h:
        h.begin_run("simulate", mode=Mode.SHADOW)
        h.append(HistorianRow(0, 0.0, Mode.SHADOW, move=ControlMove(0.0, np.array([1.5]))))
        runs = h.runs()
        other_rows = list(h.rows(run_id=3))
        vdv_rows = list(h.rows(run_id=1))
    assert [(r.run_id, r.layout.plant, r.cycles) for r in runs] == [
        (1, "van_de_vusse", 1),
        (2, "van_de_vusse", 2),
        (3, "other", 1),
    ]
    assert other_rows[0]["move__u1"] == 1.5 and "move__q_k" not in other_rows[0]
    assert vdv_rows[0]["move__q_k"] == -300.0 and "move__u1" not in vdv_rows[0]
    with pytest.raises(ConfigError, match="needs a layout"):
        Historian(tmp_path / "new.sqlite")


WRITER = textwrap.dedent("""
    import numpy as np
    from plant_models.library import load
    from plant_models.samples import ControlMove, Mode
    from rtompc.historian import HistorianRow, Historian, HistorianLayout
    model = load("van_de_vusse")
    h = Historian({path!r}, HistorianLayout.for_model(model))
    k = 0
    while True:
        h.append(HistorianRow(k, 10.0 * k, Mode.ON, move=ControlMove(0.0, np.array([0.004, -300.0]))))
        print(k, flush=True)
        k += 1
""")


def test_all_committed_cycles_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    script = WRITER.format(path=str(path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    last = -1
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            last = int(line)
            if last >= 200:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert last >= 200
    with Historian(path) as h:
        cycles = [r["cycle"] for r in h.rows()]
    # every cycle reported as appended is there, in order, with nothing missing in between
    assert cycles[: last + 1] == list(range(last + 1))
    assert len(cycles) >= last + 1
    assert export(path, tmp_path / "killed.csv", ExportFormat.CSV) == len(cycles)


def test_export_csv_and_parquet(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with Historian(path, HistorianLayout.for_model(VDV)) as h:
        for k in range(5):
            h.append(record(k))
    n = export(path, tmp_path / "h.csv", ExportFormat.CSV)
    assert n == 5
    with open(tmp_path / "h.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert (
        len(rows) == 5 and float(rows[4]["meas__c_a"]) == 2144.0 and rows[0]["qual__t_in"] == "bad"
    )
    pq = pytest.importorskip("pyarrow.parquet")
    assert export(path, tmp_path / "h.parquet", ExportFormat.PARQUET) == 5
    table = pq.read_table(tmp_path / "h.parquet")
    assert table.num_rows == 5
    assert table.column("meas__c_a").to_pylist() == [2140.0 + k for k in range(5)]


def _cli(argv: list[str]) -> int:
    """Run the export sub-command through its own parser (the full CLI imports every command)."""
    import argparse

    from rtompc.commands import export as export_cmd

    parser = argparse.ArgumentParser(prog="rtompc")
    export_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "rtompc.commands.export" in COMMAND_MODULES
    path = tmp_path / "h.sqlite"
    with Historian(path, HistorianLayout.for_model(VDV)) as h:
        h.append(record(0))
    assert (
        _cli(["export", str(path), "--format", "csv", "--out", str(tmp_path / "o.csv"), "--json"])
        == 0
    )
    assert '"rows": 1' in capsys.readouterr().out
    assert (tmp_path / "o.csv").read_text().startswith("run_id,cycle,time_s")
    assert _cli(["export", str(path)]) == 0  # default output name
    assert (tmp_path / "h.csv").is_file()
    with pytest.raises(ConfigError, match="file not found"):
        _cli(["export", str(tmp_path / "missing.sqlite")])


async def test_config_plantio_and_historian_work_together(tmp_path: Path) -> None:
    """The pieces the runtime assembles: config -> model -> PlantIO -> cycles -> historian -> CSV."""
    from rtompc.config import build, load_app

    cfg_path = tmp_path / "sim.toml"
    cfg_path.write_text(
        '[plant]\nname = "van_de_vusse"\n[transport]\nkind = "inprocess"\n'
        '[loop]\nsample_time_s = 10.0\nmode = "on"\n[historian]\npath = "hist.sqlite"\n'
    )
    cfg = load_app(cfg_path)
    model = build.models(cfg).plant
    io = build.plantio(cfg, model)
    hist = build.historian(cfg, model, io.measurement_names)
    assert hist is not None
    u = np.array([20.0 / 3600, -2000e3 / 3600])
    async with io:
        for k in range(4):
            m = await io.read()
            res = await io.write(ControlMove(m.time_s, u, model.u.names))
            hist.append(
                HistorianRow(
                    k,
                    m.time_s,
                    cfg.loop.mode,
                    measurement=m,
                    move=ControlMove(m.time_s, u),
                    written=res.written,
                    write_status=res.status.value,
                )
            )
            await io.advance(1)
    hist.close()
    assert export(tmp_path / "hist.sqlite", tmp_path / "hist.csv", ExportFormat.CSV) == 4
    with open(tmp_path / "hist.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    traj = model.simulate(None, np.tile(u, (3, 1)), 10.0)
    assert float(rows[3]["meas__c_b"]) == pytest.approx(traj.y[3][1], rel=1e-8)
    assert {r["write_status"] for r in rows} == {"verified"}


def test_runtime_cycle_record_fields_reach_their_columns(tmp_path: Path) -> None:
    """13.2: requested, written, read-back and measured MVs, per-MV status, plant clock, mode,
    status text and supervision flags of a runtime cycle are stored, each in its own column."""
    from rtompc.cycle import CycleRecord as RuntimeCycle
    from rtompc.historian import HistorianRecorder

    base = record(0)
    assert base.measurement is not None and base.estimate is not None
    cycle = RuntimeCycle(
        cycle=0,
        time_s=18.0,
        wall_time_s=1.7e9,
        mode=Mode.ON,
        connected=True,
        measurement=base.measurement,
        estimate=base.estimate,
        target=base.target,
        mv_names=("f_dil", "q_k"),
        u_computed=np.array([0.0045, -350.0]),
        u_written=np.array([0.0045, -300.0]),
        u_plant=np.array([0.004, -300.0]),
        solver_status="success",
        solver="rti",
        fallback=False,
        solve_time_s=1e-3,
        estimator_time_s=1e-4,
        cycle_time_s=5e-3,
        overrun=False,
        write_status="partial",
        u_requested=np.array([0.0045, -350.0]),
        u_readback=np.array([0.0045, -300.0]),
        u_measured=np.array([0.00449, -301.0]),
        mv_status=("accepted", "rejected"),
        plant_time_s=7.5,
        plant_mode="REMOTE",
        plant_status_text="REMOTE: heater at limit",
        flags=("q_k:stuck", "t_r:frozen"),
        events=("write partial: q_k BadOutOfRange",),
    )
    with Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(VDV)) as h:
        rec = HistorianRecorder(h)
        rec.append(cycle)
        (r,) = list(h.rows())
    assert (r["requested__q_k"], r["written__q_k"], r["readback__q_k"], r["measured__q_k"]) == (
        -350.0,
        -300.0,
        -300.0,
        -301.0,
    )
    assert (r["mv_status__f_dil"], r["mv_status__q_k"]) == ("accepted", "rejected")
    assert r["written__f_dil"] == 0.0045 and r["move__q_k"] == -350.0
    assert (r["plant_time_s"], r["plant_mode"], r["wall_time_s"]) == (7.5, "REMOTE", 1.7e9)
    assert r["plant_status_text"] == "REMOTE: heater at limit"
    assert r["flags"] == '["q_k:stuck", "t_r:frozen"]'
    assert r["message"] == "write partial: q_k BadOutOfRange" and r["write_status"] == "partial"
