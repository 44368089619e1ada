"""``rtompc simulate`` and ``rtompc campaign`` on the command line."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rtompc.cli import main

CRIT = '\n[[criterion]]\nkpi = "service_factor"\nop = ">="\nthreshold = {thr}\n'


def test_simulate_json(write_scenario, tiny, capsys) -> None:
    path = write_scenario("s.toml", tiny(extra=CRIT.format(thr=0.9)))
    assert main(["simulate", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "passed" and data["kpis"]["cycles"] == 20
    assert data["criteria"][0]["kpi"] == "service_factor" and "trace" not in data


def test_simulate_text_and_failing_exit_code(write_scenario, tiny, capsys, tmp_path) -> None:
    path = write_scenario("s.toml", tiny(extra=CRIT.format(thr=0.9) + '[loop]\nmode = "shadow"\n'))
    assert main(["simulate", str(path), "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "tiny: failed" in out and "service_factor = 0 >= 0.9: FAILED by 0.9" in out
    assert (tmp_path / "out" / "tiny.json").is_file() and (tmp_path / "out" / "tiny.html").is_file()


def test_simulate_bad_file_exit_code_2(write_scenario, tiny, capsys) -> None:
    path = write_scenario("s.toml", tiny(extra='[[event]]\nt_s = 1.0\nkind = "nope"\n'))
    assert main(["simulate", str(path)]) == 2
    assert "event[0].kind" in capsys.readouterr().err


@pytest.mark.slow
def test_campaign_writes_reports_and_filters(tmp_path: Path, tiny, capsys) -> None:
    d = tmp_path / "suite"
    d.mkdir()
    (d / "fast.toml").write_text(tiny("fast_one", duration=100.0, extra=CRIT.format(thr=0.9)))
    (d / "slow.toml").write_text(tiny("slow_one", tags='["nightly"]'))
    out, junit = tmp_path / "out", tmp_path / "ci" / "junit.xml"
    code = main(
        [
            "campaign",
            str(d),
            "--workers",
            "1",
            "--out",
            str(out),
            "--junit",
            str(junit),
            "--filter",
            "fast",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "1 scenarios" in captured.out and "1 passed" in captured.out
    assert "[" + "#" * 24 + "] [1/1] PASSED fast_one" in captured.err
    root = ET.parse(junit).getroot()
    assert root.get("tests") == "1" and root.find("testcase").get("name") == "fast_one"
    assert (out / "report.html").is_file() and (out / "json" / "fast_one.json").is_file()


def test_campaign_progress_bar_counts_failures_and_estimates_time(capsys) -> None:
    from rtompc.commands.campaign import _ProgressBar
    from rtompc.scenarios.result import ScenarioResult, ScenarioStatus

    bar = _ProgressBar()
    bar(1, 4, ScenarioResult("a", "a.toml", (), ScenarioStatus.PASSED, wall_time_s=1.0))
    bad = ScenarioResult("b", "b.toml", (), ScenarioStatus.FAILED, message="iae.c_b 5 > 3\nmore")
    bar(2, 4, bad)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("[" + "#" * 6 + "-" * 18 + "] [1/4] PASSED a (1.0 s; 0 not passed")
    assert lines[1].startswith("[" + "#" * 12 + "-" * 12 + "] [2/4] FAILED b")
    assert "1 not passed" in lines[1] and lines[1].endswith("iae.c_b 5 > 3")
    assert "ETA" in lines[1] and "more" not in lines[1]
