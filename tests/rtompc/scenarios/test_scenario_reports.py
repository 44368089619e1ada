"""Reports: strict JSON, JUnit XML that CI parsers accept, a self-contained HTML page."""

from __future__ import annotations

import base64
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from rtompc.scenarios.kpis import Trace
from rtompc.scenarios.reports import html_report, junit_xml, write_json
from rtompc.scenarios.result import (
    CriterionOutcome,
    Prediction,
    ScenarioResult,
    ScenarioStatus,
    to_jsonable,
)
from rtompc.scenarios.spec import Comparator


def _trace() -> Trace:
    t = np.arange(0.0, 100.0, 10.0)
    y = np.linspace(1.0, 2.0, 10).reshape(-1, 1)
    return Trace(
        t=t,
        cv_names=("c",),
        y=y,
        y_measured=y.copy(),
        setpoint=np.full((10, 1), 2.0),
        cv_lower=np.array([-math.inf]),
        cv_upper=np.array([2.5]),
        mv_names=("m",),
        u=np.linspace(0, 1, 10).reshape(-1, 1),
        u_lower=np.zeros(1),
        u_upper=np.ones(1),
        solve_time_s=np.full(10, 1e-3),
        fallback=np.zeros(10, bool),
        in_service=np.ones(10, bool),
        connected=np.ones(10, bool),
        write_failed=np.zeros(10, bool),
        wall_time_s=0.5,
        sample_time_s=10.0,
    )


@pytest.fixture
def results() -> list[ScenarioResult]:
    ok = CriterionOutcome("iae.c", Comparator.LE, 100.0, 45.0, True)
    bad = CriterionOutcome("settling_time_s.c", Comparator.LE, 30.0, math.inf, False)
    worse = CriterionOutcome("service_factor", Comparator.GE, 0.9, 0.8, False)
    pred = Prediction(0.0, np.arange(0.0, 50.0, 10.0), np.linspace(1, 2, 5).reshape(-1, 1))
    return [
        ScenarioResult(
            "good",
            "s/good.toml",
            ("fast",),
            ScenarioStatus.PASSED,
            {"iae.c": 45.0, "solve_ms_p95": 1.0, "x": math.nan},
            (ok,),
            wall_time_s=1.5,
            trace=_trace(),
            predictions=(pred,),
            events=("t=20s event: t=20s setpoint c -> 2",),
        ),
        ScenarioResult(
            "bad",
            "s/bad.toml",
            (),
            ScenarioStatus.FAILED,
            {"settling_time_s.c": math.inf, "service_factor": 0.8},
            (bad, worse),
            message="settling_time_s.c = inf <= 30: FAILED",
            trace=_trace(),
        ),
        ScenarioResult(
            "broken",
            "s/broken.toml",
            (),
            ScenarioStatus.ERROR,
            message="s/broken.toml: mpc.horizon_steps: expected >= 1, got 0",
        ),
    ]


def test_json_is_strict_and_complete(results, tmp_path) -> None:
    path = write_json(results[0], tmp_path)
    data = json.loads(path.read_text())  # would fail on NaN/Infinity tokens
    assert data["status"] == "passed" and data["kpis"]["iae.c"] == 45.0
    assert data["kpis"]["x"] is None
    assert data["criteria"][0] == {
        "kpi": "iae.c",
        "op": "<=",
        "threshold": 100.0,
        "value": 45.0,
        "passed": True,
        "margin": 55.0,
    }
    assert data["trace"]["cv"]["c"]["lower"] == "-inf"
    assert data["trace"]["cv"]["c"]["true"][-1] == pytest.approx(2.0)
    assert len(data["trace"]["t_s"]) == 10
    bad = to_jsonable(results[1], include_trace=False)
    assert bad["kpis"]["settling_time_s.c"] == "inf" and "trace" not in bad


def test_junit_counts_and_messages(results) -> None:
    root = ET.fromstring(junit_xml(results, suite="nightly"))
    assert root.tag == "testsuite" and root.get("name") == "nightly"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in root.findall("testcase")}
    assert cases["good"].find("failure") is None and cases["good"].find("error") is None
    failure = cases["bad"].find("failure")
    assert "2 criterion(s) failed" in failure.get("message")
    assert "service_factor = 0.8 >= 0.9: FAILED by 0.1" in failure.text
    assert "mpc.horizon_steps" in cases["broken"].find("error").get("message")
    props = {p.get("name"): p.get("value") for p in cases["good"].iter("property")}
    assert props["iae.c"] == "45"


def test_html_is_self_contained_with_plots_and_summary(results) -> None:
    page = html_report(results, title="nightly")
    assert page.startswith("<!DOCTYPE html>") and "1 of 3 scenarios passed" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    imgs = [chunk.split("'", 1)[0] for chunk in page.split("data:image/png;base64,")[1:]]
    assert len(imgs) == 2, "a plot per scenario with a trace"
    assert base64.b64decode(imgs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "class='failed'>failed" in page and "class='error'>error" in page
    assert "mpc.horizon_steps: expected &gt;= 1" in page
    assert page.count("<tr>") >= 4


def test_criterion_outcome_margins() -> None:
    assert CriterionOutcome("a", Comparator.GE, 0.9, 0.8, False).margin == pytest.approx(-0.1)
    assert CriterionOutcome("a", Comparator.LT, 10.0, 4.0, True).margin == pytest.approx(6.0)
    text = CriterionOutcome("iae.c", Comparator.LE, 100.0, 130.0, False).describe()
    assert text == "iae.c = 130 <= 100: FAILED by 30 (30.0% of the threshold)"
    assert not Comparator.LE.holds(math.nan, 1.0)
