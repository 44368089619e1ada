"""steel_energy's reduced furnace fuel demand against the zoned reheating_furnace unit.

The gas network carries the reheating furnace as the affine fuel demand fitted to
``reheating_furnace.fuel_demand`` (minimum-fuel steady states of the 3-zone model);
a site built from both units must agree on the furnace's fuel. Checked inside the
fit's range (40-65 kg/s at 1200 degC; +-20 K at the nominal 57.6 kg/s) to 1 %.
"""

from __future__ import annotations

import pytest

from plant_models.library import load
from plant_models.library import steel_energy as se
from plant_models.library.reheating_furnace import fuel_demand


@pytest.mark.parametrize(
    ("throughput", "t_discharge_c"),
    [(45.0, 1200.0), (57.6, 1200.0), (65.0, 1200.0), (57.6, 1180.0), (57.6, 1220.0)],
)
def test_reduced_demand_matches_the_zoned_furnace(throughput: float, t_discharge_c: float) -> None:
    zoned = fuel_demand(throughput, t_discharge_c + se.C0)
    reduced = se.steady_furnace_demand(throughput, t_discharge_c + se.C0)
    assert reduced == pytest.approx(zoned.fuel_power, rel=0.01)


def test_nominal_point_is_steady_and_balanced() -> None:
    model = load("steel_energy")
    assert max(abs(model.rhs() / model.x.nominal)) < 1e-12
    y = model.y.mapping(model.outputs())
    assert y["discharge_error"] == pytest.approx(0.0, abs=1e-9)
    assert y["furnace_fuel_power"] == pytest.approx(
        se.steady_furnace_demand(se.THROUGHPUT, se.T_REF), rel=1e-12
    )


def test_bad_heating_value_names_the_gas() -> None:
    from plant_models.errors import ModelError

    with pytest.raises(ModelError, match="lhv\\['xyz'\\]"):
        load("steel_energy", lhv={"xyz": 1.0})


def test_external_furnace_variant_shares_the_network_and_covers_the_demand() -> None:
    """``furnace="external"``: the furnace is a unit of its own; the network's outputs equal
    the one-model network's at the same inputs, and the furnace heat margin is supply minus
    the demand disturbance (issue 16, the steel site of two units)."""
    import numpy as np

    from plant_models.errors import ModelError

    one, ext = load("steel_energy"), load("steel_energy", furnace="external")
    assert "t_discharge" not in ext.x and "furnace_demand" in ext.d
    assert "furnace_throughput" not in ext.d and "discharge_temperature" not in ext.y
    y1 = np.asarray(one.h(one.nominal.x, one.nominal.u, one.nominal.d, one.nominal.p)).ravel()
    demand = 90e6
    d = ext.resolve("d", {"furnace_demand": demand})
    y2 = np.asarray(ext.h(ext.nominal.x, ext.nominal.u, d, ext.nominal.p)).ravel()
    for name in ext.y.names:
        if name == "furnace_heat_margin":
            supply = y2[ext.y.index("furnace_fuel_power")]
            assert y2[ext.y.index(name)] == pytest.approx(supply - demand)
        else:
            assert y2[ext.y.index(name)] == pytest.approx(y1[one.y.index(name)], abs=1e-6)
    f = np.asarray(ext.f(ext.nominal.x, ext.nominal.u, ext.nominal.d, ext.nominal.p)).ravel()
    assert np.max(np.abs(f)) < 1e-6  # the nominal point is a steady state
    nominal_demand = ext.nominal.d[ext.d.index("furnace_demand")]
    assert nominal_demand == pytest.approx(se.steady_furnace_demand(se.THROUGHPUT, se.T_REF))
    with pytest.raises(ModelError, match="furnace: expected 'reduced' or 'external'"):
        load("steel_energy", furnace="inside")
