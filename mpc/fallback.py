"""Fallback policies: a safe move when a controller step is not usable.

The runtime keeps the last usable :class:`~mpc.result.MpcResult` and, when a
step fails, calls :func:`fallback_move` with the policy from its config:
``SHIFTED_PLAN`` applies the next move of the last good plan (holding its last
move once the plan runs out); ``HOLD_LAST`` keeps the last applied move. The
result is always clipped to the MV bounds.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mpc.result import MpcResult
from plant_models.errors import ConfigError


class FallbackPolicy(Enum):
    """What to apply when the controller has no usable move."""

    SHIFTED_PLAN = "shifted_plan"
    """Next move of the last good plan (``u_pred[steps_since_good]``)."""
    HOLD_LAST = "hold_last"
    """The last applied move, unchanged."""


def fallback_move(
    policy: FallbackPolicy,
    last_good: MpcResult | None,
    steps_since_good: int,
    *,
    u_last_applied: ArrayLike | None = None,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
) -> NDArray[np.float64] | None:
    """Safe move after ``steps_since_good`` (>= 1) failed steps since ``last_good``.

    Returns None only when there is nothing to fall back on (no good result and
    no last applied move).
    """
    if not isinstance(policy, FallbackPolicy):
        raise ConfigError(f"fallback policy: expected FallbackPolicy, got {policy!r}")
    if steps_since_good < 1:
        raise ConfigError(f"steps_since_good: must be >= 1, got {steps_since_good}")
    move: NDArray[np.float64] | None = None
    if policy is FallbackPolicy.SHIFTED_PLAN and last_good is not None and last_good.u_pred.size:
        plan = np.asarray(last_good.u_pred, dtype=float)
        move = plan[min(steps_since_good, plan.shape[0] - 1)].copy()
    elif u_last_applied is not None:
        move = np.asarray(u_last_applied, dtype=float).reshape(-1).copy()
    elif last_good is not None and last_good.u is not None:
        move = np.asarray(last_good.u, dtype=float).copy()
    if move is None:
        return None
    if lower is not None:
        move = np.maximum(move, np.asarray(lower, dtype=float))
    if upper is not None:
        move = np.minimum(move, np.asarray(upper, dtype=float))
    return move
