"""The Williams-Otto case: the two-reaction model runs RTO on the three-reaction plant.

Setting of Marchetti, Chachuat & Bonvin, Ind. Eng. Chem. Res. 48 (2009)
6022-6033: the plant optimum is F_B = 4.787 kg/s, T_R = 89.70 °C, 190.98 $/s.
Two-step RTO (estimating the activation temperatures nu1, nu2 from the
measured mass fractions) converges to a point that is not the plant optimum
because of structural mismatch; modifier adaptation converges to the plant
optimum. Starting point F_B = 4 kg/s, T_R = 75 °C.
"""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.library import load
from plant_models.library.williams_otto import C0, PRICES, PUBLISHED_OPTIMUM
from plant_models.results import SolveStatus
from rto import (
    EstimationConfig,
    GradientSource,
    ModifierAdaptation,
    ModifierAdaptationConfig,
    RtoConfig,
    SettleMode,
    SteadyPlant,
    TwoStepRto,
    run_rto,
)

MEASURED = ("x_a", "x_b", "x_e", "x_g", "x_p")
U0 = np.array([4.0, 75.0 + C0])
OPT = PUBLISHED_OPTIMUM["profit"]


@pytest.fixture(scope="module")
def plant():
    return load("williams_otto")


@pytest.fixture(scope="module")
def model():
    return load("williams_otto_2r")


def _two_step(model):
    return TwoStepRto(model, RtoConfig(prices=PRICES),
                      EstimationConfig(parameters=("nu1", "nu2"), measured=MEASURED))


def test_two_step_settles_at_a_suboptimal_point(plant, model) -> None:
    its = run_rto(_two_step(model), SteadyPlant(plant), U0, None, 15)
    assert all(it.accepted and it.status is SolveStatus.SUCCESS for it in its)
    last, before = its[-1], its[-2]
    np.testing.assert_allclose(last.u_measured, before.u_measured, rtol=1e-5)  # converged
    gap = (OPT - last.plant_profit) / OPT
    assert 0.03 < gap < 0.08  # settles about 5 % below the plant optimum
    assert abs(last.u_measured[1] - PUBLISHED_OPTIMUM["t_r"]) > 3.0  # K
    # the fitted model believes it is at its optimum and over-predicts the profit
    assert last.optimum.model_profit > last.plant_profit + 1.0


@pytest.mark.parametrize("gain", [0.5, 1.0])
def test_modifier_adaptation_reaches_the_plant_optimum(plant, model, gain) -> None:
    ma = ModifierAdaptation(model, RtoConfig(prices=PRICES), ModifierAdaptationConfig(
        gain=gain, gradient=GradientSource.FINITE_DIFFERENCES))
    its = run_rto(ma, SteadyPlant(plant), U0, None, 20)
    assert all(it.accepted for it in its)
    final = its[-1]
    assert (OPT - final.plant_profit) / OPT < 0.005
    assert final.plant_profit == pytest.approx(OPT, abs=0.02)  # $/s: essentially the optimum
    assert final.u_measured[0] == pytest.approx(PUBLISHED_OPTIMUM["f_b"], abs=0.02)
    assert final.u_measured[1] == pytest.approx(PUBLISHED_OPTIMUM["t_r"], abs=0.2)
    assert all(it.plant_evaluations == 3 for it in its)  # 1 + one probe per input


def test_modifier_adaptation_from_past_points(plant, model) -> None:
    """Gradients from the last n+1 operating points: fewer plant experiments, same optimum."""
    ma = ModifierAdaptation(model, RtoConfig(prices=PRICES), ModifierAdaptationConfig(gain=0.5))
    its = run_rto(ma, SteadyPlant(plant), U0, None, 25)
    tail = [it.plant_profit for it in its[-5:]]
    assert min(tail) > OPT * (1 - 0.005)
    evaluations = sum(it.plant_evaluations for it in its)
    assert evaluations < 3 * len(its)
    assert any(it.plant_evaluations == 1 for it in its)


def test_modifier_adaptation_meets_a_plant_constraint(plant, model) -> None:
    """With X_G <= 0.08 the model's constraint is corrected to the plant's (epsilon modifier)."""
    cfg = RtoConfig(prices=PRICES, limits={"x_g": (0.0, 0.08)})
    ma = ModifierAdaptation(model, cfg, ModifierAdaptationConfig(
        gain=0.7, gradient=GradientSource.FINITE_DIFFERENCES))
    sp = SteadyPlant(plant)
    its = run_rto(ma, sp, U0, None, 20)
    y = sp(its[-1].u_measured)
    assert y["x_g"] == pytest.approx(0.08, abs=2e-4)
    # the plant's own constrained optimum, for comparison
    from rto import EconomicOptimizer

    true = EconomicOptimizer(plant, cfg).solve()
    assert its[-1].plant_profit == pytest.approx(true.profit, rel=0.005)


def test_failed_iterations_keep_the_previous_target(plant, model) -> None:
    # an infeasible economic problem: every optimisation fails, the target stays put
    ts = TwoStepRto(model, RtoConfig(prices=PRICES, limits={"x_g": (0.0, 1e-3)}),
                    EstimationConfig(parameters=("nu1", "nu2"), measured=MEASURED))
    it = run_rto(ts, SteadyPlant(plant), U0, None, 1)[0]
    assert it.status is SolveStatus.INFEASIBLE and not it.accepted
    np.testing.assert_array_equal(it.target, U0)
    assert "target kept" in it.message and "x_g" in it.message
    # modifier adaptation without usable plant gradients keeps its last good target
    ma = ModifierAdaptation(model, RtoConfig(prices=PRICES), ModifierAdaptationConfig(
        gradient=GradientSource.FINITE_DIFFERENCES))
    sp = SteadyPlant(plant)
    good = run_rto(ma, sp, U0, None, 1)[0]
    bad = ma.step(good.target, None, sp(good.target), probes=())
    assert bad.status is SolveStatus.INVALID_INPUT and not bad.accepted
    np.testing.assert_array_equal(bad.target, good.target)
    assert "probe_points" in bad.message


def test_two_step_on_a_simulated_noisy_plant(plant, model) -> None:
    """The plant is integrated until the R-statistic calls it steady; noise 1e-4 on fractions."""
    noise = {n: 1e-4 for n in MEASURED}
    sp = SteadyPlant(plant, mode=SettleMode.SIMULATE, noise=noise, seed=4)
    its = run_rto(_two_step(model), sp, U0, None, 6)
    assert all(it.accepted for it in its)
    assert sp.last_settle.settled and sp.last_settle.time_s >= 1200.0
    ideal = run_rto(_two_step(model), SteadyPlant(plant), U0, None, 15)[-1]
    assert its[-1].plant_profit == pytest.approx(ideal.plant_profit, rel=0.01)


def test_missing_measurements_are_errors(plant, model) -> None:
    from plant_models.errors import ModelError

    cfg = RtoConfig(prices=PRICES, limits={"x_g": (0.0, 0.08)})
    ma = ModifierAdaptation(model, cfg)
    y = SteadyPlant(plant)(U0)
    with pytest.raises(ModelError, match="x_g"):
        ma.step(U0, None, {k: v for k, v in y.items() if k != "x_g"})
    with pytest.raises(ModelError, match="f_p"):
        ma.step(U0, None, {k: v for k, v in y.items() if k != "f_p"})
