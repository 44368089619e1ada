"""Loop statistics in fixed memory: counters plus streaming quantiles of durations.

A loop that runs for months must not keep every cycle time. :class:`DurationStats`
keeps, in storage fixed at construction:

- exact count, sum (mean), minimum and maximum;
- a ring buffer of the last ``window`` values: while the loop has run no more than
  ``window`` cycles its percentiles are exact (``numpy.percentile`` of everything);
- a histogram with log-spaced bins (``BINS_PER_DECADE`` per decade from
  ``LOW_S`` to ``HIGH_S``, plus an underflow and an overflow bin) over all values:
  beyond ``window`` values a percentile is the geometric middle of its bin, within
  ``RELATIVE_RESOLUTION`` (1 %) of the true value, clipped to the exact min/max.

:class:`LoopStats` is what :class:`rtompc.runtime.ControlLoop` updates each cycle;
``cycle_times_s``, ``solve_times_s`` and ``jitter_s`` take ``append`` like the lists
they replace; ``phases`` splits the cycle into the :data:`PHASES` measured by
:class:`PhaseClock` (``time.perf_counter`` laps), so a summary says where a cycle's
time goes (:meth:`LoopStats.breakdown`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

LOW_S = 1e-7
"""Lower edge of the histogram, seconds (values below land in the underflow bin)."""
HIGH_S = 1e5
"""Upper edge of the histogram, seconds (values above land in the overflow bin)."""
BINS_PER_DECADE = 232
"""Log-spaced bins per decade: 10 ** (1/232) - 1 = 1.0 % bin width."""
RELATIVE_RESOLUTION = 10 ** (1 / BINS_PER_DECADE) - 1
"""Relative width of one histogram bin."""
_LOG_LOW = math.log10(LOW_S)
_N_BINS = int(round((math.log10(HIGH_S) - _LOG_LOW) * BINS_PER_DECADE)) + 2


PHASES: tuple[tuple[str, str], ...] = (
    (
        "read",
        "OPC UA / plant read of the measurements (with the plant's mode, status text "
        "and actuator feedback where the transport batches them)",
    ),
    (
        "plant_status",
        "the plant's mode and status text (REMOTE handshake) and, while following "
        "the plant, the MV setpoints it holds",
    ),
    ("live", "live parameters taken and applied to the controller"),
    ("supervision", "actuator feedback judged against the held setpoints (and re-plan)"),
    ("estimator", "estimator update (EKF/MHE, measurement validation)"),
    ("rto", "target source (RTO with its steady-state gate), in a worker thread"),
    ("nmpc", "controller step in a worker thread (solve plus thread hand-over), fallback"),
    ("write", "the write of the move with its read-back and per-MV judgement"),
    ("heartbeat", "the heartbeat write"),
    ("bookkeeping", "flags, events and the cycle record"),
    ("publish", "recorders (historian queue, progress), engine view frame, event log lines"),
)
"""The phases of one control cycle, in order, with what each one covers."""


class PhaseClock:
    """Splits one cycle's wall time into phases: :meth:`lap` gives the time since the
    previous lap (or the start) to a phase, so the phases add up to the cycle."""

    __slots__ = ("_last", "times_s")

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.times_s: dict[str, float] = {}
        """Seconds per phase so far (a phase lapped twice adds up)."""

    def lap(self, phase: str) -> None:
        """The time since the last lap belongs to ``phase``."""
        now = time.perf_counter()
        self.times_s[phase] = self.times_s.get(phase, 0.0) + (now - self._last)
        self._last = now


class DurationStats:
    """Streaming summary of non-negative durations in fixed memory (see the module doc)."""

    __slots__ = ("_hist", "_max", "_min", "_n", "_nan", "_pos", "_ring", "_sum", "window")

    def __init__(self, window: int = 4096) -> None:
        self.window = int(window)
        self._ring: NDArray[np.float64] = np.zeros(self.window)
        self._hist: NDArray[np.int64] = np.zeros(_N_BINS, dtype=np.int64)
        self._pos = 0
        self._n = 0
        self._nan = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    def append(self, value: float) -> None:
        """Add one value (NaN is counted apart and ignored)."""
        v = float(value)
        if not math.isfinite(v):
            self._nan += 1
            return
        self._ring[self._pos] = v
        self._pos = (self._pos + 1) % self.window
        self._n += 1
        self._sum += v
        self._min = min(self._min, v)
        self._max = max(self._max, v)
        if v < LOW_S:
            i = 0
        else:
            i = min(_N_BINS - 1, 1 + int((math.log10(v) - _LOG_LOW) * BINS_PER_DECADE))
        self._hist[i] += 1

    def __len__(self) -> int:
        return self._n

    @property
    def mean(self) -> float:
        """Mean of all values (NaN when empty)."""
        return self._sum / self._n if self._n else math.nan

    @property
    def maximum(self) -> float:
        """Largest value (NaN when empty)."""
        return self._max if self._n else math.nan

    def recent(self) -> NDArray[np.float64]:
        """The last ``min(count, window)`` values, oldest first."""
        if self._n < self.window:
            return self._ring[: self._n].copy()
        return np.concatenate([self._ring[self._pos :], self._ring[: self._pos]])

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100) of all values: exact up to ``window`` values, else
        within one histogram bin (1 %); NaN when empty."""
        if not self._n:
            return math.nan
        if q >= 100:
            return self._max
        if q <= 0:
            return self._min
        if self._n <= self.window:
            return float(np.percentile(self._ring[: self._n], q))
        rank = q / 100 * self._n
        i = int(np.searchsorted(np.cumsum(self._hist), rank, side="left"))
        if i == 0:
            return self._min
        mid = 10 ** (_LOG_LOW + (i - 0.5) / BINS_PER_DECADE)
        return float(min(max(mid, self._min), self._max))

    def nbytes(self) -> int:
        """Bytes held by the buffers (constant after construction)."""
        return int(self._ring.nbytes + self._hist.nbytes)


