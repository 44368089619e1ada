"""Move limits applied on the client side before anything is written to a plant.

Every PlantIO clamps a requested move to the MV's absolute limits and to its
rate limit (largest change per write, from ``max_rate`` in SI units per second
times the transport's sample time) relative to a reference: the value the
plant actually holds (read back from the actuators) or the last applied move.
Non-finite requests are replaced by the reference (hold), never written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import ConfigError
from plant_models.model import PlantModel


@dataclass(frozen=True)
class MoveLimits:
    """Absolute and rate limits of the MVs, ordered like the model's ``u``."""

    names: tuple[str, ...]
    """MV names."""
    lower: NDArray[np.float64]
    """Lowest value that may be written, SI."""
    upper: NDArray[np.float64]
    """Highest value that may be written, SI."""
    max_rate: NDArray[np.float64]
    """Largest change per second, SI units/s (``inf``: no rate limit)."""

    def __post_init__(self) -> None:
        n = len(self.names)
        for attr in ("lower", "upper", "max_rate"):
            arr = np.asarray(getattr(self, attr), dtype=float).reshape(-1)
            if arr.shape != (n,):
                raise ConfigError(f"move limits: {attr} needs {n} values ({', '.join(self.names)})")
            object.__setattr__(self, attr, arr)
        for i, name in enumerate(self.names):
            if not self.lower[i] <= self.upper[i]:
                raise ConfigError(
                    f"move limits of {name!r}: lower {self.lower[i]} > upper {self.upper[i]}"
                )
            if not self.max_rate[i] > 0 or math.isnan(self.max_rate[i]):
                raise ConfigError(
                    f"move limits of {name!r}: max_rate must be > 0, got {self.max_rate[i]}"
                )

    @classmethod
    def from_model(cls, model: PlantModel, max_rate: dict[str, float] | None = None) -> MoveLimits:
        """Limits from the model's ``u`` bounds, with optional rate limits by name (SI/s)."""
        rates = np.full(len(model.u), math.inf)
        for name, rate in (max_rate or {}).items():
            if name not in model.u:
                raise ConfigError(
                    f"move limits: unknown MV {name!r}; known: {', '.join(model.u.names)}"
                )
            rates[model.u.index(name)] = float(rate)
        return cls(model.u.names, model.u.lower, model.u.upper, rates)


@dataclass(frozen=True)
class LimitedMove:
    """A move after clamping, with what was changed."""

    requested: NDArray[np.float64]
    """What the controller asked for, SI."""
    applied: NDArray[np.float64]
    """What may be written, SI."""
    clamped: tuple[bool, ...]
    """Per MV: changed by the absolute limits."""
    rate_limited: tuple[bool, ...]
    """Per MV: changed by the rate limit."""
    held: tuple[bool, ...]
    """Per MV: request was not finite, the reference is held instead."""


def limit_move(
    limits: MoveLimits,
    requested: NDArray[np.float64],
    reference: NDArray[np.float64] | None,
    sample_time_s: float,
) -> LimitedMove:
    """Clamp ``requested`` to absolute limits and to ``max_rate * sample_time_s`` around ``reference``.

    ``reference`` is the value the plant holds; a NaN entry (unknown) disables
    the rate limit of that MV. A non-finite request holds the reference; when the
    reference is unknown too, the result stays NaN and the caller must not write
    that MV.
    """
    req = np.asarray(requested, dtype=float).reshape(-1)
    n = len(limits.names)
    if req.shape != (n,):
        raise ConfigError(f"move: expected {n} values ({', '.join(limits.names)}), got {req.shape}")
    ref = (
        np.full(n, np.nan) if reference is None else np.asarray(reference, dtype=float).reshape(-1)
    )
    out = req.copy()
    held = ~np.isfinite(req)
    out[held] = ref[held]
    rate_limited = np.zeros(n, dtype=bool)
    step = limits.max_rate * float(sample_time_s)
    known = np.isfinite(ref) & np.isfinite(step) & np.isfinite(out)
    lo = np.where(known, ref - step, -np.inf)
    hi = np.where(known, ref + step, np.inf)
    with np.errstate(invalid="ignore"):
        rate_limited = known & ((out < lo) | (out > hi))
        out = np.where(known, np.clip(out, lo, hi), out)
        clamped = np.isfinite(out) & ((out < limits.lower) | (out > limits.upper))
        out = np.where(np.isfinite(out), np.clip(out, limits.lower, limits.upper), out)
    return LimitedMove(
        requested=req,
        applied=out,
        clamped=tuple(bool(c) for c in clamped),
        rate_limited=tuple(bool(r) for r in rate_limited),
        held=tuple(bool(h) for h in held),
    )
