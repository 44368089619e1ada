"""Streaming pieces of the report pass: KPI accumulators and min/max-preserving downsampling.

Each accumulator takes one chunk of a run's cycles at a time (numpy arrays, in cycle
order) and carries what it needs across chunk boundaries, so a KPI of a month of 1 s
cycles costs a few numbers of memory. Definitions (the same as the scenario KPIs of
:mod:`rtompc.scenarios.kpis` where those exist):

- :class:`Integral`: trapezoid integral over the valid samples (a gap joins its neighbours),
  e.g. IAE = integral of |y - r| dt over cycles with a Good measurement and a target;
- :class:`LimitKpi`: per CV, over cycles with a Good measurement: ``violation`` = integral of
  the distance outside the limits in force dt, ``max_violation``, ``time_outside_s`` = sum of
  the intervals to the next valid sample that start outside, ``violations`` = entries into
  violation (a run of consecutive cycles outside counts once);
- :class:`MoveKpi`: per MV, over cycles with a written value: ``moves`` = changes of the
  written value, ``travel`` = sum of |change|, ``writes`` = cycles with a value sent;
- :class:`LogHistogram`: solve times in 1 %-wide log bins: median / p95 within 1 %, exact max.

:func:`minmax` reduces a chunk to two points per bucket of ``m`` rows: each bucket's minimum
and maximum of every series, in the order they occurred, at the bucket's first and last
time; extremes, spikes and limit crossings survive any reduction.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

Arr = NDArray[np.float64]


def _concat(prev: float, values: Arr) -> Arr:
    return values if math.isnan(prev) else np.concatenate(([prev], values))


class Integral:
    """Trapezoid integral of samples ``v`` at times ``t``, fed chunk by chunk."""

    def __init__(self) -> None:
        self.total = 0.0
        self.samples = 0
        self._t = math.nan
        self._v = math.nan

    def add(self, t: Arr, v: Arr) -> None:
        """Add valid samples (finite ``t`` and ``v``) in time order."""
        if t.size == 0:
            return
        tt, vv = _concat(self._t, t), _concat(self._v, v)
        self.total += float(np.sum(0.5 * (vv[1:] + vv[:-1]) * np.diff(tt)))
        self.samples += int(t.size)
        self._t, self._v = float(t[-1]), float(v[-1])


class LimitKpi:
    """Violation of a CV's limits in force (see the module docstring)."""

    def __init__(self) -> None:
        self.integral = Integral()
        self.max_violation = 0.0
        self.time_outside_s = 0.0
        self.violations = 0
        self.has_limit = False
        self._t = math.nan
        self._out = False

    def add(self, t: Arr, y: Arr, low: Arr, high: Arr) -> None:
        """Valid samples ``y`` at ``t`` with the limits in force (NaN or inf: none)."""
        if t.size == 0:
            return
        lo_ok, hi_ok = np.isfinite(low), np.isfinite(high)
        self.has_limit = self.has_limit or bool(np.any(lo_ok) or np.any(hi_ok))
        over = np.where(hi_ok, y - np.where(hi_ok, high, 0.0), -np.inf)
        under = np.where(lo_ok, np.where(lo_ok, low, 0.0) - y, -np.inf)
        dist = np.maximum(0.0, np.maximum(over, under))
        out = dist > 0
        self.integral.add(t, dist)
        if dist.size:
            self.max_violation = max(self.max_violation, float(np.max(dist)))
        tt = _concat(self._t, t)
        oo = out if math.isnan(self._t) else np.concatenate(([self._out], out))
        self.time_outside_s += float(np.sum(np.diff(tt) * oo[:-1]))
        before = np.concatenate(([self._out], out[:-1]))
        self.violations += int(np.sum(out & ~before))
        self._t, self._out = float(t[-1]), bool(out[-1])


class MoveKpi:
    """Moves of one MV's written value (see the module docstring)."""

    def __init__(self) -> None:
        self.moves = 0
        self.travel = 0.0
        self.writes = 0
        self._w = math.nan

    def add(self, written: Arr, requested: Arr) -> None:
        """One chunk of written and requested values (NaN: none)."""
        self.writes += int(np.sum(np.isfinite(requested)))
        w = written[np.isfinite(written)]
        if w.size == 0:
            return
        d = np.abs(np.diff(_concat(self._w, w)))
        self.moves += int(np.sum(d > 0))
        self.travel += float(np.sum(d))
        self._w = float(w[-1])


class LogHistogram:
    """Durations in log-spaced bins 1 % wide from 1e-7 s to 1e5 s (fixed memory)."""

    LOW, HIGH, PER_DECADE = 1e-7, 1e5, 232

    def __init__(self) -> None:
        n = int(round(math.log10(self.HIGH / self.LOW) * self.PER_DECADE))
        self.edges = np.logspace(math.log10(self.LOW), math.log10(self.HIGH), n + 1)
        self.counts = np.zeros(n + 2, dtype=np.int64)  # underflow, bins, overflow
        self.max = -math.inf
        self.min = math.inf

    def add(self, values: Arr) -> None:
        """Add finite values; NaN is ignored."""
        v = values[np.isfinite(values)]
        if v.size == 0:
            return
        self.max = max(self.max, float(np.max(v)))
        self.min = min(self.min, float(np.min(v)))
        idx = np.searchsorted(self.edges, v, side="right")
        self.counts += np.bincount(idx, minlength=self.counts.size)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100): geometric middle of its bin, clipped to min/max."""
        if self.n == 0:
            return math.nan
        rank = q / 100 * (self.n - 1)
        i = int(np.searchsorted(np.cumsum(self.counts), rank, side="right"))
        if i == 0:
            mid = self.LOW
        elif i >= self.counts.size - 1:
            mid = self.HIGH
        else:
            mid = math.sqrt(self.edges[i - 1] * self.edges[i])
        return min(max(mid, self.min), self.max)


def minmax(x: Arr, values: Arr, m: int) -> tuple[Arr, Arr]:
    """Two points per bucket of ``m`` rows (see the module docstring); ``m == 1``: as is."""
    r = values.shape[0]
    if m <= 1 or r == 0:
        return x, values
    starts = np.arange(0, r, m)
    ends = np.minimum(starts + m, r) - 1
    seg = np.arange(r) // m
    with np.errstate(invalid="ignore"):
        lo = np.fmin.reduceat(values, starts, axis=0)
        hi = np.fmax.reduceat(values, starts, axis=0)
    idx = np.broadcast_to(np.arange(r)[:, None], values.shape)
    p_lo = np.minimum.reduceat(np.where(values == lo[seg], idx, r), starts, axis=0)
    p_hi = np.minimum.reduceat(np.where(values == hi[seg], idx, r), starts, axis=0)
    lo_first = p_lo <= p_hi
    first, second = np.where(lo_first, lo, hi), np.where(lo_first, hi, lo)
    nb = starts.size
    xs = np.empty(2 * nb)
    xs[0::2], xs[1::2] = x[starts], x[ends]
    vs = np.empty((2 * nb, values.shape[1]))
    vs[0::2], vs[1::2] = first, second
    keep = np.ones(2 * nb, dtype=bool)
    keep[1::2] = ends > starts  # a one-row bucket is one point
    return xs[keep], vs[keep]
