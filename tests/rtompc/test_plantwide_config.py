"""``[plantwide]`` from config: the site optimum equals the one built in Python; clear errors.

The two-unit steel site of ``tests/rto/test_plantwide_streams.py`` (gas network +
reduced furnace, linked by a mixed-gas stream to an input and a slab stream to a
disturbance) written as a site config must reach the same optimum as the Python
``Site``; the steel works objective written as engineering prices (60 USD/MWh,
0.30 USD/m^3 natural gas, 5 USD/GJ flaring, the model's nominal prices) must equal
the model's ``profit_rate``. Mistakes name the file, the key and what was expected.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from plant_models.library import steel_energy as se
from rto.plantwide import PlantwideRto
from rto.steel_site import STEEL_LIMITS, steel_energy_rto
from rtompc.config import build
from rtompc.config.errors import ConfigProblems
from rtompc.config.load import load_site
from rtompc.plantwide_source import PlantwideSource, build_rto
from rtompc.site_run import SiteRun

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "rto"))
from test_plantwide_streams import two_unit_site  # noqa: E402

FURNACE_PY = f"""\
import sys
sys.path.insert(0, {str(HERE.parent / "rto")!r})
from test_plantwide_streams import furnace_model  # noqa: F401
"""

LIMITS = """\
[plantwide.limits]
"steel.stoves_heat_margin" = [0, inf]
"steel.stoves_lhv_margin" = [0, inf]
"steel.coke_ovens_heat_margin" = [0, inf]
"steel.coke_ovens_lhv_margin" = [0, inf]
"steel.furnace_lhv_margin" = [0, inf]
"steel.steam_flow" = ["40 kg/s", "220 kg/s"]
"steel.steam_margin" = [0, inf]
"""


def _unit(name: str, plant: str, cv: str, target: str, mv: str, measured: list[str]) -> str:
    """A ``[[unit]]`` table run in-process with a one-CV NMPC (what the loader requires)."""
    return (
        f'[[unit]]\nname = "{name}"\n[unit.plant]\nname = "{plant}"\n'
        '[unit.transport]\nkind = "inprocess"\n'
        "[unit.mpc]\nhorizon_steps = 5\nsample_time_s = 60.0\n"
        f'[[unit.mpc.cvs]]\nname = "{cv}"\nweight = 1.0\ntarget = {target}\n'
        f'[[unit.mpc.mvs]]\nname = "{mv}"\n'
        f"[unit.estimator]\nmeasured = {measured!r}\n".replace("'", '"')
    )


STEEL_UNIT = _unit(
    "steel",
    "steel_energy",
    "level_bfg",
    "0.5",
    "bfg_to_boiler",
    ["level_bfg", "level_cog", "level_ldg", "discharge_temperature", "steam_flow"],
)
FURNACE_UNIT = _unit(
    "furnace", "furnace.py:furnace_model", "t_slab", "'1200 degC'", "fuel_power", ["t_slab"]
)

TWO_UNITS = f"""\
[plantwide]
every_s = "15 min"
[plantwide.objective]
"steel.profit_rate" = 1.0
{LIMITS}"furnace.t_slab" = ["1200 degC", "1205 degC"]
[[plantwide.stream]]
name = "mixed_gas_to_furnace"
kind = "gas"
from = "steel.furnace_fuel_power"
to = "furnace.fuel_power"
[[plantwide.stream]]
name = "slabs"
kind = "material"
from = "furnace.throughput_out"
to = "steel.furnace_throughput"
[plantwide.units.steel]
held_states = ["v_bfg", "v_cog", "v_ldg"]

