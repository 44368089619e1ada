"""Key performance indicators of a closed-loop run, computed from a :class:`Trace`.

A :class:`Trace` is plain arrays sampled once per control cycle: the true CV
values, their setpoints and limits, the applied MVs, solver times and the loop's
state. :func:`compute_kpis` turns it into a flat ``{name: value}`` dict:

- per CV ``c`` with a setpoint: ``iae.c`` = integral |y - r| dt, ``ise.c`` =
  integral (y - r)^2 dt (trapezoid rule over the samples), ``settling_time_s.c``
  = time after the last setpoint change of ``c`` (or the start) until |y - r|
  stays inside the settling band to the end (``inf`` when it never does),
  ``final_error.c`` = |y - r| at the end; samples without a value (NaN, e.g. a
  Bad measurement) or without a setpoint drop out of the integrals;
- per CV with a finite limit: ``violation.c`` = integral of the distance outside
  the limits dt (magnitude x time, SI unit x s), ``max_violation.c``;
- per MV ``m``: ``mv_travel.m`` = sum |u_k - u_{k-1}|;
- ``solve_ms_median``, ``solve_ms_p95``, ``solve_ms_max`` over cycles that
  solved; ``fallbacks`` and ``fallback_fraction``; ``service_factor`` = share of
  the cycles with the loop ON, the link up and the move reaching the plant;
- with economics: ``profit`` = integral of the profit rate ($), ``profit_ideal``
  = integral of the steady-state optimum of the true plant ($), ``profit_loss``
  and ``profit_ratio``;
- ``cycles``, ``plant_time_s``, ``wall_time_s``, ``realtime_factor``;
- supervision (added by the runner, :mod:`rtompc.scenarios.supervision_kpis`):
  ``flagged_cycles``, ``false_flag_cycles``, ``detect_s.<signal>:<reason>``,
  ``hidden_violation.c``;
- with an RTO layer (added by the runner): ``rto_updates`` (targets accepted) and
  ``rto_waits`` (RTO calls held back by the steady-state gate).

:func:`kpi_domain` gives the range a KPI can take, which the loader uses to
reject criteria no run could meet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from rtompc.scenarios.supervision_kpis import SUPERVISION_GLOBAL

NONNEGATIVE = (0.0, math.inf)
UNIT_INTERVAL = (0.0, 1.0)

_PER_CV_TRACKING = ("iae", "ise", "settling_time_s", "final_error")
_PER_CV_LIMITS = ("violation", "max_violation")
_GLOBAL = (
    "solve_ms_median",
    "solve_ms_p95",
    "solve_ms_max",
    "fallbacks",
    "fallback_fraction",
    "service_factor",
    "cycles",
    "plant_time_s",
    "wall_time_s",
    "realtime_factor",
    "write_failures",
    "disconnected_cycles",
)
_ECONOMIC = ("profit", "profit_ideal", "profit_loss", "profit_ratio")


@dataclass(frozen=True)
class Trace:
    """What a run did, one row per control cycle (index k at plant time ``t[k]``)."""

    t: NDArray[np.float64]
    """Plant time of each cycle's read, seconds, shape (K,)."""
    cv_names: tuple[str, ...]
    """CVs (model outputs) recorded, ordered like the columns of ``y``."""
    y: NDArray[np.float64]
    """True CV values at ``t`` (plant truth, not the possibly faulty measurement), (K, ncv)."""
    y_measured: NDArray[np.float64]
    """CV values as read by the loop (NaN where not read), (K, ncv)."""
    setpoint: NDArray[np.float64]
    """Setpoint in force at each cycle (NaN: none), (K, ncv)."""
    cv_lower: NDArray[np.float64]
    """Lower limit per CV (``-inf``: none), (ncv,)."""
    cv_upper: NDArray[np.float64]
    """Upper limit per CV (``inf``: none), (ncv,)."""
    mv_names: tuple[str, ...]
    """MVs, ordered like the columns of ``u``."""
    u: NDArray[np.float64]
    """MV values the plant held after each cycle's write (applied over [t_k, t_k+1)), (K, nmv)."""
    u_lower: NDArray[np.float64]
    """MV lower bounds, (nmv,)."""
    u_upper: NDArray[np.float64]
    """MV upper bounds, (nmv,)."""
    solve_time_s: NDArray[np.float64]
    """Controller step time (NaN when nothing was solved), (K,)."""
    fallback: NDArray[np.bool_]
    """True when the move came from the fallback policy, (K,)."""
    in_service: NDArray[np.bool_]
    """True when the loop was ON, connected and its move reached the plant, (K,)."""
    connected: NDArray[np.bool_]
    """True when the link was up, (K,)."""
    write_failed: NDArray[np.bool_]
    """True when a write was attempted and refused, (K,)."""
    profit_rate: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Actual profit rate of the true plant, $/s (empty without economics), (K,)."""
    ideal_profit_rate: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Steady-state optimal profit rate of the true plant at the same prices, d and p, (K,)."""
    wall_time_s: float = math.nan
    """Wall-clock duration of the run, seconds."""
    sample_time_s: float = math.nan
    """Control period, seconds (the last sample counts for one period)."""
    y_estimated: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    """CV values as the controller saw them (estimate incl. output disturbance; NaN where no
    usable step), (K, ncv) or empty."""
    flags: tuple[tuple[str, ...], ...] = ()
    """Supervision flags of each cycle (``signal:reason``), K entries or empty."""


