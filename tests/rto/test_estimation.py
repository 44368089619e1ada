"""Steady-state parameter estimation: recovers known parameters, validates names."""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.errors import ConfigError, ModelError
from plant_models.library import load
from plant_models.library.williams_otto import C0
from plant_models.results import SolveStatus
from rto import EstimationConfig, ParameterEstimator

MEASURED = ("x_a", "x_b", "x_e", "x_g", "x_p")


@pytest.fixture(scope="module")
def model():
    return load("williams_otto_2r")


def test_recovers_parameters_from_model_data(model) -> None:
    """Data made by the model itself with shifted activation temperatures: exact fit."""
    true = {"nu1": 8150.0, "nu2": 12300.0}
    u = {"f_b": 4.3, "t_r": 82.0 + C0}
    ss = model.steady_state(u=u, p=true)
    y = dict(zip(model.y.names, ss.y, strict=True))
    est = ParameterEstimator(model, EstimationConfig(parameters=("nu1", "nu2"), measured=MEASURED))
    res = est.estimate(u, None, y)
    assert res.status is SolveStatus.SUCCESS
    assert res.estimates["nu1"] == pytest.approx(8150.0, rel=1e-7)
    assert res.estimates["nu2"] == pytest.approx(12300.0, rel=1e-7)
    assert max(abs(v) for v in res.residuals.values()) < 1e-6
    assert res.p[model.p.index("eta1")] == model.nominal.p[model.p.index("eta1")]


def test_weights_decide_which_measurement_is_matched(model) -> None:
    """With one parameter and two inconsistent measurements, the tighter sigma wins."""
    u = {"f_b": 4.3, "t_r": 82.0 + C0}
    ss = model.steady_state(u=u, p={"nu1": 8150.0})
    y = dict(zip(model.y.names, ss.y, strict=True))
    y["x_p"] += 0.01  # a biased P analyser
    fits = {}
    for tight in ("x_a", "x_p"):
        cfg = EstimationConfig(parameters=("nu1",), measured=("x_a", "x_p"),
                               sigma={"x_a": 1e-2, "x_p": 1e-2, tight: 1e-5})
        res = ParameterEstimator(model, cfg).estimate(u, None, y)
        fits[tight] = res
    assert abs(fits["x_a"].residuals["x_a"]) < abs(fits["x_p"].residuals["x_a"])
    assert fits["x_a"].estimates["nu1"] == pytest.approx(8150.0, rel=1e-4)


def test_bounds_are_respected(model) -> None:
    u = {"f_b": 4.3, "t_r": 82.0 + C0}
    y = dict(zip(model.y.names, model.steady_state(u=u, p={"nu1": 8150.0}).y, strict=True))
    cfg = EstimationConfig(parameters=("nu1",), measured=MEASURED, bounds={"nu1": (7000.0, 8100.0)})
    res = ParameterEstimator(model, cfg).estimate(u, None, y)
    assert res.status.usable
    assert res.estimates["nu1"] == pytest.approx(8100.0, abs=1e-6)


def test_bad_names_and_data(model) -> None:
    with pytest.raises(ConfigError, match="no parameter 'k9'"):
        ParameterEstimator(model, EstimationConfig(parameters=("k9",), measured=MEASURED))
    with pytest.raises(ConfigError, match="no output 'x_c'"):
        ParameterEstimator(model, EstimationConfig(parameters=("nu1",), measured=("x_c",)))
    with pytest.raises(ConfigError, match="cannot determine"):
        EstimationConfig(parameters=("nu1", "nu2"), measured=("x_a",))
    est = ParameterEstimator(model, EstimationConfig(parameters=("nu1",), measured=MEASURED))
    with pytest.raises(ModelError, match="no measurement for x_p"):
        est.estimate(model.nominal.u, None, {n: 0.1 for n in MEASURED[:-1]})
    with pytest.raises(ModelError, match="non-finite measurement for x_a"):
        est.estimate(model.nominal.u, None, {**{n: 0.1 for n in MEASURED}, "x_a": np.nan})


def test_reconciliation_corrects_a_biased_feed_meter(model) -> None:
    """F_A read 4 % high: reconciled with the balances, the meter is corrected and the
    parameters are still recovered (data made by the model with known parameters)."""
    true = {"nu1": 8150.0, "nu2": 12300.0}
    u = {"f_b": 4.3, "t_r": 82.0 + C0}
    ss = model.steady_state(u=u, p=true)
    y = dict(zip(model.y.names, ss.y, strict=True))
    biased_d = {"f_a": 1.8275 * 1.04}
    sigma = dict.fromkeys(MEASURED, 1e-4)
    plain = ParameterEstimator(model, EstimationConfig(
        parameters=("nu1", "nu2"), measured=MEASURED, sigma=sigma)).estimate(u, biased_d, y)
    rec = ParameterEstimator(model, EstimationConfig(
        parameters=("nu1", "nu2"), measured=MEASURED, sigma=sigma,
        reconcile={"f_a": 0.2})).estimate(u, biased_d, y)
    assert rec.status.usable
    assert rec.reconciled["f_a"] == pytest.approx(1.8275, rel=1e-3)
    assert rec.estimates["nu1"] == pytest.approx(8150.0, rel=1e-4)
    assert abs(plain.estimates["nu1"] - 8150.0) > 10 * abs(rec.estimates["nu1"] - 8150.0)
    assert rec.info.objective < 1e-2 * plain.info.objective
    with pytest.raises(ConfigError, match=r"reconcile\['f_q'\]"):
        ParameterEstimator(model, EstimationConfig(parameters=("nu1",), measured=MEASURED,
                                                   reconcile={"f_q": 1.0}))
