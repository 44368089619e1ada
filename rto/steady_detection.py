"""Steady-state detection on a window of measurements: Cao & Rhinehart's R-statistic.

S. Cao and R. R. Rhinehart, "An efficient method for on-line identification
of steady state", J. Process Control 5 (1995) 363-374. Per signal, three
first-order filters run over the samples X_i:

    X_f,i   = l1 X_i + (1 - l1) X_f,i-1
    v2_f,i  = l2 (X_i - X_f,i-1)^2 + (1 - l2) v2_f,i-1
    d2_f,i  = l3 (X_i - X_i-1)^2  + (1 - l3) d2_f,i-1
    R_i     = (2 - l1) v2_f,i / d2_f,i

At steady state with white noise R is near 1; a trend inflates v2 relative to
d2 and R grows. The null hypothesis "steady" is rejected when R exceeds the
critical value R_crit(1 - alpha); alpha is then the false-alarm probability per
signal and check. The filters start from the window's first samples as if
steady (v2 = d2 / (2 - l1), d2 = mean squared difference of the first
``warmup`` samples), so a window must be long compared with 1/l2 and 1/l3.

Critical values for the recommended factors l1 = 0.2, l2 = l3 = 0.1 are in
:data:`CRITICAL_VALUES`; they were computed here with :func:`critical_value`
(Gaussian white noise, 10^6 samples), the same simulation approach as
Cao & Rhinehart, "Critical values for a steady-state identifier",
J. Process Control 7 (1997) 149-152 (whose table was not available to check
against). Use :func:`critical_value` for other filter factors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import lfilter

from plant_models.errors import ConfigError, ModelError

CRITICAL_VALUES: dict[float, float] = {0.10: 1.32, 0.05: 1.44, 0.01: 1.73}
"""R_crit by false-alarm probability alpha for l1 = 0.2, l2 = l3 = 0.1."""


@dataclass(frozen=True)
class RStatisticConfig:
    """Filter factors and decision level of the R-statistic test."""

    lambda1: float = 0.2
    """Filter factor of the mean (Cao & Rhinehart recommend 0.2)."""
    lambda2: float = 0.1
    """Filter factor of the variance about the filtered mean (0.1)."""
    lambda3: float = 0.1
    """Filter factor of the variance of successive differences (0.1)."""
    alpha: float = 0.05
    """False-alarm probability per signal and check (rejecting a true steady state)."""
    r_critical: float | None = None
    """Critical value; None = from :data:`CRITICAL_VALUES` (default factors) or computed."""
    warmup: int = 10
    """Samples used to initialise the variance filters."""

    def __post_init__(self) -> None:
        for name in ("lambda1", "lambda2", "lambda3", "alpha"):
            val = getattr(self, name)
            if not (0.0 < val < 1.0):
                raise ConfigError(f"RStatisticConfig.{name}: expected a value in (0, 1), got {val}")
        if self.warmup < 2:
            raise ConfigError(f"RStatisticConfig.warmup: expected >= 2, got {self.warmup}")
        if self.r_critical is not None and not (math.isfinite(self.r_critical)
                                                and self.r_critical > 1.0):
            raise ConfigError(f"RStatisticConfig.r_critical: expected > 1, got {self.r_critical}")

    def critical(self) -> float:
        """The critical value in use."""
        if self.r_critical is not None:
            return self.r_critical
        if (self.lambda1, self.lambda2, self.lambda3) == (0.2, 0.1, 0.1) and (
            self.alpha in CRITICAL_VALUES
        ):
            return CRITICAL_VALUES[self.alpha]
        return critical_value(self.alpha, self.lambda1, self.lambda2, self.lambda3)


def r_statistic(
    samples: ArrayLike, lambda1: float = 0.2, lambda2: float = 0.1, lambda3: float = 0.1,
    warmup: int = 10,
) -> NDArray[np.float64]:
    """R_i for every sample after the first of a 1-D series (length n - 1)."""
    x = np.asarray(samples, dtype=float).reshape(-1)
    if x.size < warmup + 1:
        raise ModelError(f"r_statistic: need at least {warmup + 1} samples, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ModelError("r_statistic: samples contain NaN or inf")
    dx2 = np.diff(x) ** 2
    d0 = float(np.mean(dx2[: warmup - 1]))
    if d0 <= 0.0:
        d0 = np.finfo(float).tiny
    l1, l2, l3 = lambda1, lambda2, lambda3
    xf = lfilter([l1], [1.0, -(1.0 - l1)], x[1:], zi=[(1.0 - l1) * x[0]])[0]
    xf_prev = np.concatenate([[x[0]], xf[:-1]])
    v2 = lfilter([l2], [1.0, -(1.0 - l2)], (x[1:] - xf_prev) ** 2,
                 zi=[(1.0 - l2) * d0 / (2.0 - l1)])[0]
    d2 = lfilter([l3], [1.0, -(1.0 - l3)], dx2, zi=[(1.0 - l3) * d0])[0]
    return (2.0 - l1) * v2 / np.maximum(d2, np.finfo(float).tiny)


def critical_value(
    alpha: float, lambda1: float = 0.2, lambda2: float = 0.1, lambda3: float = 0.1,
    *, samples: int = 400_000, seed: int = 1995,
) -> float:
    """R_crit(1 - alpha) by Monte Carlo on Gaussian white noise (steady state)."""
    rng = np.random.default_rng(seed)
    r = r_statistic(rng.standard_normal(samples), lambda1, lambda2, lambda3)
    burn = int(20 / min(lambda2, lambda3))
    return float(np.quantile(r[burn:], 1.0 - alpha))


@dataclass(frozen=True)
class SteadyStateCheck:
    """Verdict of the R-statistic test on one window."""

    steady: bool
    """True when no signal rejects the steady-state hypothesis."""
    r: dict[str, float]
    """R at the end of the window per signal."""
    r_critical: float
    """Critical value used."""
    moving: tuple[str, ...]
    """Signals whose R exceeds the critical value."""
    mean: dict[str, float]
    """Mean of the last quarter of the window per signal (the steady value to use)."""


class SteadyStateDetector:
    """Tests windows of samples (rows = time, columns = signals) for steady state."""

    def __init__(self, config: RStatisticConfig | None = None) -> None:
        self.config = config or RStatisticConfig()
        self.r_critical = self.config.critical()

    def check(self, window: ArrayLike, names: Sequence[str]) -> SteadyStateCheck:
        """Test a window (shape (n, len(names))); the hypothesis is steady state."""
        data = np.asarray(window, dtype=float)
        if data.ndim == 1:
            data = data.reshape(-1, 1)
        if data.shape[1] != len(names):
            raise ModelError(
                f"steady-state window: {data.shape[1]} columns but {len(names)} names "
                f"({', '.join(names)})"
            )
        c = self.config
        r_end: dict[str, float] = {}
        for j, name in enumerate(names):
            col = data[:, j]
            if not np.all(np.isfinite(col)):
                raise ModelError(f"steady-state window: signal {name!r} has NaN or inf samples")
            r_end[name] = float(r_statistic(col, c.lambda1, c.lambda2, c.lambda3, c.warmup)[-1])
        moving = tuple(n for n, v in r_end.items() if v > self.r_critical)
        tail = data[-max(2, data.shape[0] // 4):]
        mean = {n: float(v) for n, v in zip(names, tail.mean(axis=0), strict=True)}
        return SteadyStateCheck(not moving, r_end, self.r_critical, moving, mean)
