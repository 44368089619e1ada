"""Moving-horizon estimation: equals the Kalman filter on a linear model, agrees with the EKF
on the CSTR, keeps configured state bounds, falls back to the EKF step when IPOPT stops."""

from __future__ import annotations

import numpy as np
import pytest
from estimation_helpers import DT, NOISE, linear_discrete, make_measurement, plant_outputs

from mpc.estimation import (
    Discretization,
    DisturbanceModel,
    EstimatorConfig,
    ExtendedKalmanFilter,
    MheConfig,
    MovingHorizonEstimator,
    StateEstimator,
)
from plant_models.errors import ConfigError
from plant_models.model import PlantModel
from plant_models.results import SolveStatus

Q_STD = {"c_a": 0.5, "c_b": 0.5, "t_r": 0.02, "t_k": 0.02}


def test_linear_unconstrained_mhe_equals_kalman_filter() -> None:
    """With a linear model, no active bounds and the Kalman covariance as arrival cost, the
    MHE's filtered estimate is the Kalman filter's (Rao, Rawlings & Lee 2003), including a
    step where the only measurement is rejected (NaN)."""
    model = linear_discrete()
    cfg = EstimatorConfig(
        sample_time_s=1.0,
        measured=("y1",),
        process_std={"x1": 0.3, "x2": 0.1},
        measurement_std={"y1": 0.5},
        initial_std={"x1": 2.0, "x2": 2.0},
        clip_to_bounds=False,
    )
    ekf = ExtendedKalmanFilter(model, cfg, [1.0, -1.0])
    mhe = MovingHorizonEstimator(model, cfg, MheConfig(horizon_steps=4), [1.0, -1.0])
    rng = np.random.default_rng(2)
    for k in range(1, 16):
        y = np.nan if k == 7 else rng.normal()
        meas = make_measurement(float(k), ("y1",), [y])
        u = [np.sin(k)]
        a, b = ekf.update(meas, u), mhe.update(meas, u)
        assert b.info.status is SolveStatus.SUCCESS and not b.fallback
        np.testing.assert_allclose(b.estimate.x, a.estimate.x, atol=1e-6)
        np.testing.assert_allclose(
            np.asarray(b.estimate.covariance), np.asarray(a.estimate.covariance), rtol=1e-9
        )
        assert b.estimate.rejected == (("y1",) if k == 7 else ())


def test_mhe_agrees_with_ekf_on_the_cstr(vdv: PlantModel) -> None:
    steps = 40
    u = np.tile(vdv.nominal.u, (steps, 1))
    X, Y = plant_outputs(vdv, vdv.nominal.x, u, steps, seed=7)
    measured = ("t_r", "t_k")
    cfg = EstimatorConfig(
        sample_time_s=DT,
        measured=measured,
        process_std=Q_STD,
        measurement_std={n: NOISE[n] for n in measured},
    )
    x0 = vdv.nominal.x * np.array([0.8, 1.2, 1.0, 1.0])
    ekf = ExtendedKalmanFilter(vdv, cfg, x0)
    mhe = MovingHorizonEstimator(vdv, cfg, MheConfig(horizon_steps=8), x0)
    for k in range(1, steps + 1):
        meas = make_measurement(k * DT, measured, Y[k, 2:])
        a, b = ekf.update(meas, u[k - 1]), mhe.update(meas, u[k - 1])
        assert b.info.status.usable, b.info
        assert b.info.iterations > 0 and b.info.objective is not None
    scale = vdv.x.nominal
    assert np.all(np.abs(b.estimate.x - a.estimate.x) / scale < 2e-3)
    assert np.all(np.abs(b.estimate.x - X[-1]) < np.array([30.0, 20.0, 0.3, 0.3]))


