"""MpcResult: what one controller step returns, whatever happened in the solver.

``u`` is the move to apply (None unless the status is usable); the predicted
trajectories are kept even after a failed solve when the solver produced an
iterate, so a fallback policy can still use the last *good* result's plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import SolverFailed
from plant_models.results import SolveStatus


def _empty() -> NDArray[np.float64]:
    return np.zeros((0, 0))


@dataclass(frozen=True)
class MpcResult:
    """Outcome of one :meth:`mpc.NmpcController.step`."""

    status: SolveStatus
    """Solver-independent outcome; ``u`` is set only when ``status.usable``."""
    u: NDArray[np.float64] | None
    """Move to apply now (absolute MV values, SI, ordered like the model's ``u``), or None."""
    x_pred: NDArray[np.float64] = field(default_factory=_empty)
    """Predicted states, shape (N+1, nx) (nominal scenario for robust MPC)."""
    u_pred: NDArray[np.float64] = field(default_factory=_empty)
    """Planned inputs, shape (N, nu)."""
    y_pred: NDArray[np.float64] = field(default_factory=_empty)
    """Predicted outputs including ``y_bias``, shape (N+1, ny)."""
    objective: float | None = None
    """Objective value at the returned point."""
    iterations: int = 0
    """Solver iterations (QP iterations summed for RTI)."""
    solve_time_s: float = 0.0
    """Wall-clock time of the whole step in seconds."""
    message: str = ""
    """Solver's status text or the reason for failure."""
    solver: str = ""
    """Which solver produced this result (``"rti"``, ``"ipopt"``, ``"do_mpc"``)."""
    time_s: float = 0.0
    """Time the step was computed for (as passed to ``step``)."""

    @property
    def usable(self) -> bool:
        """True when the move may be applied."""
        return self.status.usable and self.u is not None

    def raise_for_status(self) -> MpcResult:
        """Raise :class:`SolverFailed` unless usable; return self for chaining."""
        if not self.usable:
            raise SolverFailed(f"MPC step failed ({self.solver}): {self.status.value}: {self.message}")
        return self