@dataclass
class LoopStats:
    """Running statistics of a loop (mutable, owned by one control loop), in fixed memory."""

    cycles: int = 0
    overruns: int = 0
    fallbacks: int = 0
    writes: int = 0
    write_failures: int = 0
    disconnected_cycles: int = 0
    reconnects: int = 0
    rto_updates: int = 0
    cycle_times_s: DurationStats = field(default_factory=DurationStats)
    """Whole-cycle wall times, s."""
    solve_times_s: DurationStats = field(default_factory=DurationStats)
    """Controller step times, s."""
    jitter_s: DurationStats = field(default_factory=DurationStats)
    """Lateness of each cycle start against its schedule, s (real-time transports)."""
    phases: dict[str, DurationStats] = field(default_factory=dict)
    """Per phase of the cycle (:data:`PHASES`), its wall time, s (0 in a cycle that skipped it)."""

    def add_phases(self, times_s: dict[str, float]) -> None:
        """One cycle's :attr:`PhaseClock.times_s`; a phase not in it took 0 s this cycle."""
        for name, _ in PHASES:
            stats = self.phases.get(name)
            if stats is None:
                stats = self.phases[name] = DurationStats(window=1024)
            stats.append(times_s.get(name, 0.0))

    def breakdown(self) -> dict[str, dict[str, float]]:
        """Per phase (in cycle order): median, p95, max and mean in ms, and its share of
        the summed mean cycle in %; empty before the first cycle."""
        total = sum(s.mean for s in self.phases.values() if len(s)) or math.nan
        out: dict[str, dict[str, float]] = {}
        for name, _ in PHASES:
            s = self.phases.get(name)
            if s is None or not len(s):
                continue
            out[name] = {
                "median_ms": s.percentile(50) * 1e3,
                "p95_ms": s.percentile(95) * 1e3,
                "max_ms": s.maximum * 1e3,
                "mean_ms": s.mean * 1e3,
                "share_pct": 100 * s.mean / total,
            }
        return out

    def summary(self) -> dict[str, float]:
        """Medians, p95 and maxima in milliseconds, and counters."""

        def ms(stats: DurationStats, q: float) -> float:
            return stats.percentile(q) * 1e3

        return {
            "cycles": self.cycles,
            "overruns": self.overruns,
            "fallbacks": self.fallbacks,
            "writes": self.writes,
            "write_failures": self.write_failures,
            "disconnected_cycles": self.disconnected_cycles,
            "reconnects": self.reconnects,
            "rto_updates": self.rto_updates,
            "cycle_ms_median": ms(self.cycle_times_s, 50),
            "cycle_ms_p95": ms(self.cycle_times_s, 95),
            "cycle_ms_max": ms(self.cycle_times_s, 100),
            "solve_ms_median": ms(self.solve_times_s, 50),
            "solve_ms_p95": ms(self.solve_times_s, 95),
            "solve_ms_max": ms(self.solve_times_s, 100),
            "jitter_ms_p99": ms(self.jitter_s, 99),
        }