def test_state_bound_is_respected_and_helps(vdv: PlantModel) -> None:
    """Start-up from a reactor with little product (c_b = 20 mol/m^3) while the estimators
    believe the nominal state; only temperatures are measured. Over the first 12 samples the
    true c_b stays below 700 mol/m^3. The EKF overshoots that value; the MHE with the bound
    c_b <= 700 never does and is closer to the truth whenever the EKF violates the bound."""
    steps = 12
    u = np.tile(vdv.nominal.u, (steps, 1))
    X, Y = plant_outputs(vdv, np.array([300.0, 20.0, 390.0, 388.0]), u, steps, seed=1)
    assert X[:, 1].max() < 700.0
    measured = ("t_r", "t_k")
    cfg = EstimatorConfig(
        sample_time_s=DT,
        measured=measured,
        process_std=Q_STD,
        measurement_std={n: NOISE[n] for n in measured},
        initial_std={"c_a": 1000.0, "c_b": 600.0},
        clip_to_bounds=False,
    )
    ekf = ExtendedKalmanFilter(vdv, cfg)
    mhe = MovingHorizonEstimator(
        vdv, cfg, MheConfig(horizon_steps=8, state_bounds={"c_b": (0.0, 700.0)})
    )
    violations = 0
    for k in range(1, steps + 1):
        meas = make_measurement(k * DT, measured, Y[k, 2:])
        a, b = ekf.update(meas, u[k - 1]), mhe.update(meas, u[k - 1])
        assert b.info.status.usable and not b.fallback
        assert b.estimate.x[1] <= 700.0 + 1e-6
        if a.estimate.x[1] > 700.0:
            violations += 1
            assert abs(b.estimate.x[1] - X[k, 1]) < abs(a.estimate.x[1] - X[k, 1])
    assert violations >= 3


