"""Report writers for scenario results: JSON per scenario, JUnit XML for CI, one HTML page.

- :func:`write_json`: one file per scenario (KPIs, criteria with margins, events,
  trace), NaN as ``null`` and infinities as ``"inf"``.
- :func:`junit_xml` / :func:`write_junit`: a ``<testsuite>`` with one
  ``<testcase>`` per scenario; a failed criterion is a ``<failure>``, a run that
  could not complete an ``<error>``.
- :func:`html_report` / :func:`write_html`: a self-contained page (no external
  files): the campaign summary table, then per scenario its criteria, KPIs and
  trend plot embedded as a base64 PNG.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from rtompc.scenarios.plots import trend_png
from rtompc.scenarios.result import ScenarioResult, ScenarioStatus, to_jsonable


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "scenario"


def write_json(result: ScenarioResult, directory: str | Path) -> Path:
    """Write ``<directory>/<name>.json``; returns the path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{_safe(result.name)}.json"
    path.write_text(json.dumps(to_jsonable(result), indent=1, allow_nan=False), encoding="utf-8")
    return path


def junit_xml(results: Sequence[ScenarioResult], suite: str = "rtompc-scenarios") -> str:
    """JUnit XML text of the results."""
    failures = sum(r.status is ScenarioStatus.FAILED for r in results)
    errors = sum(r.status is ScenarioStatus.ERROR for r in results)
    total_time = sum(r.wall_time_s for r in results)
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{total_time:.3f}",
    )
    for r in results:
        case = ET.SubElement(
            root,
            "testcase",
            classname=f"scenarios.{_safe(Path(r.path).stem)}",
            name=r.name,
            file=r.path,
            time=f"{r.wall_time_s:.3f}",
        )
        if r.status is ScenarioStatus.FAILED:
            failed = r.failed_criteria
            node = ET.SubElement(
                case,
                "failure",
                type="CriterionFailed",
                message=f"{len(failed)} criterion(s) failed: {r.message}",
            )
            node.text = "\n".join(c.describe() for c in r.criteria)
        elif r.status is ScenarioStatus.ERROR:
            first = r.message.splitlines()[0] if r.message else "error"
            node = ET.SubElement(case, "error", type="ScenarioError", message=first)
            node.text = r.message
        if r.kpis:
            props = ET.SubElement(case, "properties")
            for k, v in sorted(r.kpis.items()):
                ET.SubElement(props, "property", name=k, value=f"{v:.6g}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


def write_junit(
    results: Sequence[ScenarioResult], path: str | Path, suite: str = "rtompc-scenarios"
) -> Path:
    """Write the JUnit XML file; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(junit_xml(results, suite), encoding="utf-8")
    return p


def _fmt(v: float) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "–"
    return f"{v:.4g}"


_CSS = """
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}
th{background:#f2f2f2}
.passed{color:#176f2c;font-weight:bold}.failed{color:#b3261e;font-weight:bold}
.error{color:#8a4b00;font-weight:bold}
pre{background:#f7f7f7;padding:6px;font-size:12px;white-space:pre-wrap}
section{border-top:2px solid #ddd;margin-top:1.5em}
"""


_SITE = {"realtime_factor": "site.realtime_factor", "service_factor": "site.min_service_factor"}
"""Summary columns of a plant-wide result (its KPIs are ``site.*`` and ``<unit>.*``)."""


def _kpi(kpis: dict[str, float], key: str) -> float:
    """A summary KPI; for a plant-wide result its site figure (or the worst unit's)."""
    if key in kpis:
        return kpis[key]
    if key in _SITE:
        return kpis.get(_SITE[key], math.nan)
    values = [v for k, v in kpis.items() if k.endswith(f".{key}") and k.count(".") == 1]
    return max(values) if values else math.nan


def html_report(
    results: Sequence[ScenarioResult],
    title: str = "rtompc scenario campaign",
    *,
    plots: bool = True,
) -> str:
    """Self-contained HTML page of the results."""
    e = html.escape
    n_pass = sum(r.passed for r in results)
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>",
        f"<p>{n_pass} of {len(results)} scenarios passed.</p>",
        "<table><tr><th>scenario</th><th>tags</th><th>status</th><th>wall s</th>"
        "<th>x real time</th><th>solve p95 ms</th><th>fallbacks</th><th>service</th>"
        "<th>reason</th></tr>",
    ]
    for r in results:
        k = r.kpis
        reason = r.message.splitlines()[0] if r.message else ""
        parts.append(
            f"<tr><td><a href='#{e(_safe(r.name))}'>{e(r.name)}</a></td>"
            f"<td>{e(', '.join(r.tags))}</td><td class='{r.status.value}'>{r.status.value}</td>"
            f"<td>{r.wall_time_s:.1f}</td><td>{_fmt(_kpi(k, 'realtime_factor'))}</td>"
            f"<td>{_fmt(_kpi(k, 'solve_ms_p95'))}</td>"
            f"<td>{_fmt(_kpi(k, 'fallbacks'))}</td>"
            f"<td>{_fmt(_kpi(k, 'service_factor'))}</td><td>{e(reason)}</td></tr>"
        )
    parts.append("</table>")
    for r in results:
        parts.append(
            f"<section id='{e(_safe(r.name))}'><h2>{e(r.name)} "
            f"<span class='{r.status.value}'>{r.status.value}</span></h2>"
        )
        if r.description:
            parts.append(f"<p>{e(r.description)}</p>")
        parts.append(f"<p>file: <code>{e(r.path)}</code></p>")
        if r.criteria:
            parts.append(
                "<table><tr><th>criterion</th><th>value</th><th>margin</th><th>result</th></tr>"
            )
            for c in r.criteria:
                cls = "passed" if c.passed else "failed"
                parts.append(
                    f"<tr><td>{e(c.kpi)} {e(c.op.value)} {c.threshold:.4g}</td>"
                    f"<td>{_fmt(c.value)}</td><td>{_fmt(c.margin)}</td>"
                    f"<td class='{cls}'>{'ok' if c.passed else 'FAILED'}</td></tr>"
                )
            parts.append("</table>")
        if r.status is ScenarioStatus.ERROR:
            parts.append(f"<pre>{e(r.message)}</pre>")
        for sub in (r, *r.units) if plots else ():  # a plant-wide run: every unit's trends
            png = trend_png(sub)
            if png is not None:
                b64 = base64.b64encode(png).decode("ascii")
                if sub is not r:
                    parts.append(f"<h3>unit {e(sub.name)}</h3>")
                parts.append(
                    f"<img alt='trends of {e(sub.name)}' src='data:image/png;base64,{b64}'>"
                )
        if r.kpis:
            parts.append("<details><summary>KPIs</summary><table>")
            parts.extend(
                f"<tr><td>{e(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in sorted(r.kpis.items())
            )
            parts.append("</table></details>")
        if r.events:
            parts.append(
                "<details><summary>events</summary><pre>"
                + e("\n".join(r.events))
                + "</pre></details>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(
    results: Sequence[ScenarioResult], path: str | Path, title: str = "rtompc scenario campaign"
) -> Path:
    """Write the HTML report; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(html_report(results, title), encoding="utf-8")
    return p
