"""Extended Kalman filter on the (disturbance-augmented) discrete-time plant model.

Owns :class:`ExtendedKalmanFilter` and the two covariance steps the MHE reuses
for its arrival cost (:func:`ekf_predict`, :func:`ekf_correct`). Timing: the
estimate held between updates refers to the time of the last measurement; an
update with ``u`` (the input held since then) predicts over one sample and then
corrects with the validated measured outputs, dropping the rows of rejected
ones and of those the innovation monitor flags (:mod:`mpc.estimation.screening`). The correction uses the Joseph form so the covariance stays symmetric
positive semi-definite.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mpc.estimation.augmented import AugmentedModel, augment, check_detectability
from mpc.estimation.config import EstimatorConfig, Tuning, resolve_tuning
from mpc.estimation.innovation import InnovationMonitor
from mpc.estimation.result import EstimatorResult, invalid_input_result
from mpc.estimation.screening import screen_innovations
from mpc.estimation.validation import MeasurementValidator, ValidationReport
from plant_models.errors import ModelError
from plant_models.model import PlantModel
from plant_models.results import SolveInfo, SolveStatus
from plant_models.samples import Measurement, StateEstimate

logger = logging.getLogger(__name__)


def augmented_with_tuning(model: PlantModel, config: EstimatorConfig) -> tuple[AugmentedModel, Tuning]:
    """The augmented (disturbance) model and tuning vectors shared by the EKF and the MHE.

    Raises :class:`ModelError` when the disturbance model is not detectable and
    ``config.require_detectable`` is set (otherwise logs a warning).
    """
    augmented = augment(
        model, config.disturbances, config.sample_time_s, config.discretization, config.substeps
    )
    tuning = resolve_tuning(augmented, config)
    if config.disturbances.size:
        det = check_detectability(augmented, config.measured)
        if not det.detectable:
            if config.require_detectable:
                raise ModelError(det.message)
            logger.warning("%s", det.message)
    return augmented, tuning


def ekf_predict(
    aug: AugmentedModel, z: NDArray, P: NDArray, Q: NDArray, u: NDArray, d: NDArray, p: NDArray
) -> tuple[NDArray, NDArray]:
    """Predicted mean ``F(z)`` and covariance ``A P A' + Q`` (A = dF/dz at ``z``)."""
    z_dm, A_dm = aug.FdF(z, u, d, p)
    z_next = np.asarray(z_dm, dtype=float).reshape(-1)
    A = np.asarray(A_dm, dtype=float)
    P_next = A @ P @ A.T + Q
    return z_next, 0.5 * (P_next + P_next.T)


def ekf_correct(
    aug: AugmentedModel,
    z: NDArray,
    P: NDArray,
    y: NDArray,
    rows: NDArray,
    r_std: NDArray,
    u: NDArray,
    d: NDArray,
    p: NDArray,
) -> tuple[NDArray, NDArray]:
    """Measurement update with outputs ``y`` at positions ``rows`` of the model's ``y``."""
    if rows.size == 0:
        return z, P
    y_dm, C_dm = aug.HdH(z, u, d, p)
    y_hat = np.asarray(y_dm, dtype=float).reshape(-1)[rows]
    C = np.asarray(C_dm, dtype=float)[rows, :]
    R = np.diag(r_std**2)
    S = C @ P @ C.T + R
    K = np.linalg.solve(S, C @ P).T
    z_new = z + K @ (y - y_hat)
    IKC = np.eye(z.size) - K @ C
    P_new = IKC @ P @ IKC.T + K @ R @ K.T
    return z_new, 0.5 * (P_new + P_new.T)


