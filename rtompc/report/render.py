"""The report as one self-contained HTML file, written atomically.

:func:`render` turns :class:`~rtompc.report.collect.ReportData` into a page with no
reference outside itself: uPlot (:func:`rtompc.webassets.read_asset`), the shared trend
module ``trends.js`` and the page script are inlined, the data is one JSON block
(``<script type="application/json" id="rtompc-report-data">``, NaN as ``null``). Tables
(metadata, KPIs, counts, flags, events, journal) are plain HTML, readable without
JavaScript. :func:`write_report` writes to a temporary file next to the target and
renames it, so a failed write never leaves a partial report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

from plant_models.errors import ConfigError
from rtompc.report.collect import ReportData
from rtompc.webassets import read_asset

_ROLES = {
    "meas": "meas",
    "target": "target",
    "target_u": "target",
    "low": "low",
    "high": "high",
    "move": "computed",
    "requested": "requested",
    "written": "written",
    "readback": "readback",
    "measured": "measured",
}
_FLAGS = {"in_service", "connected", "solver_ok", "fallback", "overrun", "write_failed", "flagged"}
_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:2px 8px;
text-align:left;font-size:13px}th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:
tabular-nums}.chart{margin:.4em 0}.notes li{color:#555}h2{border-bottom:1px solid #ddd;
margin-top:1.6em}pre{background:#f7f7f7;padding:.5em;overflow:auto;font-size:12px}
"""


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _role(series_id: str) -> str:
    if series_id in _FLAGS:
        return "flag"
    return _ROLES.get(series_id.rsplit(".", 1)[-1], "")


def _prefix(group: str, title: str) -> str:
    name = title.split(" ")[1] if " " in title else ""
    return {"cv": f"cv.{name}.", "mv": f"mv.{name}.", "status": "controller."}.get(group, "")


def payload(data: ReportData) -> dict[str, Any]:
    """The JSON embedded in the page (also what tests read back)."""
    r = data.run
    return _clean(
        {
            "run": {
                "run_id": r.run_id,
                "kind": r.kind,
                "mode": r.mode,
                "config_hash": r.config_hash,
                "plant": r.layout.plant,
                "unit": str(r.meta.get("unit", r.layout.plant)),
                "start_wall_time_s": r.start_wall_time_s,
                "stop_wall_time_s": r.stop_wall_time_s,
                "exit_reason": r.exit_reason,
                "exit_code": r.exit_code,
                "cycles": r.cycles,
            },
            "x": data.x,
            "series": data.series,
            "bucket_rows": data.bucket_rows,
            "charts": [
                {
                    "title": c.title,
                    "group": c.group,
                    "prefix": _prefix(c.group, c.title),
                    "series": [{"id": s, "label": lab, "role": _role(s)} for s, lab in c.series],
                }
                for c in data.charts
            ],
            "kpis": data.kpis,
            "cv_kpis": data.cv_kpis,
            "mv_kpis": data.mv_kpis,
            "counts": data.counts,
            "flags": data.flags,
            "events": data.events,
            "events_total": data.events_total,
            "journal": data.journal,
            "notes": data.notes,
        }
    )


def _when(t: float | None) -> str:
    if t is None or not math.isfinite(t):
        return "-"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if not math.isfinite(v) else f"{v:.6g}"
    return html.escape(json.dumps(v) if isinstance(v, list | dict) else str(v))


def _table(head: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_fmt(v)}</td>' if isinstance(v, int | float) else f"<td>{_fmt(v)}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{h}</tr>{body}</table>"


def _keyed(table: dict[str, dict[str, float]], what: str) -> str:
    cols = sorted({k for row in table.values() for k in row}, key=str)
    return _table(
        [what, *cols], [[n, *(row.get(c, math.nan) for c in cols)] for n, row in table.items()]
    )


def render(data: ReportData, source: str = "") -> str:
    """The report page (see the module docstring)."""
    r = data.run
    p = payload(data)
    blob = json.dumps(p, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    meta: list[list[Any]] = [
        ["historian", source],
        ["run", r.run_id],
        ["kind", r.kind],
        ["mode at start", r.mode or "-"],
        ["unit / plant", p["run"]["unit"]],
        ["config hash", r.config_hash or "-"],
        ["config", str(r.meta.get("config", "-"))],
        ["start", _when(r.start_wall_time_s)],
        ["end", _when(r.stop_wall_time_s) if r.stop_wall_time_s else "- (running, or it died)"],
        ["exit", f"{r.exit_code if r.exit_code is not None else '-'} {r.exit_reason}"],
        ["cycles", r.cycles],
    ]
    journal = [
        [
            _when(j["wall_time_s"]),
            j["user"],
            j["role"],
            j["source"],
            j["key"],
            j["old"],
            j["new"],
            j["outcome"],
        ]
        for j in data.journal
    ]
    events_note = (
        f"<p>first {len(data.events)} of {data.events_total} cycles with events</p>"
        if data.events_total > len(data.events)
        else ""
    )
    counts = "".join(
        f"<h3>cycles by {html.escape(k)}</h3>"
        + _table([k, "cycles"], [[v, c] for v, c in d.items()])
        for k, d in data.counts.items()
    )
    page_js = resources.files("rtompc.report").joinpath("page.js").read_text(encoding="utf-8")
    config = (
        f"<details><summary>configuration text</summary><pre>{html.escape(r.config_text)}</pre></details>"
        if r.config_text
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>rtompc report: run {r.run_id} ({html.escape(r.kind)})</title>
<style>{read_asset("uPlot.min.css")}</style><style>{_CSS}</style>
</head><body>
<h1>rtompc report: run {r.run_id} ({html.escape(r.kind)})</h1>
{_table(["", ""], meta)}
<ul class="notes">{"".join(f"<li>{html.escape(n)}</li>" for n in data.notes)}</ul>
<h2>KPIs</h2>
{_table(["KPI", "value"], [[k, v] for k, v in data.kpis.items()])}
<h3>CVs (IAE over cycles with a Good measurement and a target; limits as in force)</h3>
{_keyed(data.cv_kpis, "CV")}
<h3>MVs</h3>
{_keyed(data.mv_kpis, "MV")}
<h2>CVs</h2><div id="charts-cv"></div>
<h2>MVs</h2><div id="charts-mv"></div>
<h2>Controller and solver</h2><div id="charts-status"></div><div id="charts-solver"></div>
{counts}
<h2>RTO</h2><div id="charts-rto"></div>
<h2>Supervision flags</h2>
{_table(["flag", "cycles", "first (s)", "last (s)"], [[f["flag"], f["cycles"], f["first_s"], f["last_s"]] for f in data.flags])}
<h2>Events</h2>{events_note}
{_table(["cycle", "t (s)", "event"], [[e["cycle"], e["t_s"], e["message"]] for e in data.events])}
<h2>Change journal</h2>
{_table(["when", "who", "role", "source", "what", "old", "new", "outcome"], journal)}
{config}
<script type="application/json" id="rtompc-report-data">{blob}</script>
<script>{read_asset("uPlot.iife.min.js")}</script>
<script>{read_asset("trends.js")}</script>
<script>{page_js}</script>
</body></html>
"""


def write_report(text: str, out: Path) -> None:
    """Write ``text`` to ``out`` through a temporary file and a rename (ConfigError naming
    ``out`` on failure; nothing left behind)."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ConfigError(f"report {out}: cannot write ({exc.strerror or exc})") from None
