"""Offset-free estimation: disturbance models, detectability, zero steady-state prediction error.

Detectability conditions: Pannocchia & Rawlings, AIChE J. 49 (2003) 426-437, and
Maeder, Borrelli & Morari, Automatica 45 (2009) 2214-2222: n_d <= n_y and
rank [[I - A, -B_d], [C, C_d]] = n_x + n_d.
"""

from __future__ import annotations

import numpy as np
import pytest
from estimation_helpers import DT, NOISE, make_measurement, plant_outputs

from mpc.estimation import (
    DisturbanceModel,
    EstimatorConfig,
    ExtendedKalmanFilter,
    augment,
    check_detectability,
)
from plant_models.builder import build_model
from plant_models.errors import ConfigError, ModelError
from plant_models.model import PlantModel
from plant_models.signals import Signal, signal_set

Q_STD = {"c_a": 0.1, "c_b": 0.1, "t_r": 0.01, "t_k": 0.01}


def _run(
    model: PlantModel,
    plant: PlantModel,
    dist: DisturbanceModel,
    measured: tuple[str, ...],
    steps: int = 250,
    u_bias: np.ndarray | None = None,
    seed: int = 0,
):
    cfg = EstimatorConfig(
        sample_time_s=DT,
        measured=measured,
        disturbances=dist,
        process_std=Q_STD,
        measurement_std={n: NOISE[n] for n in measured},
    )
    u = np.tile(model.nominal.u, (steps, 1))
    X, Y = plant_outputs(plant, model.nominal.x, u, steps, seed=seed, u_bias=u_bias)
    ekf = ExtendedKalmanFilter(model, cfg, model.nominal.x)
    idx = model.y.indices(measured)
    results = [
        ekf.update(make_measurement(k * DT, measured, Y[k, idx]), u[k - 1])
        for k in range(1, steps + 1)
    ]
    y_true = plant.outputs(X[-1], u[-1] + (0 if u_bias is None else u_bias))
    return results, y_true, X


def _prediction_error(model: PlantModel, results, y_true: np.ndarray) -> np.ndarray:
    """Steady-state model prediction (+ y_bias, with u + u_bias) minus the plant output,
    averaged over the last 30 estimates to remove the measurement noise."""
    errs = []
    for res in results[-30:]:
        e = res.estimate
        ss = model.steady_state(u=model.nominal.u + e.u_bias, x_guess=e.x)
        ss.info.raise_for_status()
        errs.append(ss.y + e.y_bias - y_true)
    return np.mean(errs, axis=0)


def test_output_disturbances_remove_the_offset_of_a_mismatched_model(vdv: PlantModel) -> None:
    """Plant with beta = 1.1 (10 % faster A -> B), model with beta = 1: with output
    disturbances on the measured c_b and t_r the steady-state prediction matches the plant;
    without, c_b is off by about 65 mol/m^3 (6 %)."""
    plant = vdv.with_nominal(p={"beta": 1.1})
    measured = ("c_b", "t_r")
    res_d, y_true, _ = _run(vdv, plant, DisturbanceModel(outputs=measured), measured)
    res_0, _, _ = _run(vdv, plant, DisturbanceModel(), measured)
    err_d = _prediction_error(vdv, res_d, y_true)
    err_0 = _prediction_error(vdv, res_0, y_true)
    c_b, t_r = vdv.y.index("c_b"), vdv.y.index("t_r")
    assert abs(err_d[c_b]) < 3.0 and abs(err_d[t_r]) < 0.06, err_d
    assert abs(err_0[c_b]) > 40.0, err_0
    est = res_d[-1].estimate
    assert est.y_bias.shape == (4,) and est.y_bias[vdv.y.index("c_a")] == 0.0
    assert est.y_bias[c_b] > 40.0  # the plant makes more B than the model
    assert est.covariance.shape == (6, 6)


def test_input_disturbance_estimates_a_heat_loss(vdv: PlantModel) -> None:
    """The plant's jacket loses 150 W the MV does not know about (plant sees q_k - 150 W);
    an input disturbance on q_k, seen through t_r and t_k, converges to -150 W."""
    results, y_true, _ = _run(
        vdv, vdv, DisturbanceModel(inputs=("q_k",)), ("t_r", "t_k"), u_bias=np.array([0.0, -150.0])
    )
    u_bias = np.mean([r.estimate.u_bias for r in results[-30:]], axis=0)
    assert u_bias[0] == 0.0
    assert u_bias[1] == pytest.approx(-150.0, abs=6.0)
    err = _prediction_error(vdv, results, y_true)
    assert np.all(np.abs(err[2:]) < 0.1), err  # K, sensor noise 0.2 K
    plain, _, _ = _run(vdv, vdv, DisturbanceModel(), ("t_r", "t_k"), u_bias=np.array([0.0, -150.0]))
    err_0 = _prediction_error(vdv, plain, y_true)
    assert np.all(np.abs(err_0[2:]) > 0.5), err_0


