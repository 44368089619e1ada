"""MIMO ARX: least squares recovers a known 2x2 second-order ARX system; AIC picks its order."""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.errors import ModelError
from plant_models.identification import DataError, fit_arx, prepare

A1 = np.array([[-1.2, 0.1], [0.05, -0.9]])
A2 = np.array([[0.4, 0.0], [-0.02, 0.2]])
B0 = np.array([[0.5, 0.0], [0.1, 0.3]])
B1 = np.array([[0.2, -0.1], [0.0, 0.25]])


def _arx_data(n: int = 6000, delay: int = 1, noise: float = 0.02):
    rng = np.random.default_rng(11)
    u = rng.choice([-1.0, 1.0], size=(n, 2))
    e = noise * rng.standard_normal((n, 2))
    y = np.zeros((n, 2))
    ud = np.zeros_like(u)
    ud[delay:] = u[: n - delay]
    for k in range(2, n):
        y[k] = -A1 @ y[k - 1] - A2 @ y[k - 2] + B0 @ ud[k] + B1 @ ud[k - 1] + e[k]
    return prepare(np.arange(n) * 1.0, u, y, u_names=("u1", "u2"), y_names=("y1", "y2"),
                   detrend="none", outlier_sigma=None)


def test_arx_recovers_coefficients_and_order() -> None:
    fit = fit_arx(_arx_data(), max_order=5)
    assert fit.na == 2
    np.testing.assert_allclose(fit.a[0], A1, atol=0.01)
    np.testing.assert_allclose(fit.a[1], A2, atol=0.01)
    np.testing.assert_allclose(fit.b[0], B0, atol=0.01)
    np.testing.assert_allclose(fit.b[1], B1, atol=0.01)
    assert fit.aic_by_order[2] < fit.aic_by_order[1]


def test_arx_state_space_has_the_arx_gain_and_delays() -> None:
    fit = fit_arx(_arx_data(delay=3), delays=(3, 3), order=2)
    true_gain = np.linalg.solve(np.eye(2) + A1 + A2, B0 + B1)
    np.testing.assert_allclose(fit.model.gain(), true_gain, rtol=0.01, atol=0.005)
    assert fit.model.delays == (3, 3)
    # noise-free simulation of the state-space form equals the ARX recursion
    rng = np.random.default_rng(2)
    u = rng.normal(size=(50, 2))
    y_ss = fit.model.simulate(u)
    y = np.zeros((50, 2))
    ud = np.zeros_like(u)
    ud[3:] = u[:-3]
    for k in range(50):
        acc = fit.b[0] @ ud[k] + (fit.b[1] @ ud[k - 1] if k >= 1 else 0)
        for lag in (1, 2):
            if k >= lag:
                acc = acc - fit.a[lag - 1] @ y[k - lag]
        y[k] = acc
    np.testing.assert_allclose(y_ss, y, atol=1e-12)


def test_arx_errors() -> None:
    data = _arx_data(n=60)
    with pytest.raises(DataError, match="record at least"):
        fit_arx(data, order=10)
    with pytest.raises(ModelError, match="delays"):
        fit_arx(data, delays=(0, 1))
