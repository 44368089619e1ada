"""Read-only access to a historian file: runs, the change journal, one run's rows in chunks.

:class:`HistorianReader` opens the file read-only (SQLite ``mode=ro``: it never writes, never
migrates, and reads a file another process is still writing in WAL mode). It is what
after-the-run tools use (``rtompc report``); the writer is :class:`~rtompc.historian.Historian`.

- :meth:`HistorianReader.runs` / :meth:`HistorianReader.run`: the ``runs`` table (a schema-1
  file reads as its single run 1);
- :meth:`HistorianReader.journal`: the live-change journal of a run;
- :meth:`HistorianReader.chunks`: SQL expressions over one run's cycles, in cycle order,
  ``chunk_rows`` rows at a time (``fetchmany``), so memory does not grow with the run;
- :meth:`HistorianReader.query`: one aggregate query over a run's cycles;
- :func:`list_runs`: the runs as ``rtompc export --list-runs`` and ``rtompc report --list``
  print them.

Every error is a :class:`~plant_models.errors.ConfigError` naming the file: not found, not a
historian, written by a newer rtompc, no such run (listing the runs there are).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from plant_models.errors import ConfigError
from rtompc.historian.journal import JournalRow, journal_rows
from rtompc.historian.layout import HistorianLayout
from rtompc.historian.store import SCHEMA_VERSION, RunInfo, RunKind, read_runs


class HistorianReader:
    """A historian file opened read-only. Use as a context manager or call close()."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"historian {self.path}: file not found")
        try:
            self._con: sqlite3.Connection | None = sqlite3.connect(
                f"file:{self.path.resolve()}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"historian {self.path}: cannot open ({exc})") from None
        try:
            self._check()
        except BaseException:
            self.close()
            raise

    def _check(self) -> None:
        try:
            tables = {
                r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"historian {self.path}: not a historian file ({exc})") from None
        if "cycles" not in tables or "meta" not in tables:
            raise ConfigError(
                f"historian {self.path}: not a historian file (no cycles/meta table; "
                "expected a file written by rtompc run, simulate, steptest or demo)"
            )
        row = self.con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row is not None else 1
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"historian {self.path}: written by a newer rtompc (schema {version}); "
                f"this version reads schema 1 to {SCHEMA_VERSION}"
            )
        self.schema1 = "runs" not in tables
        """A schema-1 file: one run (1), ``cycles`` keyed by cycle only."""
        self.columns = frozenset(r[1] for r in self.con.execute("PRAGMA table_info(cycles)"))
        """Columns of the ``cycles`` table (all runs)."""

    @property
    def con(self) -> sqlite3.Connection:
        """The read-only connection."""
        if self._con is None:
            raise ConfigError(f"historian {self.path}: closed")
        return self._con

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        if not self.schema1:
            return read_runs(self.con)
        meta = dict(self.con.execute("SELECT key, value FROM meta").fetchall())
        if "layout" not in meta:
            raise ConfigError(f"historian {self.path}: not a historian file (no layout in meta)")
        first = self.con.execute(
            "SELECT mode, MIN(wall_time_s), MAX(wall_time_s), COUNT(*) FROM cycles"
        ).fetchone()
        start = float(meta.get("created_wall_time_s") or first[1] or 0.0)
        return [
            RunInfo(
                1,
                RunKind.RUN.value,
                first[0] or "",
                "",
                "",
                HistorianLayout.from_json(meta["layout"]),
                start,
                first[2],
                "unknown (written by schema 1)",
                None,
                {"schema": 1},
                int(first[3]),
            )
        ]

    def run(self, run_id: int | None = None) -> RunInfo:
        """One run (None: the latest); ConfigError naming the runs there are when unknown."""
        runs = self.runs()
        if not runs:
            raise ConfigError(f"historian {self.path}: holds no runs")
        if run_id is None:
            return runs[-1]
        for r in runs:
            if r.run_id == run_id:
                return r
        raise ConfigError(
            f"historian {self.path}: no run {run_id}; runs: {', '.join(str(r.run_id) for r in runs)}"
        )

    def journal(self, run_id: int | None = None) -> list[JournalRow]:
        """The change journal (of one run, or all), oldest first."""
        return journal_rows(self.con, run_id)

    def _where(self, run_id: int) -> tuple[str, tuple[Any, ...]]:
        return ("1", ()) if self.schema1 else ("run_id = ?", (run_id,))

    def chunks(
        self, run_id: int, expressions: Sequence[str], chunk_rows: int = 5000
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Rows of ``expressions`` (SQL over the ``cycles`` columns) of one run, in cycle
        order, at most ``chunk_rows`` at a time."""
        where, args = self._where(run_id)
        cur = self.con.execute(
            f"SELECT {', '.join(expressions)} FROM cycles WHERE {where} ORDER BY cycle", args
        )
        try:
            while rows := cur.fetchmany(chunk_rows):
                yield rows
        finally:
            cur.close()

    def query(
        self, run_id: int, select: str, *, tail: str = "", extra_from: str = ""
    ) -> list[tuple[Any, ...]]:
        """``SELECT select FROM cycles[, extra_from] WHERE <run> tail`` (aggregates, groups)."""
        where, args = self._where(run_id)
        src = f"cycles, {extra_from}" if extra_from else "cycles"
        try:
            return self.con.execute(
                f"SELECT {select} FROM {src} WHERE {where} {tail}", args
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"historian {self.path}: {exc}") from None

    def meta(self) -> dict[str, str]:
        """The ``meta`` table."""
        return {k: v for k, v in self.con.execute("SELECT key, value FROM meta").fetchall()}

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> HistorianReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def quote(name: str) -> str:
    """A column name quoted for SQL."""
    return '"' + name.replace('"', '""') + '"'


def run_summary(info: RunInfo) -> dict[str, Any]:
    """A run as the JSON object of ``--list --json`` (no config text, no layout)."""
    keys = ("run_id", "kind", "mode", "start_wall_time_s", "stop_wall_time_s", "exit_reason")
    out = {k: getattr(info, k) for k in keys}
    return {
        **out,
        "exit_code": info.exit_code,
        "config_hash": info.config_hash,
        "cycles": info.cycles,
        "unit": str(info.meta.get("unit", "")),
    }


def run_line(info: RunInfo) -> str:
    """A run as one line of ``--list`` (UTC times)."""

    def when(t: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t)) if t else "-"

    code = info.exit_code if info.exit_code is not None else "-"
    unit = f"  unit {info.meta['unit']}" if info.meta.get("unit") else ""
    return (
        f"run {info.run_id:4d}  {info.kind:9s} {info.mode or '-':7s} "
        f"{when(info.start_wall_time_s)} .. {when(info.stop_wall_time_s)}  "
        f"{info.cycles:8d} cycles  exit {code} {info.exit_reason}{unit}"
    )


def list_runs(path: str | Path, as_json: bool) -> str:
    """The runs of a historian file as ``--list`` prints them (JSON: one array)."""
    with HistorianReader(path) as reader:
        runs = reader.runs()
    if as_json:
        return json.dumps([run_summary(r) for r in runs])
    return "\n".join(run_line(r) for r in runs)
