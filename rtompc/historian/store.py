"""The historian file: runs and per-cycle rows in SQLite (WAL), many runs per file.

Schema 2 (this version):

- ``meta`` (key, value): ``schema_version``, ``created_wall_time_s``, the last layout.
- ``runs``: one row per run: ``run_id`` (never reused), ``kind`` (:class:`RunKind`),
  ``mode``, ``config_hash``, ``config_text``, ``layout`` (JSON), start and stop wall
  time, ``exit_reason``, ``exit_code``, ``meta`` (JSON).
- ``cycles``: one row per cycle keyed by (``run_id``, ``cycle``), with fixed columns and
  one column per signal (:meth:`HistorianLayout.columns`). A run of another model
  adds the columns it needs (``ALTER TABLE ... ADD COLUMN``); each run's own layout is
  in ``runs.layout``, so :meth:`Historian.rows` and the export give a run its columns.

Opening an existing file starts nothing; :meth:`Historian.begin_run` (or the first
:meth:`Historian.append`) appends a new run, so a second ``rtompc run`` on one
file never collides with the first. A schema-1 file (one run, ``cycles`` keyed by
``cycle``) is migrated in one transaction on open (it becomes run 1); a file from
a newer version is refused with a clear error.

Durability: WAL, and every :meth:`Historian.append` (and every batch of the
recorder's writer thread) is its own committed transaction. ``synchronous=NORMAL``
(default) survives a killed process; ``Durability.FULL`` fsyncs every commit and
survives power loss too. The control loop writes through
:class:`rtompc.historian.recorder.HistorianRecorder`, which never blocks or raises.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from plant_models.errors import ConfigError
from plant_models.samples import Mode
from rtompc.historian.layout import HistorianLayout, HistorianRow, row_values
from rtompc.historian.retention import RetentionReport, RetentionSettings, apply_retention

if TYPE_CHECKING:
    from rtompc.historian.recorder import HistorianRecorder

_log = logging.getLogger(__name__)
SCHEMA_VERSION = 2
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024
"""The WAL file is truncated back to this size after a checkpoint (retention counts the
database pages; the WAL adds at most about this much on disk)."""

_RUNS_SQL = (
    "CREATE TABLE runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
    "mode TEXT, config_hash TEXT, config_text TEXT, layout TEXT NOT NULL, "
    "start_wall_time_s REAL NOT NULL, stop_wall_time_s REAL, exit_reason TEXT, "
    "exit_code INTEGER, meta TEXT)"
)


class Durability(Enum):
    """SQLite ``synchronous`` setting under WAL."""

    NORMAL = "NORMAL"
    """Survives process kill; an OS crash may lose the last cycles (default)."""
    FULL = "FULL"
    """fsync on every commit: survives power loss, costs an fsync per cycle."""


class RunKind(Enum):
    """What produced a run."""

    RUN = "run"
    """``rtompc run`` against a plant."""
    STEPTEST = "steptest"
    """``rtompc steptest``."""
    SIMULATE = "simulate"
    """``rtompc simulate`` or a scenario."""
    DEMO = "demo"
    """``rtompc demo``."""


@dataclass(frozen=True)
class RunInfo:
    """One row of the ``runs`` table, with its cycle count."""

    run_id: int
    """Run number in this file (increasing, never reused)."""
    kind: str
    """:class:`RunKind` value."""
    mode: str
    """Mode the run started in (``off``, ``shadow``, ``on``, or free text)."""
    config_hash: str
    """Hash of the configuration (empty when not given)."""
    config_text: str
    """The configuration text (empty when not given)."""
    layout: HistorianLayout
    """Columns of this run."""
    start_wall_time_s: float
    """UNIX time the run began."""
    stop_wall_time_s: float | None
    """UNIX time the run ended (None: still running, or the process died)."""
    exit_reason: str
    """Why the run ended (empty: not ended)."""
    exit_code: int | None
    """Exit code of the run (None: not ended)."""
    meta: Mapping[str, Any]
    """Anything else the caller stored."""
    cycles: int
    """Cycles stored for this run."""

    @property
    def unit(self) -> str:
        """The unit this run belongs to (``meta["unit"]``; empty for runs written before
        multi-unit applications)."""
        return str(self.meta.get("unit", ""))


def check_writable(path: str | Path) -> Path:
    """Raise :class:`ConfigError` naming ``path`` unless a historian can be written there.

    Creates the parent directory if needed and writes (then removes) a probe file
    next to the database, since SQLite also creates ``-wal``/``-shm`` files there;
    catches read-only directories and file systems, missing permissions and a full disk.
    """
    path = Path(path)
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"historian {path}: cannot create directory {parent}: {exc.strerror or exc}"
        ) from None
    if path.exists() and not path.is_file():
        raise ConfigError(f"historian {path}: exists and is not a file")
    try:
        fd, probe = tempfile.mkstemp(prefix=".rtompc-write-probe-", dir=parent)
        try:
            os.write(fd, b"rtompc")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"historian {path}: directory {parent} is not writable ({exc.strerror or exc}); "
            "choose another historian.path or fix the directory"
        ) from None
    if path.exists():
        try:
            with open(path, "r+b"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"historian {path}: file is not writable ({exc.strerror or exc})"
            ) from None
    return path


def read_runs(con: sqlite3.Connection) -> list[RunInfo]:
    """Every row of the ``runs`` table with its cycle count, oldest first."""
    counts = dict(con.execute("SELECT run_id, COUNT(*) FROM cycles GROUP BY run_id").fetchall())
    rows = con.execute(
        "SELECT run_id, kind, mode, config_hash, config_text, layout, start_wall_time_s, "
        "stop_wall_time_s, exit_reason, exit_code, meta FROM runs ORDER BY run_id"
    ).fetchall()
    return [
        RunInfo(
            r[0],
            r[1],
            r[2] or "",
            r[3] or "",
            r[4] or "",
            HistorianLayout.from_json(r[5]),
            r[6],
            r[7],
            r[8] or "",
            r[9],
            json.loads(r[10] or "{}"),
            counts.get(r[0], 0),
        )
        for r in rows
    ]


class Historian:
    """Many runs of per-cycle rows in one SQLite file. Use as a context manager or call close()."""

    def __init__(
        self,
        path: str | Path,
        layout: HistorianLayout | None = None,
        *,
        durability: Durability = Durability.NORMAL,
        retention: RetentionSettings | None = None,
    ) -> None:
        self.path = check_writable(path)
        self.durability = durability
        self.retention = retention or RetentionSettings()
        self.run_id: int | None = None
        """The open run (None: none open)."""
        self._lock = threading.RLock()
        self._recorder: HistorianRecorder | None = None
        self._con: sqlite3.Connection | None = None
        try:
            self._con = self._open(layout)
        except sqlite3.DatabaseError as exc:
            if self._con is not None:
                self._con.close()
            raise ConfigError(f"historian {self.path}: {exc}") from None
        except BaseException:
            if self._con is not None:
                self._con.close()
            raise

    # opening and schema --------------------------------------------------------------
    def _open(self, layout: HistorianLayout | None) -> sqlite3.Connection:
        new = not self.path.exists() or self.path.stat().st_size == 0
        con = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._con = con
        if new:
            con.execute("PRAGMA auto_vacuum=INCREMENTAL")
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        con.execute(f"PRAGMA synchronous={self.durability.value}")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "cycles" not in tables:
            if layout is None:
                raise ConfigError(
                    f"historian {self.path}: new file needs a layout (HistorianLayout.for_model)"
                )
            self._create(con, layout)
        else:
            version = self._schema_version(con)
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"historian {self.path}: written by a newer rtompc (schema {version}); "
                    f"this version reads schema 1 to {SCHEMA_VERSION}: use a new file"
                )
            if "runs" not in tables:
                self._migrate_v1(con)
        stored = self._latest_layout(con)
        self.layout: HistorianLayout = layout if layout is not None else stored
        self._add_missing_columns(con, self.layout)
        names = [n for n, _ in self.layout.columns()]
        self._insert_sql = (
            f"INSERT INTO cycles ({', '.join(chr(34) + n + chr(34) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        return con

    @staticmethod
    def _schema_version(con: sqlite3.Connection) -> int:
        row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row is not None else 1

    @staticmethod
    def _create(con: sqlite3.Connection, layout: HistorianLayout) -> None:
        cols = ", ".join(f'"{n}" {t}' for n, t in layout.columns())
        con.execute("BEGIN")
        try:
            con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            con.execute(_RUNS_SQL)
            con.execute(f"CREATE TABLE cycles ({cols}, PRIMARY KEY (run_id, cycle))")
            con.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [
                    ("layout", layout.to_json()),
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("created_wall_time_s", repr(time.time())),
                ],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _migrate_v1(self, con: sqlite3.Connection) -> None:
        """Schema 1 -> 2: the old single run becomes run 1 (one transaction)."""
        row = con.execute("SELECT value FROM meta WHERE key='layout'").fetchone()
        if row is None:
            raise ConfigError(f"historian {self.path}: not a historian file (no layout in meta)")
        layout = HistorianLayout.from_json(row[0])
        old_cols = [r[1] for r in con.execute("PRAGMA table_info(cycles)")]
        new_cols = [n for n, _ in layout.columns()]
        common = [c for c in old_cols if c in new_cols]
        quoted = ", ".join(f'"{c}"' for c in common)
        cols = ", ".join(f'"{n}" {t}' for n, t in layout.columns())
        created = con.execute("SELECT value FROM meta WHERE key='created_wall_time_s'").fetchone()
        con.execute("BEGIN IMMEDIATE")
        try:
            first = con.execute(
                "SELECT mode, MIN(wall_time_s), MAX(wall_time_s), COUNT(*) FROM cycles"
            ).fetchone()
            start = float(created[0]) if created is not None else (first[1] or time.time())
            con.execute(_RUNS_SQL)
            con.execute(
                "INSERT INTO runs (run_id, kind, mode, layout, start_wall_time_s, "
                "stop_wall_time_s, exit_reason, meta) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                (
                    RunKind.RUN.value,
                    first[0],
                    layout.to_json(),
                    start,
                    first[2],
                    "unknown (written by schema 1)",
                    json.dumps({"migrated_from_schema": 1}),
                ),
            )
            con.execute("ALTER TABLE cycles RENAME TO cycles_schema1")
            con.execute(f"CREATE TABLE cycles ({cols}, PRIMARY KEY (run_id, cycle))")
            con.execute(
                f"INSERT INTO cycles (run_id, {quoted}) SELECT 1, {quoted} FROM cycles_schema1 "
                "ORDER BY cycle"
            )
            con.execute("DROP TABLE cycles_schema1")
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        _log.warning(
            "historian %s: migrated from schema 1 (%d cycles kept as run 1)", self.path, first[3]
        )

    @staticmethod
    def _latest_layout(con: sqlite3.Connection) -> HistorianLayout:
        row = con.execute("SELECT layout FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
        if row is None:
            row = con.execute("SELECT value FROM meta WHERE key='layout'").fetchone()
        return HistorianLayout.from_json(row[0])

    @staticmethod
    def _add_missing_columns(con: sqlite3.Connection, layout: HistorianLayout) -> None:
        have = {r[1] for r in con.execute("PRAGMA table_info(cycles)")}
        missing = [(n, t) for n, t in layout.columns() if n not in have]
        if not missing:
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            for name, sql_type in missing:
                con.execute(
                    f'ALTER TABLE cycles ADD COLUMN "{name}" {sql_type.replace(" NOT NULL", "")}'
                )
            con.execute("INSERT OR REPLACE INTO meta VALUES ('layout', ?)", (layout.to_json(),))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        _log.info("historian: %d columns added for plant %r", len(missing), layout.plant)

    @property
    def con(self) -> sqlite3.Connection:
        """The open connection (ConfigError when closed)."""
        if self._con is None:
            raise ConfigError(f"historian {self.path}: closed")
        return self._con

    # runs ------------------------------------------------------------------------------
    def begin_run(
        self,
        kind: RunKind | str,
        *,
        mode: Mode | str,
        config_hash: str = "",
        config_text: str = "",
        meta: Mapping[str, Any] | None = None,
    ) -> int:
        """Start a new run (ending an open one) and return its id; ConfigError when the file
        cannot take it (a start-up check: call it before anything is written to the plant)."""
        try:
            kind_value = RunKind(kind.value if isinstance(kind, RunKind) else kind).value
        except ValueError:
            raise ConfigError(
                f"historian run kind {kind!r}: expected one of {[k.value for k in RunKind]}"
            ) from None
        mode_value = mode.value if isinstance(mode, Mode) else str(mode)
        if self.run_id is not None:
            self.end_run("superseded by the next run", 0)
        try:
            with self._lock:
                cur = self.con.execute(
                    "INSERT INTO runs (kind, mode, config_hash, config_text, layout, "
                    "start_wall_time_s, meta) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        kind_value,
                        mode_value,
                        config_hash,
                        config_text,
                        self.layout.to_json(),
                        time.time(),
                        json.dumps(dict(meta or {}), default=str),
                    ),
                )
                self.run_id = int(cur.lastrowid or 0)
        except sqlite3.Error as exc:
            raise ConfigError(f"historian {self.path}: cannot start a run: {exc}") from None
        _log.info(
            "historian %s: run %d (%s, %s) started", self.path, self.run_id, kind_value, mode_value
        )
        return self.run_id

    def end_run(
        self, exit_reason: str, exit_code: int = 0, *, flush_timeout_s: float = 5.0
    ) -> bool:
        """Record the end of the open run after the recorder's queue is written (or the
        timeout passed); never raises. Returns False when the stop could not be recorded."""
        if self.run_id is None:
            return True
        if self._recorder is not None:
            self._recorder.flush(flush_timeout_s)
        run_id, self.run_id = self.run_id, None
        try:
            with self._lock:
                self.con.execute(
                    "UPDATE runs SET stop_wall_time_s = ?, exit_reason = ?, exit_code = ? "
                    "WHERE run_id = ?",
                    (time.time(), exit_reason, int(exit_code), run_id),
                )
        except (sqlite3.Error, ConfigError) as exc:
            _log.error("historian %s: end of run %d not recorded (%s)", self.path, run_id, exc)
            return False
        return True

    def update_run_meta(self, values: Mapping[str, Any]) -> None:
        """Merge ``values`` into the open run's ``meta`` (ConfigError when no run is open)."""
        if self.run_id is None:
            raise ConfigError(f"historian {self.path}: no open run to add meta to")
        with self._lock:
            row = self.con.execute(
                "SELECT meta FROM runs WHERE run_id = ?", (self.run_id,)
            ).fetchone()
            meta = {**json.loads((row[0] if row else None) or "{}"), **values}
            self.con.execute(
                "UPDATE runs SET meta = ? WHERE run_id = ?",
                (json.dumps(meta, default=str), self.run_id),
            )

    def _ensure_run(self) -> int:
        if self.run_id is not None:
            return self.run_id
        return self.begin_run(RunKind.RUN, mode="", meta={"implicit": True})

    def _flush(self) -> None:
        """Reads see every row appended so far: let the recorder's writer catch up first."""
        if self._recorder is not None:
            self._recorder.flush(5.0)

    def runs(self) -> list[RunInfo]:
        """All runs in the file, oldest first."""
        self._flush()
        with self._lock:
            return read_runs(self.con)

    # cycles ----------------------------------------------------------------------------
    def append(self, rec: HistorianRow) -> None:
        """Write one cycle to the open run (beginning one if none is open) and commit it.

        Raises on a database error: the control loop uses the recorder instead."""
        with self._lock:
            self.con.execute(self._insert_sql, row_values(rec, self.layout, self._ensure_run()))

    def insert_values(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert pre-built rows (:func:`row_values`) in one transaction; raises on errors."""
        with self._lock:
            con = self.con
            con.execute("BEGIN")
            try:
                con.executemany(self._insert_sql, rows)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

    def count(self, run_id: int | None = None) -> int:
        """Number of cycles stored (of one run, or of all)."""
        self._flush()
        with self._lock:
            if run_id is None:
                return int(self.con.execute("SELECT COUNT(*) FROM cycles").fetchone()[0])
            return int(
                self.con.execute(
                    "SELECT COUNT(*) FROM cycles WHERE run_id = ?", (run_id,)
                ).fetchone()[0]
            )

    def rows(self, run_id: int | None = None) -> Iterator[dict[str, Any]]:
        """Cycles as dicts: of one run (with that run's columns) in cycle order, or of all runs
        (all columns) in (run, cycle) order."""
        self._flush()
        with self._lock:
            if run_id is None:
                cur = self.con.execute("SELECT * FROM cycles ORDER BY run_id, cycle")
            else:
                info = self.con.execute(
                    "SELECT layout FROM runs WHERE run_id = ?", (run_id,)
                ).fetchone()
                if info is None:
                    raise ConfigError(f"historian {self.path}: no run {run_id}")
                cols = [n for n, _ in HistorianLayout.from_json(info[0]).columns()]
                cur = self.con.execute(
                    f"SELECT {', '.join(chr(34) + c + chr(34) for c in cols)} FROM cycles "
                    "WHERE run_id = ? ORDER BY cycle",
                    (run_id,),
                )
            names = [d[0] for d in cur.description]
            data = cur.fetchall()
        for r in data:
            yield dict(zip(names, r, strict=True))

    def apply_retention(self, now: float | None = None) -> RetentionReport:
        """One pass of :attr:`retention` (the recorder's writer calls this periodically)."""
        with self._lock:
            return apply_retention(self.con, self.retention, now)

    def recorder(self, **kwargs: Any) -> HistorianRecorder:
        """The non-blocking recorder of this historian (created on first call)."""
        if self._recorder is None:
            from rtompc.historian.recorder import HistorianRecorder

            return HistorianRecorder(self, **kwargs)
        return self._recorder

    def _attach(self, recorder: HistorianRecorder) -> None:
        if self._recorder is not None and self._recorder is not recorder:
            raise ConfigError(f"historian {self.path}: already has a recorder")
        self._recorder = recorder

    def close(self) -> None:
        """Flush and stop the recorder, end an open run, checkpoint and close (idempotent)."""
        if self._con is None:
            return
        if self._recorder is not None:
            self._recorder.close()
        if self.run_id is not None:
            self.end_run("closed without end_run", 0)
        with self._lock:
            try:
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                _log.warning("historian %s: checkpoint at close failed (%s)", self.path, exc)
            finally:
                self._con.close()
                self._con = None

    def __enter__(self) -> Historian:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
