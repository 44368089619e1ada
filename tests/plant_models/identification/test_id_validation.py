"""Validation: fit, residual whiteness/independence, condition number and RGA."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from plant_models.errors import ModelError
from plant_models.identification import (
    IdentifiedModel,
    fit_percent,
    prepare,
    relative_gain_array,
    validate,
)
from plant_models.identification.validation import residual_test


def test_rga_of_a_known_matrix() -> None:
    """2x2: lambda_11 = 1 / (1 - k12 k21 / (k11 k22)) (Bristol 1966); rows and columns sum to 1."""
    k = np.array([[1.0, 2.0], [3.0, 4.0]])
    rga = relative_gain_array(k)
    np.testing.assert_allclose(rga, [[-2.0, 3.0], [3.0, -2.0]])
    np.testing.assert_allclose(rga.sum(axis=0), 1.0)
    with pytest.raises(ModelError, match="singular"):
        relative_gain_array(np.array([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(ModelError, match="square"):
        relative_gain_array(np.ones((2, 3)))


def test_fit_percent() -> None:
    y = np.sin(np.linspace(0, 10, 200))[:, None]
    assert fit_percent(y, y)[0] == pytest.approx(100.0)
    assert fit_percent(y, np.full_like(y, y.mean()))[0] == pytest.approx(0.0)


def test_whiteness_accepts_white_and_rejects_coloured_residuals() -> None:
    rng = np.random.default_rng(0)
    e = rng.standard_normal(3000)
    u = rng.standard_normal((3000, 1))
    white = residual_test("y", e, u)
    assert white.white and white.ljung_box_p > 0.01 and white.independent_of_inputs
    coloured = residual_test("y", lfilter([1.0], [1.0, -0.8], e), u)
    assert not coloured.white and coloured.ljung_box_p < 1e-6
    leaky = residual_test("y", e + 0.5 * np.r_[0.0, u[:-1, 0]], u)
    assert not leaky.independent_of_inputs


def test_validate_exact_model_on_its_own_data() -> None:
    a = np.array([[0.9, 0.0], [0.1, 0.8]])
    b = np.array([[1.0, 0.0], [0.0, 0.5]])
    c = np.eye(2)
    model = IdentifiedModel(a, b, c, np.zeros((2, 2)), 1.0, ("u1", "u2"), ("y1", "y2"),
                            np.zeros(2), np.zeros(2))
    rng = np.random.default_rng(1)
    u = rng.choice([-1.0, 1.0], size=(2000, 2))
    y = model.simulate(u) + 0.01 * rng.standard_normal((2000, 2))
    data = prepare(np.arange(2000.0), u, y, u_names=("u1", "u2"), y_names=("y1", "y2"),
                   detrend="none", outlier_sigma=None)
    rep = validate(model, data, score_from=1400)
    assert min(rep.fit_percent) > 99.0
    assert all(r.white and r.independent_of_inputs for r in rep.residuals)
    k = np.linalg.solve(np.eye(2) - a, b)
    np.testing.assert_allclose(rep.gain, k)
    assert rep.condition_number == pytest.approx(np.linalg.cond(k))
    np.testing.assert_allclose(rep.rga, relative_gain_array(k))
    # a wrong model fails the tests
    bad = IdentifiedModel(a * 0.9, b, c, np.zeros((2, 2)), 1.0, ("u1", "u2"), ("y1", "y2"),
                          np.zeros(2), np.zeros(2))
    rep_bad = validate(bad, data, score_from=1400)
    assert max(rep_bad.fit_percent) < 90.0
    assert not any(r.white for r in rep_bad.residuals)
