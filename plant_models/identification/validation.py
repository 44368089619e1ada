"""Validation of identified models: fit on held-back data, residual tests, gain analysis.

- Fit: 100 (1 - |y - y_sim| / |y - mean(y)|) per output (NRMSE fit, as in
  MATLAB's ``compare``), simulated from rest on data the model was not fitted on.
- Residual whiteness: normalised autocorrelation of the simulation residuals
  for lags 1..max_lag against the 99 % band +-2.58/sqrt(N), and the Ljung-Box
  statistic Q = N (N+2) sum r_k^2 / (N-k) with its chi-square p-value. With
  white measurement noise, a model that captured the dynamics leaves white
  residuals.
- Residual/input independence: cross-correlation of residuals with past
  inputs within the same band (unmodelled input dynamics show up here).
- Gain matrix: condition number and the relative gain array
  RGA = K .* (K^-1)^T (Bristol 1966).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2

from plant_models.errors import ModelError
from plant_models.identification.data import IdData
from plant_models.identification.linear_model import IdentifiedModel

Z99 = 2.576
"""Two-sided 99 % normal quantile."""


@dataclass(frozen=True)
class ResidualTest:
    """Whiteness and independence of the residuals of one output."""

    output: str
    """Output name."""
    autocorrelation: NDArray[np.float64]
    """Normalised residual autocorrelation at lags 1..max_lag."""
    ljung_box_p: float
    """p-value of the Ljung-Box test (small: residuals not white)."""
    white: bool
    """True when at most 1 % + 1 of the lags leave the 99 % band and none leaves 1.5 times it."""
    independent_of_inputs: bool
    """Same rule for the cross-correlations with past inputs (per input)."""


@dataclass(frozen=True)
class ValidationReport:
    """How well a model explains data it was not fitted on."""

    fit_percent: tuple[float, ...]
    """Simulation fit per output, %."""
    residuals: tuple[ResidualTest, ...]
    """Residual tests per output."""
    gain: NDArray[np.float64]
    """Steady-state gain matrix of the model."""
    condition_number: float
    """2-norm condition number of the gain matrix."""
    rga: NDArray[np.float64] | None
    """Relative gain array (None for non-square gain matrices)."""


def fit_percent(y: NDArray[np.float64], y_sim: NDArray[np.float64]) -> NDArray[np.float64]:
    """NRMSE fit per column, %."""
    num = np.linalg.norm(y - y_sim, axis=0)
    den = np.maximum(np.linalg.norm(y - y.mean(axis=0), axis=0), 1e-300)
    return 100.0 * (1.0 - num / den)


def _xcorr(a: NDArray, b: NDArray, max_lag: int) -> NDArray:
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt(np.sum(a * a) * np.sum(b * b))
    if den == 0:
        return np.zeros(max_lag)
    return np.array([np.sum(a[k:] * b[: a.size - k]) / den for k in range(1, max_lag + 1)])


def residual_test(
    output: str, e: NDArray[np.float64], u: NDArray[np.float64], max_lag: int = 25
) -> ResidualTest:
    """Whiteness and input-independence tests of one residual sequence."""
    n = e.size
    if n <= 2 * max_lag:
        raise ModelError(f"residual test: {n} samples are too few for {max_lag} lags")
    r = _xcorr(e, e, max_lag)
    band = Z99 / np.sqrt(n)
    allowed = 1 + int(0.01 * max_lag)
    q = n * (n + 2) * float(np.sum(r**2 / (n - np.arange(1, max_lag + 1))))
    p = float(chi2.sf(q, max_lag))

    def passes(corr: NDArray) -> bool:
        mag = np.abs(corr)
        return int(np.sum(mag > band)) <= allowed and bool(np.all(mag <= 1.5 * band))

    independent = all(passes(_xcorr(e, u[:, j], max_lag)) for j in range(u.shape[1]))
    return ResidualTest(output, r, p, passes(r), independent)


def relative_gain_array(gain: NDArray[np.float64]) -> NDArray[np.float64]:
    """RGA = K .* inv(K)^T of a square, non-singular gain matrix."""
    k = np.asarray(gain, dtype=float)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ModelError(f"RGA needs a square gain matrix, got shape {k.shape}")
    if np.linalg.cond(k) > 1e12:
        raise ModelError("RGA: the gain matrix is singular (condition number > 1e12)")
    return k * np.linalg.inv(k).T


def validate(
    model: IdentifiedModel, data: IdData, *, score_from: int = 0, max_lag: int = 25
) -> ValidationReport:
    """Simulate ``model`` on ``data`` from rest and score the samples from ``score_from`` on.

    ``data`` must be in the model's deviation variables (same operating point).
    For held-back validation pass the whole record and ``score_from`` = the
    number of estimation samples: the simulation runs through the estimation
    part (so the validation part does not start from a wrong initial state)
    but only the held-back samples are scored and tested.
    """
    if not 0 <= score_from < data.n_samples - 2 * max_lag:
        raise ModelError(
            f"validate: score_from={score_from} leaves too few of {data.n_samples} samples "
            f"(need more than {2 * max_lag})"
        )
    if tuple(data.u_names) != tuple(model.u_names) or tuple(data.y_names) != tuple(model.y_names):
        raise ModelError(
            f"validate: data signals {data.u_names} -> {data.y_names} differ from the model's "
            f"{model.u_names} -> {model.y_names}"
        )
    if not np.allclose(data.u0, model.u0) or not np.allclose(data.y0, model.y0):
        raise ModelError(
            "validate: data and model have different operating points (u0, y0); "
            "prepare the validation data with "
            "prepare(..., operating_point=(model.u0, model.y0))"
        )
    y_sim = model.simulate_segments(data.u, data.y, data.segments)[score_from:]
    y_meas = data.y[score_from:]
    fits = fit_percent(y_meas, y_sim)
    e = y_meas - y_sim
    tests = tuple(
        residual_test(name, e[:, i], data.u[score_from:], max_lag)
        for i, name in enumerate(model.y_names)
    )
    k = model.gain()
    cond = float(np.linalg.cond(k))
    rga = relative_gain_array(k) if k.shape[0] == k.shape[1] and cond < 1e12 else None
    return ValidationReport(tuple(float(f) for f in fits), tests, k, cond, rga)
