"""Historian: one SQLite row per control cycle, committed every cycle, exportable to CSV/Parquet.

Layout: a ``cycles`` table with fixed columns (cycle, plant time, wall time,
mode, write/solver status, iterations, timings, overrun, message, extra JSON)
and one column per signal: ``meas__<name>`` / ``qual__<name>`` for each measured
signal, ``est__<x>`` for the state estimate, ``target_y__<y>`` / ``target_u__<u>``
for the operating target, ``move__<u>`` for the computed move and
``written__<u>`` for what reached the plant. A ``meta`` table keeps the layout
(JSON), so a file can be reopened and exported without the model.

Durability: the database runs in WAL mode and every :meth:`Historian.append` is
its own committed transaction. ``synchronous=NORMAL`` is the default: in WAL
mode a commit is then written to the WAL file (the OS page cache) before
``append`` returns, so a killed process (SIGKILL, crash, OOM) loses nothing that
was committed; only an OS crash or power loss can drop the last few cycles,
because the WAL is fsynced at checkpoints rather than at every commit. That
trade costs no fsync per cycle (milliseconds on an ordinary disk, unbounded on a
busy one) in the control loop. ``Durability.FULL`` fsyncs every commit for
installations that must survive power loss too.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from plant_models.errors import ConfigError
from plant_models.model import PlantModel
from plant_models.results import SolveStatus
from plant_models.samples import ControlMove, Measurement, Mode, OperatingTarget, StateEstimate
from rtompc.cycle import CycleRecord as RuntimeCycle

_log = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SCHEMA_VERSION = 1


class Durability(Enum):
    """SQLite ``synchronous`` setting under WAL."""

    NORMAL = "NORMAL"
    """Survives process kill; an OS crash may lose the last cycles (default)."""
    FULL = "FULL"
    """fsync on every commit: survives power loss, costs an fsync per cycle."""


class ExportFormat(Enum):
    """Export file formats."""

    CSV = "csv"
    PARQUET = "parquet"


@dataclass(frozen=True)
class HistorianLayout:
    """Which signals get columns."""

    measured: tuple[str, ...]
    """Measured signal names (as in :class:`Measurement`)."""
    states: tuple[str, ...]
    """State names (estimate)."""
    outputs: tuple[str, ...]
    """Output names (targets on y)."""
    mvs: tuple[str, ...]
    """MV names (targets on u, moves, written values)."""
    plant: str = ""
    """Plant name, for the record."""

    def __post_init__(self) -> None:
        for group in ("measured", "states", "outputs", "mvs"):
            for name in getattr(self, group):
                if not _NAME.match(name):
                    raise ConfigError(
                        f"historian layout: {group} name {name!r} is not an identifier"
                    )

    @classmethod
    def for_model(cls, model: PlantModel, measured: Sequence[str] | None = None) -> HistorianLayout:
        """Columns for a model; measured defaults to ``y`` then ``d``."""
        meas = tuple(measured) if measured is not None else model.y.names + model.d.names
        return cls(meas, model.x.names, model.y.names, model.u.names, model.name)

    def columns(self) -> list[tuple[str, str]]:
        """(name, SQL type) of every column, in table order."""
        cols = [
            ("cycle", "INTEGER PRIMARY KEY"),
            ("time_s", "REAL"),
            ("wall_time_s", "REAL"),
            ("mode", "TEXT"),
        ]
        for n in self.measured:
            cols += [(f"meas__{n}", "REAL"), (f"qual__{n}", "TEXT")]
        cols += [(f"est__{n}", "REAL") for n in self.states]
        cols += [(f"target_y__{n}", "REAL") for n in self.outputs]
        cols += [(f"target_u__{n}", "REAL") for n in self.mvs]
        cols += [(f"move__{n}", "REAL") for n in self.mvs]
        cols += [(f"written__{n}", "REAL") for n in self.mvs]
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
        return cols

    def to_json(self) -> str:
        return json.dumps(
            {
                "measured": self.measured,
                "states": self.states,
                "outputs": self.outputs,
                "mvs": self.mvs,
                "plant": self.plant,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> HistorianLayout:
        data = json.loads(text)
        return cls(
            tuple(data["measured"]),
            tuple(data["states"]),
            tuple(data["outputs"]),
            tuple(data["mvs"]),
            data.get("plant", ""),
        )


@dataclass(frozen=True)
class HistorianRow:
    """Everything worth keeping about one control cycle."""

    cycle: int
    """Cycle counter (unique, increasing)."""
    time_s: float
    """Plant time of the cycle, s."""
    mode: Mode
    """Runtime mode in this cycle."""
    measurement: Measurement | None = None
    """What was read."""
    estimate: StateEstimate | None = None
    """State estimate after the update."""
    target: OperatingTarget | None = None
    """Operating target in force."""
    move: ControlMove | None = None
    """Move computed by the controller (also in SHADOW mode)."""
    written: Sequence[float] | None = None
    """Values that reached the plant (NaN/None: not written), ordered like the MVs."""
    write_status: str = ""
    """Outcome of the write (e.g. ``verified``, ``not_connected``)."""
    solver_status: SolveStatus | None = None
    """Controller solve status."""
    solver_iterations: int = 0
    """Solver iterations."""
    solve_time_s: float = math.nan
    """Wall time of the controller solve, s."""
    cycle_time_s: float = math.nan
    """Wall time of the whole cycle, s."""
    overrun: bool = False
    """The cycle took longer than the sample time."""
    message: str = ""
    """Free text (fallback reason, faults)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Anything else (JSON-serialisable), stored as JSON text."""


def _f(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


class Historian:
    """Append-only per-cycle log in SQLite (WAL). Use as a context manager or call close()."""

    def __init__(
        self,
        path: str | Path,
        layout: HistorianLayout | None = None,
        *,
        durability: Durability = Durability.NORMAL,
    ) -> None:
        self.path = Path(path)
        self.durability = durability
        self._con = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute(f"PRAGMA synchronous={durability.value}")
        self._con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        stored = self._con.execute("SELECT value FROM meta WHERE key='layout'").fetchone()
        if stored is not None:
            existing = HistorianLayout.from_json(stored[0])
            if layout is not None and layout != existing:
                raise ConfigError(
                    f"historian {self.path}: file was written with another layout "
                    f"(plant {existing.plant!r}); use a new file"
                )
            layout = existing
        elif layout is None:
            raise ConfigError(
                f"historian {self.path}: new file needs a layout (HistorianLayout.for_model)"
            )
        else:
            cols = ", ".join(f'"{n}" {t}' for n, t in layout.columns())
            with self._con:
                self._con.execute("BEGIN")
                self._con.execute(f"CREATE TABLE cycles ({cols})")
                self._con.execute("INSERT INTO meta VALUES ('layout', ?)", (layout.to_json(),))
                self._con.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
                self._con.execute(
                    "INSERT INTO meta VALUES ('created_wall_time_s', ?)", (str(time.time()),)
                )
        self.layout = layout
        names = [n for n, _ in layout.columns()]
        self._insert = (
            f"INSERT INTO cycles ({', '.join(chr(34) + n + chr(34) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )

    def append(self, rec: HistorianRow) -> None:
        """Write one cycle and commit it (durable against a process kill when this returns)."""
        lay = self.layout
        row: list[Any] = [int(rec.cycle), _f(rec.time_s), time.time(), rec.mode.value]
        meas = rec.measurement
        for n in lay.measured:
            if meas is not None and n in meas.names:
                i = meas.names.index(n)
                row += [_f(meas.values[i]), meas.quality[i].value]
            else:
                row += [None, None]
        x = rec.estimate.x if rec.estimate is not None else None
        row += [_f(x[i]) if x is not None and i < len(x) else None for i in range(len(lay.states))]
        tgt = rec.target
        row += [_f(tgt.y.get(n)) if tgt is not None else None for n in lay.outputs]
        row += [_f(tgt.u.get(n)) if tgt is not None else None for n in lay.mvs]
        mv = _by_name(rec.move, lay.mvs)
        row += [_f(v) for v in mv]
        written = list(rec.written) if rec.written is not None else [None] * len(lay.mvs)
        if len(written) != len(lay.mvs):
            raise ConfigError(
                f"historian: written has {len(written)} values, expected {len(lay.mvs)}"
            )
        row += [_f(v) for v in written]
        row += [
            tgt.source if tgt is not None else None,
            rec.write_status or None,
            rec.solver_status.value if rec.solver_status is not None else None,
            int(rec.solver_iterations),
            _f(rec.solve_time_s),
            _f(rec.cycle_time_s),
            int(rec.overrun),
            rec.message or None,
            json.dumps(dict(rec.extra), default=float) if rec.extra else None,
        ]
        self._con.execute(self._insert, row)

    def count(self) -> int:
        """Number of cycles stored."""
        return int(self._con.execute("SELECT COUNT(*) FROM cycles").fetchone()[0])

    def rows(self) -> Iterator[dict[str, Any]]:
        """All cycles as dicts, in cycle order."""
        cur = self._con.execute("SELECT * FROM cycles ORDER BY cycle")
        names = [d[0] for d in cur.description]
        for r in cur:
            yield dict(zip(names, r, strict=True))

    def close(self) -> None:
        """Checkpoint and close (idempotent)."""
        if self._con is not None:
            try:
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._con.close()
                self._con = None  # type: ignore[assignment]

    def __enter__(self) -> Historian:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _by_name(move: ControlMove | None, names: tuple[str, ...]) -> list[float | None]:
    if move is None:
        return [None] * len(names)
    u = np.asarray(move.u, dtype=float).reshape(-1)
    if move.names:
        lookup = dict(zip(move.names, u, strict=True))
        return [lookup.get(n) for n in names]
    if u.size != len(names):
        raise ConfigError(
            f"historian: move has {u.size} values, expected {len(names)} ({', '.join(names)})"
        )
    return list(u)


# Export ----------------------------------------------------------------------


def export(db: str | Path, out: str | Path, fmt: ExportFormat) -> int:
    """Export the ``cycles`` table to CSV or Parquet; returns the number of rows."""
    db = Path(db)
    if not db.is_file():
        raise ConfigError(f"historian {db}: file not found")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        try:
            cur = con.execute("SELECT * FROM cycles ORDER BY cycle")
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"historian {db}: not a historian file ({exc})") from None
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        con.close()
    if fmt is ExportFormat.CSV:
        with open(out, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(names)
            w.writerows(rows)
        return len(rows)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "parquet export needs pyarrow (pip install pyarrow); CSV works without it"
        ) from None
    columns = {n: [r[i] for r in rows] for i, n in enumerate(names)}
    pq.write_table(pa.table(columns), str(out))
    return len(rows)


CycleRecord = HistorianRow
"""Deprecated alias of :class:`HistorianRow` (the runtime's record is :class:`rtompc.cycle.CycleRecord`)."""


def row_from_cycle(rec: RuntimeCycle) -> HistorianRow:
    """The historian row of one runtime cycle record."""
    move = ControlMove(time_s=rec.time_s, u=np.asarray(rec.u_computed, dtype=float),
                       names=rec.mv_names)
    message = "; ".join(rec.events)
    return HistorianRow(
        cycle=rec.cycle, time_s=rec.time_s, mode=rec.mode, measurement=rec.measurement,
        estimate=rec.estimate, target=rec.target, move=move,
        written=[float(v) for v in rec.u_written], write_status=rec.write_status,
        solver_status=_status_or_none(rec.solver_status), solve_time_s=rec.solve_time_s,
        cycle_time_s=rec.cycle_time_s, overrun=rec.overrun, message=message,
        extra={"connected": rec.connected, "fallback": rec.fallback, "solver": rec.solver,
               "estimator_time_s": rec.estimator_time_s, "rto_status": rec.rto_status,
               "rejected": list(rec.estimate.rejected),
               "y_bias": [float(v) for v in rec.estimate.y_bias],
               "u_plant": [float(v) for v in rec.u_plant]},
    )


def _status_or_none(value: str) -> SolveStatus | None:
    try:
        return SolveStatus(value)
    except ValueError:
        return None


class HistorianRecorder:
    """Adapter: a runtime :class:`~rtompc.runtime.Recorder` that appends to a :class:`Historian`."""

    def __init__(self, historian: Historian) -> None:
        self.historian = historian

    def append(self, record: RuntimeCycle) -> None:
        """Store one runtime cycle (committed when this returns)."""
        self.historian.append(row_from_cycle(record))
