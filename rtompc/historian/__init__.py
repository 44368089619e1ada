"""Historian: per-cycle rows of many runs in one SQLite file, written off the control loop.

- :mod:`.layout`: which signals get columns; a cycle record turned into a row.
- :mod:`.store`: the file (runs table, cycles keyed by run and cycle, schema migration,
  start-up writability check).
- :mod:`.recorder`: the loop's recorder: bounded queue + writer thread; a full disk or an
  I/O error never stops control (rows held, then dropped with a count; health for status).
- :mod:`.retention`: delete by age or size, downsample old cycles.
- :mod:`.export`: streamed CSV/Parquet export, never half-written.

Typical use (the runtime)::

    hist = Historian(path, HistorianLayout.for_model(model, io.measurement_names),
                     retention=RetentionSettings(max_age_s=30 * 86400))   # ConfigError if not writable
    hist.begin_run("run", mode=Mode.ON, config_hash=h, config_text=text)
    recorder = hist.recorder()            # pass to ControlLoop(recorders=[...])
    ...                                   # recorder.health().line() for the status display
    hist.end_run("stopped by signal", 0)
    hist.close()
"""

from __future__ import annotations

from rtompc.historian.export import ExportFormat, export
from rtompc.historian.layout import HistorianLayout, HistorianRow, row_from_cycle, row_values
from rtompc.historian.recorder import HistorianHealth, HistorianRecorder
from rtompc.historian.retention import RetentionReport, RetentionSettings
from rtompc.historian.store import (
    SCHEMA_VERSION,
    Durability,
    Historian,
    RunInfo,
    RunKind,
    check_writable,
)

CycleRecord = HistorianRow
"""Deprecated alias of :class:`HistorianRow` (the runtime's record is :class:`rtompc.cycle.CycleRecord`)."""

__all__ = [
    "SCHEMA_VERSION",
    "CycleRecord",
    "Durability",
    "ExportFormat",
    "Historian",
    "HistorianHealth",
    "HistorianLayout",
    "HistorianRecorder",
    "HistorianRow",
    "RetentionReport",
    "RetentionSettings",
    "RunInfo",
    "RunKind",
    "check_writable",
    "export",
    "row_from_cycle",
    "row_values",
]
