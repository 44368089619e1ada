"""One pass over a run's cycles: the trend series (downsampled), KPIs, journal, flags, events.

:func:`collect_run` reads a run with :class:`~rtompc.historian.reader.HistorianReader` in
chunks (one pass, bounded memory whatever the run's length): the per-cycle numbers come
as SQL expressions over the ``cycles`` columns, the live limits from
:mod:`rtompc.report.timeline`; the KPIs accumulate in :mod:`rtompc.report.accumulate`; the
trends keep at most ``max_points`` points per series (min/max per bucket of cycles).
Counts by status, flags and events come from aggregate queries. The result is plain data
(:class:`ReportData`), rendered by :mod:`rtompc.report.render`.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtompc.historian.journal import JournalRow
from rtompc.historian.reader import HistorianReader, quote
from rtompc.historian.store import RunInfo
from rtompc.report.accumulate import Integral, LimitKpi, LogHistogram, MoveKpi, minmax
from rtompc.report.timeline import timelines

MAX_POINTS = 4000
"""Default bound on the points of one trend (two per bucket of cycles)."""
CHUNK_ROWS = 5_000
"""Rows per fetch (about; a multiple of the bucket size)."""
MAX_EVENTS = 500
"""Cycle events listed in the report (the total is counted)."""

_BASE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("t", "time_s", ("time_s",)),
    ("wall", "wall_time_s", ("wall_time_s",)),
    ("mode", "CASE mode WHEN 'off' THEN 0 WHEN 'shadow' THEN 1 WHEN 'on' THEN 2 END", ("mode",)),
    ("connected", "COALESCE(json_extract(extra, '$.connected'), 1)", ("extra",)),
    ("fallback", "COALESCE(json_extract(extra, '$.fallback'), 0)", ("extra",)),
    ("solve_ms", "1000.0 * solve_time_s", ("solve_time_s",)),
    ("cycle_ms", "1000.0 * cycle_time_s", ("cycle_time_s",)),
    ("overrun", "overrun", ("overrun",)),
    ("solver_ok", "solver_status IN ('success', 'acceptable')", ("solver_status",)),
    (
        "in_service",
        "mode = 'on' AND COALESCE(json_extract(extra, '$.connected'), 1) "
        "AND write_status IN ('verified', 'mismatch')",
        ("mode", "extra", "write_status"),
    ),
    ("write_failed", "write_status IN ('rejected', 'nothing_to_write')", ("write_status",)),
    ("flagged", "flags IS NOT NULL", ("flags",)),
)
"""Per-cycle numbers of every run (name, SQL, columns it needs: NULL in files without them);
the write-status sets are those of the scenario KPIs (:mod:`rtompc.scenarios.records`)."""
_MV_COLUMNS = ("target_u", "move", "requested", "written", "readback", "measured")


@dataclass(frozen=True)
class Chart:
    """One trend chart: a title and the ids of its series."""

    title: str
    group: str
    """``cv``, ``mv``, ``status``, ``solver`` or ``rto``."""
    series: tuple[tuple[str, str], ...]
    """(series id, label) in drawing order."""


@dataclass
class ReportData:
    """Everything the report shows, as plain data."""

    run: RunInfo
    x: list[float] = field(default_factory=list)
    """Trend x values: engine time since the run's first cycle, s."""
    series: dict[str, list[float]] = field(default_factory=dict)
    """Trend values by series id (NaN: no value)."""
    charts: list[Chart] = field(default_factory=list)
    bucket_rows: int = 1
    """Cycles per bucket of the downsampled trends (1: every cycle drawn)."""
    kpis: dict[str, float] = field(default_factory=dict)
    cv_kpis: dict[str, dict[str, float]] = field(default_factory=dict)
    mv_kpis: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """Cycles by mode, solver status, write status, RTO status."""
    flags: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    events_total: int = 0
    journal: list[dict[str, Any]] = field(default_factory=list)
    cvs: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


def _prices(run: RunInfo) -> dict[str, float]:
    try:
        data = tomllib.loads(run.config_text) if run.config_text else {}
    except tomllib.TOMLDecodeError:
        return {}
    units = data.get("unit")
    if isinstance(units, list):  # a multi-unit file: this run's [[unit]] table
        mine = [u for u in units if isinstance(u, dict) and u.get("name") == run.meta.get("unit")]
        data = mine[0] if mine else {}
    prices = data.get("economics", {}).get("prices", {})
    return {str(k): float(v) for k, v in prices.items() if isinstance(v, int | float)}


