"""Subspace identification recovers a known 4th-order 2x2 system: order, poles, gains, zeros.

Truth: the quadruple tank (Johansson 2000, P+) linearised and discretised
(ZOH, 5 s) by plant_models.linearization, independent of the identification
code; simulated here with white measurement noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.errors import ModelError
from plant_models.identification import (
    DataError,
    ExcitationSpec,
    SignalKind,
    design_experiment,
    n4sid,
    prepare,
    validate,
)
from plant_models.library import load

DT = 5.0


@pytest.fixture(scope="module")
def truth():
    model = load("quadruple_tank", operating_point="non_minimum_phase")
    return model.linearize(sample_time_s=DT), model.linearize()


def _data(lin, n=2000, noise=5e-5, delays=(0, 0), seed=5):
    u = design_experiment([ExcitationSpec(SignalKind.PRBS, 0.3, 40.0)] * 2, n, DT, seed=seed)
    ud = np.zeros_like(u)
    for j, d in enumerate(delays):
        ud[d:, j] = u[: n - d, j]
    x = np.zeros(4)
    y = np.empty((n, 2))
    for k in range(n):
        y[k] = lin.C @ x
        x = lin.A @ x + lin.B @ ud[k]
    y += noise * np.random.default_rng(seed).standard_normal(y.shape)
    return prepare(
        DT * np.arange(n),
        u,
        y,
        u_names=("v1", "v2"),
        y_names=("h1", "h2"),
        detrend="none",
        outlier_sigma=None,
    )


def test_n4sid_recovers_order_poles_gain_and_rhp_zero(truth) -> None:
    lin_d, lin_c = truth
    fit = n4sid(_data(lin_d), max_order=8)
    assert fit.order == 4
    np.testing.assert_allclose(
        np.sort(fit.model.poles().real), np.sort(lin_d.poles.real), rtol=0.01
    )
    np.testing.assert_allclose(fit.model.gain(), lin_d.gain(), rtol=0.01)
    zc = np.sort(np.log(fit.model.transmission_zeros().astype(complex)).real / DT)
    np.testing.assert_allclose(zc, np.sort(lin_c.transmission_zeros().real), atol=5e-4)
    # the order gap is visible in the singular values
    sv = fit.singular_values
    assert sv[3] / sv[4] > 10.0


def test_n4sid_with_known_dead_time(truth) -> None:
    lin_d, _ = truth
    data = _data(lin_d, delays=(3, 0))
    fit = n4sid(data, order=4, delays=(3, 0))
    assert fit.model.delays == (3, 0)
    np.testing.assert_allclose(fit.model.gain(), lin_d.gain(), rtol=0.01)
    assert min(validate(fit.model, data).fit_percent) > 99.0


def test_n4sid_errors(truth) -> None:
    lin_d, _ = truth
    data = _data(lin_d, n=120)
    with pytest.raises(DataError, match="too few"):
        n4sid(data)
    with pytest.raises(ModelError, match="delays"):
        n4sid(_data(lin_d, n=600), delays=(1,))