def integrate(t: NDArray[np.float64], v: NDArray[np.float64]) -> float:
    """Trapezoid integral of samples ``v`` at times ``t`` (0 for fewer than two samples)."""
    if t.size < 2:
        return 0.0
    return float(np.sum(0.5 * (v[1:] + v[:-1]) * np.diff(t)))


def settling_time(
    t: NDArray[np.float64], error: NDArray[np.float64], band: float, t_start: float
) -> float:
    """Time after ``t_start`` from which ``|error| <= band`` holds to the end (inf if never)."""
    mask = t >= t_start
    tt, ee = t[mask], np.abs(error[mask])
    if tt.size == 0 or not np.isfinite(ee[-1]) or ee[-1] > band:
        return math.inf
    outside = np.flatnonzero(~(ee <= band))
    if outside.size == 0:
        return 0.0
    last_out = outside[-1]
    return float(tt[last_out + 1] - t_start)


def _last_change(t: NDArray[np.float64], r: NDArray[np.float64]) -> tuple[float, float]:
    """(time of the last setpoint change, size of that change); (t0, 0) when constant."""
    finite = np.isfinite(r)
    idx = np.flatnonzero(finite)
    if idx.size == 0:
        return float(t[0]) if t.size else 0.0, 0.0
    rr = r[idx]
    changes = np.flatnonzero(np.abs(np.diff(rr)) > 0)
    if changes.size == 0:
        return float(t[idx[0]]), 0.0
    j = changes[-1] + 1
    return float(t[idx[j]]), float(rr[j] - rr[j - 1])


def _percentile_ms(values: NDArray[np.float64], q: float) -> float:
    v = values[np.isfinite(values)]
    return float(np.percentile(v, q) * 1e3) if v.size else math.nan


