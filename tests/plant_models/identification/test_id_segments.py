"""Identification from several independent records (a test with back-off periods cut out).

The nonlinear quadruple tank (P-) is step-tested in simulation (GBN +-0.3 V,
1500 samples of 5 s, 0.1 mm noise); two stretches (50 and 60 samples) are cut
out, as ``rtompc sysid`` cuts a step test's back-off periods, and the three
records are joined with :func:`concatenate`. n4sid must treat them as separate
records (own initial states, Hankel columns per record): order 4, gains within
2 % of the linearised first-principles model, held-back fit > 90 %.
"""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.identification import (
    DataError,
    ExcitationSpec,
    SignalKind,
    design_experiment,
    n4sid,
    prepare,
    validate,
)
from plant_models.identification.data import concatenate
from plant_models.library import load

DT = 5.0


def test_records_with_gaps_identify_the_tank() -> None:
    plant = load("quadruple_tank")
    du = design_experiment(
        [ExcitationSpec(SignalKind.GBN, 0.3, 60.0)] * 2, 1500, DT, seed=3, lead_in_samples=20
    )
    traj = plant.simulate(None, plant.nominal.u + du, DT)
    y = traj.y[:-1] + 1e-4 * np.random.default_rng(0).standard_normal((1500, 2))
    full = prepare(traj.t[:-1], traj.u, y, u_names=plant.u.names, y_names=plant.y.names)
    data = concatenate([full._slice(0, 400), full._slice(450, 900), full._slice(960, 1500)])
    assert data.segments == (400, 850) and data.n_samples == 1390
    est, _ = data.split(0.7)
    assert est.segments == (400, 850)
    fit = n4sid(est)
    assert fit.order == 4
    np.testing.assert_allclose(fit.model.gain(), plant.linearize().gain(), rtol=0.02)
    report = validate(fit.model, data, score_from=est.n_samples)
    assert min(report.fit_percent) > 90.0


def test_concatenate_refuses_different_records() -> None:
    t = np.arange(100.0)
    u = np.random.default_rng(0).standard_normal((100, 1))
    a = prepare(t, u, u, u_names=("u",), y_names=("y",))
    b = prepare(2 * t, u, u, u_names=("u",), y_names=("y",))
    with pytest.raises(DataError, match="sampled at"):
        concatenate([a, b])
    with pytest.raises(DataError, match="no records"):
        concatenate([])