def _profit_expr(run: RunInfo, columns: frozenset[str]) -> tuple[str | None, str]:
    prices = _prices(run)
    if not prices:
        return None, "profit: the run's configuration has no [economics] prices"
    lay, terms = run.layout, []
    for name, price in sorted(prices.items()):
        if name in lay.measured and f"meas__{name}" in columns:
            terms.append(f"{price!r} * {quote('meas__' + name)}")
        elif name in lay.mvs:
            cols = [quote(f"{c}__{name}") for c in ("written", "readback", "requested")]
            terms.append(f"{price!r} * COALESCE({', '.join(cols)})")
        else:
            return None, f"profit: priced signal {name} is not recorded"
    return " + ".join(terms), ""


def _units(plant: str) -> dict[str, str]:
    """SI units of a registry plant's signals (empty for other plants: identified models,
    ``module.py:function`` plants): the historian stores values, not units."""
    from plant_models.library import load, names

    if plant not in names():
        return {}
    try:
        model = load(plant)
    except Exception:  # noqa: BLE001 - units are a label, never a reason to fail a report
        return {}
    return {s.name: s.unit for group in (model.y, model.u) for s in group}


def _title(kind: str, name: str, units: dict[str, str]) -> str:
    unit = units.get(name, "")
    return f"{kind} {name} [{unit}]" if unit else f"{kind} {name}"


class _Plan:
    """Which expressions are read and which series are drawn."""

    def __init__(self, reader: HistorianReader, run: RunInfo, journal: list[JournalRow]) -> None:
        lay, cols = run.layout, reader.columns
        self.exprs: list[tuple[str, str]] = [
            (name, sql if all(c in cols for c in need) else "NULL") for name, sql, need in _BASE
        ]
        self.charts: list[Chart] = []
        self.notes: list[str] = []
        initial = dict(run.meta.get("live_initial", {}))
        keys = [f"cv.{y}.{f}" for y in lay.outputs for f in ("low", "high")]
        keys += [f"mv.{m}.{f}" for m in lay.mvs for f in ("low", "high", "in_service")]
        self.timelines = timelines(initial, journal, keys)
        if not initial:
            self.notes.append(
                "limits: this run has no recorded initial live values; limits are drawn only "
                "from journaled changes"
            )
        units = _units(lay.plant)
        self.cvs = tuple(y for y in lay.outputs if f"meas__{y}" in cols)
        for y in self.cvs:
            self.exprs += [
                (f"cv.{y}.meas", quote(f"meas__{y}")),
                (f"cv.{y}.good", f"{quote('qual__' + y)} = 'good'"),
                (f"cv.{y}.target", quote(f"target_y__{y}")),
            ]
            series = [(f"cv.{y}.meas", "measured"), (f"cv.{y}.target", "target")]
            series += [
                (f"cv.{y}.{f}", f) for f in ("low", "high") if f"cv.{y}.{f}" in self.timelines
            ]
            is_cv = not initial or any(k.startswith(f"cv.{y}.") for k in initial)
            kind = "CV" if is_cv else "output"
            self.charts.append(Chart(_title(kind, y, units), "cv", tuple(series)))
        for m in lay.mvs:
            series = []
            for c in _MV_COLUMNS:
                if f"{c}__{m}" in cols:
                    self.exprs.append((f"mv.{m}.{c}", quote(f"{c}__{m}")))
                    series.append((f"mv.{m}.{c}", "computed" if c == "move" else c))
            series += [
                (f"mv.{m}.{f}", f) for f in ("low", "high") if f"mv.{m}.{f}" in self.timelines
            ]
            self.charts.append(Chart(_title("MV", m, units), "mv", tuple(series)))
        status = ("mode", "in_service", "connected", "solver_ok", "fallback", "overrun")
        self.charts.append(
            Chart(
                "Controller status (mode 0 off, 1 shadow, 2 on; others 0/1)",
                "status",
                (*((s, s) for s in status), ("write_failed", "write failed"), ("flagged", "flags")),
            )
        )
        self.charts.append(
            Chart(
                "Solve and cycle time, ms", "solver", (("solve_ms", "solve"), ("cycle_ms", "cycle"))
            )
        )
        profit, why = _profit_expr(run, cols)
        rto = [(f"cv.{y}.target", f"target {y}") for y in self.cvs]
        rto += [(f"mv.{m}.target_u", f"target {m}") for m in lay.mvs if f"target_u__{m}" in cols]
        if profit is not None:
            self.exprs.append(("profit_rate", profit))
            rto.insert(0, ("profit_rate", "profit rate $/s"))
        else:
            self.notes.append(why)
        self.charts.append(Chart("RTO targets and profit", "rto", tuple(rto)))
        self.index = {name: i for i, (name, _) in enumerate(self.exprs)}
        for key in self.timelines:
            self.index[key] = len(self.index)
        drawn = {sid for c in self.charts for sid, _ in c.series}
        self.drawn = [s for s in self.index if s in drawn]


