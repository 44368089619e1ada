"""Innovation screening between an estimator's prediction and its correction.

Owns :func:`screen_innovations`: given the one-step prediction (mean and
covariance of the augmented state) and the validated measurement, it computes
each accepted output's innovation and predicted standard deviation, lets the
:class:`~mpc.estimation.innovation.InnovationMonitor` judge them, bounds the
estimated output disturbances, and returns the validation report with the
flagged signals moved from ``accepted`` to ``rejected`` (reason ``innovation``
or ``bias_limit``), so the correction leaves them out. The EKF and the MHE's
arrival-cost filter share it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mpc.estimation.augmented import AugmentedModel
from mpc.estimation.innovation import InnovationFlag, InnovationMonitor
from mpc.estimation.validation import Rejection, RejectReason, ValidationReport
from plant_models.samples import Measurement

_REASON = {"innovation": RejectReason.INNOVATION, "bias_limit": RejectReason.BIAS_LIMIT}


def screen_innovations(
    monitor: InnovationMonitor,
    aug: AugmentedModel,
    measured: tuple[str, ...],
    r_std: NDArray[np.float64],
    z_pred: NDArray[np.float64],
    P_pred: NDArray[np.float64],
    measurement: Measurement,
    report: ValidationReport,
    u: NDArray[np.float64],
    d: NDArray[np.float64],
    p: NDArray[np.float64],
) -> ValidationReport:
    """The report with the signals the monitor flags now moved to ``rejected``.

    ``measured`` and ``r_std`` are the estimator's measured outputs and their noise std.
    """
    cfg = monitor.config
    if not cfg.enabled:
        return report
    model = aug.model
    accepted = set(report.accepted)
    names = [n for n in measured if n in accepted and n in cfg.signals]
    flags: list[InnovationFlag] = []
    if names:
        y_dm, C_dm = aug.HdH(z_pred, u, d, p)
        rows = [model.y.index(n) for n in names]
        y_hat = np.asarray(y_dm, dtype=float).reshape(-1)[rows]
        C = np.asarray(C_dm, dtype=float)[rows, :]
        r = np.array([r_std[measured.index(n)] for n in names])
        s = np.sqrt(np.einsum("ij,jk,ik->i", C, P_pred, C) + r**2)
        e = np.array([measurement.value(n) for n in names]) - y_hat
        flags.extend(monitor.observe(names, e.tolist(), s.tolist()))
    if cfg.bias_limits:
        _, y_bias, _ = aug.split(z_pred)
        flags.extend(
            monitor.check_biases({n: float(y_bias[model.y.index(n)]) for n in cfg.bias_limits})
        )
    flagged = {f.name: f for f in flags if f.name in accepted}
    if not flagged:
        return report
    extra = tuple(
        Rejection(n, (_REASON[f.reason],), measurement.value(n), f.detail)
        for n, f in flagged.items()
    )
    return ValidationReport(
        time_s=report.time_s,
        accepted=tuple(n for n in report.accepted if n not in flagged),
        rejected=report.rejected + extra,
    )
