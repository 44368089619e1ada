"""Engineering units (issue 12): pint at the edge, SI inside. Values in configs and tags may carry
units; site units (r/min, rpm, t/h, Nm3/h, barg, %) are known; OPC UA UNECE codes map to them."""

from __future__ import annotations

import pytest

from plant_models.errors import ConfigError
from plant_models.units import conversion, rate_unit, same_unit, to_si


@pytest.mark.parametrize(
    ("text", "si_unit", "expected"),
    [
        ("126.85 degC", "K", 400.0),  # the README's temperatures
        ("126.85 °C", "K", 400.0),
        ("1.09 mol/l", "mol/m^3", 1090.0),  # Klatt & Engell's c_B
        ("5 kW/min", rate_unit("W"), 5000.0 / 60.0),
        ("1500 rpm", "1/s", 25.0),  # a revolution counts as 1: 1500/min = 25/s
        ("1500 r/min", "1/s", 25.0),
        ("36 t/h", "kg/s", 10.0),
        ("3600 Nm3/h", "m^3/s", 1.0),
        ("0 barg", "Pa", 101325.0),
        ("50 %", "1", 0.5),
        ("4 kg/s", "kg/s", 4.0),
        ("1 min", "s", 60.0),
        ("0.012 kg/s/min", rate_unit("kg/s"), 2e-4),
        ("1.2 degC/min", rate_unit("K"), 0.02),
    ],
)
def test_values_with_units_convert_to_the_signal_si_unit(
    text: str, si_unit: str, expected: float
) -> None:
    assert to_si(text, si_unit) == pytest.approx(expected, rel=1e-12)


def test_bare_numbers_are_si_and_differences_drop_offsets() -> None:
    assert to_si(348.15, "K") == 348.15
    assert to_si("2 degC", "K", difference=True) == pytest.approx(2.0)
    assert to_si("0.5 barg", "Pa", difference=True) == pytest.approx(5e4)
    assert to_si("75 degC", None) == pytest.approx(348.15)  # unknown signal: SI base units


def test_incompatible_dimensions_are_named() -> None:
    with pytest.raises(ConfigError, match=r"mpc.x: '5 kW' is in .*but the signal is in 'K'"):
        to_si("5 kW", "K", where="mpc.x")
    with pytest.raises(ConfigError, match="unknown unit 'parsec_per_fortnightz'"):
        to_si("3 parsec_per_fortnightz", "m")
    with pytest.raises(ConfigError, match="expected a number or 'number unit'"):
        to_si("fast", "m")


def test_site_units_and_same_unit() -> None:
    assert conversion("t/h", "kg/s").to_model(3.6) == pytest.approx(1.0)
    assert conversion("barg", "bar").to_model(0.0) == pytest.approx(1.01325)
    assert conversion("%", "1").to_model(50.0) == pytest.approx(0.5)
    assert same_unit("r/min", "rpm") and same_unit("°C", "degC") and not same_unit("K", "degC")


def test_server_units_by_unece_code() -> None:
    from hil.units import engineering_unit, unece_unit_id
    from interfaces.units import server_unit_matches, unit_from_unece_id

    assert unit_from_unece_id(unece_unit_id("RPM")) is not None
    # a drive that says "RPM" (display name) with the UNECE code for r/min matches a tag in rpm
    assert server_unit_matches("RPM", unece_unit_id("RPM"), "r/min")
    assert server_unit_matches("t/h", unece_unit_id("TNH"), "t/h")
    assert not server_unit_matches("kg/h", unece_unit_id("KGH"), "t/h")
    eu = engineering_unit("t/h")
    assert eu.unit_id == unece_unit_id("TNH") and eu.display_name == "t/h"
