"""The estimator seam: what an update returns, and the interface every estimator offers.

:class:`EstimatorResult` carries the estimate, the validation report and the solve info;
:class:`StateEstimator` is the protocol the runtime programs against (EKF and MHE both
satisfy it).

The estimate is always usable: when the primary computation fails (IPOPT in the
MHE, a non-finite prediction in the EKF) the estimator falls back (EKF step, or
open-loop prediction) and says so in ``info`` and ``fallback``; the hot loop
never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from numpy.typing import ArrayLike

from mpc.estimation.validation import ValidationReport
from plant_models.results import SolveInfo, SolveStatus
from plant_models.samples import Measurement, StateEstimate


@dataclass(frozen=True)
class EstimatorResult:
    """Outcome of one estimator update."""

    estimate: StateEstimate
    """The state estimate (with ``y_bias``/``u_bias`` of length ny/nu, zeros where no
    disturbance is modelled), ready for ``controller.step``."""
    validation: ValidationReport
    """Which measured outputs were used and which rejected, with reasons."""
    info: SolveInfo
    """Status of the primary computation (EKF update or MHE solve)."""
    fallback: bool = False
    """True when ``estimate`` comes from the fallback instead of the primary computation."""

    def raise_for_status(self) -> None:
        """Raise :class:`SolverFailed` unless the primary computation succeeded."""
        self.info.raise_for_status()


def invalid_input_result(
    estimate: StateEstimate, validation: ValidationReport, message: str, solve_time_s: float
) -> EstimatorResult:
    """Result of an update whose inputs (u, d, p) were unusable: the estimate is not advanced."""
    return EstimatorResult(
        estimate=estimate,
        validation=validation,
        info=SolveInfo(
            status=SolveStatus.INVALID_INPUT, solve_time_s=solve_time_s, message=message
        ),
        fallback=True,
    )


@runtime_checkable
class StateEstimator(Protocol):
    """What the runtime needs from an estimator (EKF, MHE)."""

    def update(
        self,
        measurement: Measurement,
        u: Mapping[str, float] | ArrayLike,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
    ) -> EstimatorResult:
        """Predict over one sample with the MVs ``u`` held since the last update, then correct
        with the validated measurement."""
        ...

    def estimate(
        self, time_s: float | None = None, rejected: tuple[str, ...] = ()
    ) -> StateEstimate:
        """The current estimate (``time_s`` defaults to the time of the last update)."""
        ...

    def reset(self, x0: Mapping[str, float] | ArrayLike | None = None) -> None:
        """Restart from ``x0`` (default: the model's nominal state)."""
        ...
