"""Extended Kalman filter on the Van de Vusse CSTR and on a linear model with a known answer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.linalg as sla
from estimation_helpers import DT, NOISE, linear_discrete, make_measurement, plant_outputs

from mpc.estimation import (
    Discretization,
    EstimatorConfig,
    ExtendedKalmanFilter,
    RejectReason,
    ValidationConfig,
    limits_from_signals,
)
from plant_models.errors import ConfigError
from plant_models.model import PlantModel
from plant_models.samples import Quality
from plant_models.simulation import step

Q_STD = {"c_a": 0.5, "c_b": 0.5, "t_r": 0.02, "t_k": 0.02}
"""Small per-sample process noise: the simulated plant has none."""


def _inputs(model: PlantModel, steps: int) -> np.ndarray:
    """Nominal inputs with a +20 % feed step and a cooling step half way (excites the plant)."""
    u = np.tile(model.nominal.u, (steps, 1))
    u[steps // 2 :, 0] *= 1.2
    u[steps // 2 :, 1] *= 1.3
    return u


@pytest.mark.parametrize("measured", [("t_r", "t_k"), ("c_b", "t_r")], ids=["temps", "cb-tr"])
def test_converges_from_wrong_initial_state(vdv: PlantModel, measured: tuple[str, ...]) -> None:
    steps = 120
    u = _inputs(vdv, steps)
    X, Y = plant_outputs(vdv, vdv.nominal.x, u, steps, seed=3)
    cfg = EstimatorConfig(
        sample_time_s=DT,
        measured=measured,
        process_std=Q_STD,
        measurement_std={n: NOISE[n] for n in measured},
    )
    x0 = vdv.nominal.x * np.array([0.7, 1.35, 1.0, 1.0]) + np.array([0, 0, 6.0, -4.0])
    ekf = ExtendedKalmanFilter(vdv, cfg, x0)
    idx = vdv.y.indices(measured)
    errors = []
    for k in range(1, steps + 1):
        res = ekf.update(make_measurement(k * DT, measured, Y[k, idx]), u[k - 1])
        assert res.info.status.usable and not res.fallback
        errors.append(res.estimate.x - X[k])
    err0 = np.abs(x0 - X[0])
    final = np.abs(np.array(errors[-10:])).max(axis=0)
    assert err0[0] > 600 and err0[1] > 350  # started far away (mol/m^3)
    # converged: concentrations within 1.5 % of nominal, temperatures within 0.3 K
    assert np.all(final < np.array([30.0, 20.0, 0.3, 0.3])), final
    est = res.estimate
    assert est.covariance is not None
    sigma = np.sqrt(np.diag(est.covariance))
    assert np.all(np.abs(errors[-1]) < 4 * sigma)  # consistent with its own covariance
    assert est.y_bias.shape == (4,) and not est.y_bias.any()
    assert est.u_bias.shape == (2,) and not est.u_bias.any()
    assert est.time_s == steps * DT and est.rejected == ()


def test_rejected_measurements_are_dropped_exactly(vdv: PlantModel) -> None:
    """NaN, Bad quality, out-of-range and frozen values are rejected; the estimate equals that
    of a filter which never received those values, and stays close to the truth."""
    steps = 60
    u = _inputs(vdv, steps)
    X, Y = plant_outputs(vdv, vdv.nominal.x, u, steps, seed=5)
    measured = ("c_b", "t_r", "t_k")
    idx = vdv.y.indices(measured)
    base: dict[str, Any] = dict(
        sample_time_s=DT,
        measured=measured,
        process_std=Q_STD,
        measurement_std={n: NOISE[n] for n in measured},
    )
    validation = ValidationConfig(limits=limits_from_signals(vdv.y), frozen_samples=3)
    ekf = ExtendedKalmanFilter(vdv, EstimatorConfig(**base, validation=validation), vdv.nominal.x)
    ref = ExtendedKalmanFilter(vdv, EstimatorConfig(**base), vdv.nominal.x)
    naive = ExtendedKalmanFilter(vdv, EstimatorConfig(**base), vdv.nominal.x)
    # faults: sample -> (signal, value, quality, expected reason)
    faults = {
        10: ("t_r", np.nan, Quality.GOOD, RejectReason.NOT_FINITE),
        11: ("c_b", 5.0e3, Quality.BAD, RejectReason.BAD_QUALITY),
        12: ("t_r", 1000.0, Quality.GOOD, RejectReason.ABOVE_LIMIT),
    }
    frozen_from = 20  # t_k sensor stuck at its value of sample 20 until sample 30
    frozen_value = Y[frozen_from, idx[2]]
    for k in range(1, steps + 1):
        values = Y[k, idx].copy()
        quality = [Quality.GOOD] * 3
        expected: dict[str, RejectReason] = {}
        if k in faults:
            name, value, q, reason = faults[k]
            values[measured.index(name)] = value
            quality[measured.index(name)] = q
            expected[name] = reason
        if frozen_from <= k <= 30:
            values[2] = frozen_value
            if k - frozen_from + 1 > 3:
                expected["t_k"] = RejectReason.FROZEN
        res = ekf.update(make_measurement(k * DT, measured, values, quality), u[k - 1])
        assert {n: res.validation.reasons(n) for n in res.validation.rejected_names} == {
            n: (r,) for n, r in expected.items()
        }, k
        assert set(res.estimate.rejected) == set(expected)
        keep = [i for i, n in enumerate(measured) if n not in expected]
        names_kept = tuple(measured[i] for i in keep)
        ref_res = ref.update(make_measurement(k * DT, names_kept, values[keep]), u[k - 1])
        np.testing.assert_allclose(res.estimate.x, ref_res.estimate.x, rtol=1e-12, atol=1e-9)
        assert res.estimate.covariance is not None
        np.testing.assert_allclose(
            res.estimate.covariance, np.asarray(ref_res.estimate.covariance), rtol=1e-10, atol=1e-12
        )
        if k == 12:
            n_res = naive.update(make_measurement(k * DT, measured, values), u[k - 1])
            assert np.isfinite(n_res.estimate.x).all()
            # the naive filter swallowed the 1000 K value; the validated one did not
            assert abs(n_res.estimate.x[2] - X[k, 2]) > 20 * abs(res.estimate.x[2] - X[k, 2])
        else:
            naive.update(
                make_measurement(
                    k * DT, measured, np.where(np.isfinite(values), values, Y[k, idx])
                ),
                u[k - 1],
            )
        assert np.all(np.abs(res.estimate.x - X[k]) < np.array([150.0, 60.0, 1.5, 1.5])), k


def test_no_valid_measurement_gives_open_loop_prediction(vdv: PlantModel) -> None:
    cfg = EstimatorConfig(sample_time_s=DT, measured=("t_r",))
    ekf = ExtendedKalmanFilter(vdv, cfg, vdv.nominal.x * 1.01)
    z = ekf.z.copy()
    res = ekf.update(make_measurement(DT, ("t_r",), [np.nan]), vdv.nominal.u)
    expected = step(vdv, z, vdv.nominal.u, vdv.nominal.d, vdv.nominal.p, DT)
    np.testing.assert_allclose(res.estimate.x, expected, rtol=1e-6)
    assert res.estimate.rejected == ("t_r",)
    assert "open-loop" in res.info.message


def test_rk4_and_cvodes_discretisations_agree(vdv: PlantModel) -> None:
    x = vdv.nominal.x * np.array([0.8, 1.2, 1.01, 0.99])
    u = vdv.nominal.u * np.array([1.3, 1.5])
    ref = step(vdv, x, u, vdv.nominal.d, vdv.nominal.p, DT)
    steps = {}
    for method in Discretization:
        cfg = EstimatorConfig(sample_time_s=DT, measured=("t_r",), discretization=method)
        ekf = ExtendedKalmanFilter(vdv, cfg, x)
        steps[method] = np.asarray(ekf.augmented.F(x, u, vdv.nominal.d, vdv.nominal.p)).ravel()
        jac = np.asarray(ekf.augmented.dF(x, u, vdv.nominal.d, vdv.nominal.p))
        # Jacobian against central finite differences of the same map
        h = 1e-4 * vdv.x.nominal
        fd = np.column_stack(
            [
                (
                    np.asarray(
                        ekf.augmented.F(x + h[i] * e, u, vdv.nominal.d, vdv.nominal.p)
                    ).ravel()
                    - np.asarray(
                        ekf.augmented.F(x - h[i] * e, u, vdv.nominal.d, vdv.nominal.p)
                    ).ravel()
                )
                / (2 * h[i])
                for i, e in enumerate(np.eye(4))
            ]
        )
        np.testing.assert_allclose(jac, fd, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(steps[Discretization.CVODES], ref, rtol=1e-9)
    np.testing.assert_allclose(steps[Discretization.RK4], ref, rtol=1e-5)


def test_linear_model_covariance_matches_discrete_riccati() -> None:
    """On a linear model the EKF is the Kalman filter: its predicted covariance converges to
    the stabilising solution of the filter DARE (scipy.linalg.solve_discrete_are)."""
    model = linear_discrete()
    q, r = np.array([0.3, 0.1]), 0.5
    cfg = EstimatorConfig(
        sample_time_s=1.0,
        measured=("y1",),
        process_std={"x1": q[0], "x2": q[1]},
        measurement_std={"y1": r},
        clip_to_bounds=False,
    )
    ekf = ExtendedKalmanFilter(model, cfg)
    rng = np.random.default_rng(0)
    for k in range(200):
        ekf.update(make_measurement(float(k), ("y1",), [rng.normal()]), [rng.normal()])
    A = np.array([[0.9, 0.2], [-0.1, 0.8]])
    C = np.array([[1.0, 0.5]])
    P_pred = sla.solve_discrete_are(A.T, C.T, np.diag(q**2), np.array([[r**2]]))
    K = P_pred @ C.T / (C @ P_pred @ C.T + r**2)
    P_filt = (np.eye(2) - K @ C) @ P_pred
    np.testing.assert_allclose(ekf.P, P_filt, rtol=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"measured": ("c_x",)}, "measured: 'c_x' is not an output"),
        ({"process_std": {"t_x": 1.0}}, "process_std: 't_x' is not an estimator state"),
        ({"initial_std": {"t_r": -1.0}}, r"initial_std\['t_r'\]: expected a finite number > 0"),
        ({"measurement_std": {"t_k": 1.0}}, "measurement_std: 't_k' is not a measured output"),
        ({"sample_time_s": 0.0}, "sample_time_s"),
        ({"substeps": 0}, "substeps"),
        ({"discretization": "euler"}, "discretization"),
    ],
    ids=["measured", "process", "initial", "meas-std", "dt", "substeps", "method"],
)
def test_config_errors_name_field_and_signal(vdv: PlantModel, kwargs: dict, fragment: str) -> None:
    args = {"sample_time_s": DT, "measured": ("t_r",)} | kwargs
    with pytest.raises(ConfigError, match=fragment):
        ExtendedKalmanFilter(vdv, EstimatorConfig(**args))