def _bucket_rows(n: int, max_points: int) -> int:
    buckets = max(1, max_points // 2)
    return 1 if n <= max_points else math.ceil(n / buckets)


def collect_run(
    reader: HistorianReader, run: RunInfo, *, max_points: int = MAX_POINTS
) -> ReportData:
    """Read ``run`` once and build the report's data (see the module docstring)."""
    journal = reader.journal(run.run_id)
    plan = _Plan(reader, run, journal)
    data = ReportData(run, charts=plan.charts, cvs=plan.cvs, notes=plan.notes)
    m = _bucket_rows(run.cycles, max_points)
    data.bucket_rows = m
    chunk = m * max(1, CHUNK_ROWS // m)
    ix, tl = plan.index, plan.timelines
    iae = {y: Integral() for y in plan.cvs}
    lim = {y: LimitKpi() for y in plan.cvs}
    moves = {mv: MoveKpi() for mv in run.layout.mvs}
    oos = dict.fromkeys(run.layout.mvs, 0)
    profit = Integral()
    solve = LogHistogram()
    sums = dict.fromkeys(("fallback", "overrun", "in_service", "write_failed", "flagged"), 0.0)
    walls = np.array([j.wall_time_s for j in journal], dtype=float)
    journal_x: list[float] = [math.nan] * len(journal)
    pending = np.argsort(walls, kind="stable").tolist()
    xs, vs = [], []
    n = 0
    t0 = math.nan
    t_last = math.nan
    for rows in reader.chunks(run.run_id, [e for _, e in plan.exprs], chunk):
        a = np.array(rows, dtype=float)
        wall = a[:, ix["wall"]]
        full = np.hstack([a, *(tl[k].at(wall)[:, None] for k in tl)]) if tl else a
        t = full[:, ix["t"]]
        if math.isnan(t0):
            t0 = float(t[0])
        n += len(rows)
        t_last = float(t[-1])
        for k in sums:
            sums[k] += float(np.nansum(full[:, ix[k]]))
        solve.add(full[:, ix["solve_ms"]] / 1000.0)
        for y in plan.cvs:
            yv = full[:, ix[f"cv.{y}.meas"]]
            good = (full[:, ix[f"cv.{y}.good"]] == 1) & np.isfinite(yv) & np.isfinite(t)
            r = full[:, ix[f"cv.{y}.target"]]
            ok = good & np.isfinite(r)
            iae[y].add(t[ok], np.abs(yv - r)[ok])
            nan = np.full(t.size, np.nan)
            lo = full[:, ix[f"cv.{y}.low"]] if f"cv.{y}.low" in ix else nan
            hi = full[:, ix[f"cv.{y}.high"]] if f"cv.{y}.high" in ix else nan
            lim[y].add(t[good], yv[good], lo[good], hi[good])
        for mv in run.layout.mvs:
            w = (
                full[:, ix[f"mv.{mv}.written"]]
                if f"mv.{mv}.written" in ix
                else np.full(t.size, np.nan)
            )
            req = full[:, ix[f"mv.{mv}.requested"]] if f"mv.{mv}.requested" in ix else w
            moves[mv].add(w, req)
            if f"mv.{mv}.in_service" in ix:
                oos[mv] += int(np.sum(full[:, ix[f"mv.{mv}.in_service"]] == 0))
        if "profit_rate" in ix:
            p = full[:, ix["profit_rate"]]
            ok = np.isfinite(p) & np.isfinite(t)
            profit.add(t[ok], p[ok])
        while pending and walls[pending[0]] <= wall[-1]:
            j = pending.pop(0)
            pos = int(np.searchsorted(wall, walls[j], side="left"))
            journal_x[j] = float(t[min(pos, t.size - 1)]) - t0
        drawn = full[:, [ix[s] for s in plan.drawn]]
        drawn[~np.isfinite(drawn)] = np.nan  # an infinite limit is no limit: not drawn
        x_chunk, v_chunk = minmax(t - t0, drawn, m)
        xs.append(x_chunk)
        vs.append(v_chunk)
        del rows, a, full
    if xs:
        data.x = np.concatenate(xs).tolist()
        allv = np.vstack(vs)
        kept = [i for i, _ in enumerate(plan.drawn) if np.any(np.isfinite(allv[:, i]))]
        data.series = {plan.drawn[i]: allv[:, i].tolist() for i in kept}
    data.charts = [  # a series never recorded in this run is not drawn
        Chart(c.title, c.group, tuple(s for s in c.series if s[0] in data.series))
        for c in plan.charts
        if any(s[0] in data.series for s in c.series)
    ]
    _kpis(data, n, t0, t_last, sums, solve, iae, lim, moves, oos, profit)
    _aggregates(reader, run, data)
    data.journal = [
        {
            "wall_time_s": j.wall_time_s,
            "x": journal_x[i],
            "user": j.user,
            "role": j.role,
            "source": j.source,
            "key": j.key,
            "old": j.old,
            "new": j.new,
            "outcome": j.outcome,
        }
        for i, j in enumerate(journal)
    ]
    if m > 1:
        data.notes.append(
            f"trends downsampled: {n} cycles in buckets of {m}; each bucket keeps the minimum "
            "and maximum of every series (at the bucket's first and last time); KPIs use every cycle"
        )
    data.notes.append("predictions: not recorded by the historian (drawn live by the web console)")
    return data


def _kpis(
    data: ReportData,
    n: int,
    t0: float,
    t_last: float,
    sums: dict[str, float],
    solve: LogHistogram,
    iae: dict[str, Integral],
    lim: dict[str, LimitKpi],
    moves: dict[str, MoveKpi],
    oos: dict[str, int],
    profit: Integral,
) -> None:
    data.kpis = {
        "cycles": float(n),
        "duration_s": (t_last - t0) if n else 0.0,
        "service_factor": sums["in_service"] / n if n else 0.0,
        "fallbacks": sums["fallback"],
        "overruns": sums["overrun"],
        "write_failures": sums["write_failed"],
        "flagged_cycles": sums["flagged"],
        "solve_ms_median": solve.percentile(50) * 1e3,
        "solve_ms_p95": solve.percentile(95) * 1e3,
        "solve_ms_max": solve.max * 1e3 if solve.n else math.nan,
    }
    if profit.samples:
        data.kpis["profit"] = profit.total
    for y in data.cvs:
        k = lim[y]
        row = {"iae": iae[y].total if iae[y].samples else math.nan}
        if k.has_limit:
            row |= {
                "violations": float(k.violations),
                "time_outside_s": k.time_outside_s,
                "violation": k.integral.total,
                "max_violation": k.max_violation,
            }
        data.cv_kpis[y] = row
    for mv, mk in moves.items():
        data.mv_kpis[mv] = {
            "writes": float(mk.writes),
            "moves": float(mk.moves),
            "travel": mk.travel,
            "out_of_service_cycles": float(oos[mv]),
        }


def _aggregates(reader: HistorianReader, run: RunInfo, data: ReportData) -> None:
    rid, cols = run.run_id, reader.columns
    for name, expr in (
        ("mode", "mode"),
        ("solver_status", "solver_status"),
        ("write_status", "write_status"),
        ("rto_status", "json_extract(extra, '$.rto_status')"),
    ):
        if (name if name != "rto_status" else "extra") not in cols:
            continue
        rows = reader.query(
            rid,
            f"{expr} AS v, COUNT(*)",
            tail="AND v IS NOT NULL AND v != '' GROUP BY v ORDER BY COUNT(*) DESC LIMIT 50",
        )
        data.counts[name] = {str(v): int(c) for v, c in rows}
    first_t = reader.query(rid, "MIN(time_s)")[0][0] or 0.0
    data.flags = (
        [
            {"flag": f, "cycles": int(c), "first_s": a - first_t, "last_s": b - first_t}
            for f, c, a, b in reader.query(
                rid,
                "j.value, COUNT(*), MIN(time_s), MAX(time_s)",
                extra_from="json_each(cycles.flags) AS j",
                tail="AND flags IS NOT NULL GROUP BY j.value ORDER BY MIN(time_s)",
            )
        ]
        if "flags" in cols
        else []
    )
    if "message" not in cols:
        return
    data.events_total = int(reader.query(rid, "COUNT(*)", tail="AND message IS NOT NULL")[0][0])
    data.events = [
        {"cycle": c, "t_s": (t or first_t) - first_t, "message": msg}
        for c, t, msg in reader.query(
            rid,
            "cycle, time_s, message",
            tail=f"AND message IS NOT NULL ORDER BY cycle LIMIT {MAX_EVENTS}",
        )
    ]