def test_mixed_input_and_output_disturbances(vdv: PlantModel) -> None:
    plant = vdv.with_nominal(p={"beta": 1.1})
    measured = ("c_b", "t_r")
    results, y_true, _ = _run(
        vdv, plant, DisturbanceModel(outputs=("c_b",), inputs=("q_k",)), measured, seed=4
    )
    err = _prediction_error(vdv, results, y_true)
    assert abs(err[1]) < 3.0 and abs(err[2]) < 0.06, err


def test_more_disturbances_than_measurements_is_rejected(vdv: PlantModel) -> None:
    cfg = EstimatorConfig(
        sample_time_s=DT,
        measured=("t_r",),
        disturbances=DisturbanceModel(outputs=("t_r",), inputs=("q_k",)),
    )
    with pytest.raises(ModelError, match=r"2 disturbances but only 1 measured outputs \(t_r\)"):
        ExtendedKalmanFilter(vdv, cfg)


def test_disturbance_on_an_unmeasured_output_is_not_detectable(vdv: PlantModel) -> None:
    cfg = EstimatorConfig(
        sample_time_s=DT, measured=("t_r", "t_k"), disturbances=DisturbanceModel(outputs=("c_b",))
    )
    with pytest.raises(ModelError, match=r"y:c_b.*not detectable.*rank .* = 4 < nx \+ nd = 5"):
        ExtendedKalmanFilter(vdv, cfg)


def _twin_inputs() -> PlantModel:
    """Two tanks fed by two pumps that both act on the same total flow: the input
    disturbances on u1 and u2 have identical effect and cannot be told apart."""
    x = signal_set("x", Signal("h1", "m", 0, 5), Signal("h2", "m", 0, 5))
    u = signal_set("u", Signal("u1", "m^3/s", 0, 1), Signal("u2", "m^3/s", 0, 1))
    y = signal_set("y", Signal("h1", "m", 0, 5), Signal("h2", "m", 0, 5))
    return build_model(
        "twin",
        x=x,
        u=u,
        y=y,
        rhs=lambda s: {"h1": (s.u1 + s.u2 - 0.5 * s.h1), "h2": 0.5 * s.h1 - 0.4 * s.h2},
        output=lambda s: {"h1": s.h1, "h2": s.h2},
        nominal={"x": {"h1": 1.0, "h2": 1.25}, "u": {"u1": 0.25, "u2": 0.25}},
    )


def test_rank_condition_catches_indistinguishable_input_disturbances() -> None:
    model = _twin_inputs()
    both = augment(model, DisturbanceModel(inputs=("u1", "u2")), 1.0)
    det = check_detectability(both, ("h1", "h2"))
    assert not det.detectable and det.rank == 3 and det.required_rank == 4
    assert det.undetectable_modes == ()  # the plant itself is stable and observable
    one = augment(model, DisturbanceModel(inputs=("u1",), outputs=("h2",)), 1.0)
    assert check_detectability(one, ("h1", "h2")).detectable
    cfg = EstimatorConfig(
        sample_time_s=1.0, measured=("h1", "h2"), disturbances=DisturbanceModel(inputs=("u1", "u2"))
    )
    with pytest.raises(ModelError, match="u:u1, u:u2"):
        ExtendedKalmanFilter(model, cfg)
    lenient = EstimatorConfig(
        sample_time_s=1.0,
        measured=("h1", "h2"),
        disturbances=DisturbanceModel(inputs=("u1", "u2")),
        require_detectable=False,
    )
    ExtendedKalmanFilter(model, lenient)  # warns, builds


def test_unknown_disturbance_names(vdv: PlantModel) -> None:
    with pytest.raises(ConfigError, match="DisturbanceModel.inputs: 'q_x' is not a u signal"):
        augment(vdv, DisturbanceModel(inputs=("q_x",)), DT)
    with pytest.raises(ConfigError, match="duplicate"):
        DisturbanceModel(outputs=("c_b", "c_b"))