{STEEL_UNIT}
{FURNACE_UNIT}"""


def _write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    (tmp_path / "furnace.py").write_text(FURNACE_PY)
    path = tmp_path / name
    path.write_text(text)
    return path


def _models(site):  # type: ignore[no-untyped-def]
    return {u.name: build.models(u).rto_model for u in site.units}


def test_config_site_equals_python_site(tmp_path: Path) -> None:
    site = load_site(_write(tmp_path, TWO_UNITS))
    pw = site.plantwide
    assert pw is not None and pw.every_s == 900.0
    assert pw.limits["furnace.t_slab"] == pytest.approx([1473.15, 1478.15])
    got = build_rto(pw, _models(site)).solve()
    ref = PlantwideRto(two_unit_site()).solve()
    assert got.usable and ref.usable
    assert got.profit == pytest.approx(ref.profit, rel=1e-6)
    for key in ("steel.power_export", "furnace.fuel_power", "furnace.t_slab", "steel.ng_flow"):
        assert got.value(key) == pytest.approx(ref.value(key), rel=1e-5, abs=1e-3)
    assert got.stream_prices["mixed_gas_to_furnace"] == pytest.approx(
        ref.stream_prices["mixed_gas_to_furnace"], rel=1e-4
    )
    assert "furnace.t_slab lower" in got.active


def test_prices_in_engineering_units_equal_the_profit_rate(tmp_path: Path) -> None:
    text = f"""\
[plantwide.objective]
"steel.power_export" = "60 USD/MWh"
"steel.ng_flow" = "-0.30 USD/m^3"
"steel.flare_power" = "-5 USD/GJ"
{LIMITS}"steel.discharge_error" = [0, "5 K"]
[plantwide.units.steel]
held_states = ["v_bfg", "v_cog", "v_ldg"]

