"""Constraint rows of a soft (or slack-relaxed) output limit, shared by both transcriptions.

A limit ``lo <= y <= hi`` on a scaled output ``ys = y / y_nominal`` becomes the rows
``ys - s <= hi`` and ``ys + s >= lo`` (one per finite side) with one non-negative slack
``s = sfac * slack``. The slack variable is scaled by ``sfac = 1 / sqrt(max(l1, sqrt(l2), 1))``
so that its penalty gradient (``l1 * sfac``) and curvature (``l2 * sfac^2``) stay near one
whatever the penalty: HPIPM's and qpOASES' stopping tests are absolute. Used by
:mod:`mpc.ocp` (whole horizon) and :mod:`mpc.stagewise` (per stage); the callers add the
penalties, weighted by the scenario probability their own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LimitRows:
    """Rows, bounds and the scaled slack of one output limit."""

    slack: Any
    """The slack in output units over the nominal (``sfac`` times the slack variable)."""
    sfac: float
    """Scale of the slack variable."""
    g: list[Any] = field(default_factory=list)
    lb: list[float] = field(default_factory=list)
    ub: list[float] = field(default_factory=list)


def slack_scale(l1: float, l2: float) -> float:
    """Scale of a slack variable penalised by ``l1 * s + l2 * s^2``."""
    return float(1.0 / np.sqrt(max(l1, np.sqrt(l2), 1.0)))


def limit_rows(
    ys: Any, slack_var: Any, lo_s: float, hi_s: float, l1: float, l2: float
) -> LimitRows:
    """Rows for ``lo_s <= ys <= hi_s`` (scaled bounds, infinite side: no row), relaxed by the slack."""
    sfac = slack_scale(l1, l2)
    out = LimitRows(slack=sfac * slack_var, sfac=sfac)
    if np.isfinite(hi_s):
        out.g.append(ys - out.slack)
        out.lb.append(-np.inf)
        out.ub.append(hi_s)
    if np.isfinite(lo_s):
        out.g.append(ys + out.slack)
        out.lb.append(lo_s)
        out.ub.append(np.inf)
    return out
