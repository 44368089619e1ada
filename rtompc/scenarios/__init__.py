"""Closed-loop scenarios: scenario files, KPIs, runner, reports and campaigns (issue 7).

Public names: :func:`load_scenario` (TOML -> :class:`ScenarioSpec`, through :mod:`rtompc.config`),
:func:`run_scenario` / :func:`run_scenario_file` (-> :class:`ScenarioResult`),
:func:`compute_kpis` over a :class:`Trace` (:func:`trace_from_records` builds one
from the runtime's cycle records), :func:`run_campaign` (-> :class:`CampaignResult`)
and the report writers :func:`write_json`, :func:`write_junit`, :func:`write_html`.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "CampaignResult": "campaign",
    "run_campaign": "campaign",
    "Trace": "kpis",
    "compute_kpis": "kpis",
    "load_scenario": "runner",
    "trace_from_records": "records",
    "write_html": "reports",
    "write_json": "reports",
    "write_junit": "reports",
    "CriterionOutcome": "result",
    "ScenarioResult": "result",
    "ScenarioStatus": "result",
    "run_scenario": "runner",
    "run_scenario_file": "runner",
    "ScenarioSpec": "spec",
}


def __getattr__(name: str) -> Any:
    """Public names load on first use (the config package imports ``spec`` from here)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'rtompc.scenarios' has no attribute {name!r}")
    return getattr(import_module(f"rtompc.scenarios.{_WHERE[name]}"), name)


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
