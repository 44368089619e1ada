"""The control loop's historian recorder: never blocks, never raises, survives a full disk.

:meth:`HistorianRecorder.append` stamps the record with the open run and puts it
on a bounded queue (microseconds, under a lock no database call ever holds). A
writer thread turns queued records into rows and inserts them in batches, one
transaction per batch, off the cycle's critical path; it also applies the
historian's retention every ``retention.check_every_s`` seconds.

When the database refuses a write (``database or disk is full``, an I/O error, a
read-only file system), control goes on: the writer keeps the rows in memory, up
to ``max_held_rows`` (the queue has the same bound), retries every
``retry_interval_s`` seconds and, past the bound, drops the oldest rows and counts
them. Each change of state (degraded, dropping, recovered) is logged once, at
ERROR/WARNING, not once per row; :meth:`HistorianRecorder.health` gives the
numbers for a status line. When the disk has room again the held rows are written
and the recorder is healthy again. A killed process loses at most the rows still
queued (normally none or one: the writer commits within milliseconds).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from rtompc.cycle import CycleRecord
from rtompc.historian.layout import HistorianRow, row_from_cycle, row_values
from rtompc.historian.store import Historian

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistorianHealth:
    """Snapshot of the recorder's state, for status lines and tests."""

    queued: int
    """Rows waiting to be written (queue plus rows held after failed writes)."""
    written: int
    """Rows written since the recorder started."""
    dropped: int
    """Rows lost (held-row bound exceeded, unconvertible record, or unwritable at close)."""
    last_error: str
    """Last write error (empty: none yet)."""
    degraded: bool
    """True while writes fail."""
    degraded_since_wall_time_s: float | None = None
    """UNIX time the current failure began (None: healthy)."""

    def line(self) -> str:
        """One human line: ``historian ok (12 written)`` or the degraded state."""
        if not self.degraded:
            extra = f", {self.dropped} dropped earlier" if self.dropped else ""
            return f"historian ok ({self.written} written, {self.queued} queued{extra})"
        return (
            f"historian DEGRADED: {self.last_error}; {self.queued} rows held in memory, "
            f"{self.dropped} dropped"
        )


