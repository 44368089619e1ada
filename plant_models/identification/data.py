"""Identification data: checks, resampling, outlier removal and detrending.

:func:`prepare` turns logged (t, u, y) columns into an :class:`IdData` on a
uniform time grid, in deviation variables around an operating point. Every
problem that would give a silently wrong model is an error saying what is
wrong and what would fix it (:class:`DataError`): NaN/inf values, unsorted or
repeated timestamps, too few samples, inputs without excitation, shape
mismatches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ModelError


class DataError(ModelError):
    """Identification data are unusable; the message says what is wrong and how to fix it."""


class Detrend(Enum):
    """How operating-point offsets are removed before identification."""

    NONE = "none"
    """Data are already deviations (offsets are zero)."""
    MEAN = "mean"
    """Subtract the mean of every column (operating point = mean)."""
    INITIAL = "initial"
    """Subtract the first ``initial_samples`` mean (experiment starts at steady state)."""
    LINEAR = "linear"
    """Subtract a least-squares straight line from every output (drifting outputs); inputs by mean."""


@dataclass(frozen=True)
class IdData:
    """Uniformly sampled identification data in deviation variables."""

    t: NDArray[np.float64]
    """Sample times, s, uniform, shape (N,)."""
    u: NDArray[np.float64]
    """Input deviations from ``u0``, shape (N, nu)."""
    y: NDArray[np.float64]
    """Output deviations from ``y0``, shape (N, ny)."""
    u_names: tuple[str, ...]
    """Input (MV) names."""
    y_names: tuple[str, ...]
    """Output (CV) names."""
    sample_time_s: float
    """Sample time, s."""
    u0: NDArray[np.float64]
    """Input operating point (removed offsets), shape (nu,)."""
    y0: NDArray[np.float64]
    """Output operating point (removed offsets), shape (ny,)."""
    u_units: tuple[str, ...] = ()
    """SI units of the inputs (empty when unknown)."""
    y_units: tuple[str, ...] = ()
    """SI units of the outputs (empty when unknown)."""
    outliers_replaced: int = 0
    """Number of output samples replaced by the outlier filter."""
    segments: tuple[int, ...] = ()
    """Start indices (> 0) of independent records in the data (several tests, or a test with
    back-off periods cut out): the state is not continuous there. Empty: one record."""

    @property
    def n_samples(self) -> int:
        """Number of samples N."""
        return int(self.t.shape[0])

    def split(self, fraction: float = 0.7) -> tuple[IdData, IdData]:
        """Estimation part (first ``fraction``) and validation part (the rest)."""
        if not 0.1 <= fraction <= 0.95:
            raise DataError(f"split: fraction must be in [0.1, 0.95], got {fraction}")
        k = int(round(fraction * self.n_samples))
        return self._slice(0, k), self._slice(k, self.n_samples)

    def bounds(self) -> list[tuple[int, int]]:
        """(start, stop) of every independent record."""
        edges = [0, *self.segments, self.n_samples]
        return list(zip(edges[:-1], edges[1:], strict=True))

    def _slice(self, a: int, b: int) -> IdData:
        return IdData(
            self.t[a:b],
            self.u[a:b],
            self.y[a:b],
            self.u_names,
            self.y_names,
            self.sample_time_s,
            self.u0,
            self.y0,
            self.u_units,
            self.y_units,
            self.outliers_replaced,
            tuple(s - a for s in self.segments if a < s < b),
        )


def concatenate(parts: Sequence[IdData]) -> IdData:
    """One IdData from independent records (same signals, sample time and operating point);
    the record boundaries become :attr:`IdData.segments`."""
    if not parts:
        raise DataError("concatenate: no records")
    first = parts[0]
    for k, part in enumerate(parts[1:], start=1):
        if (part.u_names, part.y_names) != (first.u_names, first.y_names):
            raise DataError(
                f"concatenate: record {k} has signals {part.u_names} -> "
                f"{part.y_names}, record 0 {first.u_names} -> {first.y_names}"
            )
        if not math.isclose(part.sample_time_s, first.sample_time_s, rel_tol=1e-9):
            raise DataError(
                f"concatenate: record {k} is sampled at {part.sample_time_s} s, "
                f"record 0 at {first.sample_time_s} s; resample first"
            )
    starts: list[int] = []
    n = 0
    for part in parts:
        if n:
            starts.append(n)
        starts.extend(n + s for s in part.segments)
        n += part.n_samples
    dt = first.sample_time_s
    return IdData(
        dt * np.arange(n, dtype=float),
        np.vstack([p.u for p in parts]),
        np.vstack([p.y for p in parts]),
        first.u_names,
        first.y_names,
        dt,
        first.u0,
        first.y0,
        first.u_units,
        first.y_units,
        sum(p.outliers_replaced for p in parts),
        tuple(starts),
    )


def _matrix(values: ArrayLike, n: int, names: Sequence[str], what: str) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise DataError(f"{what}: expected {n} rows (one per timestamp), got shape {arr.shape}")
    if arr.shape[1] != len(names):
        raise DataError(
            f"{what}: {arr.shape[1]} columns but {len(names)} names ({', '.join(names)})"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        rows, cols = np.nonzero(bad)
        counts = {names[c]: int(np.sum(cols == c)) for c in np.unique(cols)}
        listing = ", ".join(
            f"{k} ({v} values, first at row {rows[cols == names.index(k)][0]})"
            for k, v in counts.items()
        )
        raise DataError(
            f"{what}: NaN or inf in {listing}; drop or interpolate those rows before "
            f"identification (e.g. pandas dropna/interpolate), or cut the record around the gap"
        )
    return arr


def _hampel(col: NDArray[np.float64], window: int, n_sigma: float) -> tuple[NDArray, int]:
    """Replace samples further than n_sigma robust sigmas from the moving median."""
    n = col.size
    half = window // 2
    pad = np.pad(col, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(pad, 2 * half + 1)[:n]
    med = np.median(windows, axis=1)
    mad = 1.4826 * np.median(np.abs(windows - med[:, None]), axis=1)
    floor = 1e-12 + 1e-9 * np.max(np.abs(col))
    bad = np.abs(col - med) > n_sigma * np.maximum(mad, floor)
    out = col.copy()
    out[bad] = med[bad]
    return out, int(bad.sum())


def prepare(
    t: ArrayLike,
    u: ArrayLike,
    y: ArrayLike,
    *,
    u_names: Sequence[str],
    y_names: Sequence[str],
    sample_time_s: float | None = None,
    detrend: Detrend | str = Detrend.INITIAL,
    initial_samples: int = 10,
    outlier_sigma: float | None = 5.0,
    outlier_window: int = 11,
    min_samples: int = 50,
    min_input_std: float | Sequence[float] = 0.0,
    u_units: Sequence[str] = (),
    y_units: Sequence[str] = (),
    operating_point: tuple[ArrayLike, ArrayLike] | None = None,
) -> IdData:
    """Check, resample, clean and detrend logged data.

    ``t`` (s) must be strictly increasing. With ``sample_time_s`` (or when the
    timestamps are not uniform) the data are resampled to a uniform grid:
    inputs by zero-order hold (they are held between moves), outputs by linear
    interpolation. Outliers in the outputs (Hampel filter, ``outlier_sigma``
    robust standard deviations from the moving median) are replaced by the
    median; ``None`` switches the filter off. An input whose standard deviation
    is not above ``min_input_std`` (and 1e-9 relative to its level) is
    rejected as unexcited. ``operating_point=(u0, y0)`` fixes the offsets
    (e.g. an identified model's, to validate it on a new experiment) and
    overrides ``detrend``.
    """
    det = Detrend(detrend)
    tv = np.asarray(t, dtype=float).reshape(-1)
    n = tv.size
    u_names = tuple(u_names)
    y_names = tuple(y_names)
    if not np.all(np.isfinite(tv)):
        raise DataError(
            f"timestamps: {int(np.sum(~np.isfinite(tv)))} NaN/inf values; drop those rows"
        )
    um = _matrix(u, n, u_names, "inputs")
    ym = _matrix(y, n, y_names, "outputs")
    steps = np.diff(tv)
    if np.any(steps <= 0):
        k = int(np.flatnonzero(steps <= 0)[0])
        kind = "repeated" if steps[k] == 0 else "decreasing"
        raise DataError(
            f"timestamps are not strictly increasing ({kind} at row {k + 1}: t={tv[k + 1]} after "
            f"{tv[k]}); sort the record by time and drop duplicate timestamps"
        )
    if n < 2:
        raise DataError(f"too few samples ({n}); need at least {min_samples}")
    uniform = np.allclose(steps, steps[0], rtol=1e-6, atol=0.0)
    dt = (
        float(sample_time_s)
        if sample_time_s is not None
        else float(steps[0] if uniform else np.median(steps))
    )
    if not (math.isfinite(dt) and dt > 0):
        raise DataError(f"sample_time_s must be positive, got {sample_time_s}")
    if sample_time_s is not None or not uniform:
        grid = tv[0] + dt * np.arange(int(math.floor((tv[-1] - tv[0]) / dt + 1e-9)) + 1)
        idx = np.clip(np.searchsorted(tv, grid, side="right") - 1, 0, n - 1)
        um = um[idx]
        ym = np.column_stack([np.interp(grid, tv, ym[:, i]) for i in range(ym.shape[1])])
        tv = grid
        n = tv.size
    if n < min_samples:
        raise DataError(
            f"too few samples: {n} at {dt} s ({n * dt:.0f} s of data); need at least {min_samples}. "
            f"Record longer (several times the slowest time constant) or sample faster"
        )
    stds = np.std(um, axis=0)
    floors = np.broadcast_to(np.asarray(min_input_std, dtype=float), stds.shape)
    dead = [
        f"{u_names[j]} (std {stds[j]:.3g})"
        for j in range(len(u_names))
        if stds[j] <= max(floors[j], 1e-9 * max(1.0, float(np.max(np.abs(um[:, j])))))
    ]
    if dead:
        raise DataError(
            f"inputs without excitation: {', '.join(dead)}; move them during the test (step, PRBS "
            f"or GBN, see plant_models.identification.excitation) or leave them out of u_names"
        )
    replaced = 0
    if outlier_sigma is not None:
        cols = []
        for i in range(ym.shape[1]):
            col, k = _hampel(ym[:, i], outlier_window, outlier_sigma)
            cols.append(col)
            replaced += k
        ym = np.column_stack(cols)
    if operating_point is not None:
        u0 = np.asarray(operating_point[0], dtype=float).reshape(-1)
        y0 = np.asarray(operating_point[1], dtype=float).reshape(-1)
        if u0.shape != (um.shape[1],) or y0.shape != (ym.shape[1],):
            raise DataError(
                f"operating_point: expected {um.shape[1]} input and {ym.shape[1]} output values, "
                f"got {u0.shape[0]} and {y0.shape[0]}"
            )
        det = Detrend.NONE
    elif det is Detrend.NONE:
        u0, y0 = np.zeros(um.shape[1]), np.zeros(ym.shape[1])
    elif det is Detrend.INITIAL:
        k0 = max(1, min(initial_samples, n))
        u0, y0 = um[:k0].mean(axis=0), ym[:k0].mean(axis=0)
    else:
        u0, y0 = um.mean(axis=0), ym.mean(axis=0)
    ud = um - u0
    yd = ym - y0
    if det is Detrend.LINEAR:
        tt = (tv - tv.mean()) / max(tv[-1] - tv[0], dt)
        slope = (tt @ yd) / (tt @ tt)
        yd = yd - np.outer(tt, slope)
    return IdData(
        tv - tv[0], ud, yd, u_names, y_names, dt, u0, y0, tuple(u_units), tuple(y_units), replaced
    )
