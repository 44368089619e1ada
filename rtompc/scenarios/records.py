"""Build a KPI :class:`~rtompc.scenarios.kpis.Trace` from the runtime's cycle records.

The scenario runner records the plant truth; against a real plant (or any run
whose historian kept only :class:`~rtompc.cycle.CycleRecord` objects) the KPIs
are computed from what the loop measured: :func:`trace_from_records` takes the
CV values from each record's measurement (NaN where not Good), the setpoints
from its target, the MVs from ``u_written`` where written and ``u_plant``
otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from plant_models.samples import Mode
from rtompc.cycle import CycleRecord
from rtompc.scenarios.kpis import Trace

_WRITTEN = ("verified", "mismatch")
_WRITE_FAILED = ("rejected", "nothing_to_write")


def trace_from_records(
    records: Sequence[CycleRecord],
    cv_names: Sequence[str],
    *,
    sample_time_s: float,
    cv_limits: Mapping[str, tuple[float, float]] | None = None,
    setpoints: Mapping[str, float] | None = None,
    u_bounds: tuple[Sequence[float], Sequence[float]] | None = None,
    wall_time_s: float = math.nan,
) -> Trace:
    """A trace of measured values from ``records`` (ordered by cycle).

    ``setpoints`` gives default CV setpoints used where a record's target has none;
    ``cv_limits`` the CV limits; ``u_bounds`` the MV (lower, upper) bounds.
    """
    cvs = tuple(cv_names)
    limits = cv_limits or {}
    defaults = setpoints or {}
    if not records:
        raise ValueError("trace_from_records: no records")
    mv_names = records[0].mv_names
    rows_y, rows_sp, rows_u = [], [], []
    for rec in records:
        m = rec.measurement
        rows_y.append([m.value(c) if c in m.names and m.good(c) else math.nan for c in cvs])
        tgt = rec.target.y if rec.target is not None else {}
        rows_sp.append([float(tgt.get(c, defaults.get(c, math.nan))) for c in cvs])
        written = np.asarray(rec.u_written, dtype=float)
        rows_u.append(np.where(np.isfinite(written), written, rec.u_plant))
    nu = len(mv_names)
    lo_u, hi_u = u_bounds if u_bounds is not None else (np.full(nu, -np.inf), np.full(nu, np.inf))
    y = np.asarray(rows_y, dtype=float).reshape(-1, len(cvs))
    return Trace(
        t=np.array([r.time_s for r in records], dtype=float),
        cv_names=cvs,
        y=y,
        y_measured=y.copy(),
        setpoint=np.asarray(rows_sp, dtype=float).reshape(-1, len(cvs)),
        cv_lower=np.array([limits.get(c, (-math.inf, math.inf))[0] for c in cvs], dtype=float),
        cv_upper=np.array([limits.get(c, (-math.inf, math.inf))[1] for c in cvs], dtype=float),
        mv_names=mv_names,
        u=np.asarray(rows_u, dtype=float).reshape(-1, nu),
        u_lower=np.asarray(lo_u, dtype=float),
        u_upper=np.asarray(hi_u, dtype=float),
        solve_time_s=np.array(
            [r.solve_time_s if r.mode is not Mode.OFF else math.nan for r in records]
        ),
        fallback=np.array([r.fallback for r in records], dtype=bool),
        in_service=np.array(
            [r.mode is Mode.ON and r.connected and r.write_status in _WRITTEN for r in records],
            dtype=bool,
        ),
        connected=np.array([r.connected for r in records], dtype=bool),
        write_failed=np.array([r.write_status in _WRITE_FAILED for r in records], dtype=bool),
        wall_time_s=wall_time_s,
        sample_time_s=sample_time_s,
    )
