"""Results of the economic optimisation: optimum, profit, limits and what they are worth.

A :class:`LimitSensitivity` is one side of one limit with its Lagrange
multiplier expressed as ``d(profit*)/d(limit)`` in $/s per SI unit: positive
for an active upper limit (relaxing it earns money), negative for an active
lower limit, zero when inactive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from plant_models.results import SolveInfo, SolveStatus


class Side(Enum):
    """Which side of a limit."""

    LOWER = "lower"
    UPPER = "upper"


@dataclass(frozen=True)
class LimitSensitivity:
    """One side of one limit at the optimum and its value to the profit."""

    signal: str
    """Signal name."""
    kind: str
    """Signal set holding it: ``"u"``, ``"y"`` or ``"x"``."""
    side: Side
    """Lower or upper limit."""
    limit: float
    """The effective limit, SI."""
    value: float
    """The signal's value at the optimum, SI (for outputs: the modified prediction when
    modifiers are used)."""
    active: bool
    """True when the optimum sits on this limit."""
    sensitivity: float
    """d(profit*)/d(limit), $/s per SI unit of the signal (Lagrange multiplier)."""


@dataclass(frozen=True)
class RtoResult:
    """Outcome of one economic optimisation."""

    info: SolveInfo
    """Status, iterations, solve time, message (objective = profit of the solved problem)."""
    x: NDArray[np.float64] | None
    """Optimal steady states (None unless usable)."""
    u: NDArray[np.float64] | None
    """Optimal inputs."""
    y: NDArray[np.float64] | None
    """Model outputs at the optimum."""
    d: NDArray[np.float64]
    """Disturbances used."""
    p: NDArray[np.float64]
    """Parameters used."""
    profit: float | None
    """Profit of the solved problem (including cost modifiers), $/s."""
    model_profit: float | None
    """Profit predicted by the unmodified model at the optimum, $/s."""
    limits: tuple[LimitSensitivity, ...] = ()
    """Every finite limit side with its sensitivity."""
    state_multipliers: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """Multipliers of the steady-state equations f(x,u,d,p)=0 in SI ($/s per unit of dx/dt):
    grad(profit) = J_f^T nu + sum_j s_j grad(c_j) at the optimum."""

    @property
    def status(self) -> SolveStatus:
        """Shortcut to ``info.status``."""
        return self.info.status

    @property
    def active(self) -> tuple[LimitSensitivity, ...]:
        """The active limits."""
        return tuple(lim for lim in self.limits if lim.active)

    def sensitivity(self, signal: str, side: Side | str) -> float:
        """d(profit*)/d(limit) of one limit side (0 if that side has no finite limit)."""
        side = Side(side)
        for lim in self.limits:
            if lim.signal == signal and lim.side is side:
                return lim.sensitivity
        return 0.0

    def raise_for_status(self) -> None:
        """Raise :class:`plant_models.errors.SolverFailed` unless usable."""
        self.info.raise_for_status()
