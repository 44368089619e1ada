"""Historian columns: which signals get a column, and one cycle turned into a table row.

:class:`HistorianLayout` names the signals of one run (measured, states,
outputs, MVs); :meth:`HistorianLayout.columns` gives the ``cycles`` columns in
table order. :class:`HistorianRow` is the historian's own per-cycle record (the
step test writes it directly); :func:`row_from_cycle` turns the runtime's
:class:`rtompc.cycle.CycleRecord` into one, and :func:`row_values` flattens a row
into the values of an ``INSERT`` in column order (NaN and infinities become NULL).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plant_models.errors import ConfigError
from plant_models.model import PlantModel
from plant_models.results import SolveStatus
from plant_models.samples import ControlMove, Measurement, Mode, OperatingTarget, StateEstimate
from rtompc.cycle import CycleRecord as RuntimeCycle

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

KEY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "INTEGER NOT NULL"),
    ("cycle", "INTEGER NOT NULL"),
)
"""The key of every cycle row: (run_id, cycle) is the table's primary key."""

PER_MV_PREFIXES: tuple[tuple[str, str], ...] = (
    ("target_u", "REAL"),
    ("move", "REAL"),
    ("requested", "REAL"),
    ("written", "REAL"),
    ("readback", "REAL"),
    ("measured", "REAL"),
    ("mv_status", "TEXT"),
)
"""Per-MV column groups, ``<prefix>__<mv>``: target, computed move, value sent in the write
request, value the plant holds after the write (accepted: written; rejected: read-back),
setpoint read back, actuator feedback, per-MV write status."""


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
    """MV names (targets on u, moves, requested/written/read-back/measured values, status)."""
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
        cols: list[tuple[str, str]] = [
            *KEY_COLUMNS,
            ("time_s", "REAL"),
            ("wall_time_s", "REAL"),
            ("plant_time_s", "REAL"),
            ("mode", "TEXT"),
            ("plant_mode", "TEXT"),
        ]
        for n in self.measured:
            cols += [(f"meas__{n}", "REAL"), (f"qual__{n}", "TEXT")]
        cols += [(f"est__{n}", "REAL") for n in self.states]
        cols += [(f"target_y__{n}", "REAL") for n in self.outputs]
        for prefix, sql in PER_MV_PREFIXES:
            cols += [(f"{prefix}__{n}", sql) for n in self.mvs]
        cols += [
            ("target_source", "TEXT"),
            ("write_status", "TEXT"),
            ("solver_status", "TEXT"),
            ("solver_iterations", "INTEGER"),
            ("solve_time_s", "REAL"),
            ("cycle_time_s", "REAL"),
            ("overrun", "INTEGER"),
            ("plant_status_text", "TEXT"),
            ("flags", "TEXT"),
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
    """Cycle counter (unique and increasing within a run)."""
    time_s: float
    """Time of the cycle's read (engine/measurement clock), s."""
    mode: Mode | str
    """Runtime mode in this cycle (a :class:`Mode`, or free text such as ``steptest``)."""
    measurement: Measurement | None = None
    """What was read."""
    estimate: StateEstimate | None = None
    """State estimate after the update."""
    target: OperatingTarget | None = None
    """Operating target in force."""
    move: ControlMove | None = None
    """Move computed by the controller (also in SHADOW mode)."""
    written: Sequence[float] | None = None
    """What the plant holds after the write (NaN/None: not written), ordered like the MVs."""
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
    requested: Sequence[float] | None = None
    """Values sent in the write request (after clamping/rounding), ordered like the MVs."""
    readback: Sequence[float] | None = None
    """Setpoints read back after the write, ordered like the MVs."""
    measured: Sequence[float] | None = None
    """Actuator feedback (position / PV), ordered like the MVs."""
    mv_status: Sequence[str] = ()
    """Per-MV write status values (empty: nothing written)."""
    plant_time_s: float | None = None
    """Plant (PLC) clock of the read."""
    plant_mode: str = ""
    """Plant-side mode as read (``REMOTE``, ``LOCAL``)."""
    plant_status_text: str = ""
    """The PLC's own status text."""
    flags: Sequence[str] = ()
    """Supervision flags, ``signal:reason``; stored as a JSON list."""
    wall_time_s: float | None = None
    """Wall-clock time (UNIX s) of the cycle; None: the time the row is built."""


def _f(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _per_mv(values: Sequence[float] | None, what: str, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    vals = list(np.asarray(values, dtype=float).reshape(-1))
    if len(vals) != n:
        raise ConfigError(f"historian: {what} has {len(vals)} values, expected {n}")
    return [_f(v) for v in vals]


def _by_name(move: ControlMove | None, names: tuple[str, ...]) -> list[float | None]:
    if move is None:
        return [None] * len(names)
    u = np.asarray(move.u, dtype=float).reshape(-1)
    if move.names:
        lookup = dict(zip(move.names, u, strict=True))
        return [_f(lookup.get(n)) for n in names]
    if u.size != len(names):
        raise ConfigError(
            f"historian: move has {u.size} values, expected {len(names)} ({', '.join(names)})"
        )
    return [_f(v) for v in u]


def row_values(rec: HistorianRow, layout: HistorianLayout, run_id: int | None) -> tuple[Any, ...]:
    """The INSERT values of ``rec`` in the order of ``layout.columns()`` (``run_id`` None: to be
    filled in when written)."""
    lay = layout
    n_mv = len(lay.mvs)
    mode = rec.mode.value if isinstance(rec.mode, Mode) else str(rec.mode)
    wall = rec.wall_time_s if rec.wall_time_s is not None else time.time()
    row: list[Any] = [
        run_id,
        int(rec.cycle),
        _f(rec.time_s),
        _f(wall),
        _f(rec.plant_time_s),
        mode,
        rec.plant_mode or None,
    ]
    meas = rec.measurement
    index = {n: i for i, n in enumerate(meas.names)} if meas is not None else {}
    for n in lay.measured:
        i = index.get(n)
        if meas is not None and i is not None:
            row += [_f(meas.values[i]), meas.quality[i].value]
        else:
            row += [None, None]
    x = rec.estimate.x if rec.estimate is not None else None
    row += [_f(x[i]) if x is not None and i < len(x) else None for i in range(len(lay.states))]
    tgt = rec.target
    row += [_f(tgt.y.get(n)) if tgt is not None else None for n in lay.outputs]
    row += [_f(tgt.u.get(n)) if tgt is not None else None for n in lay.mvs]
    row += _by_name(rec.move, lay.mvs)
    row += _per_mv(rec.requested, "requested", n_mv)
    row += _per_mv(rec.written, "written", n_mv)
    row += _per_mv(rec.readback, "readback", n_mv)
    row += _per_mv(rec.measured, "measured", n_mv)
    status = list(rec.mv_status)
    if status and len(status) != n_mv:
        raise ConfigError(f"historian: mv_status has {len(status)} values, expected {n_mv}")
    row += [str(s) or None for s in status] if status else [None] * n_mv
    row += [
        tgt.source if tgt is not None else None,
        rec.write_status or None,
        rec.solver_status.value if rec.solver_status is not None else None,
        int(rec.solver_iterations),
        _f(rec.solve_time_s),
        _f(rec.cycle_time_s),
        int(rec.overrun),
        rec.plant_status_text or None,
        json.dumps(list(rec.flags)) if rec.flags else None,
        rec.message or None,
        json.dumps(dict(rec.extra), default=float) if rec.extra else None,
    ]
    return tuple(row)


def _status_or_none(value: str) -> SolveStatus | None:
    try:
        return SolveStatus(value)
    except ValueError:
        return None


def _floats(values: Any) -> list[float] | None:
    if values is None:
        return None
    return [float(v) for v in np.asarray(values, dtype=float).reshape(-1)]


def row_from_cycle(rec: RuntimeCycle) -> HistorianRow:
    """The historian row of one runtime cycle record."""
    move = ControlMove(
        time_s=rec.time_s, u=np.asarray(rec.u_computed, dtype=float), names=rec.mv_names
    )
    return HistorianRow(
        cycle=rec.cycle,
        time_s=rec.time_s,
        mode=rec.mode,
        measurement=rec.measurement,
        estimate=rec.estimate,
        target=rec.target,
        move=move,
        written=_floats(rec.u_written),
        write_status=rec.write_status,
        solver_status=_status_or_none(rec.solver_status),
        solve_time_s=rec.solve_time_s,
        cycle_time_s=rec.cycle_time_s,
        overrun=rec.overrun,
        message="; ".join(rec.events),
        extra={
            "connected": rec.connected,
            "fallback": rec.fallback,
            "solver": rec.solver,
            "estimator_time_s": rec.estimator_time_s,
            "rto_status": rec.rto_status,
            "rejected": list(rec.estimate.rejected),
            "y_bias": [float(v) for v in rec.estimate.y_bias],
            "u_plant": _floats(rec.u_plant),
        },
        requested=_floats(rec.u_requested),
        readback=_floats(rec.u_readback),
        measured=_floats(rec.u_measured),
        mv_status=tuple(rec.mv_status),
        plant_time_s=rec.plant_time_s,
        plant_mode=rec.plant_mode,
        plant_status_text=rec.plant_status_text,
        flags=tuple(rec.flags),
        wall_time_s=rec.wall_time_s,
    )
