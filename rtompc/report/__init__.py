"""``rtompc report``: a self-contained HTML report of one historian run, for after the run.

- :mod:`.timeline`: live limits over the run (initial values + accepted journal changes);
- :mod:`.accumulate`: streaming KPIs and min/max downsampling;
- :mod:`.collect`: the one pass over the run's cycles (bounded memory) -> :class:`ReportData`;
- :mod:`.render`: the HTML page (uPlot and ``trends.js`` inlined, data as JSON), atomic write.

Typical use::

    info = make_report("unit.sqlite", run_id=None, out=Path("run.html"))   # the latest run
"""

from __future__ import annotations

from pathlib import Path

from rtompc.historian.reader import HistorianReader
from rtompc.historian.store import RunInfo
from rtompc.report.collect import MAX_POINTS, ReportData, collect_run
from rtompc.report.render import payload, render, write_report


def make_report(
    historian: str | Path,
    out: str | Path | None = None,
    *,
    run_id: int | None = None,
    max_points: int = MAX_POINTS,
) -> tuple[RunInfo, Path]:
    """Write the report of one run (default: the latest) and return (run, output path);
    default output: ``<historian stem>-run<ID>.html`` next to the historian."""
    historian = Path(historian)
    with HistorianReader(historian) as reader:
        info = reader.run(run_id)
        data = collect_run(reader, info, max_points=max_points)
    target = (
        Path(out)
        if out is not None
        else historian.with_name(f"{historian.stem}-run{info.run_id}.html")
    )
    write_report(render(data, str(historian)), target)
    return info, target


__all__ = [
    "MAX_POINTS",
    "ReportData",
    "collect_run",
    "make_report",
    "payload",
    "render",
    "write_report",
]
