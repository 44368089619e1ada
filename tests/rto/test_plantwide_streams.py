"""Plant-wide RTO over units connected by named streams equals the one-model site.

The reheating furnace is split off the steel works model as its own unit (a small
model written here from the same reduced relation): the gas network's mixed-gas
fuel power feeds the furnace's fuel input (stream to an input), and the furnace's
throughput feeds the network's throughput disturbance (stream to a disturbance,
which becomes a decision of the site NLP). The slab discharge limit now sits on
the furnace unit. The two-unit site must reach the one-model optimum, and the
mixed-gas stream's shadow price must equal the marginal value of furnace fuel.
"""

from __future__ import annotations

import casadi as ca
import pytest

from plant_models.builder import build_model
from plant_models.errors import ConfigError
from plant_models.library import load
from plant_models.library import steel_energy as se
from plant_models.signals import Signal, signal_set
from rto.plantwide import PlantwideRto, Site, SiteUnit, Stream, StreamKind
from rto.steel_site import STEEL_LIMITS, steel_energy_rto


def furnace_model():
    x = signal_set("x", Signal("t_slab", "K", 300.0, 1800.0, 1473.0, "discharge temperature"))
    u = signal_set("u", Signal("fuel_power", "W", 0.0, 400e6, 1e8, "fired heat"))
    d = signal_set("d", Signal("throughput", "kg/s", 1.0, 200.0, 70.0, "slab throughput"))
    y = signal_set(
        "y",
        Signal("t_slab", "K", nominal=1473.0),
        Signal("throughput_out", "kg/s", nominal=70.0),
    )

    def rhs(s):
        t_ss = se.T_REF + (s.fuel_power - se.Q_FIXED - s.throughput * se.E_SPEC) / (
            s.throughput * se.DE_DT
        )
        return {"t_slab": (t_ss - s.t_slab) / se.TAU_FURNACE}

    def out(s):
        return {"t_slab": s.t_slab, "throughput_out": s.throughput + ca.SX(0)}

    q = se.steady_furnace_demand(se.THROUGHPUT, se.T_REF)
    return build_model(
        "furnace",
        x=x,
        u=u,
        d=d,
        y=y,
        rhs=rhs,
        output=out,
        nominal={
            "x": {"t_slab": se.T_REF},
            "u": {"fuel_power": q},
            "d": {"throughput": se.THROUGHPUT},
        },
    )


def two_unit_site() -> Site:
    steel = load("steel_energy")
    limits = {k: v for k, v in STEEL_LIMITS.items() if k != "steel.discharge_error"}
    limits["furnace.t_slab"] = (se.T_REF, se.T_REF + 5.0)
    return Site(
        units=(
            SiteUnit("steel", steel, held_states=tuple(f"v_{g}" for g in se.HOLDERS)),
            SiteUnit("furnace", furnace_model()),
        ),
        streams=(
            Stream(
                "mixed_gas_to_furnace",
                StreamKind.GAS,
                "steel.furnace_fuel_power",
                "furnace.fuel_power",
            ),
            Stream(
                "slabs", StreamKind.MATERIAL, "furnace.throughput_out", "steel.furnace_throughput"
            ),
        ),
        objective={"steel.profit_rate": 1.0},
        limits=limits,
    )


@pytest.mark.parametrize("power_price", [60.0, 150.0], ids=["60", "150"])
def test_two_units_with_streams_reach_the_one_model_optimum(power_price: float) -> None:
    d = {"power_price": power_price / 3.6e9}
    one = steel_energy_rto().solve(d={"steel": d})
    two = PlantwideRto(two_unit_site()).solve(d={"steel": d})
    assert one.usable and two.usable, two.info.message
    assert two.profit == pytest.approx(one.profit, rel=1e-7, abs=1e-7)
    assert two.value("furnace.fuel_power") == pytest.approx(
        one.value("steel.furnace_fuel_power"), rel=1e-6
    )
    assert two.value("steel.furnace_throughput") == pytest.approx(se.THROUGHPUT, rel=1e-9)
    assert two.value("furnace.t_slab") == pytest.approx(se.T_REF, abs=1e-4)
    assert "furnace.t_slab lower" in two.active
    # shadow price of the mixed gas stream = d(profit)/d(fuel the furnace must get):
    # tighten the furnace's discharge floor by 1 K = throughput*DE_DT more fuel
    dq = se.THROUGHPUT * se.DE_DT
    bumped = PlantwideRto(two_unit_site()).solve(
        d={"steel": d}, limits={"furnace.t_slab": (se.T_REF + 1.0, se.T_REF + 5.0)}
    )
    marginal = (bumped.profit - two.profit) / dq
    assert abs(two.stream_prices["mixed_gas_to_furnace"]) == pytest.approx(abs(marginal), rel=1e-3)


def test_stream_to_an_unknown_signal_is_a_config_error() -> None:
    site = two_unit_site()
    with pytest.raises(ConfigError, match="furnace.*no input or disturbance 'fuel'"):
        Site(
            units=site.units,
            streams=(Stream("s", StreamKind.GAS, "steel.furnace_fuel_power", "furnace.fuel"),),
        )
