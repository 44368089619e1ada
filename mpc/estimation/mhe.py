"""Moving-horizon estimator (MHE) with an EKF arrival cost, solved with IPOPT.

Owns :class:`MovingHorizonEstimator`. At update n the window holds the last
``L = min(n, N)`` samples. Decision variables are the augmented states
``z_{n-L}, ..., z_n`` (scaled by their nominal magnitudes); the objective is the
least-squares sum of

- the arrival cost ``|z_{n-L} - zbar|^2_{P^-1}`` with ``zbar`` the MHE's own
  filtered estimate at time n-L and ``P`` the covariance of an EKF recursion run
  along the MHE estimates (the "filtering update" of Rao, Rawlings & Lee,
  "Constrained state estimation for nonlinear discrete-time systems", IEEE TAC 48
  (2003) 246-258),
- the process noise ``|z_{t+1} - F(z_t, u_t)|^2_{Q^-1}`` and
- the measurement residuals ``|y_t - H(z_t, u_t)|^2_{R^-1}``, where a rejected
  measurement has weight zero (a 0/1 mask parameter),

subject to bounds on the states (signal bounds and/or configured bounds). One
NLP per window length is built once (lazily) and reused with parameters; the
previous solution, shifted, warm-starts the next. If IPOPT fails the update
falls back to the EKF step and reports the IPOPT status.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

from mpc.estimation.config import EstimatorConfig, MheConfig
from mpc.estimation.ekf import augmented_with_tuning, ekf_correct, ekf_predict
from mpc.estimation.innovation import InnovationMonitor
from mpc.estimation.result import EstimatorResult, invalid_input_result
from mpc.estimation.screening import screen_innovations
from mpc.estimation.validation import MeasurementValidator, ValidationReport
from plant_models.errors import ConfigError, ModelError
from plant_models.model import PlantModel
from plant_models.results import SolveInfo, SolveStatus, status_from_ipopt
from plant_models.samples import Measurement, StateEstimate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Sample:
    """Data of one sample in the window: input leading to it, measurement and mask."""

    u: NDArray[np.float64]
    d: NDArray[np.float64]
    p: NDArray[np.float64]
    y: NDArray[np.float64]
    mask: NDArray[np.float64]


class MovingHorizonEstimator:
    """Constrained MHE for a :class:`PlantModel`, same inputs and outputs as the EKF."""

    def __init__(
        self,
        model: PlantModel,
        config: EstimatorConfig,
        mhe: MheConfig | None = None,
        x0: Mapping[str, float] | ArrayLike | None = None,
    ) -> None:
        """Build the estimator; raises like :class:`ExtendedKalmanFilter` for bad settings."""
        self.model = model
        self.config = config
        self.mhe = mhe if mhe is not None else MheConfig()
        self.augmented, self.tuning = augmented_with_tuning(model, config)
        self.validator = MeasurementValidator(config.validation)
        self.monitor = InnovationMonitor(config.innovation)
        self._Q = np.diag(self.tuning.q_std**2)
        self._lbz, self._ubz = self._bounds()
        self._solvers: dict[int, ca.Function] = {}
        self.reset(x0)

    def _bounds(self) -> tuple[NDArray, NDArray]:
        names = self.augmented.names
        nz, nx = self.augmented.nz, self.augmented.nx
        lb, ub = np.full(nz, -np.inf), np.full(nz, np.inf)
        if self.mhe.use_signal_bounds:
            lb[:nx], ub[:nx] = self.model.x.lower, self.model.x.upper
        for name, (lo, hi) in self.mhe.state_bounds.items():
            if name not in names:
                raise ConfigError(
                    f"MheConfig.state_bounds: {name!r} is not an estimator state; "
                    f"known: {', '.join(names)}"
                )
            lb[names.index(name)], ub[names.index(name)] = lo, hi
        return lb, ub

    def reset(self, x0: Mapping[str, float] | ArrayLike | None = None) -> None:
        """Restart from ``x0`` (default nominal) with the initial covariance and an empty window."""
        x = self.model.resolve("x", x0)
        z0 = np.concatenate([x, np.zeros(self.augmented.disturbances.size)])
        z0 = np.clip(z0, self._lbz, self._ubz)
        n = self.mhe.horizon_steps
        self._history: deque[tuple[NDArray, NDArray]] = deque(
            [(z0, np.diag(self.tuning.p0_std**2))], maxlen=n + 1
        )
        self._window: deque[_Sample] = deque(maxlen=n)
        self._guess: NDArray | None = None
        self.time_s: float | None = None
        self.validator.reset()
        self.monitor.reset()

    @property
    def z(self) -> NDArray[np.float64]:
        """Current augmented estimate."""
        return self._history[-1][0]

    @property
    def P(self) -> NDArray[np.float64]:
        """Current covariance (EKF recursion along the MHE estimates)."""
        return self._history[-1][1]

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

    # NLP -------------------------------------------------------------------
    def _solver(self, length: int) -> ca.Function:
        cached = self._solvers.get(length)
        if cached is not None:
            return cached
        aug = self.augmented
        nz = aug.nz
        nm = len(self.config.measured)
        nu, nd, npar = len(self.model.u), len(self.model.d), len(self.model.p)
        sym: Any = ca.SX if aug.F.is_a("SXFunction") else ca.MX
        s = ca.DM(self.tuning.scale)
        Zs = sym.sym("Z", nz, length + 1)
        Y = sym.sym("Y", nm, length)
        M = sym.sym("M", nm, length)
        U = sym.sym("U", nu, length)
        D = sym.sym("D", nd, length)
        Pm = sym.sym("P", npar, length)
        zbar = sym.sym("zbar", nz)
        Linv = sym.sym("Linv", nz, nz)  # P^-1 = Linv' Linv, in scaled coordinates
        r_inv = ca.DM(1.0 / self.tuning.r_std)
        rows = [int(i) for i in self.tuning.measured_index]
        res = [ca.mtimes(Linv, Zs[:, 0] - zbar / s)]
        for t in range(length):
            z_t = Zs[:, t] * s
            z_n = Zs[:, t + 1] * s
            w = z_n - aug.F(z_t, U[:, t], D[:, t], Pm[:, t])
            res.append(w / ca.DM(self.tuning.q_std))
            y_hat = aug.H(z_n, U[:, t], D[:, t], Pm[:, t])[rows]
            res.append(M[:, t] * (Y[:, t] - y_hat) * r_inv)
        r = ca.vertcat(*res)
        params = ca.vertcat(
            ca.vec(Y), ca.vec(M), ca.vec(U), ca.vec(D), ca.vec(Pm), zbar, ca.vec(Linv)
        )
        nlp: dict[str, Any] = {"x": ca.vec(Zs), "p": params, "f": 0.5 * ca.sumsqr(r)}
        opts: dict[str, Any] = {
            "print_time": False,
            "ipopt": {
                "print_level": 0,
                "sb": "yes",
                "max_iter": self.mhe.max_iter,
                "tol": self.mhe.tol,
                "mu_strategy": "adaptive",
            },
        }
        solver = ca.nlpsol(f"mhe_{length}", "ipopt", nlp, opts)
        self._solvers[length] = solver
        return solver

    # update --------------------------------------------------------------
    def update(
        self,
        measurement: Measurement,
        u: Mapping[str, float] | ArrayLike,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
    ) -> EstimatorResult:
        """Add one sample (input held since the last update, new measurement) and re-solve.

        Unusable inputs (NaN, wrong length) give status ``INVALID_INPUT`` and leave the
        estimate and the window unchanged.
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
        report = self._screen(measurement, report, uv, dv, pv)
        accepted = set(report.accepted)
        mask = np.array([1.0 if n in accepted else 0.0 for n in self.config.measured])
        y = np.array([measurement.value(n) if n in accepted else 0.0 for n in self.config.measured])
        self._window.append(_Sample(u=uv, d=dv, p=pv, y=y, mask=mask))
        length = len(self._window)
        z_prior, P_prior = self._history[-length]  # filtered estimate at time n - L
        # EKF step from the last estimate: covariance recursion and fallback value
        z_ekf, P_ekf = self._ekf_step(uv, dv, pv, y, mask)
        status, message, iterations, objective = SolveStatus.FAILED, "", 0, None
        z_new = z_ekf
        fallback = True
        try:
            z_sol, status, message, iterations, objective = self._solve(length, z_prior, P_prior)
            if status.usable:
                z_new, fallback = z_sol, False
        except RuntimeError as exc:
            status, message = SolveStatus.NUMERICAL_ERROR, str(exc)
        if fallback:
            logger.warning(
                "MHE at t=%s: %s (%s); using the EKF step",
                measurement.time_s,
                status.value,
                message,
            )
        self._history.append((z_new, P_ekf))
        self.time_s = float(measurement.time_s)
        info = SolveInfo(
            status=status,
            objective=objective,
            iterations=iterations,
            solve_time_s=time.perf_counter() - t0,
            message=message,
        )
        return EstimatorResult(
            estimate=self.estimate(measurement.time_s, report.rejected_names),
            validation=report,
            info=info,
            fallback=fallback,
        )

    def _screen(
        self, measurement: Measurement, report: ValidationReport, u: NDArray, d: NDArray,
        p: NDArray,
    ) -> ValidationReport:
        """Innovation screening against the arrival-cost filter's one-step prediction."""
        if not self.monitor.config.enabled:
            return report
        z, P = self._history[-1]
        try:
            z_pred, P_pred = ekf_predict(self.augmented, z, P, self._Q, u, d, p)
            return screen_innovations(
                self.monitor, self.augmented, self.config.measured, self.tuning.r_std, z_pred,
                P_pred, measurement, report, u, d, p,
            )
        except (RuntimeError, np.linalg.LinAlgError) as exc:
            logger.warning("MHE innovation screening at t=%s failed: %s", measurement.time_s, exc)
            return report

    def _ekf_step(
        self, u: NDArray, d: NDArray, p: NDArray, y: NDArray, mask: NDArray
    ) -> tuple[NDArray, NDArray]:
        z, P = self._history[-1]
        z_pred, P_pred = ekf_predict(self.augmented, z, P, self._Q, u, d, p)
        keep = np.flatnonzero(mask > 0)
        rows = self.tuning.measured_index[keep]
        z_upd, P_upd = ekf_correct(
            self.augmented, z_pred, P_pred, y[keep], rows, self.tuning.r_std[keep], u, d, p
        )
        return np.clip(z_upd, self._lbz, self._ubz), P_upd

    def _solve(
        self, length: int, z_prior: NDArray, P_prior: NDArray
    ) -> tuple[NDArray, SolveStatus, str, int, float]:
        s = self.tuning.scale
        win = list(self._window)[-length:]
        Ps = P_prior / np.outer(s, s)
        Ls = np.linalg.cholesky(np.linalg.inv(0.5 * (Ps + Ps.T))).T  # Ps^-1 = Ls' Ls
        cols = lambda attr: np.column_stack([getattr(w, attr) for w in win])  # noqa: E731
        params = np.concatenate(
            [
                cols("y").ravel(order="F"),
                cols("mask").ravel(order="F"),
                cols("u").ravel(order="F"),
                cols("d").ravel(order="F"),
                cols("p").ravel(order="F"),
                z_prior,
                Ls.ravel(order="F"),
            ]
        )
        guess = self._initial_guess(length, z_prior, win)
        lb = np.tile(self._lbz / s, length + 1)
        ub = np.tile(self._ubz / s, length + 1)
        solver = self._solver(length)
        sol = solver(x0=np.clip(guess, lb, ub), p=params, lbx=lb, ubx=ub)
        stats = solver.stats()
        status = status_from_ipopt(stats)
        Z = np.asarray(sol["x"], dtype=float).reshape((self.augmented.nz, length + 1), order="F")
        Z = np.clip(Z * s[:, None], self._lbz[:, None], self._ubz[:, None])  # IPOPT relaxes
        if not np.all(np.isfinite(Z)):
            status = SolveStatus.NUMERICAL_ERROR
        self._guess = Z
        return (
            Z[:, -1].copy(),
            status,
            str(stats.get("return_status", "")),
            int(stats.get("iter_count", 0)),
            float(sol["f"]),
        )

    def _initial_guess(self, length: int, z_prior: NDArray, win: list[_Sample]) -> NDArray:
        s = self.tuning.scale
        prev = self._guess
        if prev is not None and prev.shape[1] >= length:
            # previous nodes n-L..n-1, plus a prediction of node n
            last = np.asarray(self.augmented.F(prev[:, -1], win[-1].u, win[-1].d, win[-1].p))
            Z = np.column_stack([prev[:, -length:], last.reshape(-1)])
            return (Z / s[:, None]).ravel(order="F")
        Z = np.empty((self.augmented.nz, length + 1))
        Z[:, 0] = z_prior
        for t, w in enumerate(win):
            Z[:, t + 1] = np.asarray(self.augmented.F(Z[:, t], w.u, w.d, w.p)).reshape(-1)
        return (Z / s[:, None]).ravel(order="F")
