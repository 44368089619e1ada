"""Benchmark of the state estimators on the Van de Vusse CSTR (not a test).

Prints the median and 90th-percentile wall time of one update of the EKF (RK4 and
CVODES discretisation, with and without an output disturbance model) and of the MHE
(IPOPT, horizons 5/10/20), over a noisy plant run, and the MHE/EKF ratio.

Run: ``.venv/bin/python benchmarks/bench_estimation.py``
"""

from __future__ import annotations

import time

import numpy as np

from mpc.estimation import (
    Discretization,
    DisturbanceModel,
    EstimatorConfig,
    ExtendedKalmanFilter,
    MheConfig,
    MovingHorizonEstimator,
)
from plant_models.library import load
from plant_models.samples import Measurement, Quality
from plant_models.simulation import step

DT = 20.0
STEPS = 120


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    model = load("van_de_vusse")
    plant = model.with_nominal(p={"beta": 1.1})
    rng = np.random.default_rng(seed)
    u = np.tile(model.nominal.u, (STEPS, 1))
    u[STEPS // 2 :] *= np.array([1.2, 1.3])
    x = model.nominal.x.copy()
    ys = []
    for k in range(STEPS):
        x = step(plant, x, u[k], plant.nominal.d, plant.nominal.p, DT)
        ys.append(plant.outputs(x, u[k]) + rng.normal(0, 1, 4) * np.array([10, 10, 0.2, 0.2]))
    return u, np.array(ys)


def _time(estimator, u: np.ndarray, ys: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    model = estimator.model
    idx = model.y.indices(names)
    times = []
    for k in range(STEPS):
        meas = Measurement(
            time_s=(k + 1) * DT,
            names=names,
            values=ys[k, idx],
            quality=(Quality.GOOD,) * len(names),
        )
        t0 = time.perf_counter()
        estimator.update(meas, u[k])
        times.append(time.perf_counter() - t0)
    return np.array(times[25:]) * 1e3  # ms, without the first (NLP build, warm-up) updates


def main() -> None:
    model = load("van_de_vusse")
    u, ys = _data()
    names = ("c_b", "t_r")
    rows = []
    base = EstimatorConfig(sample_time_s=DT, measured=names)
    offset = EstimatorConfig(
        sample_time_s=DT, measured=names, disturbances=DisturbanceModel(outputs=names)
    )
    cvodes = EstimatorConfig(sample_time_s=DT, measured=names, discretization=Discretization.CVODES)
    ekf_ms = _time(ExtendedKalmanFilter(model, base), u, ys, names)
    rows.append(("EKF, RK4 x4", ekf_ms))
    rows.append(
        (
            "EKF, RK4 x4, 2 output disturbances",
            _time(ExtendedKalmanFilter(model, offset), u, ys, names),
        )
    )
    rows.append(("EKF, CVODES", _time(ExtendedKalmanFilter(model, cvodes), u, ys, names)))
    for n in (5, 10, 20):
        mhe = MovingHorizonEstimator(model, offset, MheConfig(horizon_steps=n))
        rows.append((f"MHE N={n}, 2 output disturbances", _time(mhe, u, ys, names)))
    ref = float(np.median(ekf_ms))
    print(f"{'estimator':40s} {'median ms':>10s} {'p90 ms':>8s} {'x EKF':>7s}")
    for name, ms in rows:
        med = float(np.median(ms))
        print(f"{name:40s} {med:10.3f} {np.percentile(ms, 90):8.3f} {med / ref:7.1f}")


if __name__ == "__main__":
    main()
