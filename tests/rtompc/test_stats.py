"""Loop statistics in fixed memory (finding 14.6): storage flat over 200k cycles, quantiles right.

On aebdd36 ``LoopStats`` kept every cycle time, solve time and jitter in lists,
growing by about 71 kB per 1000 cycles over a soak.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

from rtompc.runtime import LoopStats


def _deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and everything it references (numpy buffers included)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return sys.getsizeof(obj)  # includes the buffer the array owns
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        size += sum(_deep_size(v, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        size += _deep_size(vars(obj), seen)
    for slot in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, slot):
            size += _deep_size(getattr(obj, slot), seen)
    return size


def _feed(stats: LoopStats, rng: np.random.Generator, n: int) -> None:
    cycle = rng.lognormal(np.log(0.004), 0.3, n)
    solve = rng.lognormal(np.log(0.001), 0.5, n)
    jitter = rng.exponential(0.0005, n)
    for k in range(n):
        stats.cycles += 1
        stats.cycle_times_s.append(float(cycle[k]))
        stats.solve_times_s.append(float(solve[k]))
        stats.jitter_s.append(float(jitter[k]))


def test_storage_after_200k_cycles_equals_that_after_10k() -> None:
    rng = np.random.default_rng(1)
    stats = LoopStats()
    _feed(stats, rng, 10_000)
    after_10k = _deep_size(stats)
    _feed(stats, rng, 190_000)
    after_200k = _deep_size(stats)
    assert stats.summary()["cycles"] == 200_000
    assert after_200k == after_10k, f"{after_10k} B after 10k cycles, {after_200k} B after 200k"
    assert after_200k < 250_000  # and small: fixed buffers, not per-cycle storage


@pytest.mark.parametrize("n", [500, 100_000], ids=["exact-window", "streaming"])
def test_quantiles_match_numpy(n: int) -> None:
    rng = np.random.default_rng(7)
    stats = LoopStats()
    values = rng.lognormal(np.log(0.004), 0.6, n)
    values[n // 3] = 0.0  # a zero jitter lands in the underflow bin
    for v in values:
        stats.cycle_times_s.append(float(v))
        stats.jitter_s.append(float(v))
    summary = stats.summary()
    exact = {q: float(np.percentile(values, q)) * 1e3 for q in (50, 95, 99, 100)}
    tol = 1e-12 if n <= stats.cycle_times_s.window else 0.01  # one histogram bin: 1 %
    assert summary["cycle_ms_median"] == pytest.approx(exact[50], rel=tol)
    assert summary["cycle_ms_p95"] == pytest.approx(exact[95], rel=tol)
    assert summary["jitter_ms_p99"] == pytest.approx(exact[99], rel=tol)
    assert summary["cycle_ms_max"] == exact[100]  # the maximum is always exact
    assert stats.cycle_times_s.mean == pytest.approx(float(np.mean(values)), rel=1e-9)
    np.testing.assert_array_equal(
        stats.cycle_times_s.recent(), values[-min(n, stats.cycle_times_s.window) :]
    )


def test_empty_and_nan() -> None:
    stats = LoopStats()
    assert np.isnan(stats.summary()["solve_ms_median"])
    stats.solve_times_s.append(float("nan"))
    stats.solve_times_s.append(0.002)
    assert len(stats.solve_times_s) == 1 and stats.summary()["solve_ms_max"] == pytest.approx(2.0)
