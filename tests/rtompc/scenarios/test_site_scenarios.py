"""Plant-wide scenarios: several units under the coordinator, events and criteria per unit.

Bad input names the file, line and key (``event[1].signal``) and what was expected; a
short run of the examples/site application checks the per-unit and site KPIs, the
coordinator's held targets on one unit's link loss, and the reports (JSON, HTML with
each unit's trends). The shipped plant-wide files under ``scenarios/site/`` run as
pytest items through the plugin.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from plant_models.errors import ConfigError
from plant_models.library import load
from rtompc.config.site_scenario import load_site_scenario
from rtompc.scenarios.campaign import discover
from rtompc.scenarios.reports import html_report
from rtompc.scenarios.result import ScenarioStatus, to_jsonable
from rtompc.scenarios.runner import run_scenario_file

ROOT = Path(__file__).resolve().parents[3]
SITE = ROOT / "examples" / "site" / "site_inprocess.toml"
SHIPPED = sorted((ROOT / "scenarios" / "site").glob("*.toml"))

HEAD = f"""[scenario]
duration_s = 200.0

[site]
config = "{SITE}"
"""


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "site_case.toml"
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def _problems(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_site_scenario(path)
    return str(info.value)


BAD = {
    "unknown unit": (
        '[[event]]\nt_s = 10.0\nkind = "disturbance_step"\nsignal = "boiler.c_in"\nvalue = 1.0\n',
        [":9: event[0].signal: 'boiler.c_in': no unit 'boiler'", "reactor, tanks"],
    ),
    "plantwide names": (
        '[plantwide]\n[plantwide.objective]\n"boiler.steam" = 1.0\n"tanks.c_b" = 1.0\n',
        ["plantwide.objective", "no unit 'boiler'; units: reactor, tanks"],
    ),
    "links": (
        '[[site.link]]\nfrom = "tanks.h9"\nto = "reactor.c_in"\n'
        '[[site.link]]\nfrom = "tanks.h1"\nto = "boiler.d"\n',
        ["site.link[0].from: 'tanks.h9': no output", "h1, h2", "site.link[1].to: 'boiler.d'"],
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_site_input_is_named_with_file_line_key_and_what_exists(
    tmp_path: Path, case: str
) -> None:
    body, expected = BAD[case]
    text = _problems(_write(tmp_path, body))
    for part in expected:
        assert part in text, (part, text)


def test_a_link_event_must_name_its_unit(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[event]]\nt_s = 10.0\nkind = "comm_fault"\nfault = "link_loss"\n')
    text = _problems(path)
    assert "event[0].unit: which unit does this event act on?" in text


def test_an_unknown_signal_is_checked_against_its_own_units_model(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[event]]\nt_s = 10.0\nkind = "setpoint"\nsignal = "tanks.h1"\nvalue = 0.12\n\n'
        '[[event]]\nt_s = 20.0\nkind = "setpoint"\nsignal = "tanks.c_b"\nvalue = 1.0\n',
    )
    text = _problems(path)
    # c_b is the reactor's, not the tanks': the second event, at its line, in this file
    assert f"{path}:15: event[1].signal:" in text and "'c_b'" in text and "unit 'tanks'" in text
    assert "event[0]" not in text


def test_criteria_name_a_unit_or_a_site_kpi(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[criterion]]\nkpi = "service_factor"\nop = ">="\nthreshold = 0.9\n\n'
        '[[criterion]]\nkpi = "site.proft"\nop = ">="\nthreshold = 0.0\n\n'
        '[[criterion]]\nkpi = "tanks.iae.c_b"\nop = "<="\nthreshold = 1.0\n\n'
        "[historian]\npath = 'x.sqlite'\n",
    )
    text = _problems(path)
    assert "criterion[0].kpi: 'service_factor' names no unit" in text
    assert "criterion[1].kpi: no site KPI 'proft'" in text and "profit" in text
    assert "criterion[2].kpi: KPI 'iae.c_b' is not produced" in text and "unit 'tanks'" in text
    assert "historian: [historian] is not a site scenario table" in text


def test_a_missing_site_config_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[scenario]\nduration_s = 10.0\n[site]\nconfig = "nowhere.toml"\n')
    assert "site.config: cannot read the site config" in _problems(path)


def test_site_run_holds_the_lost_units_targets_and_reports_every_unit(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[event]]\nt_s = 40.0\nkind = "comm_fault"\nfault = "link_loss"\nunit = "tanks"\n'
        "duration_s = 60.0\n\n"
        '[[criterion]]\nkpi = "tanks.held_target_events"\nop = ">="\nthreshold = 1.0\n\n'
        '[[criterion]]\nkpi = "reactor.service_factor"\nop = ">="\nthreshold = 0.99\n\n'
        '[[criterion]]\nkpi = "site.units"\nop = ">="\nthreshold = 3.0\n',
    )
    result = run_scenario_file(path)
    assert result.status is ScenarioStatus.FAILED, result.message  # site.units is 2, not 3
    assert [c.passed for c in result.criteria] == [True, True, False]
    k = result.kpis
    assert k["site.units"] == 2.0
    assert k["tanks.disconnected_cycles"] == 12.0  # 60 s at 5 s
    assert k["tanks.held_cycles"] == 12.0 and k["reactor.held_cycles"] == 0.0
    assert k["site.held_target_events"] == 1.0
    assert k["reactor.cycles"] == 10.0 and k["tanks.cycles"] == 40.0  # 200 s at 20 s and 5 s
    assert k["site.min_service_factor"] == pytest.approx(28 / 40)
    assert math.isnan(k["site.profit"])  # no unit has [economics]
    names = [u.name for u in result.units]
    assert names == ["reactor", "tanks"]
    assert any("[tanks]" in e and "its targets are held" in e for e in result.events)
    data = json.loads(json.dumps(to_jsonable(result), allow_nan=False))
    assert [u["name"] for u in data["units"]] == names
    assert "h1" in data["units"][1]["trace"]["cv"]
    page = html_report([result])
    assert "unit reactor" in page and "unit tanks" in page and page.count("<img") == 2


def test_shipped_plantwide_scenarios_load_and_are_found_by_the_campaign() -> None:
    assert len(SHIPPED) >= 10
    found = discover([ROOT / "scenarios"])
    specs = [load_site_scenario(p) for p in SHIPPED]
    for path, spec in zip(SHIPPED, specs, strict=True):
        assert path in found
        assert len(spec.units) >= 2, path
        assert spec.criteria, path
        assert spec.name == path.stem


def test_the_reference_documents_every_site_key_and_kpi() -> None:
    from rtompc.config.site_scenario import TOP_KEYS, SiteSection
    from rtompc.scenarios.site_spec import SITE_KPIS, UNIT_SITE_KPIS

    text = (ROOT / "docs" / "plantwide-scenarios.md").read_text(encoding="utf-8")
    for key in SiteSection.model_fields:
        assert f"| `{key}` |" in text, key
    for kpi in SITE_KPIS:
        assert f"`site.{kpi}`" in text, kpi
    for kpi in UNIT_SITE_KPIS:
        assert f"`<unit>.{kpi}`" in text, kpi
    for table in TOP_KEYS:
        assert f"[{table}]" in text or f"[[{table}]]" in text, table


def test_config_check_reads_plant_wide_scenarios(tmp_path: Path, capsys: Any) -> None:
    from rtompc.cli import main

    assert main(["config", "check", str(SHIPPED[0])]) == 0
    bad = _write(tmp_path, '[[event]]\nt_s = 1.0\nkind = "mode"\nmode = "off"\nunit = "boiler"\n')
    assert main(["config", "check", str(bad)]) == 2
    assert "event[0].unit: no unit 'boiler'" in capsys.readouterr().out


@pytest.mark.parametrize("transport", ["inprocess", "opcua"])
def test_a_linked_disturbance_reaches_the_plant_and_its_truth(transport: str) -> None:
    """[[site.link]] sets the sink plant's disturbance on either bench (the HIL simulator's
    link, over OPC UA), and the plant truth the KPIs use sees it."""
    from rtompc.scenarios.bench import make_bench
    from rtompc.scenarios.runner import load_scenario
    from rtompc.scenarios.spec import TransportKind, TransportSpec

    spec = load_scenario(ROOT / "scenarios" / "hil_vdv_setpoint_step.toml")
    spec = dataclasses.replace(spec, transport=TransportSpec(TransportKind(transport)))
    bench = make_bench(spec, load(spec.plant.name, **dict(spec.plant.params)))
    before = bench.truth()
    bench.link_disturbance("t_in", 400.0)
    after = bench.truth()
    i = bench.plant.d.index("t_in")
    assert before[2][i] != 400.0 and after[2][i] == 400.0
