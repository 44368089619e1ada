"""Multi-unit configs: ``[[unit]]`` tables, each unit validated against its own model, errors
naming file:line and ``unit[i]....``; a single-unit file is one unit named ``unit.name`` or the
file stem."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtompc.config import ConfigProblems
from rtompc.config.lines import LineIndex
from rtompc.config.load import load_site
from tests.rtompc.site_helpers import site_text


def _write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_two_units_each_converted_with_its_own_model(tmp_path: Path) -> None:
    site = load_site(_write(tmp_path, site_text("h.sqlite")))
    assert site.names == ("reactor", "tanks")
    reactor, tanks = site.units
    assert reactor.mpc is not None and tanks.mpc is not None
    # "1.0 mol/l" in the reactor's c_b unit (mol/m3), "13 cm" in the tank level's (m)
    assert reactor.mpc.cvs[0].target == pytest.approx(1000.0)
    assert tanks.mpc.cvs[0].target == pytest.approx(0.13)
    assert tanks.sample_time_s == 5.0 and reactor.sample_time_s == 20.0
    assert site.historian is not None and site.historian.path == tmp_path / "h.sqlite"
    assert tanks.loc == ("unit", 1) and tanks.source == tmp_path / "site.toml"


def test_problems_name_the_unit_key_and_line(tmp_path: Path) -> None:
    text = (
        site_text()
        .replace('name = "h2"', 'name = "h9"')
        .replace("move_weight = 0.01", "move_wieght = 0.01", 1)
    )
    text += '\n[plant]\nname = "van_de_vusse"\n'
    with pytest.raises(ConfigProblems) as err:
        load_site(_write(tmp_path, text))
    by_path = {p.path: p for p in err.value.problems}
    lines = text.splitlines()
    cv = by_path["unit[1].mpc.cvs[1].name"]
    assert "unknown CV 'h9'" in cv.message and lines[cv.line - 1] == 'name = "h9"'
    typo = by_path["unit[1].mpc.mvs[0].move_wieght"]
    assert typo.suggestion == "move_weight" and "move_wieght" in lines[typo.line - 1]
    top = by_path["plant"]
    assert "[unit.plant]" in top.expected and lines[top.line - 1] == "[plant]"
    assert str(tmp_path / "site.toml") in str(err.value)


def test_unit_names_unique_snake_case_and_historian_app_level(tmp_path: Path) -> None:
    text = site_text().replace('name = "tanks"', 'name = "reactor"')
    with pytest.raises(ConfigProblems, match="unit name 'reactor' is used twice"):
        load_site(_write(tmp_path, text))
    with pytest.raises(ConfigProblems, match=r"unit\[0\]\.name"):
        load_site(_write(tmp_path, site_text().replace('name = "reactor"', 'name = "Reactor 1"')))
    text = site_text().replace("[unit.loop]", '[unit.historian]\npath = "x.sqlite"\n[unit.loop]', 1)
    with pytest.raises(ConfigProblems) as err:
        load_site(_write(tmp_path, text))
    (p,) = [p for p in err.value.problems if p.path == "unit[0].historian"]
    assert "one [historian] table at the top" in " ".join(p.notes)


def test_single_unit_file_is_one_unit(tmp_path: Path, app_config) -> None:  # type: ignore[no-untyped-def]
    text = app_config(tmp_path / "h.sqlite")
    site = load_site(_write(tmp_path, text, "Reactor-7.toml"))
    assert site.names == ("reactor_7",)
    assert site.historian is not None and site.units[0].mpc is not None
    named = load_site(_write(tmp_path, '[unit]\nname = "cstr"\n' + text, "other.toml"))
    assert named.names == ("cstr",)


def test_line_index_counts_nested_arrays_per_unit() -> None:
    text = site_text()
    index = LineIndex(text)
    lines = text.splitlines()
    # the second unit's first CV is [[unit.mpc.cvs]] number 0 again
    line = index.line(("unit", 1, "mpc", "cvs", 0, "name"))
    assert line is not None and lines[line - 1] == 'name = "h1"'


def test_shipped_site_examples_check() -> None:
    from hil.config import load_benches
    from rtompc.config.check import check_file

    root = Path(__file__).resolve().parents[2] / "examples" / "site"
    for name in ("site_inprocess.toml", "site_opcua.toml"):
        report = check_file(root / name)
        assert report.ok, report.problems
        assert any("2 units (reactor, tanks)" in line for line in report.passed)
    benches = load_benches(root / "bench.toml")
    site = load_site(root / "site_opcua.toml")
    assert [b.server.endpoint for b in benches.values()] == [
        u.transport.endpoint for u in site.units
    ]
