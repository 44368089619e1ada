"""Supervision flags: sensor flags from an estimator update, CV limits at risk, flag changes.

Owns the ``signal:reason`` vocabulary the loop records in
:attr:`rtompc.cycle.CycleRecord.flags` (``t_r:frozen``, ``t_r:innovation``,
``q_k:stuck``, ``t_r:limit_at_risk``), :func:`cv_limits_at_risk` (the controller
says it cannot hold a CV limit with the MVs it has left) and
:class:`FlagTracker`, which turns the per-cycle flag sets into one log line per
change (raised / cleared).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mpc.estimation import ValidationReport
from plant_models.model import PlantModel

logger = logging.getLogger(__name__)

LIMIT_AT_RISK = "limit_at_risk"
"""Flag reason: the plan predicts a CV beyond a hard/soft limit although it re-planned."""
LIMIT_TOLERANCE = 1e-3
"""Predicted violation, as a fraction of the CV's nominal value, that counts as a violation."""


def sensor_flags(report: ValidationReport | None) -> tuple[str, ...]:
    """``name:reason`` for every rejected measurement and reason of one update."""
    if report is None:
        return ()
    return tuple(f"{r.name}:{reason.value}" for r in report.rejected for reason in r.reasons)


def cv_limits_at_risk(
    model: PlantModel, cvs: Iterable[Any], y_pred: NDArray[np.float64]
) -> dict[str, str]:
    """CVs whose predicted trajectory leaves their limits, with a description.

    ``cvs`` are controller CV specs (``name``, ``lower``, ``upper``), ``y_pred`` the
    predicted outputs (N+1, ny) including the output disturbance.
    """
    out: dict[str, str] = {}
    if y_pred.ndim != 2 or y_pred.shape[1] != len(model.y):
        return out
    for c in cvs:
        i = model.y.index(c.name)
        tol = LIMIT_TOLERANCE * abs(model.y[c.name].nominal)
        traj = y_pred[1:, i]
        if getattr(c, "upper", None) is not None and float(traj.max()) > c.upper + tol:
            out[c.name] = (
                f"{c.name}: the plan cannot hold the upper limit {c.upper:g} "
                f"(predicted up to {float(traj.max()):.5g})"
            )
        elif getattr(c, "lower", None) is not None and float(traj.min()) < c.lower - tol:
            out[c.name] = (
                f"{c.name}: the plan cannot hold the lower limit {c.lower:g} "
                f"(predicted down to {float(traj.min()):.5g})"
            )
    return out


class FlagTracker:
    """Remembers the flags of the last cycle; reports raised and cleared flags once."""

    def __init__(self) -> None:
        self._active: set[str] = set()

    @property
    def active(self) -> frozenset[str]:
        """Flags raised in the last cycle."""
        return frozenset(self._active)

    def update(self, flags: Sequence[str], time_s: float) -> list[str]:
        """Event lines for flags raised or cleared since the last call (also logged)."""
        now = set(flags)
        lines = [f"flag raised: {f}" for f in sorted(now - self._active)]
        lines += [f"flag cleared: {f}" for f in sorted(self._active - now)]
        for line in lines:
            logger.warning("t=%g s %s", time_s, line)
        self._active = now
        return lines