class HistorianRecorder:
    """A runtime :class:`~rtompc.runtime.Recorder` that appends to a :class:`Historian`
    through a bounded queue and a writer thread."""

    def __init__(
        self,
        historian: Historian,
        *,
        max_held_rows: int = 10_000,
        retry_interval_s: float = 2.0,
        batch_rows: int = 2_000,
    ) -> None:
        self.historian = historian
        self.max_held_rows = max(1, int(max_held_rows))
        self.retry_interval_s = retry_interval_s
        self.batch_rows = batch_rows
        self._cv = threading.Condition()
        self._queue: deque[tuple[int | None, CycleRecord | HistorianRow]] = deque()
        self._held: deque[tuple[Any, ...]] = deque()  # writer thread only
        self._busy = False
        self._passes = 0
        self._written = 0
        self._dropped = 0
        self._last_error = ""
        self._degraded_since: float | None = None
        self._dropping = False
        self._closing = False
        self._next_retry = 0.0
        self._next_retention = time.monotonic() + historian.retention.check_every_s
        self._bad_record_msgs: set[str] = set()
        historian._attach(self)
        self._thread = threading.Thread(target=self._run, name="rtompc-historian", daemon=True)
        self._thread.start()

    # loop side -------------------------------------------------------------------------
    def append(self, record: CycleRecord | HistorianRow) -> None:
        """Queue one cycle; returns at once and never raises."""
        try:
            with self._cv:
                if self._closing:
                    self._dropped += 1
                    return
                self._queue.append((self.historian.run_id, record))
                if len(self._queue) > self.max_held_rows:
                    self._queue.popleft()
                    self._count_drop(1)
                self._cv.notify()
        except Exception:  # noqa: BLE001 - nothing may reach the control loop
            self._dropped += 1

    def health(self) -> HistorianHealth:
        """Current state (thread-safe snapshot)."""
        with self._cv:
            return HistorianHealth(
                queued=len(self._queue) + len(self._held),
                written=self._written,
                dropped=self._dropped,
                last_error=self._last_error,
                degraded=self._degraded_since is not None,
                degraded_since_wall_time_s=self._degraded_since,
            )

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything queued is written (True), or until one more write attempt
        failed or the timeout passed (False)."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            start = self._passes
            self._next_retry = 0.0  # try the held rows now
            self._cv.notify_all()
            while self._queue or self._held or self._busy:
                failing = self._degraded_since is not None and self._passes > start
                left = deadline - time.monotonic()
                if failing or left <= 0 or not self._thread.is_alive():
                    return False
                self._cv.wait(min(left, 0.05))
            return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (one last attempt when degraded), stop the writer; rows that
        could not be written are counted as dropped and logged."""
        self.flush(timeout_s)
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._thread.join(timeout_s)
        with self._cv:
            lost = len(self._queue) + len(self._held)
            if lost:
                self._dropped += lost
                self._queue.clear()
                self._held.clear()
                _log.error(
                    "historian %s: %d rows could not be written before close and are "
                    "lost (%d dropped in total)",
                    self.historian.path,
                    lost,
                    self._dropped,
                )

    # writer thread ---------------------------------------------------------------------
    def _count_drop(self, n: int) -> None:
        """Count dropped rows; log when dropping starts (caller holds the lock)."""
        self._dropped += n
        if not self._dropping:
            self._dropping = True
            _log.error(
                "historian %s: %d rows held in memory, the limit: dropping the oldest "
                "rows from now on (control goes on)",
                self.historian.path,
                self.max_held_rows,
            )

    def _convert(self, batch: list[tuple[int | None, CycleRecord | HistorianRow]]) -> None:
        layout = self.historian.layout
        for run_id, rec in batch:
            try:
                row = rec if isinstance(rec, HistorianRow) else row_from_cycle(rec)
                self._held.append(row_values(row, layout, run_id))
            except Exception as exc:  # noqa: BLE001 - a bad record costs its row, not the loop
                with self._cv:
                    self._dropped += 1
                msg = f"{type(exc).__name__}: {exc}"
                if msg not in self._bad_record_msgs:
                    self._bad_record_msgs.add(msg)
                    _log.error(
                        "historian %s: a cycle record could not be stored (%s); "
                        "such rows are dropped",
                        self.historian.path,
                        msg,
                    )
        over = len(self._held) - self.max_held_rows
        if over > 0:
            for _ in range(over):
                self._held.popleft()
            with self._cv:
                self._count_drop(over)

    def _write_held(self) -> None:
        while self._held:
            chunk = [self._held[i] for i in range(min(self.batch_rows, len(self._held)))]
            try:
                if any(r[0] is None for r in chunk):  # appended while no run was open
                    rid = self.historian._ensure_run()
                    chunk = [(rid, *r[1:]) if r[0] is None else r for r in chunk]
                self.historian.insert_values(chunk)
            except Exception as exc:  # noqa: BLE001 - any database failure degrades, never stops
                self._failed(f"{type(exc).__name__}: {exc}")
                return
            for _ in chunk:
                self._held.popleft()
            with self._cv:
                self._written += len(chunk)
        if self._degraded_since is not None:
            self._recovered()

    def _failed(self, error: str) -> None:
        with self._cv:
            first = self._degraded_since is None
            changed = error != self._last_error
            self._last_error = error
            if first:
                self._degraded_since = time.time()
            self._next_retry = time.monotonic() + self.retry_interval_s
        if first or changed:
            _log.error(
                "historian %s: write failed (%s); control goes on, holding up to %d rows "
                "in memory and retrying every %g s",
                self.historian.path,
                error,
                self.max_held_rows,
                self.retry_interval_s,
            )

    def _recovered(self) -> None:
        with self._cv:
            since = self._degraded_since or time.time()
            self._degraded_since = None
            self._dropping = False
            dropped = self._dropped
        _log.warning(
            "historian %s: writing again after %.0f s; held rows written, %d rows dropped so far",
            self.historian.path,
            time.time() - since,
            dropped,
        )

    def _run(self) -> None:
        while True:
            with self._cv:
                while True:
                    now = time.monotonic()
                    retry_due = bool(self._held) and now >= self._next_retry
                    retention_due = now >= self._next_retention
                    if self._queue or retry_due or retention_due or self._closing:
                        break
                    waits = [self._next_retention - now]
                    if self._held:
                        waits.append(self._next_retry - now)
                    self._cv.wait(max(0.001, min(waits)))
                batch = list(self._queue)
                self._queue.clear()
                closing = self._closing
                self._busy = True
            try:
                self._convert(batch)
                if self._held and (time.monotonic() >= self._next_retry or closing):
                    self._write_held()
                if time.monotonic() >= self._next_retention:
                    self._retention()
            except Exception as exc:  # noqa: BLE001 - the writer must outlive its own bugs
                self._failed(f"writer error: {type(exc).__name__}: {exc}")
            finally:
                with self._cv:
                    self._busy = False
                    self._passes += 1
                    self._cv.notify_all()
            if closing:
                return

    def _retention(self) -> None:
        self._next_retention = time.monotonic() + self.historian.retention.check_every_s
        if not self.historian.retention.enabled or self._degraded_since is not None:
            return
        try:
            report = self.historian.apply_retention()
        except Exception as exc:  # noqa: BLE001 - retention failing must not stop recording
            _log.warning("historian %s: retention pass failed (%s)", self.historian.path, exc)
            return
        deleted = report.deleted_by_age + report.deleted_by_downsampling + report.deleted_by_size
        if deleted:
            _log.info(
                "historian %s: retention deleted %d cycles (age %d, downsampling %d, "
                "size %d), %d bytes in use",
                self.historian.path,
                deleted,
                report.deleted_by_age,
                report.deleted_by_downsampling,
                report.deleted_by_size,
                report.used_bytes,
            )
