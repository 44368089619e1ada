"""State estimation for MPC: measurement validation, EKF, MHE, offset-free disturbance models.

Public names (re-exported by :mod:`mpc`): :class:`ValidationConfig`,
:class:`MeasurementValidator`, :class:`ValidationReport`, :class:`InnovationConfig`,
:class:`InnovationMonitor`, :class:`Rejection`,
:class:`RejectReason`, :func:`limits_from_signals`, :class:`DisturbanceModel`,
:class:`Discretization`, :class:`AugmentedModel`, :func:`augment`,
:func:`check_detectability`, :class:`Detectability`, :class:`EstimatorConfig`,
:class:`MheConfig`, :class:`EstimatorResult`, :class:`ExtendedKalmanFilter`,
:class:`MovingHorizonEstimator`, :class:`StateEstimator` (protocol).
"""

from mpc.estimation.augmented import (
    AugmentedModel,
    Detectability,
    Discretization,
    DisturbanceModel,
    augment,
    check_detectability,
)
from mpc.estimation.config import EstimatorConfig, MheConfig
from mpc.estimation.ekf import ExtendedKalmanFilter
from mpc.estimation.innovation import InnovationConfig, InnovationFlag, InnovationMonitor
from mpc.estimation.mhe import MovingHorizonEstimator
from mpc.estimation.result import EstimatorResult, StateEstimator
from mpc.estimation.validation import (
    MeasurementValidator,
    Rejection,
    RejectReason,
    ValidationConfig,
    ValidationReport,
    limits_from_signals,
)

__all__ = [
    "AugmentedModel",
    "Detectability",
    "Discretization",
    "DisturbanceModel",
    "EstimatorConfig",
    "EstimatorResult",
    "ExtendedKalmanFilter",
    "InnovationConfig",
    "InnovationFlag",
    "InnovationMonitor",
    "MeasurementValidator",
    "MheConfig",
    "MovingHorizonEstimator",
    "RejectReason",
    "StateEstimator",
    "Rejection",
    "ValidationConfig",
    "ValidationReport",
    "augment",
    "check_detectability",
    "limits_from_signals",
]
