"""The change journal: every live parameter change (and refusal), per run, in the historian.

Table ``journal`` (created on first use; files without it read as an empty journal):
``id, run_id, wall_time_s, user, role, source, key, old, new, outcome``; ``old`` and
``new`` are JSON (a mode as its text, infinities as ``Infinity``), ``outcome`` is
``accepted`` or ``refused: <reason>: <message>``.

:class:`HistorianJournal` is the callback :class:`rtompc.live.LiveParameters` calls;
:func:`read_journal` reads it back; :func:`last_run_changes` gives the accepted
changes of the newest earlier run with the same configuration hash (the restart
policy replays them).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from plant_models.samples import Mode
from rtompc.historian.store import Historian
from rtompc.live.types import LiveChange

_log = logging.getLogger(__name__)

_SQL = (
    "CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER, "
    "wall_time_s REAL NOT NULL, user TEXT, role TEXT, source TEXT, key TEXT NOT NULL, "
    "old TEXT, new TEXT, outcome TEXT NOT NULL)"
)


@dataclass(frozen=True)
class JournalRow:
    """One journal row as stored."""

    run_id: int | None
    """Run the change was made in."""
    wall_time_s: float
    """When (Unix time)."""
    user: str
    """Who."""
    role: str
    """With which role."""
    source: str
    """opcua, web, config, api or replay."""
    key: str
    """Parameter key."""
    old: Any
    """Value before (decoded JSON)."""
    new: Any
    """Value requested (decoded JSON)."""
    outcome: str
    """accepted, or refused with the reason."""


def _encode(value: object) -> str:
    return json.dumps(value.value if isinstance(value, Mode) else value, default=str)


def _ensure(hist: Historian) -> None:
    hist.con.execute(_SQL)


class HistorianJournal:
    """Writes live changes into ``hist``'s journal (in the calling thread; one short insert)."""

    def __init__(self, hist: Historian) -> None:
        self.hist = hist
        with hist._lock:  # noqa: SLF001 - the historian's connection lock
            _ensure(hist)

    def __call__(self, change: LiveChange) -> None:
        """Store one change (raises sqlite3.Error; LiveParameters logs and goes on)."""
        with self.hist._lock:  # noqa: SLF001
            self.hist.con.execute(
                "INSERT INTO journal (run_id, wall_time_s, user, role, source, key, old, new, "
                "outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.hist.run_id,
                    change.wall_time_s,
                    change.user,
                    change.role.value,
                    change.source.value,
                    change.key,
                    _encode(change.old),
                    _encode(change.new),
                    change.outcome,
                ),
            )


def read_journal(hist: Historian, run_id: int | None = None) -> list[JournalRow]:
    """Journal rows (of one run, or all), oldest first."""
    with hist._lock:  # noqa: SLF001
        return journal_rows(hist.con, run_id)


def journal_rows(con: sqlite3.Connection, run_id: int | None = None) -> list[JournalRow]:
    """Journal rows of an open connection (of one run, or all), oldest first; a file without
    a journal table has none."""
    sql = "SELECT run_id, wall_time_s, user, role, source, key, old, new, outcome FROM journal"
    args: tuple[Any, ...] = ()
    if run_id is not None:
        sql += " WHERE run_id = ?"
        args = (run_id,)
    try:
        rows = con.execute(sql + " ORDER BY id", args).fetchall()
    except sqlite3.OperationalError:  # no journal table: nothing was ever changed
        return []
    return [
        JournalRow(
            r[0],
            r[1],
            r[2] or "",
            r[3] or "",
            r[4] or "",
            r[5],
            json.loads(r[6]),
            json.loads(r[7]),
            r[8],
        )
        for r in rows
    ]


def last_run_changes(hist: Historian, config_hash: str) -> list[JournalRow]:
    """Accepted changes of the newest run before the open one with ``config_hash``."""
    current = hist.run_id if hist.run_id is not None else 1 << 62
    with hist._lock:  # noqa: SLF001
        row = hist.con.execute(
            "SELECT MAX(run_id) FROM runs WHERE run_id < ? AND config_hash = ?",
            (current, config_hash),
        ).fetchone()
    if row is None or row[0] is None:
        return []
    return [r for r in read_journal(hist, int(row[0])) if r.outcome == "accepted"]
