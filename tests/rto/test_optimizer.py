"""Economic optimisation: the Williams-Otto optimum, KKT conditions, and what limits are worth.

The unconstrained optimum is checked against Marchetti, Chachuat & Bonvin, Ind.
Eng. Chem. Res. 48 (2009) 6022-6033 (F_B = 4.787 kg/s, T_R = 89.70 °C,
190.98 $/s). The KKT test rebuilds the Lagrangian's gradient from the model's
own functions and the multipliers the result reports, in SI units.
"""

from __future__ import annotations

import casadi as ca
import numpy as np
import pytest

from plant_models.library import load
from plant_models.library.williams_otto import C0, PRICES, PUBLISHED_OPTIMUM
from plant_models.results import SolveStatus
from rto import EconomicOptimizer, RtoConfig, Side


@pytest.fixture(scope="module")
def plant():
    return load("williams_otto")


def test_published_optimum(plant) -> None:
    res = EconomicOptimizer(plant, RtoConfig(prices=PRICES)).solve()
    assert res.status is SolveStatus.SUCCESS
    assert res.u[0] == pytest.approx(PUBLISHED_OPTIMUM["f_b"], abs=5e-4)
    assert res.u[1] - C0 == pytest.approx(89.70, abs=5e-3)
    assert res.profit == pytest.approx(PUBLISHED_OPTIMUM["profit"], abs=5e-3)
    assert res.model_profit == pytest.approx(res.profit)
    assert res.active == ()
    assert all(abs(lim.sensitivity) < 1e-6 for lim in res.limits)
    assert res.info.iterations > 0 and res.info.solve_time_s > 0


def _kkt_residuals(model, res, config):
    """Stationarity, complementarity and feasibility in SI from reported multipliers."""
    nx = len(model.x)
    x, u = ca.SX.sym("x", nx), ca.SX.sym("u", len(model.u))
    y = model.h(x, u, res.d, res.p)
    profit = sum(
        price * (u[model.u.index(n)] if n in model.u else
                 res.d[model.d.index(n)] if n in model.d else y[model.y.index(n)])
        for n, price in config.prices.items()
    )
    w = ca.vertcat(x, u)
    grad_p = ca.Function("gp", [w], [ca.gradient(profit, w)])
    jac_f = ca.Function("jf", [w], [ca.jacobian(model.f(x, u, res.d, res.p), w)])
    jac_y = ca.Function("jy", [w], [ca.jacobian(y, w)])
    w0 = np.concatenate([res.x, res.u])
    stat = np.asarray(grad_p(w0)).ravel() - np.asarray(jac_f(w0)).T @ res.state_multipliers
    jy = np.asarray(jac_y(w0))
    compl = []
    for lim in res.limits:
        if lim.kind == "u":
            grad_c = np.zeros(len(w0))
            grad_c[nx + model.u.index(lim.signal)] = 1.0
        elif lim.kind == "y":
            grad_c = jy[model.y.index(lim.signal)]
        else:
            grad_c = np.zeros(len(w0))
            grad_c[model.x.index(lim.signal)] = 1.0
        stat = stat - lim.sensitivity * grad_c
        compl.append(lim.sensitivity * (lim.value - lim.limit))
        # sign: relaxing an upper limit never loses money, raising a lower one never earns
        if lim.side is Side.UPPER:
            assert lim.sensitivity >= -1e-8 and lim.value <= lim.limit + 1e-8
        else:
            assert lim.sensitivity <= 1e-8 and lim.value >= lim.limit - 1e-8
    scale = np.linalg.norm(np.asarray(grad_p(w0)).ravel())
    feas = np.asarray(model.f(res.x, res.u, res.d, res.p)).ravel()
    return np.abs(stat) / scale, np.abs(compl), np.abs(feas)


CASES = {
    "unconstrained": {},
    "by_product_limit": {"x_g": (0.0, 0.08)},
    "temperature_limit": {"t_r": (343.15, 85.0 + C0)},
    "product_and_feed": {"f_p": (0.0, 0.6), "f_b": (3.0, 4.5)},
    "lower_limit_active": {"f_b": (5.2, 6.0)},
}


@pytest.mark.parametrize("limits", CASES.values(), ids=CASES.keys())
def test_kkt_conditions(plant, limits) -> None:
    config = RtoConfig(prices=PRICES, limits=limits)
    res = EconomicOptimizer(plant, config).solve()
    assert res.status is SolveStatus.SUCCESS
    stat, compl, feas = _kkt_residuals(plant, res, config)
    assert np.max(stat) < 1e-6
    assert np.max(compl) < 1e-6  # $/s
    assert np.max(feas) < 1e-9
    for name in limits:
        if name != "f_b" or "f_p" not in limits:
            assert any(lim.signal == name and lim.active for lim in res.limits), name


@pytest.mark.parametrize(
    ("name", "side", "limits"),
    [
        ("x_g", Side.UPPER, {"x_g": (0.0, 0.08)}),
        ("t_r", Side.UPPER, {"t_r": (343.15, 85.0 + C0)}),
        ("f_p", Side.UPPER, {"f_p": (0.0, 0.6)}),
        ("f_b", Side.LOWER, {"f_b": (5.2, 6.0)}),
    ],
)
def test_sensitivity_is_what_the_limit_is_worth(plant, name, side, limits) -> None:
    """d(profit*)/d(limit) from the multiplier equals a central difference of re-optimised
    profits."""
    res = EconomicOptimizer(plant, RtoConfig(prices=PRICES, limits=limits)).solve()
    lo, hi = limits[name]
    h = 1e-4 * abs(hi if side is Side.UPPER else lo)
    profits = []
    for delta in (-h, h):
        moved = (lo, hi + delta) if side is Side.UPPER else (lo + delta, hi)
        other = RtoConfig(prices=PRICES, limits={**limits, name: moved})
        profits.append(EconomicOptimizer(plant, other).solve().profit)
    fd = (profits[1] - profits[0]) / (2 * h)
    sens = res.sensitivity(name, side)
    assert sens != 0.0
    assert sens == pytest.approx(fd, rel=1e-3)


def test_infeasible_limits_give_a_status_not_an_exception(plant) -> None:
    res = EconomicOptimizer(plant, RtoConfig(prices=PRICES, limits={"x_g": (0.0, 1e-3)})).solve()
    assert res.status is SolveStatus.INFEASIBLE
    assert res.u is None and res.profit is None
    assert "x_g" in res.info.message
    with pytest.raises(Exception, match="infeasible"):
        res.raise_for_status()


def test_fixed_inputs_stay_fixed(plant) -> None:
    config = RtoConfig(prices=PRICES, decisions=("f_b",))
    res = EconomicOptimizer(plant, config).solve(u={"f_b": 4.0, "t_r": 80.0 + C0})
    assert res.u[1] == pytest.approx(80.0 + C0)
    assert [lim.signal for lim in res.limits] == ["f_b", "f_b"]
    # one-dimensional optimum: the profit gradient along f_b vanishes
    r2 = EconomicOptimizer(plant, config).solve(u={"f_b": res.u[0] + 1e-3, "t_r": 80.0 + C0})
    assert r2.profit == pytest.approx(res.profit, abs=1e-9)


def test_disturbance_changes_the_optimum(plant) -> None:
    opt = EconomicOptimizer(plant, RtoConfig(prices=PRICES))
    base = opt.solve()
    more_a = opt.solve(d={"f_a": 2.2})
    assert more_a.status.usable
    assert more_a.u[0] > base.u[0]  # more A wants more B
