"""The outcome of one scenario run, and of its acceptance criteria, as plain data.

:class:`ScenarioResult` is what a runner returns and what reports and the
campaign consume: status, KPIs, one :class:`CriterionOutcome` per criterion
(value, threshold and the margin by which it passed or failed), the trace for
plots, the event log and, for an errored run, the reason. :func:`to_jsonable`
turns it into JSON-safe data (NaN as ``null``, infinities as ``"inf"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rtompc.scenarios.kpis import Trace
from rtompc.scenarios.spec import Comparator, Criterion


class ScenarioStatus(Enum):
    """Outcome of a scenario."""

    PASSED = "passed"
    """Ran to the end and every criterion held."""
    FAILED = "failed"
    """Ran to the end and at least one criterion did not hold."""
    ERROR = "error"
    """Could not run (bad file, exception, lost worker): see ``message``."""


@dataclass(frozen=True)
class CriterionOutcome:
    """One criterion checked against the KPIs of a run."""

    kpi: str
    """KPI name."""
    op: Comparator
    """Comparison."""
    threshold: float
    """Threshold."""
    value: float
    """The KPI's value in this run (NaN when missing)."""
    passed: bool
    """True when ``value <op> threshold``."""

    @property
    def margin(self) -> float:
        """How far inside (> 0) or outside (< 0) the threshold the value is, in KPI units."""
        if math.isnan(self.value):
            return math.nan
        if self.op in (Comparator.LE, Comparator.LT):
            return self.threshold - self.value
        return self.value - self.threshold

    def describe(self) -> str:
        """E.g. ``iae.c_b = 1.3e4 <= 1e4: FAILED by 3000``."""
        verdict = "ok" if self.passed else "FAILED"
        text = f"{self.kpi} = {self.value:.6g} {self.op.value} {self.threshold:.6g}: {verdict}"
        if not self.passed and math.isfinite(self.margin):
            text += f" by {abs(self.margin):.6g}"
            if self.threshold != 0 and math.isfinite(self.threshold):
                text += f" ({abs(self.margin) / abs(self.threshold):.1%} of the threshold)"
        return text


def check_criteria(
    criteria: tuple[Criterion, ...], kpis: dict[str, float]
) -> tuple[CriterionOutcome, ...]:
    """Evaluate every criterion against ``kpis``."""
    out = []
    for c in criteria:
        value = float(kpis.get(c.kpi, math.nan))
        out.append(
            CriterionOutcome(c.kpi, c.op, c.threshold, value, c.op.holds(value, c.threshold))
        )
    return tuple(out)


def judged(spec: Any, kpis: dict[str, float], wall_time_s: float, **fields: Any) -> ScenarioResult:
    """The result of a finished run of ``spec`` (name, path, tags, description, criteria):
    its criteria checked against ``kpis``, passed or failed, with ``fields`` (trace, events,
    units, ...)."""
    outcomes = check_criteria(spec.criteria, kpis)
    failed = [o for o in outcomes if not o.passed]
    return ScenarioResult(
        name=spec.name,
        path=str(spec.path),
        tags=spec.tags,
        status=ScenarioStatus.FAILED if failed else ScenarioStatus.PASSED,
        kpis=kpis,
        criteria=outcomes,
        message="; ".join(o.describe() for o in failed),
        wall_time_s=wall_time_s,
        description=spec.description,
        **fields,
    )


@dataclass(frozen=True)
class Prediction:
    """One snapshot of the controller's predicted CV trajectories."""

    t0_s: float
    """Plant time of the step that made the prediction."""
    t: NDArray[np.float64]
    """Prediction times (absolute plant time), (N+1,)."""
    y: NDArray[np.float64]
    """Predicted CVs (columns ordered like ``Trace.cv_names``), (N+1, ncv)."""


@dataclass(frozen=True)
class ScenarioResult:
    """Everything a scenario run produced."""

    name: str
    """Scenario name."""
    path: str
    """Scenario file."""
    tags: tuple[str, ...]
    """Scenario tags."""
    status: ScenarioStatus
    """Passed, failed or error."""
    kpis: dict[str, float] = field(default_factory=dict)
    """KPIs by name."""
    criteria: tuple[CriterionOutcome, ...] = ()
    """Criterion outcomes, in file order."""
    message: str = ""
    """Why the scenario failed or errored (empty when it passed)."""
    wall_time_s: float = 0.0
    """Wall-clock time of the run including set-up, seconds."""
    trace: Trace | None = None
    """Per-cycle data (None for an errored run)."""
    predictions: tuple[Prediction, ...] = ()
    """Prediction snapshots for plots."""
    events: tuple[str, ...] = ()
    """Fired scenario events and noteworthy loop events, in order."""
    description: str = ""
    """Scenario description."""
    units: tuple[ScenarioResult, ...] = ()
    """A plant-wide scenario: each unit's own result (its trace, KPIs and criteria)."""

    @property
    def passed(self) -> bool:
        """True when the status is PASSED."""
        return self.status is ScenarioStatus.PASSED

    @property
    def failed_criteria(self) -> tuple[CriterionOutcome, ...]:
        """Criteria that did not hold."""
        return tuple(c for c in self.criteria if not c.passed)


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(value, np.ndarray):
        return (
            [_clean(v) for v in value.tolist()]
            if value.ndim == 1
            else [_clean(row) for row in value]
        )
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Enum):
        return value.value
    return value


def to_jsonable(result: ScenarioResult, *, include_trace: bool = True) -> dict[str, Any]:
    """JSON-safe dict of a result (trace as per-signal lists)."""
    out: dict[str, Any] = {
        "name": result.name,
        "path": result.path,
        "tags": list(result.tags),
        "description": result.description,
        "status": result.status.value,
        "message": result.message,
        "wall_time_s": result.wall_time_s,
        "kpis": _clean(result.kpis),
        "criteria": [
            {
                "kpi": c.kpi,
                "op": c.op.value,
                "threshold": _clean(c.threshold),
                "value": _clean(c.value),
                "passed": c.passed,
                "margin": _clean(c.margin),
            }
            for c in result.criteria
        ],
        "events": list(result.events),
    }
    if result.units:
        out["units"] = [to_jsonable(u, include_trace=include_trace) for u in result.units]
    tr = result.trace
    if include_trace and tr is not None:
        out["trace"] = {
            "t_s": _clean(tr.t),
            "cv": {
                n: {
                    "true": _clean(tr.y[:, j]),
                    "measured": _clean(tr.y_measured[:, j]),
                    "setpoint": _clean(tr.setpoint[:, j]),
                    "lower": _clean(tr.cv_lower[j]),
                    "upper": _clean(tr.cv_upper[j]),
                }
                for j, n in enumerate(tr.cv_names)
            },
            "mv": {n: _clean(tr.u[:, j]) for j, n in enumerate(tr.mv_names)},
            "solve_time_s": _clean(tr.solve_time_s),
            "fallback": _clean(tr.fallback),
            "in_service": _clean(tr.in_service),
            "connected": _clean(tr.connected),
            "profit_rate": _clean(tr.profit_rate),
            "ideal_profit_rate": _clean(tr.ideal_profit_rate),
        }
    return out
