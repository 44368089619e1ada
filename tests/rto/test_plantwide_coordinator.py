"""PlantwideCoordinator: per-unit gating by steady-state detection, hold on failures."""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.errors import ConfigError
from plant_models.library import load
from rto.coordinator import DispatchStatus, PlantwideCoordinator, UnitLink
from rto.handoff import HandoffConfig, TargetHandoff
from rto.steel_site import steel_energy_rto

SIGNALS = ("bfg_production", "ldg_production")


@pytest.fixture(scope="module")
def setup():
    rto = steel_energy_rto()
    model = rto.site.unit("steel").model
    coord = PlantwideCoordinator(
        rto, {"steel": UnitLink(TargetHandoff(model, HandoffConfig()), SIGNALS)}
    )
    return rto, coord


def test_steady_unit_gets_the_optimum_moving_unit_keeps_its_target(setup) -> None:
    rto, coord = setup
    rng = np.random.default_rng(7)
    steady = np.column_stack(
        [140 + 0.5 * rng.standard_normal(40), 10 + 0.05 * rng.standard_normal(40)]
    )
    res = rto.solve()
    out = coord.dispatch(0.0, res, {"steel": steady})["steel"]
    assert out.status is DispatchStatus.ISSUED and out.handoff is not None
    assert out.target is not None
    assert out.target.u["ng_to_boiler"] == pytest.approx(res.value("steel.ng_to_boiler"), abs=1e-5)
    assert out.target.u["ldg_to_furnace"] == pytest.approx(
        res.value("steel.ldg_to_furnace"), abs=1e-4
    )
    ramp = steady.copy()
    ramp[:, 0] += np.linspace(0.0, 30.0, 40)  # BFG production still falling
    res2 = rto.solve(d={"steel": {"power_price": 150 / 3.6e9}})
    held = coord.dispatch(900.0, res2, {"steel": ramp})["steel"]
    assert held.status is DispatchStatus.HELD_NOT_STEADY and "bfg_production" in held.message
    assert held.target is out.target


def test_failed_site_optimum_holds_every_unit(setup) -> None:
    rto, coord = setup
    bad = rto.solve(prices={"steel.unknown": 1.0})
    out = coord.dispatch(1800.0, bad, {})["steel"]
    assert out.status is DispatchStatus.HELD_RTO_FAILED
    assert out.target is coord.target("steel")


def test_handoff_of_another_model_is_refused() -> None:
    rto = steel_energy_rto()
    other = load("steel_energy")
    with pytest.raises(ConfigError, match="hand-off's model"):
        PlantwideCoordinator(rto, {"steel": UnitLink(TargetHandoff(other, HandoffConfig()))})
