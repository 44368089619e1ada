"""FOPDT fit recovers gains, time constants and fractional dead times of a known 2x2 process.

The data are built independently of the fitting code, by superposing the analytic
step responses K (1 - exp(-(t - t_step - theta)/tau)) of every input move.
"""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.identification import (
    ExcitationSpec,
    SignalKind,
    design_experiment,
    fit_fopdt,
    prepare,
    validate,
)

DT = 5.0
TRUE = {  # (output, input): (K, tau, theta)
    ("y1", "u1"): (2.0, 60.0, 12.5),
    ("y1", "u2"): (-0.7, 150.0, 40.0),
    ("y2", "u1"): (0.5, 90.0, 0.0),
    ("y2", "u2"): (1.3, 45.0, 22.0),
}


def _analytic_response(u: np.ndarray, k: float, tau: float, theta: float) -> np.ndarray:
    t = DT * np.arange(u.size)
    moves = np.diff(np.r_[0.0, u])
    y = np.zeros_like(t)
    for i in np.flatnonzero(moves):
        s = t - (t[i] + theta)
        y += moves[i] * k * np.where(s > 0, 1.0 - np.exp(-np.clip(s, 0, None) / tau), 0.0)
    return y


@pytest.fixture(scope="module")
def fopdt_data():
    specs = [ExcitationSpec(SignalKind.GBN, 1.0, 80.0)] * 2
    u = design_experiment(specs, 1500, DT, seed=7, lead_in_samples=10)
    y = np.zeros((u.shape[0], 2))
    for (yn, un), (k, tau, th) in TRUE.items():
        y[:, int(yn[1]) - 1] += _analytic_response(u[:, int(un[1]) - 1], k, tau, th)
    y += 0.005 * np.random.default_rng(3).standard_normal(y.shape)
    return prepare(DT * np.arange(u.shape[0]), u, y, u_names=("u1", "u2"), y_names=("y1", "y2"),
                   detrend="none", outlier_sigma=None)


def test_fopdt_recovers_known_channels(fopdt_data) -> None:
    fit = fit_fopdt(fopdt_data)
    for (yn, un), (k, tau, th) in TRUE.items():
        ch = fit.channel(yn, un)
        assert ch.gain == pytest.approx(k, rel=0.01), (yn, un)
        assert ch.time_constant_s == pytest.approx(tau, rel=0.02), (yn, un)
        assert ch.dead_time_s == pytest.approx(th, abs=1.0), (yn, un)
    assert min(fit.fit_percent) > 98.0
    np.testing.assert_allclose(fit.gain_matrix(), [[2.0, -0.7], [0.5, 1.3]], rtol=0.01)


def test_fopdt_state_space_form_reproduces_the_channels(fopdt_data) -> None:
    fit = fit_fopdt(fopdt_data)
    model = fit.to_identified()
    np.testing.assert_allclose(model.gain(), fit.gain_matrix(), rtol=1e-9)
    # dead time of u1 -> y2 is zero, so the shared input delay of u1 is 0; of u2 it is 4 samples
    assert model.delays == (0, 4)
    report = validate(model, fopdt_data)
    assert min(report.fit_percent) > 98.0