def test_failed_solve_falls_back_to_the_ekf_step(vdv: PlantModel) -> None:
    measured = ("t_r", "t_k")
    cfg = EstimatorConfig(sample_time_s=DT, measured=measured)
    x0 = vdv.nominal.x * np.array([0.8, 1.2, 1.0, 1.0])
    mhe = MovingHorizonEstimator(vdv, cfg, MheConfig(horizon_steps=3, max_iter=1), x0)
    ekf = ExtendedKalmanFilter(vdv, cfg, x0)
    meas = make_measurement(DT, measured, vdv.nominal.x[2:] + 0.5)
    b = mhe.update(meas, vdv.nominal.u)
    a = ekf.update(meas, vdv.nominal.u)
    assert b.info.status is SolveStatus.MAX_ITER and b.fallback
    np.testing.assert_allclose(b.estimate.x, a.estimate.x, rtol=1e-12)
    with pytest.raises(Exception, match="max_iter"):
        b.raise_for_status()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"horizon_steps": 0}, "horizon_steps"),
        ({"max_iter": 0}, "max_iter"),
        ({"state_bounds": {"c_b": (2.0, 1.0)}}, r"state_bounds\['c_b'\]"),
        ({"tol": -1.0}, "tol"),
    ],
    ids=["horizon", "max_iter", "bounds", "tol"],
)
def test_mhe_config_errors(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        MheConfig(**kwargs)


def test_unknown_bound_name(vdv: PlantModel) -> None:
    cfg = EstimatorConfig(sample_time_s=DT, measured=("t_r",))
    with pytest.raises(ConfigError, match="state_bounds: 'c_x' is not an estimator state"):
        MovingHorizonEstimator(vdv, cfg, MheConfig(state_bounds={"c_x": (0.0, 1.0)}))


def test_both_estimators_satisfy_the_protocol(vdv: PlantModel) -> None:
    cfg = EstimatorConfig(sample_time_s=DT, measured=("t_r",))
    assert isinstance(ExtendedKalmanFilter(vdv, cfg), StateEstimator)
    assert isinstance(MovingHorizonEstimator(vdv, cfg), StateEstimator)


def test_cvodes_and_rk4_mhe_agree(vdv: PlantModel) -> None:
    """The MX/CVODES path builds and solves, and gives the RK4 answer (RK4 error ~1e-6)."""
    steps = 5
    u = np.tile(vdv.nominal.u, (steps, 1))
    _, Y = plant_outputs(vdv, vdv.nominal.x, u, steps, seed=7)
    measured = ("t_r", "t_k")
    x0 = vdv.nominal.x * np.array([0.9, 1.1, 1.0, 1.0])
    final = {}
    for method in Discretization:
        cfg = EstimatorConfig(
            sample_time_s=DT,
            measured=measured,
            measurement_std={n: NOISE[n] for n in measured},
            discretization=method,
        )
        mhe = MovingHorizonEstimator(vdv, cfg, MheConfig(horizon_steps=3), x0)
        for k in range(1, steps + 1):
            res = mhe.update(make_measurement(k * DT, measured, Y[k, 2:]), u[k - 1])
            assert res.info.status.usable and not res.fallback
        final[method] = res.estimate.x
    np.testing.assert_allclose(final[Discretization.CVODES], final[Discretization.RK4], rtol=1e-5)


def test_mhe_offset_free_with_output_disturbances(vdv: PlantModel) -> None:
    """Same mismatch as the EKF test (plant beta = 1.1): the MHE's output-disturbance estimate
    makes the model's steady-state prediction match the plant and agrees with the EKF's."""
    plant = vdv.with_nominal(p={"beta": 1.1})
    measured = ("c_b", "t_r")
    steps = 150
    u = np.tile(vdv.nominal.u, (steps, 1))
    X, Y = plant_outputs(plant, vdv.nominal.x, u, steps, seed=11)
    cfg = EstimatorConfig(
        sample_time_s=DT,
        measured=measured,
        disturbances=DisturbanceModel(outputs=measured),
        process_std={"c_a": 0.1, "c_b": 0.1, "t_r": 0.01, "t_k": 0.01},
        measurement_std={n: NOISE[n] for n in measured},
    )
    ekf = ExtendedKalmanFilter(vdv, cfg)
    mhe = MovingHorizonEstimator(vdv, cfg, MheConfig(horizon_steps=6))
    idx = vdv.y.indices(measured)
    errors, gaps = [], []
    for k in range(1, steps + 1):
        meas = make_measurement(k * DT, measured, Y[k, idx])
        a, b = ekf.update(meas, u[k - 1]), mhe.update(meas, u[k - 1])
        assert b.info.status.usable
        if k > steps - 20:  # average the last 20 estimates (measurement noise)
            ss = vdv.steady_state(u=u[k - 1], x_guess=b.estimate.x)
            assert ss.y is not None
            errors.append(ss.y + b.estimate.y_bias - plant.outputs(X[k], u[k - 1]))
            gaps.append(b.estimate.y_bias - a.estimate.y_bias)
    err = np.mean(errors, axis=0)
    assert abs(err[1]) < 4.0 and abs(err[2]) < 0.06, err  # noise: 10 mol/m^3, 0.2 K
    assert b.estimate.y_bias[1] > 40.0
    assert np.all(np.abs(np.mean(gaps, axis=0)) < np.array([1e-9, 2.0, 0.03, 1e-9]))


@pytest.mark.parametrize("kind", ["ekf", "mhe"])
def test_unusable_input_is_reported_not_raised(vdv: PlantModel, kind: str) -> None:
    """A NaN MV read-back must not crash the loop: INVALID_INPUT, estimate unchanged."""
    cfg = EstimatorConfig(sample_time_s=DT, measured=("t_r",))
    est = ExtendedKalmanFilter(vdv, cfg) if kind == "ekf" else MovingHorizonEstimator(vdv, cfg)
    before = est.estimate().x
    res = est.update(make_measurement(DT, ("t_r",), [387.0]), [np.nan, vdv.nominal.u[1]])
    assert res.info.status is SolveStatus.INVALID_INPUT and res.fallback
    assert "non-finite" in res.info.message and "f_dil" in res.info.message
    np.testing.assert_array_equal(res.estimate.x, before)
    ok = est.update(make_measurement(2 * DT, ("t_r",), [387.0]), vdv.nominal.u)
    assert ok.info.status.usable
