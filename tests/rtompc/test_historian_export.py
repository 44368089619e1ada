"""Streamed export (finding 14.6): bounded memory, Parquet row groups, never a half-written file.

On aebdd36 ``export`` fetched every row into memory (241k rows: 579 MB peak) and
wrote the target in place, so a full disk left a truncated file behind.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plant_models.errors import ConfigError
from plant_models.library import load
from rtompc.historian import ExportFormat, Historian, HistorianLayout, export

VDV = load("van_de_vusse")
N = 20_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A historian with one run of N cycles, every REAL column filled."""
    path = tmp_path_factory.mktemp("big") / "h.sqlite"
    layout = HistorianLayout.for_model(VDV)
    Historian(path, layout).close()
    with sqlite3.connect(path) as con:
        have = {r[1] for r in con.execute("PRAGMA table_info(cycles)")}
        real = [n for n, t in layout.columns() if t == "REAL" and n in have]
        text = [n for n, t in layout.columns() if t == "TEXT" and n in have]
        cols = ["cycle", *real, *text]
        values = ["k", *(f"k * 1.5 + {i}" for i in range(len(real))), *("'good'" for _ in text)]
        if "run_id" in have:  # (schema 1 had no runs: the same data without it)
            con.execute(
                "INSERT INTO runs (kind, layout, start_wall_time_s) VALUES ('run', ?, 0)",
                (layout.to_json(),),
            )
            cols, values = ["run_id", *cols], ["1", *values]
        con.execute(
            f"WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < {N - 1}) "
            f"INSERT INTO cycles ({', '.join(cols)}) SELECT {', '.join(values)} FROM s"
        )
    return path


def _peak(fn: object) -> int:
    tracemalloc.start()
    try:
        fn()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_csv_export_runs_in_bounded_memory(big: Path, tmp_path: Path) -> None:
    def load_all() -> None:
        with sqlite3.connect(big) as con:
            con.execute("SELECT * FROM cycles").fetchall()

    everything = _peak(load_all)
    peak = _peak(lambda: export(big, tmp_path / "h.csv", ExportFormat.CSV))
    assert peak < 0.6 * everything, (
        f"export peak {peak / 1e6:.1f} MB, all rows {everything / 1e6:.1f} MB"
    )
    with open(tmp_path / "h.csv", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    assert len(rows) == N and header[:2] == ["run_id", "cycle"]
    real = [n for n, t in HistorianLayout.for_model(VDV).columns() if t == "REAL"]
    i, j = header.index("meas__c_a"), real.index("meas__c_a")
    assert [float(r[i]) for r in rows[-3:]] == [k * 1.5 + j for k in range(N - 3, N)]


def test_parquet_export_writes_row_groups(big: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    n = export(big, tmp_path / "h.parquet", ExportFormat.PARQUET, row_group_rows=12_000)
    meta = pq.ParquetFile(tmp_path / "h.parquet").metadata
    assert n == meta.num_rows == N
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert groups == [15_000, 5_000]
    table = pq.read_table(tmp_path / "h.parquet", columns=["cycle", "qual__c_a"])
    assert table.column("cycle").to_pylist() == list(range(N))
    assert set(table.column("qual__c_a").to_pylist()) == {"good"}


def test_full_disk_leaves_no_partial_file(
    big: Path, tmp_path: Path, tmpfs: Callable[..., Any]
) -> None:
    with tmpfs(tmp_path / "small", "256k") as disk:
        target = disk / "h.csv"
        target.write_text("previous export\n")
        with pytest.raises(ConfigError, match=rf"export {target}: No space left on device"):
            export(big, target, ExportFormat.CSV)
        assert target.read_text() == "previous export\n"  # untouched
        assert sorted(os.listdir(disk)) == ["h.csv"]  # no temporary file left