class ExtendedKalmanFilter:
    """EKF for a :class:`PlantModel` with optional integrating disturbances (offset-free)."""

    def __init__(
        self,
        model: PlantModel,
        config: EstimatorConfig,
        x0: Mapping[str, float] | ArrayLike | None = None,
    ) -> None:
        """Build the filter; ``x0`` is the initial state guess (default: nominal state).

        Raises :class:`ConfigError` for unknown names and :class:`ModelError` when the
        disturbance model is not detectable with the measured outputs at the nominal point.
        """
        self.model = model
        self.config = config
        self.augmented, self.tuning = augmented_with_tuning(model, config)
        self.validator = MeasurementValidator(config.validation)
        self.monitor = InnovationMonitor(config.innovation)
        self._Q = np.diag(self.tuning.q_std**2)
        nx = len(model.x)
        self._lower = model.x.lower
        self._upper = model.x.upper
        self._nx = nx
        self.reset(x0)

    # state -------------------------------------------------------------
    def reset(self, x0: Mapping[str, float] | ArrayLike | None = None) -> None:
        """Restart from ``x0`` (default nominal), zero disturbances and the initial covariance."""
        x = self.model.resolve("x", x0)
        self.z = np.concatenate([x, np.zeros(self.augmented.disturbances.size)])
        self.P = np.diag(self.tuning.p0_std**2)
        self.time_s: float | None = None
        self.validator.reset()
        self.monitor.reset()

    def estimate(
        self, time_s: float | None = None, rejected: tuple[str, ...] = ()
    ) -> StateEstimate:
        """The current estimate (``time_s`` defaults to the time of the last update)."""
        x, y_bias, u_bias = self.augmented.split(self.z)
        t = time_s if time_s is not None else (self.time_s or 0.0)
        return StateEstimate(
            time_s=float(t),
            x=x,
            y_bias=y_bias,
            u_bias=u_bias,
            covariance=self.P.copy(),
            rejected=rejected,
        )

    # update --------------------------------------------------------------
    def update(
        self,
        measurement: Measurement,
        u: Mapping[str, float] | ArrayLike,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
    ) -> EstimatorResult:
        """Predict one sample with the inputs held since the last update, then correct.

        ``u`` is the MV vector applied over the last sample (before any input
        disturbance), ``d`` the measured disturbances (default nominal), ``p`` the
        model parameters (default nominal). Rejected measurements are not used; if every
        measured output is rejected the result is the open-loop prediction. Unusable inputs
        (NaN, wrong length) give status ``INVALID_INPUT`` and leave the estimate unchanged.
        """
        t0 = time.perf_counter()
        report = self.validator.validate(measurement, self.config.measured)
        try:
            uv, dv, pv = (self.model.resolve(k, v) for k, v in (("u", u), ("d", d), ("p", p)))
        except ModelError as exc:  # e.g. a NaN MV read-back: keep the estimate, do not raise
            logger.warning("estimator update at t=%s skipped: %s", measurement.time_s, exc)
            return invalid_input_result(
                self.estimate(measurement.time_s, report.rejected_names),
                report,
                str(exc),
                time.perf_counter() - t0,
            )
        z_prev, P_prev = self.z, self.P
        status, message, fallback = SolveStatus.SUCCESS, "", False
        try:
            z, P = ekf_predict(self.augmented, self.z, self.P, self._Q, uv, dv, pv)
            report = screen_innovations(
                self.monitor, self.augmented, self.config.measured, self.tuning.r_std, z, P,
                measurement, report, uv, dv, pv,
            )
            z, P = self._correct(z, P, measurement, report, uv, dv, pv)
            if not (np.all(np.isfinite(z)) and np.all(np.isfinite(P))):
                raise FloatingPointError("non-finite estimate")
        except (RuntimeError, FloatingPointError, np.linalg.LinAlgError) as exc:
            logger.warning(
                "EKF update at t=%s failed (%s); keeping the last estimate", measurement.time_s, exc
            )
            z, P = z_prev, P_prev + self._Q
            status, message, fallback = SolveStatus.NUMERICAL_ERROR, str(exc), True
        if self.config.clip_to_bounds:
            z = z.copy()
            z[: self._nx] = np.clip(z[: self._nx], self._lower, self._upper)
        self.z, self.P, self.time_s = z, P, float(measurement.time_s)
        if not report.accepted and not fallback:
            message = "no valid measurement: open-loop prediction"
        info = SolveInfo(
            status=status, iterations=1, solve_time_s=time.perf_counter() - t0, message=message
        )
        return EstimatorResult(
            estimate=self.estimate(measurement.time_s, report.rejected_names),
            validation=report,
            info=info,
            fallback=fallback,
        )

    def _correct(
        self,
        z: NDArray,
        P: NDArray,
        measurement: Measurement,
        report: ValidationReport,
        u: NDArray,
        d: NDArray,
        p: NDArray,
    ) -> tuple[NDArray, NDArray]:
        accepted = set(report.accepted)
        keep = [i for i, n in enumerate(self.config.measured) if n in accepted]
        if not keep:
            return z, P
        names = [self.config.measured[i] for i in keep]
        y = np.array([measurement.value(n) for n in names])
        rows = self.tuning.measured_index[keep]
        return ekf_correct(self.augmented, z, P, y, rows, self.tuning.r_std[keep], u, d, p)
