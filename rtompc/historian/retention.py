"""Historian retention: delete cycles by age and by size, downsample old cycles.

Settings are a frozen :class:`RetentionSettings` (config keys
``[historian] retention_*``). :func:`apply_retention` runs one pass on an open
SQLite connection; the historian's writer thread calls it every
``check_every_s`` seconds, off the control loop. Rows are addressed in insertion
order (SQLite rowid), which is wall-clock order, so each rule finds its cut-off
with a binary search instead of scanning the table, and deletes in chunks of
:data:`CHUNK_ROWS` so no single transaction grows large.

- ``max_age_s``: cycles whose wall time is older than this are deleted; ended
  runs with no cycles left and a stop time older than this are deleted too.
- ``downsample_after_s`` + ``downsample_keep_every`` = k: of the cycles older than
  this, only those with ``cycle % k == 0`` are kept (a watermark in ``meta``
  makes each pass look at newly aged rows only).
- ``max_size_bytes``: when the pages in use exceed this, the oldest cycles are
  deleted until the data is back under 90 % of it (hysteresis, so not every pass
  deletes). New files use ``auto_vacuum=INCREMENTAL`` and hand freed pages back to
  the file system; files migrated from schema 1 reuse them instead (the file stops
  growing but does not shrink).
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass

from plant_models.errors import ConfigError

CHUNK_ROWS = 20_000
"""Rows deleted per transaction."""
_WATERMARK_KEY = "downsampled_through_rowid"


@dataclass(frozen=True)
class RetentionSettings:
    """How much history a historian file keeps (all None: keep everything)."""

    max_age_s: float | None = None
    """Delete cycles older than this many seconds (wall clock); None: no age limit."""
    max_size_bytes: int | None = None
    """Keep the stored cycles under this many bytes, deleting the oldest first; None: no limit."""
    downsample_after_s: float | None = None
    """Downsample cycles older than this many seconds; None: no downsampling."""
    downsample_keep_every: int = 10
    """When downsampling, keep cycles whose number is a multiple of this (k >= 2)."""
    check_every_s: float = 60.0
    """How often the writer thread applies the rules, seconds."""

    def __post_init__(self) -> None:
        def positive(key: str, value: float | None) -> None:
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(
                    f"historian.retention_{key}: expected a number > 0, got {value!r}"
                )

        positive("max_age_s", self.max_age_s)
        positive("max_size_bytes", self.max_size_bytes)
        positive("downsample_after_s", self.downsample_after_s)
        positive("check_every_s", self.check_every_s)
        if self.downsample_after_s is not None and self.downsample_keep_every < 2:
            raise ConfigError(
                "historian.retention_downsample_keep_every: expected an integer >= 2, "
                f"got {self.downsample_keep_every!r}"
            )

    @property
    def enabled(self) -> bool:
        """True when any rule is set."""
        return any(
            v is not None for v in (self.max_age_s, self.max_size_bytes, self.downsample_after_s)
        )


@dataclass(frozen=True)
class RetentionReport:
    """What one retention pass did."""

    deleted_by_age: int = 0
    """Cycles deleted because they were older than ``max_age_s``."""
    deleted_by_downsampling: int = 0
    """Cycles deleted by downsampling."""
    deleted_by_size: int = 0
    """Cycles deleted to stay under ``max_size_bytes``."""
    runs_deleted: int = 0
    """Ended runs deleted with their last cycles."""
    used_bytes: int = 0
    """Bytes in use by the database after the pass."""


def used_bytes(con: sqlite3.Connection) -> int:
    """Bytes of the database's pages in use (page count minus free pages)."""
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    free = con.execute("PRAGMA freelist_count").fetchone()[0]
    size = con.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def _first_at(con: sqlite3.Connection, rowid: int) -> float:
    row = con.execute(
        "SELECT COALESCE(wall_time_s, 0) FROM cycles WHERE rowid >= ? ORDER BY rowid LIMIT 1",
        (rowid,),
    ).fetchone()
    return math.inf if row is None else float(row[0])


def last_rowid_before(con: sqlite3.Connection, cutoff_wall_s: float) -> int:
    """Largest rowid of the cycles written before ``cutoff_wall_s`` (0: none), by bisection."""
    lo, hi = con.execute("SELECT MIN(rowid), MAX(rowid) FROM cycles").fetchone()
    if lo is None or _first_at(con, lo) >= cutoff_wall_s:
        return 0
    if _first_at(con, hi) < cutoff_wall_s:
        return int(hi)
    while hi - lo > 1:  # first row at/after lo is old, first row at/after hi is not
        mid = (lo + hi) // 2
        if _first_at(con, mid) < cutoff_wall_s:
            lo = mid
        else:
            hi = mid
    return int(con.execute("SELECT MAX(rowid) FROM cycles WHERE rowid < ?", (hi,)).fetchone()[0])


def _delete_chunks(con: sqlite3.Connection, where: str, args: tuple[int, ...], limit: int) -> int:
    deleted = 0
    while deleted < limit:
        n = min(CHUNK_ROWS, limit - deleted)
        with con:
            cur = con.execute(
                f"DELETE FROM cycles WHERE rowid IN (SELECT rowid FROM cycles WHERE {where} "
                "ORDER BY rowid LIMIT ?)",
                (*args, n),
            )
        deleted += cur.rowcount
        if cur.rowcount < n:
            break
    return deleted


def apply_retention(
    con: sqlite3.Connection, settings: RetentionSettings, now: float | None = None
) -> RetentionReport:
    """One retention pass (``now``: wall clock, default ``time.time()``); see the module doc."""
    now = time.time() if now is None else now
    by_age = by_down = by_size = runs = 0
    if settings.max_age_s is not None:
        cut = last_rowid_before(con, now - settings.max_age_s)
        if cut:
            by_age = _delete_chunks(con, "rowid <= ?", (cut,), 2**62)
        with con:
            runs = con.execute(
                "DELETE FROM runs WHERE stop_wall_time_s IS NOT NULL AND stop_wall_time_s < ? "
                "AND NOT EXISTS (SELECT 1 FROM cycles WHERE cycles.run_id = runs.run_id)",
                (now - settings.max_age_s,),
            ).rowcount
    if settings.downsample_after_s is not None:
        cut = last_rowid_before(con, now - settings.downsample_after_s)
        row = con.execute("SELECT value FROM meta WHERE key = ?", (_WATERMARK_KEY,)).fetchone()
        mark = int(row[0]) if row is not None else 0
        if cut > mark:
            by_down = _delete_chunks(
                con,
                "rowid > ? AND rowid <= ? AND cycle % ? != 0",
                (mark, cut, settings.downsample_keep_every),
                2**62,
            )
            with con:
                con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (_WATERMARK_KEY, str(cut)))
    if settings.max_size_bytes is not None:
        for _ in range(8):
            used = used_bytes(con)
            if used <= settings.max_size_bytes:
                break
            count = con.execute("SELECT COUNT(*) FROM cycles").fetchone()[0]
            if not count:
                break
            per_row = used / count
            excess = used - 0.9 * settings.max_size_bytes
            n = min(count, max(1, math.ceil(excess / per_row)))
            by_size += _delete_chunks(con, "1", (), n)
    if con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2 and (by_age or by_down or by_size):
        con.executescript("PRAGMA incremental_vacuum;")  # execute() would free one page only
    return RetentionReport(by_age, by_down, by_size, runs, used_bytes(con))
