"""Gray-box estimation: fit a PlantModel's uncertain parameters ``p`` to dynamic data.

Multiple-shooting least squares (Bock & Plitt 1984): one shooting node per
sample, the model integrated over each sample interval (RK4 with
``substeps``, or the model's own map for discrete-time models), continuity
``s[k+1] = F(s[k], u[k], d[k], p)`` as equality constraints and the weighted
output errors as objective

    min_{p, s}  sum_k || (y_meas[k] - h(s[k], u[k], d[k], p)) / sigma ||^2

solved by IPOPT (exact Hessian). Decision variables are scaled by the
signals' nominal values. With ``y_std`` unknown (None) the weights are first
the outputs' nominal values, then, in a second (warm-started) solve, the
residual standard deviation of each output from the first.

Confidence intervals use the linearised (Gauss-Newton) covariance of the
unknowns theta = (x0, p) at the optimum, with the reduced (single-shooting)
Jacobian J = d r / d theta of the weighted residuals (the continuity
constraints hold there, so the reduced Jacobian equals the multiple-shooting
one projected on the constraint manifold):

    Cov(theta) = s^2 (J^T J)^-1,   s^2 = ||r||^2 / (m - n_theta)

and Student-t intervals theta_i +- t_{(1+c)/2, m-n_theta} sqrt(Cov_ii)
(Bard 1974; Seber & Wild 1989, ch. 5).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import t as student_t

from plant_models.errors import ModelError, SolverFailed
from plant_models.identification.data import DataError
from plant_models.model import PlantModel
from plant_models.results import SolveStatus, status_from_ipopt
from plant_models.simulation import rk4_function

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParameterEstimate:
    """Result of :func:`estimate_parameters` (values None unless the solve is usable)."""

    status: SolveStatus
    """Solver-independent outcome."""
    names: tuple[str, ...]
    """Estimated parameter names."""
    value: NDArray[np.float64] | None
    """Estimates, SI, ordered like ``names``."""
    std_error: NDArray[np.float64] | None
    """Standard errors, SI (None when the parameters are not identifiable from the data)."""
    ci_lower: NDArray[np.float64] | None
    """Lower ends of the confidence intervals."""
    ci_upper: NDArray[np.float64] | None
    """Upper ends of the confidence intervals."""
    covariance: NDArray[np.float64] | None
    """Covariance of the estimates (n_p, n_p), SI."""
    x0: NDArray[np.float64] | None
    """Estimated (or given) initial state, SI."""
    residual_std: NDArray[np.float64] | None
    """Standard deviation of the output residuals per measured output, SI."""
    measured: tuple[str, ...]
    """Measured outputs used."""
    confidence: float
    """Confidence level of the intervals."""
    objective: float | None
    """Weighted sum of squared residuals at the optimum."""
    iterations: int
    """IPOPT iterations (all passes)."""
    solve_time_s: float
    """Wall time of the solves, s."""
    message: str
    """Solver status text, or why something is missing."""

    def raise_for_status(self) -> None:
        """Raise :class:`SolverFailed` unless the status is usable."""
        if not self.status.usable:
            raise SolverFailed(f"parameter estimation failed: {self.status.value}: {self.message}")

    def as_dict(self) -> dict[str, float]:
        """Estimates by name (empty when not usable)."""
        if self.value is None:
            return {}
        return {n: float(v) for n, v in zip(self.names, self.value, strict=True)}

    def interval(self, name: str) -> tuple[float, float]:
        """Confidence interval of one parameter."""
        if self.ci_lower is None or self.ci_upper is None:
            raise ModelError(f"no confidence interval for {name!r}: {self.message}")
        i = self.names.index(name)
        return float(self.ci_lower[i]), float(self.ci_upper[i])


def _sample_map(model: PlantModel, dt: float, substeps: int) -> ca.Function:
    nx, nu, nd, npar = len(model.x), len(model.u), len(model.d), len(model.p)
    x, u, d, p = (ca.SX.sym(k, n) for k, n in (("x", nx), ("u", nu), ("d", nd), ("p", npar)))
    if not model.is_continuous:
        if abs(dt - float(model.sample_time_s or 0.0)) > 1e-9 * max(1.0, dt):
            raise DataError(f"gray-box: model {model.name!r} is discrete with sample time "
                            f"{model.sample_time_s} s, data are sampled every {dt} s")
        return ca.Function("F", [x, u, d, p], [model.f(x, u, d, p)])
    return rk4_function(model, dt, substeps, name="F")


def _check_data(model: PlantModel, t: ArrayLike, u: ArrayLike, y: ArrayLike, d: ArrayLike | None,
                measured: tuple[str, ...]) -> tuple[NDArray, NDArray, NDArray, NDArray, float]:
    tv = np.asarray(t, dtype=float).reshape(-1)
    n = tv.size
    if n < 3:
        raise DataError(f"gray-box: {n} samples are too few")
    steps = np.diff(tv)
    if not np.allclose(steps, steps[0], rtol=1e-6) or steps[0] <= 0:
        raise DataError("gray-box: timestamps must be uniform and increasing; resample with "
                        "plant_models.identification.prepare(..., sample_time_s=...)")
    arrays = []
    for what, arr, width in (("u", u, len(model.u)), ("y", y, len(measured))):
        a = np.asarray(arr, dtype=float)
        a = a.reshape(-1, 1) if a.ndim == 1 else a
        if a.shape != (n, width):
            raise DataError(f"gray-box: {what} must have shape ({n}, {width}), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise DataError(f"gray-box: {what} has NaN/inf values; drop or interpolate them")
        arrays.append(a)
    if d is None:
        dm = np.tile(model.nominal.d, (n, 1))
    else:
        dm = np.asarray(d, dtype=float).reshape(n, len(model.d))
    return tv, arrays[0], arrays[1], dm, float(steps[0])


def estimate_parameters(
    model: PlantModel,
    t: ArrayLike,
    u: ArrayLike,
    y: ArrayLike,
    *,
    estimate: Sequence[str],
    measured: Sequence[str] | None = None,
    p_initial: Mapping[str, float] | None = None,
    d: ArrayLike | None = None,
    x0: Mapping[str, float] | ArrayLike | None = None,
    estimate_x0: bool = True,
    y_std: Mapping[str, float] | None = None,
    substeps: int = 4,
    confidence: float = 0.95,
    max_iter: int = 300,
) -> ParameterEstimate:
    """Least-squares estimate of the parameters ``estimate`` of ``model`` from (t, u, y).

    ``u`` (N, nu) is held over each sample interval, ``y`` (N, len(measured))
    are the measured outputs (default: all of ``model.y``) at the sample times.
    Parameters not estimated keep ``p_initial`` or their nominal values. The
    initial state is estimated too (``estimate_x0``), starting from ``x0``
    (default: the model's nominal state). Never raises for a failed solve: the
    status says what happened.
    """
    names = tuple(estimate)
    unknown = [n for n in names if n not in model.p]
    if not names or unknown:
        raise ModelError(f"gray-box: estimate must name parameters of {model.name!r} "
                         f"({', '.join(model.p.names)}); unknown: {unknown or 'none given'}")
    meas = tuple(measured) if measured is not None else model.y.names
    bad = [n for n in meas if n not in model.y]
    if bad:
        raise ModelError(f"gray-box: measured outputs {bad} are not outputs of {model.name!r}")
    if not 0.5 <= confidence < 1.0:
        raise ModelError(f"gray-box: confidence must be in [0.5, 1), got {confidence}")
    tv, um, ym, dm, dt = _check_data(model, t, u, y, d, meas)
    n = tv.size
    nx, n_est = len(model.x), len(names)
    p_full = model.resolve("p", p_initial)
    est_idx = [model.p.index(k) for k in names]
    y_idx = [model.y.index(k) for k in meas]
    p_scale = np.array([abs(model.p.nominal[i]) or 1.0 for i in est_idx])
    x_scale = np.where(np.abs(model.x.nominal) > 0, np.abs(model.x.nominal), 1.0)
    x_start = model.resolve("x", x0)
    F = _sample_map(model, dt, max(1, int(substeps)))
    # decision variables: scaled states at every sample, then scaled parameters
    S = ca.MX.sym("S", nx, n)
    P = ca.MX.sym("P", n_est)
    w_sym = ca.MX.sym("w", len(meas))
    p_expr = ca.MX(ca.DM(p_full))
    p_vec = ca.vertcat(*[P[est_idx.index(i)] * p_scale[est_idx.index(i)] if i in est_idx
                         else p_expr[i] for i in range(len(model.p))])
    X = S * ca.repmat(ca.DM(x_scale), 1, n)
    U, D = ca.DM(um.T), ca.DM(dm.T)
    Pn = ca.repmat(p_vec, 1, n)
    x_next = F.map(n - 1)(X[:, :-1], U[:, :-1], D[:, :-1], Pn[:, :-1])
    gaps = (x_next - X[:, 1:]) / ca.repmat(ca.DM(x_scale), 1, n - 1)
    Yh = model.h.map(n)(X, U, D, Pn)[y_idx, :]
    res = (ca.DM(ym.T) - Yh) * ca.repmat(w_sym, 1, n)
    obj = ca.sumsqr(res)
    z = ca.vertcat(ca.vec(S), P)
    g = ca.vec(gaps)
    if not estimate_x0:
        g = ca.vertcat(g, S[:, 0] - ca.DM(x_start / x_scale))
    solver = ca.nlpsol("greybox", "ipopt", {"x": z, "p": w_sym, "f": obj, "g": g}, {
        "ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes",
        "ipopt.max_iter": int(max_iter), "ipopt.tol": 1e-10,
    })
    lbx = np.concatenate([np.tile(model.x.lower / x_scale, n),
                          [model.p.lower[i] / p_scale[j] for j, i in enumerate(est_idx)]])
    ubx = np.concatenate([np.tile(model.x.upper / x_scale, n),
                          [model.p.upper[i] / p_scale[j] for j, i in enumerate(est_idx)]])
    # initial guess: simulate with the initial parameters from x_start (a feasible start)
    xs = [x_start]
    for k in range(n - 1):
        nxt = np.asarray(F(xs[-1], um[k], dm[k], p_full), dtype=float).reshape(-1)
        xs.append(np.clip(nxt, model.x.lower, model.x.upper))
    z0 = np.concatenate([(np.array(xs) / x_scale).reshape(-1),
                         [p_full[i] / p_scale[j] for j, i in enumerate(est_idx)]])
    y_ref = np.array([abs(model.y.nominal[i]) or 1.0 for i in y_idx])
    weights = 1.0 / (np.array([y_std[k] for k in meas]) if y_std is not None else y_ref)
    started = time.perf_counter()
    iterations = 0
    passes = 1 if y_std is not None else 2
    sol, stats = None, {}
    for _ in range(passes):
        sol = solver(x0=z0, p=weights, lbx=lbx, ubx=ubx, lbg=0.0, ubg=0.0)
        stats = solver.stats()
        iterations += int(stats.get("iter_count", 0))
        if not status_from_ipopt(stats).usable:
            break
        z0 = np.asarray(sol["x"], dtype=float).reshape(-1)
        xs_hat = (z0[: nx * n].reshape(n, nx)) * x_scale
        p_hat_full = p_full.copy()
        for j, i in enumerate(est_idx):
            p_hat_full[i] = z0[nx * n + j] * p_scale[j]
        yhat = np.array([np.asarray(model.h(xs_hat[k], um[k], dm[k], p_hat_full),
                                    dtype=float).reshape(-1)[y_idx] for k in range(n)])
        resid_std = np.maximum(np.std(ym - yhat, axis=0, ddof=0), 1e-12 * y_ref)
        weights = 1.0 / resid_std
    elapsed = time.perf_counter() - started
    status = status_from_ipopt(stats)
    message = str(stats.get("return_status", ""))
    if not status.usable or sol is None:
        return ParameterEstimate(status, names, None, None, None, None, None, None, None, meas,
                                 confidence, None, iterations, elapsed, message)
    zf = np.asarray(sol["x"], dtype=float).reshape(-1)
    s_hat = zf[: nx * n].reshape(n, nx) * x_scale
    p_hat = zf[nx * n:] * p_scale
    p_hat_full = p_full.copy()
    p_hat_full[est_idx] = p_hat
    yhat = np.array([np.asarray(model.h(s_hat[k], um[k], dm[k], p_hat_full), dtype=float)
                     .reshape(-1)[y_idx] for k in range(n)])
    resid_std = np.std(ym - yhat, axis=0, ddof=0)
    _log.debug("gray-box %s: %s after %d iterations, %.2f s", model.name, message, iterations,
               elapsed)
    cov, std, lo, hi, note = _covariance(model, F, um, dm, ym, p_hat_full, est_idx, y_idx,
                                         s_hat[0], weights, estimate_x0, confidence)
    return ParameterEstimate(status, names, p_hat, std, lo, hi, cov, s_hat[0], resid_std, meas,
                             confidence, float(sol["f"]), iterations, elapsed,
                             message + (f"; {note}" if note else ""))


def _covariance(model: PlantModel, F: ca.Function, um: NDArray, dm: NDArray, ym: NDArray,
                p_full: NDArray, est_idx: list[int], y_idx: list[int], x0: NDArray,
                weights: NDArray, estimate_x0: bool, confidence: float) -> tuple:
    """Gauss-Newton covariance of the estimated parameters from the single-shooting Jacobian."""
    n, nx = ym.shape[0], len(model.x)
    xs = ca.MX.sym("x0", nx)
    ps = ca.MX.sym("pe", len(est_idx))
    p_vec = ca.vertcat(*[ps[est_idx.index(i)] if i in est_idx else ca.MX(float(p_full[i]))
                         for i in range(len(model.p))])
    traj = F.mapaccum("acc", n - 1)(xs, ca.DM(um[:-1].T), ca.DM(dm[:-1].T),
                                    ca.repmat(p_vec, 1, n - 1))
    X = ca.horzcat(xs, traj)
    Yh = model.h.map(n)(X, ca.DM(um.T), ca.DM(dm.T), ca.repmat(p_vec, 1, n))[y_idx, :]
    r = ca.vec((ca.DM(ym.T) - Yh) * ca.repmat(ca.DM(weights), 1, n))
    theta = ca.vertcat(xs, ps) if estimate_x0 else ps
    jac = ca.Function("J", [xs, ps], [ca.jacobian(r, theta), r])
    j_num, r_num = (np.asarray(v, dtype=float) for v in jac(x0, p_full[est_idx]))
    m, k = j_num.shape
    dof = m - k
    if dof <= 0:
        return None, None, None, None, f"no confidence intervals: {m} residuals for {k} unknowns"
    s2 = float(r_num.reshape(-1) @ r_num.reshape(-1)) / dof
    scale = np.maximum(np.linalg.norm(j_num, axis=0), 1e-300)
    jn = j_num / scale
    jtj = jn.T @ jn
    cond = np.linalg.cond(jtj)
    if not math.isfinite(cond) or cond > 1e14:
        return (None, None, None, None,
                f"no confidence intervals: J^T J is singular (condition {cond:.3g}); the data "
                f"do not determine every parameter (excite more, or estimate fewer)")
    cov_all = s2 * np.linalg.inv(jtj) / np.outer(scale, scale)
    cov = cov_all[-len(est_idx):, -len(est_idx):]
    std = np.sqrt(np.diag(cov))
    q = float(student_t.ppf(0.5 * (1.0 + confidence), dof))
    p_hat = p_full[est_idx]
    return cov, std, p_hat - q * std, p_hat + q * std, ""
