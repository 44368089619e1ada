"""One self-contained HTML page for an identification run (``report.html``).

Built from the summary :func:`plant_models.identification.workflow.identify_to_directory`
writes to ``report.json``: data source and what was skipped, fit on held-back
data, residual tests, steady-state gains with their confidence intervals, RGA
and condition number, poles and zeros, model edits, and the PNG plots embedded
(base64), so the page can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_CSS = (
    "body{font-family:sans-serif;max-width:60em;margin:1em auto;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:2px 8px;"
    "text-align:right}th{background:#eee}td.l,th.l{text-align:left}.bad{color:#b00}"
    "img{max-width:100%}"
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(v: Any, fmt: str = ".4g") -> str:
    return format(v, fmt) if isinstance(v, int | float) else _e(v)


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = "<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"
    for r in rows:
        out += "<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>"
    return out + "</table>"


def _img(path: str | None, alt: str) -> str:
    if not path or not Path(path).is_file():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{data}"></p>'


def render(summary: Mapping[str, Any]) -> str:
    """The HTML page for one summary."""
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>identification: "
        f"{_e(summary.get('method', ''))}</title><style>{_CSS}</style></head><body>",
        f"<h1>Identified model: {_e(summary.get('method', ''))}</h1>",
        f"<p>Source: {_e(summary.get('source', ''))}; {summary.get('samples')} samples at "
        f"{_num(summary.get('sample_time_s'))} s ({summary.get('estimation_samples')} for "
        f"estimation, the rest held back); order {summary.get('order')}; dead times "
        f"(samples) {_e(summary.get('delays_samples'))}.</p>",
    ]
    skipped = {
        k: v
        for k, v in summary.items()
        if k.startswith("rows_") or k in ("historian_runs", "records", "dropped_rows")
    }
    if skipped:
        parts.append(
            "<h2>Data</h2>"
            + _table(
                ["item", "value"],
                [[f"<span class='l'>{_e(k)}</span>", _e(v)] for k, v in skipped.items()],
            )
        )
    res = summary.get("residuals", {})
    rows = []
    for y, fit in summary.get("fit_percent_held_back", {}).items():
        r = res.get(y, {})
        cls = "" if r.get("white") and r.get("independent_of_inputs") else " class='bad'"
        rows.append(
            [
                _e(y),
                _num(fit, ".1f"),
                f"<span{cls}>{_e(r.get('white'))}</span>",
                _num(r.get("ljung_box_p", float("nan")), ".3g"),
                f"<span{cls}>{_e(r.get('independent_of_inputs'))}</span>",
            ]
        )
    parts.append(
        "<h2>Fit on held-back data and residual tests</h2>"
        + _table(["CV", "fit %", "residuals white", "Ljung-Box p", "independent of inputs"], rows)
    )
    parts.append(_img(summary.get("files", {}).get("fit_plot"), "fit"))
    parts.append(_img(summary.get("files", {}).get("residual_plot"), "residuals"))
    bands = summary.get("step_bands")
    gain = summary.get("gain", {})
    grows = []
    for y, row in gain.items():
        for u, k in row.items():
            ci = ""
            if bands:
                ci = f"[{_num(bands['gain_lower'][y][u])}, {_num(bands['gain_upper'][y][u])}]"
            grows.append([_e(y), _e(u), _num(k), ci])
    level = f" ({100 * bands['level']:.0f} % interval, {_e(bands['method'])})" if bands else ""
    parts.append(
        f"<h2>Steady-state gains{level}</h2>" + _table(["CV", "MV", "gain", "interval"], grows)
    )
    parts.append(
        f"<p>Condition number of the gain matrix: {_num(summary.get('condition_number'))}</p>"
    )
    rga = summary.get("rga")
    if rga is not None:
        mvs = list(next(iter(gain.values())).keys()) if gain else []
        parts.append(
            "<h3>Relative gain array</h3>"
            + _table(
                ["", *mvs],
                [
                    [_e(y), *(_num(v, ".3f") for v in r)]
                    for y, r in zip(gain.keys(), rga, strict=False)
                ],
            )
        )
    parts.append(_img(summary.get("files", {}).get("step_plot"), "step responses"))
    zc = summary.get("zeros_continuous_1_per_s")
    if zc:
        parts.append(
            "<p>Transmission zeros (continuous, 1/s): "
            + ", ".join(_num(z[0]) + (f"{z[1]:+.3g}j" if abs(z[1]) > 1e-12 else "") for z in zc)
            + "</p>"
        )
    if summary.get("edits"):
        parts.append(
            "<h2>Model edits applied</h2><pre>"
            + _e(json.dumps(summary["edits"], indent=1))
            + "</pre>"
        )
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def write_report(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Write the page (via a temporary file: never half-written); returns the path."""
    out = Path(path)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(render(summary), encoding="utf-8")
    tmp.replace(out)
    return out
