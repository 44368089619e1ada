"""Live parameter values over a run: the initial value and the journal's accepted changes.

The historian does not repeat operator limits in every cycle row. A run started by
``rtompc run`` stores the live values it started with in its meta (``live_initial``,
:func:`rtompc.live.startup.record_initial`); the journal holds every accepted change
with its wall time. A change takes effect at the first cycle that starts after it (the
loop applies changes at the start of a cycle), so the value at a cycle that started at
wall time ``w`` is the initial value updated by every accepted change made before ``w``.

Without ``live_initial`` (older runs, runs without live parameters) the first journaled
change's ``old`` value stands in for the initial value; a key never changed and not in
``live_initial`` has no timeline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtompc.historian.journal import JournalRow


def _num(value: Any) -> float:
    """A journaled value as a float: booleans 1/0, None and non-numbers NaN."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return math.nan


@dataclass(frozen=True)
class Timeline:
    """One live parameter's value over a run (piecewise constant in wall time)."""

    key: str
    """Parameter key, e.g. ``cv.t_r.high``."""
    walls: NDArray[np.float64]
    """Wall times (UNIX s) of the accepted changes, ascending."""
    values: NDArray[np.float64]
    """Value before the first change, then after each change (len(walls) + 1)."""

    def at(self, wall: NDArray[np.float64]) -> NDArray[np.float64]:
        """The value in force in cycles that started at wall times ``wall``."""
        return self.values[np.searchsorted(self.walls, wall, side="left")]


def timelines(
    initial: Mapping[str, Any], journal: Sequence[JournalRow], keys: Sequence[str]
) -> dict[str, Timeline]:
    """Timelines of ``keys`` from the run's initial live values and its journal; keys with
    neither an initial value nor an accepted change are left out."""
    out: dict[str, Timeline] = {}
    for key in keys:
        changes = sorted(
            (r for r in journal if r.key == key and r.outcome == "accepted"),
            key=lambda r: r.wall_time_s,
        )
        if key in initial:
            start = _num(initial[key])
        elif changes:
            start = _num(changes[0].old)
        else:
            continue
        out[key] = Timeline(
            key,
            np.array([r.wall_time_s for r in changes], dtype=float),
            np.array([start, *(_num(r.new) for r in changes)], dtype=float),
        )
    return out
