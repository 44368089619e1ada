"""Historian export to CSV or Parquet, streamed in chunks (bounded memory), never half-written.

Rows come from a read-only connection in chunks of ``chunk_rows`` (``fetchmany``);
CSV is written chunk by chunk, Parquet through one ``pyarrow.parquet.ParquetWriter``
with a row group every ``row_group_rows`` rows (kept as Arrow arrays until then),
so memory stays bounded by one chunk plus one row group whatever the file size. Output goes to a temporary file in the target directory and is
renamed over the target only when complete: a failed or interrupted export
leaves no partial file (and an existing target untouched).

One run (default: the latest) is exported with that run's columns; ``all_runs``
exports every run with all columns, ``run_id`` first. Files written by schema 1
(one run, no ``runs`` table) export as run 1 without being migrated.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sqlite3
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from plant_models.errors import ConfigError
from rtompc.historian.layout import HistorianLayout

CHUNK_ROWS = 5_000
"""Rows per fetch (one chunk of Python rows in memory at a time)."""
ROW_GROUP_ROWS = 50_000
"""Rows per Parquet row group (held as Arrow arrays, about 8 bytes per value, until written)."""


class ExportFormat(Enum):
    """Export file formats."""

    CSV = "csv"
    PARQUET = "parquet"


@dataclass(frozen=True)
class _Query:
    sql: str
    args: tuple[Any, ...]
    columns: list[tuple[str, str]]  # (name, SQL type)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _query(con: sqlite3.Connection, db: Path, run_id: int | None, all_runs: bool) -> _Query:
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"historian {db}: not a historian file ({exc})") from None
    if "cycles" not in tables:
        raise ConfigError(f"historian {db}: not a historian file (no cycles table)")
    declared = [(r[1], (r[2] or "").upper()) for r in con.execute("PRAGMA table_info(cycles)")]
    if "runs" not in tables:  # schema 1: a single run
        if run_id not in (None, 1):
            raise ConfigError(f"historian {db}: --run {run_id}: this file holds run 1 only")
        cols = [("run_id", "INTEGER"), *declared]
        return _Query("SELECT 1, * FROM cycles ORDER BY cycle", (), cols)
    if all_runs:
        return _Query("SELECT * FROM cycles ORDER BY run_id, cycle", (), declared)
    runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY run_id")]
    if not runs:
        raise ConfigError(f"historian {db}: holds no runs")
    chosen = runs[-1] if run_id is None else run_id
    row = con.execute("SELECT layout FROM runs WHERE run_id = ?", (chosen,)).fetchone()
    if row is None:
        raise ConfigError(
            f"historian {db}: --run {run_id}: no such run; runs: {', '.join(map(str, runs))}"
        )
    types = dict(declared)
    cols = [(n, types.get(n, t)) for n, t in HistorianLayout.from_json(row[0]).columns()]
    sql = f"SELECT {', '.join(_q(n) for n, _ in cols)} FROM cycles WHERE run_id = ? ORDER BY cycle"
    return _Query(sql, (chosen,), cols)


def _write_csv(tmp: Path, q: _Query, cur: sqlite3.Cursor, chunk_rows: int) -> int:
    n = 0
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([name for name, _ in q.columns])
        while rows := cur.fetchmany(chunk_rows):
            w.writerows(rows)
            n += len(rows)
            del rows  # one chunk alive at a time
    return n


def _write_parquet(
    tmp: Path, q: _Query, cur: sqlite3.Cursor, chunk_rows: int, row_group_rows: int
) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "parquet export needs pyarrow (pip install pyarrow); CSV works without it"
        ) from None

    def arrow_type(sql: str) -> Any:
        if "INT" in sql:
            return pa.int64()
        if "REAL" in sql or "FLOA" in sql or "DOUB" in sql:
            return pa.float64()
        return pa.string()

    schema = pa.schema([(name, arrow_type(sql)) for name, sql in q.columns])
    n = 0
    batches: list[Any] = []
    pending = 0
    with pq.ParquetWriter(str(tmp), schema) as writer:
        while rows := cur.fetchmany(chunk_rows):
            columns = list(zip(*rows, strict=True))
            del rows
            arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
            del columns
            batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
            pending += batches[-1].num_rows
            if pending >= row_group_rows:
                writer.write_table(pa.Table.from_batches(batches), row_group_size=pending)
                n += pending
                batches, pending = [], 0
        if pending or n == 0:
            table = pa.Table.from_batches(batches, schema=schema)
            writer.write_table(table, row_group_size=max(1, pending))
            n += pending
    return n


def export(
    db: str | Path,
    out: str | Path,
    fmt: ExportFormat,
    *,
    run_id: int | None = None,
    all_runs: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> int:
    """Export one run (default: the latest) or all runs to CSV or Parquet; returns the rows
    written. The target appears only when complete (temporary file + rename)."""
    db, out = Path(db), Path(out)
    if not db.is_file():
        raise ConfigError(f"historian {db}: file not found")
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ConfigError(f"historian {db}: cannot open ({exc})") from None
    tmp: Path | None = None
    try:
        q = _query(con, db, run_id, all_runs)
        cur = con.execute(q.sql, q.args)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
        if fmt is ExportFormat.CSV:
            n = _write_csv(tmp, q, cur, chunk_rows)
        else:
            n = _write_parquet(tmp, q, cur, chunk_rows, row_group_rows)
        os.replace(tmp, out)
        tmp = None
        return n
    except OSError as exc:
        raise ConfigError(f"export {out}: {exc.strerror or exc}") from None
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"historian {db}: {exc}") from None
    finally:
        con.close()
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
