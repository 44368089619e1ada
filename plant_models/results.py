"""Solve statuses and the common shape of every solver result.

Foreign solver statuses (IPOPT, HPIPM, CasADi rootfinders, ...) are translated
to :class:`SolveStatus` once, at the boundary, with :func:`status_from_ipopt`
and friends. Every solve returns a result whose ``value`` is ``None`` unless the
status is usable; scripts call ``raise_for_status()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from plant_models.errors import SolverFailed


class SolveStatus(Enum):
    """Outcome of a numerical solve, independent of the solver used."""

    SUCCESS = "success"
    """Converged to the requested tolerance."""
    ACCEPTABLE = "acceptable"
    """Converged to a looser, still usable tolerance."""
    MAX_ITER = "max_iter"
    """Iteration or time limit reached; the iterate is not trusted."""
    INFEASIBLE = "infeasible"
    """The problem is (locally) infeasible."""
    UNBOUNDED = "unbounded"
    """The objective is unbounded."""
    NUMERICAL_ERROR = "numerical_error"
    """NaN/inf, factorisation failure, restoration failure, ..."""
    INVALID_INPUT = "invalid_input"
    """The inputs to the solve were rejected before solving."""
    FAILED = "failed"
    """Any other failure."""

    @property
    def usable(self) -> bool:
        """True when the solution may be used (SUCCESS or ACCEPTABLE)."""
        return self in (SolveStatus.SUCCESS, SolveStatus.ACCEPTABLE)


_IPOPT_STATUS = {
    "Solve_Succeeded": SolveStatus.SUCCESS,
    "Solved_To_Acceptable_Level": SolveStatus.ACCEPTABLE,
    "Feasible_Point_Found": SolveStatus.ACCEPTABLE,
    "Infeasible_Problem_Detected": SolveStatus.INFEASIBLE,
    "Diverging_Iterates": SolveStatus.UNBOUNDED,
    "Maximum_Iterations_Exceeded": SolveStatus.MAX_ITER,
    "Maximum_CpuTime_Exceeded": SolveStatus.MAX_ITER,
    "Maximum_WallTime_Exceeded": SolveStatus.MAX_ITER,
    "Restoration_Failed": SolveStatus.NUMERICAL_ERROR,
    "Error_In_Step_Computation": SolveStatus.NUMERICAL_ERROR,
    "Invalid_Number_Detected": SolveStatus.NUMERICAL_ERROR,
    "Search_Direction_Becomes_Too_Small": SolveStatus.ACCEPTABLE,
    "Not_Enough_Degrees_Of_Freedom": SolveStatus.INVALID_INPUT,
    "Invalid_Problem_Definition": SolveStatus.INVALID_INPUT,
    "Invalid_Option": SolveStatus.INVALID_INPUT,
    "User_Requested_Stop": SolveStatus.FAILED,
}


def status_from_ipopt(stats: dict[str, Any]) -> SolveStatus:
    """Translate a CasADi ``nlpsol`` stats dict (IPOPT, or any nlpsol) to :class:`SolveStatus`."""
    name = str(stats.get("return_status", ""))
    if name in _IPOPT_STATUS:
        return _IPOPT_STATUS[name]
    if stats.get("success"):
        return SolveStatus.SUCCESS
    lowered = name.lower()
    if "infeasib" in lowered:
        return SolveStatus.INFEASIBLE
    if "iter" in lowered:
        return SolveStatus.MAX_ITER
    return SolveStatus.FAILED


@dataclass(frozen=True)
class SolveInfo:
    """What every solve reports, whatever it computed."""

    status: SolveStatus
    """Solver-independent outcome."""
    objective: float | None = None
    """Objective value at the returned point (None if not computed)."""
    iterations: int = 0
    """Solver iterations."""
    solve_time_s: float = 0.0
    """Wall-clock time of the solve in seconds."""
    message: str = ""
    """Solver's own status text or a reason for failure."""

    def raise_for_status(self) -> None:
        """Raise :class:`SolverFailed` unless the status is usable."""
        if not self.status.usable:
            raise SolverFailed(f"solve failed: {self.status.value}: {self.message}")