def compute_kpis(
    trace: Trace,
    *,
    settling_band: dict[str, float] | None = None,
    settling_rel: float = 0.05,
    cv_nominal: dict[str, float] | None = None,
) -> dict[str, float]:
    """All KPIs of a trace (see the module docstring for the definitions)."""
    out: dict[str, float] = {}
    t = np.asarray(trace.t, dtype=float)
    bands = settling_band or {}
    nominal = cv_nominal or {}
    for j, name in enumerate(trace.cv_names):
        y = trace.y[:, j]
        r = trace.setpoint[:, j]
        if np.any(np.isfinite(r)):
            ok = np.isfinite(r) & np.isfinite(y)  # samples without a value or a setpoint drop out
            tt, e = t[ok], (y - r)[ok]
            out[f"iae.{name}"] = integrate(tt, np.abs(e))
            out[f"ise.{name}"] = integrate(tt, e**2)
            t_change, step = _last_change(t, r)
            band = bands.get(name)
            if band is None:
                last_r = float(r[np.isfinite(r)][-1])
                ref = abs(step) if step else nominal.get(name, max(abs(last_r), 1e-12))
                band = settling_rel * ref
            out[f"settling_time_s.{name}"] = (
                settling_time(tt, e, band, t_change) if e.size else math.inf
            )
            out[f"final_error.{name}"] = float(abs(e[-1])) if e.size else math.nan
        lo, hi = float(trace.cv_lower[j]), float(trace.cv_upper[j])
        if math.isfinite(lo) or math.isfinite(hi):
            ok = np.isfinite(y)
            viol = np.maximum(0.0, np.maximum(y[ok] - hi, lo - y[ok]))
            out[f"violation.{name}"] = integrate(t[ok], viol)
            out[f"max_violation.{name}"] = float(np.max(viol)) if viol.size else 0.0
    for j, name in enumerate(trace.mv_names):
        u = trace.u[:, j]
        du = np.abs(np.diff(u[np.isfinite(u)]))
        out[f"mv_travel.{name}"] = float(np.sum(du))
    solve = np.asarray(trace.solve_time_s, dtype=float)
    out["solve_ms_median"] = _percentile_ms(solve, 50)
    out["solve_ms_p95"] = _percentile_ms(solve, 95)
    out["solve_ms_max"] = _percentile_ms(solve, 100)
    k = int(t.size)
    out["cycles"] = float(k)
    out["fallbacks"] = float(np.sum(trace.fallback))
    out["fallback_fraction"] = float(np.mean(trace.fallback)) if k else 0.0
    out["service_factor"] = float(np.mean(trace.in_service)) if k else 0.0
    out["write_failures"] = float(np.sum(trace.write_failed))
    out["disconnected_cycles"] = float(np.sum(~np.asarray(trace.connected, dtype=bool)))
    dt = (
        trace.sample_time_s
        if math.isfinite(trace.sample_time_s)
        else (float(np.median(np.diff(t))) if k > 1 else 0.0)
    )
    plant_time = float(t[-1] - t[0] + dt) if k else 0.0
    out["plant_time_s"] = plant_time
    out["wall_time_s"] = float(trace.wall_time_s)
    out["realtime_factor"] = (
        plant_time / trace.wall_time_s
        if math.isfinite(trace.wall_time_s) and trace.wall_time_s > 0
        else math.nan
    )
    if trace.profit_rate.size:
        profit = integrate(t, trace.profit_rate)
        ideal = integrate(t, trace.ideal_profit_rate)
        out["profit"] = profit
        out["profit_ideal"] = ideal
        out["profit_loss"] = ideal - profit
        out["profit_ratio"] = profit / ideal if ideal != 0 else math.nan
    return out


def kpi_names(
    tracked_cvs: tuple[str, ...],
    limited_cvs: tuple[str, ...],
    mvs: tuple[str, ...],
    economics: bool,
    rto: bool = False,
) -> set[str]:
    """Every KPI name a run with this setup produces."""
    names = set(_GLOBAL) | set(SUPERVISION_GLOBAL)
    if rto:
        names.update(("rto_updates", "rto_waits"))
    names.update(f"{k}.{c}" for k in _PER_CV_TRACKING for c in tracked_cvs)
    names.update(f"{k}.{c}" for k in _PER_CV_LIMITS for c in limited_cvs)
    names.update(f"hidden_violation.{c}" for c in limited_cvs)
    names.update(f"mv_travel.{m}" for m in mvs)
    if economics:
        names.update(_ECONOMIC)
    return names


def kpi_domain(name: str) -> tuple[float, float]:
    """Closed range of values the KPI can take."""
    base = name.split(".", 1)[0]
    if base in ("service_factor", "fallback_fraction"):
        return UNIT_INTERVAL
    if base in ("profit", "profit_ideal", "profit_loss", "profit_ratio"):
        return (-math.inf, math.inf)
    return NONNEGATIVE