{STEEL_UNIT}"""
    site = load_site(_write(tmp_path, text))
    pw = site.plantwide
    assert pw is not None
    assert pw.objective["steel.power_export"] == pytest.approx(se.POWER_PRICE)
    assert pw.objective["steel.flare_power"] == pytest.approx(-se.FLARE_PENALTY)
    assert set(pw.limits) == set(STEEL_LIMITS)
    got = build_rto(pw, _models(site)).solve()
    ref = steel_energy_rto().solve()
    assert got.usable and ref.usable
    assert got.profit == pytest.approx(ref.value("steel.profit_rate"), rel=1e-6)
    assert got.value("steel.power_export") == pytest.approx(
        ref.value("steel.power_export"), rel=1e-5
    )


def test_price_file_changes_the_optimum_and_site_run_builds_the_source(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_text(
        f"time_s,steel.power_price\n0,{60 / 3.6e9!r}\n3600,{-20 / 3.6e9!r}\n"
    )
    text = TWO_UNITS.replace(
        "[plantwide.objective]", 'price_file = "prices.csv"\n[plantwide.objective]'
    )
    site = load_site(_write(tmp_path, text))
    run = SiteRun(site, print_every=0, out=lambda s: None)
    try:
        source = run.source
        assert isinstance(source, PlantwideSource)
        assert source.schedule is not None
        assert source.schedule.by_unit(4000.0) == {"steel": {"power_price": -20 / 3.6e9}}
        d1, _, _ = source._inputs(4000.0, {})
        assert d1["steel"] == {"power_price": -20 / 3.6e9}
        hi, lo = source.rto.solve(d=source._inputs(0.0, {})[0]), source.rto.solve(d=d1)
        assert hi.usable and lo.usable
        # a negative power price: generating costs money, the boilers go to their turndown
        assert "steel.steam_flow lower" in lo.active
        assert lo.value("steel.steam_flow") == pytest.approx(40.0, rel=1e-6)
        assert lo.value("steel.power_export") < hi.value("steel.power_export") - 1e6
    finally:
        run._close_historians(None)


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (
            ('"steel.profit_rate" = 1.0', '"steal.profit_rate" = 1.0'),
            "plantwide.objective",
            ["no unit 'steal'", "units: steel, furnace"],
        ),
        (
            ('"steel.profit_rate" = 1.0', '"steel.profit" = 1.0'),
            "plantwide.objective",
            ["unit 'steel'", "no signal 'profit'", "outputs: level_bfg"],
        ),
        (
            ('"steel.profit_rate" = 1.0', '"steel.ng_flow" = "-8 USD/GJ"'),
            "plantwide.objective",
            ["USD/s per m^3/s"],
        ),
        (
            ('from = "steel.furnace_fuel_power"', 'from = "steel.bfg_to_furnace"'),
            "plantwide.stream[0]",
            ["is an input", "comes from an output"],
        ),
        (
            ('to = "furnace.fuel_power"', 'to = "furnace.throughput"'),
            "plantwide.stream[0]",
            ["is in W", "kg/s", "same dimension"],
        ),
        (
            ('"steel.steam_margin" = [0, inf]', '"steel.bfg_to_boiler" = [0, 10]'),
            "plantwide.limits",
            ["is an input", "limits are on outputs"],
        ),
        (
            ('"steel.steam_flow" = ["40 kg/s", "220 kg/s"]', '"steel.steam_flow" = ["40 MW", 1]'),
            "plantwide.limits",
            ["steel.steam_flow", "kg/s"],
        ),
        (
            ("[plantwide.units.steel]", "[plantwide.units.steele]"),
            "plantwide",
            ["units.steele", "no unit 'steele'"],
        ),
        (
            ('held_states = ["v_bfg"', 'held_states = ["level_bfg"'),
            "plantwide",
            ["held_states", "no state 'level_bfg'", "v_bfg"],
        ),
        (
            ('kind = "gas"', 'kind = "electrons"'),
            "plantwide.stream[0].kind",
            ["'electrons' is not one of the choices", "gas"],
        ),
    ],
)
def test_problems_name_file_key_and_expectation(
    tmp_path: Path, change: tuple[str, str], key: str, words: list[str]
) -> None:
    assert change[0] in TWO_UNITS
    path = _write(tmp_path, TWO_UNITS.replace(change[0], change[1], 1))
    with pytest.raises(ConfigProblems) as err:
        load_site(path)
    text = str(err.value)
    line = next(ln for ln in text.splitlines() if f": {key}" in ln)
    assert str(path) in line
    for w in words:
        assert w in line, (w, line)


def test_bad_price_file_names_file_row_and_column(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_text("time_s,steel.power_price\n0,60 USD/MWh\n")
    text = TWO_UNITS.replace(
        "[plantwide.objective]", 'price_file = "prices.csv"\n[plantwide.objective]'
    )
    with pytest.raises(ConfigProblems) as err:
        load_site(_write(tmp_path, text))
    msg = str(err.value)
    assert "plantwide" in msg and "prices.csv, row 2, column 'steel.power_price'" in msg
    (tmp_path / "prices.csv").write_text("time_s,steel.bfg_to_boiler\n0,1.0\n")
    with pytest.raises(ConfigProblems) as err:
        load_site(_write(tmp_path, text))
    assert "column 'steel.bfg_to_boiler' is an input" in str(err.value)


def test_shipped_steel_site_example_is_the_generated_one_and_checks() -> None:
    from rtompc.steel_site_config import example_texts

    root = HERE.parents[1] / "examples" / "steel_site"
    for name, text in example_texts().items():
        assert (root / name).read_text() == text, f"regenerate examples/steel_site/{name}"
    site = load_site(root / "site.toml")
    pw = site.plantwide
    assert site.names == ("steel", "furnace") and pw is not None
    assert [(s.source, s.sink) for s in pw.stream] == [
        ("furnace.fuel_power", "steel.furnace_demand")
    ]
    assert pw.limits["furnace.t_discharge"] == pytest.approx([1473.15, 1478.15])
    # the site optimum: the furnace at its least fuel for a 1200 degC discharge, covered by the
    # network (heat margin at its lower limit), the mixed-gas stream priced
    res = build_rto(pw, _models(site)).solve()
    assert res.usable
    assert res.value("furnace.t_discharge") == pytest.approx(1473.15, abs=1e-3)
    assert res.value("steel.furnace_heat_margin") == pytest.approx(0.0, abs=1e3)
    assert res.value("furnace.fuel_power") < 94.888e6  # below the nominal firing's fuel
    assert res.stream_prices["furnace_fuel"] != 0.0
