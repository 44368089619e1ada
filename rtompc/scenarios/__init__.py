"""Closed-loop scenarios: scenario files, KPIs, runner, reports and campaigns (issue 7).

Public names: :func:`load_scenario` (TOML -> :class:`ScenarioSpec`),
:func:`run_scenario` / :func:`run_scenario_file` (-> :class:`ScenarioResult`),
:func:`compute_kpis` over a :class:`Trace` (:func:`trace_from_records` builds one
from the runtime's cycle records), :func:`run_campaign` (-> :class:`CampaignResult`)
and the report writers :func:`write_json`, :func:`write_junit`, :func:`write_html`.
"""

from rtompc.scenarios.campaign import CampaignResult, run_campaign
from rtompc.scenarios.kpis import Trace, compute_kpis
from rtompc.scenarios.loader import load_scenario
from rtompc.scenarios.records import trace_from_records
from rtompc.scenarios.reports import write_html, write_json, write_junit
from rtompc.scenarios.result import CriterionOutcome, ScenarioResult, ScenarioStatus
from rtompc.scenarios.runner import run_scenario, run_scenario_file
from rtompc.scenarios.spec import ScenarioSpec

__all__ = [
    "CampaignResult",
    "CriterionOutcome",
    "ScenarioResult",
    "ScenarioSpec",
    "ScenarioStatus",
    "Trace",
    "compute_kpis",
    "load_scenario",
    "run_campaign",
    "run_scenario",
    "run_scenario_file",
    "trace_from_records",
    "write_html",
    "write_json",
    "write_junit",
]
