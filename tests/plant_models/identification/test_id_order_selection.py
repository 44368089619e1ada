"""n4sid's automatic order selection on plants whose order is known.

1. Johansson's quadruple tank (IEEE TCST 8(3) (2000) 456-465), 4 states, at
   the minimum-phase point P-: the nonlinear plant simulated with CVODES, GBN
   +-0.3 V on both pumps (mean switching 60 s, 5 s samples, 1200 samples),
   0.1 mm level noise, the first 70 % for estimation (the experiment of
   issue 18). The automatic choice must be order 4, with the gains within 1 %
   of the linearised first-principles model and both zeros (-0.060 / -0.018
   1/s in the paper, -0.0597 / -0.0175 from the model) within 4e-3 1/s. Before
   the fix it chose order 3: one zero at about -0.04 and a 2.7 % gain error.
   Also with a 1500-sample record, where order 3 misses order 4's held-back fit
   by only 0.03 points (a first relative-error rule still chose 3 there), and at
   the non-minimum-phase point P+ (zeros -0.056 / +0.0128 1/s).
2. Random stable discrete systems of order 2, 3 and 4 (SISO and 2x2, real and
   complex poles, time constants 3-25 samples; drawn until the smallest Hankel
   singular value is at least 3 % of the largest, i.e. every state is visible in
   the data), GBN inputs and 3 % output noise: the order found must be the true
   one and the steady-state gain within 5 %.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

from plant_models.errors import ModelError
from plant_models.identification import (
    ExcitationSpec,
    SignalKind,
    design_experiment,
    n4sid,
    prepare,
)
from plant_models.library import load

DT = 5.0


@pytest.mark.parametrize(
    ("point", "n_samples"),
    [("minimum_phase", 1200), ("minimum_phase", 1500), ("non_minimum_phase", 1500)],
    ids=["P-1200", "P-1500", "P+1500"],
)
def test_quadruple_tank_order_is_four(point: str, n_samples: int) -> None:
    plant = load("quadruple_tank", operating_point=point)
    du = design_experiment(
        [ExcitationSpec(SignalKind.GBN, 0.3, 60.0)] * 2,
        n_samples,
        DT,
        seed=3,
        lead_in_samples=20,
    )
    traj = plant.simulate(None, plant.nominal.u + du, DT)
    noise = 1e-4 * np.random.default_rng(0).standard_normal((n_samples, 2))
    data = prepare(
        traj.t[:-1], traj.u, traj.y[:-1] + noise, u_names=plant.u.names, y_names=plant.y.names
    )
    est, _ = data.split(0.7)
    fit = n4sid(est)
    assert fit.order == 4, f"chose order {fit.order}; fit by order {fit.validation_fit_by_order}"
    lin = plant.linearize()
    np.testing.assert_allclose(fit.model.gain(), lin.gain(), rtol=0.01)
    zeros = np.sort(np.log(fit.model.transmission_zeros().astype(complex)).real / DT)
    np.testing.assert_allclose(zeros, np.sort(lin.transmission_zeros().real), atol=4e-3)


def _hankel_sv(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = sla.solve_discrete_lyapunov(a, b @ b.T)
    q = sla.solve_discrete_lyapunov(a.T, c.T @ c)
    return np.sqrt(np.sort(np.abs(np.linalg.eigvals(p @ q)))[::-1])


def _random_system(n: int, nu: int, ny: int, rng: np.random.Generator):
    while True:
        a = np.diag(np.exp(-1.0 / rng.uniform(3.0, 25.0, n)))
        if n >= 2 and rng.random() < 0.5:  # a complex pair
            r, th = np.exp(-1.0 / rng.uniform(4.0, 20.0)), rng.uniform(0.1, 0.5)
            a[:2, :2] = r * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        t = rng.standard_normal((n, n))
        a = t @ a @ np.linalg.inv(t)
        b = rng.standard_normal((n, nu))
        c = rng.standard_normal((ny, n))
        hsv = _hankel_sv(a, b, c)
        if hsv[-1] / hsv[0] > 0.03 and np.max(np.abs(np.linalg.eigvals(a))) < 0.99:
            return a, b, c


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (2, 2)], ids=["siso", "2x2"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_systems_of_known_order(n: int, shape: tuple[int, int], seed: int) -> None:
    nu, ny = shape
    rng = np.random.default_rng(seed)
    a, b, c = _random_system(n, nu, ny, rng)
    n_samp = 1000
    u = design_experiment([ExcitationSpec(SignalKind.GBN, 1.0, 8.0)] * nu, n_samp, 1.0, seed=seed)
    x = np.zeros(n)
    y = np.empty((n_samp, ny))
    for k in range(n_samp):
        y[k] = c @ x
        x = a @ x + b @ u[k]
    y += 0.03 * y.std(axis=0) * rng.standard_normal(y.shape)
    data = prepare(
        np.arange(n_samp, dtype=float),
        u,
        y,
        u_names=[f"u{j}" for j in range(nu)],
        y_names=[f"y{i}" for i in range(ny)],
        detrend="none",
        outlier_sigma=None,
    )
    fit = n4sid(data)
    assert fit.order == n, f"chose {fit.order}; fit by order {fit.validation_fit_by_order}"
    gain = c @ np.linalg.solve(np.eye(n) - a, b)
    np.testing.assert_allclose(fit.model.gain(), gain, rtol=0.05, atol=0.02 * np.abs(gain).max())


def test_select_order_rule() -> None:
    from plant_models.identification.subspace import select_order

    # errors 4.2 / 3.4 / 3.38: order 2 is 24 % worse than the best, order 3 is within 10 %
    assert select_order({1: 68.5, 2: 95.8, 3: 96.6, 4: 96.62}) == 3
    assert select_order({1: 99.95, 2: 99.99}) == 1  # both within the 0.1-point floor
    assert select_order({1: 50.0, 2: float("nan")}) == 1
    # significant singular values push the choice up among the qualifying orders only
    assert select_order({1: 68.5, 2: 95.8, 3: 96.6, 4: 96.62}, min_order=4) == 4
    assert select_order({1: 68.5, 2: 96.6, 3: 40.0}, min_order=3) == 2
    with pytest.raises(ModelError, match="finite"):
        select_order({1: float("nan")})
