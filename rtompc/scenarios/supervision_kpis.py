"""Supervision KPIs of a scenario run: detection times, false alarms, hidden limit violations.

The loop records supervision flags per cycle (``t_r:frozen``, ``q_k:stuck``,
``t_r:innovation``, ``t_r:limit_at_risk``; see :mod:`rtompc.supervision.flags`).
From them, the trace and the scenario's fault events, :func:`supervision_kpis`
computes

- ``flagged_cycles``: cycles carrying any flag;
- ``false_flag_cycles``: cycles carrying a flag before the first fault event fires
  (the whole run when the scenario injects no fault): false alarms on a healthy plant;
- ``detect_s.<signal>:<reason>``: plant time from the onset of the first fault on
  ``signal`` (the start of the run when there is none) to the first cycle at or after it
  carrying the flag; ``inf`` when a criterion asks for a flag that never came;
- ``hidden_violation.c`` per CV with a limit: the largest part of a true limit
  violation the loop did not know about, ``max(0, true violation - violation of the
  controller's own estimate)`` over the cycles without a ``c:limit_at_risk`` flag. It is
  what an operator could not see: 0 when the estimate is honest or the controller said
  it cannot hold the limit.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rtompc.scenarios.kpis import Trace

SUPERVISION_GLOBAL = ("flagged_cycles", "false_flag_cycles")
"""Supervision KPIs every run produces."""
DETECT_PREFIX = "detect_s."
"""Prefix of the per-flag detection-time KPIs."""


def flag_reasons() -> tuple[str, ...]:
    """Every flag reason the loop can raise (sensor checks, innovation, actuators, limits)."""
    from mpc.estimation import RejectReason
    from rtompc.supervision import MvHealth
    from rtompc.supervision.flags import LIMIT_AT_RISK

    return (
        *(r.value for r in RejectReason),
        MvHealth.STUCK.value,
        MvHealth.SATURATED.value,
        LIMIT_AT_RISK,
    )


def is_detection_kpi(name: str, signals: Collection[str] | None = None) -> bool:
    """True for a ``detect_s.<signal>:<reason>`` KPI name with a known reason (and, when
    ``signals`` is given, one of those signals)."""
    rest = name.removeprefix(DETECT_PREFIX)
    if not name.startswith(DETECT_PREFIX) or rest.count(":") != 1:
        return False
    signal, reason = rest.split(":")
    return reason in flag_reasons() and (signal in signals if signals is not None else bool(signal))


def supervision_kpis(
    trace: Trace, faults: Sequence[tuple[str, float]], wanted: Sequence[str] = ()
) -> dict[str, float]:
    """The supervision KPIs of one run (see the module docstring).

    ``faults`` are ``(signal, onset time)`` of the scenario's fault events (signal empty
    for a plant-wide fault); ``wanted`` are the KPI names the criteria ask for.
    """
    t = np.asarray(trace.t, dtype=float)
    flags = trace.flags if len(trace.flags) == t.size else ((),) * t.size
    out: dict[str, float] = {}
    first_fault = min((ts for _, ts in faults), default=math.inf)
    onset: dict[str, float] = {}
    for sig, ts in faults:
        if sig:
            onset[sig] = min(onset.get(sig, math.inf), ts)
    out["flagged_cycles"] = float(sum(1 for f in flags if f))
    out["false_flag_cycles"] = float(
        sum(1 for tk, f in zip(t, flags, strict=True) if f and tk < first_fault)
    )
    for name in wanted:
        if is_detection_kpi(name):
            out[name] = math.inf
    t0 = float(t[0]) if t.size else 0.0
    for tk, fl in zip(t, flags, strict=True):
        for flag in fl:
            key = f"{DETECT_PREFIX}{flag}"
            start = onset.get(flag.split(":", 1)[0], t0)
            if tk >= start and not math.isfinite(out.get(key, math.inf)):
                out[key] = float(tk - start)
    y_est = trace.y_estimated
    for j, name in enumerate(trace.cv_names):
        lo, hi = float(trace.cv_lower[j]), float(trace.cv_upper[j])
        if not (math.isfinite(lo) or math.isfinite(hi)):
            continue
        y = trace.y[:, j]
        est = y_est[:, j] if y_est.shape == trace.y.shape else np.full(t.size, np.nan)
        true_v = np.maximum(0.0, np.maximum(y - hi, lo - y))
        seen_v = np.maximum(0.0, np.maximum(est - hi, lo - est))
        told = np.array([f"{name}:limit_at_risk" in f for f in flags], dtype=bool)
        hidden = np.where(told | ~np.isfinite(true_v), 0.0, true_v - np.nan_to_num(seen_v))
        out[f"hidden_violation.{name}"] = float(np.max(hidden, initial=0.0))
    return out
