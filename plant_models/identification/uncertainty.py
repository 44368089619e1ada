"""Step responses of identified models with confidence bands.

Two ways to get the bands, both by sampling models and taking pointwise
percentiles of their unit-step responses:

- :func:`arx_step_bands`: from the least-squares covariance of the ARX
  parameters. All outputs share the regressors Phi, so
  Cov(theta_i, theta_j) = Sigma_ij (Phi^T Phi)^-1 with Sigma the residual
  covariance (Ljung 1999, sec. 9.3); parameter vectors are drawn from that
  Gaussian (Monte Carlo propagation, ``n_draws``).
- :func:`bootstrap_step_bands`: for any method (n4sid, FOPDT, ARX): a
  moving-block residual bootstrap (Kuensch 1989). The model's simulation
  residuals are resampled in blocks (keeping their colour), added to the
  simulated output, and the model is re-identified ``n_boot`` times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import ModelError
from plant_models.identification.arx import ArxFit, _regressors, _to_state_space
from plant_models.identification.data import IdData
from plant_models.identification.linear_model import IdentifiedModel, delay_inputs


@dataclass(frozen=True)
class StepResponseBands:
    """Unit-step responses of a model with pointwise confidence bands."""

    t: NDArray[np.float64]
    """Time after the step, s (n_steps,)."""
    response: NDArray[np.float64]
    """Step response of the identified model, (n_steps, ny, nu): output i for a unit step on input j."""
    lower: NDArray[np.float64]
    """Lower band, same shape."""
    upper: NDArray[np.float64]
    """Upper band, same shape."""
    u_names: tuple[str, ...]
    """Input names."""
    y_names: tuple[str, ...]
    """Output names."""
    level: float
    """Confidence level of the bands."""
    method: str
    """How the bands were computed."""
    samples: int
    """Number of sampled models."""

    def contains(self, response: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Pointwise: does ``response`` (same shape) lie inside the bands?"""
        return (response >= self.lower) & (response <= self.upper)

    def gain_interval(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Bands at the last time point: an interval for every steady-state gain (ny, nu)."""
        return self.lower[-1], self.upper[-1]


def step_response(model: IdentifiedModel, n_steps: int) -> NDArray[np.float64]:
    """Unit-step responses (n_steps, ny, nu), each input stepped alone at k = 0."""
    nu = len(model.u_names)
    out = np.empty((n_steps, len(model.y_names), nu))
    for j in range(nu):
        du = np.zeros((n_steps, nu))
        du[:, j] = 1.0
        out[:, :, j] = model.simulate(du)
    return out


def _bands(
    model: IdentifiedModel, draws: list[NDArray], n_steps: int, level: float, method: str
) -> StepResponseBands:
    stack = np.stack(draws)
    a = 100.0 * (1.0 - level) / 2.0
    return StepResponseBands(
        t=model.sample_time_s * np.arange(n_steps, dtype=np.float64),
        response=step_response(model, n_steps),
        lower=np.percentile(stack, a, axis=0),
        upper=np.percentile(stack, 100.0 - a, axis=0),
        u_names=model.u_names,
        y_names=model.y_names,
        level=level,
        method=method,
        samples=len(draws),
    )


def _check(level: float, n: int, what: str) -> None:
    if not 0.5 <= level < 1.0:
        raise ModelError(f"step bands: level must be in [0.5, 1), got {level}")
    if n < 10:
        raise ModelError(f"step bands: {what} must be >= 10 for percentiles, got {n}")


def arx_step_bands(
    fit: ArxFit,
    data: IdData,
    n_steps: int,
    *,
    level: float = 0.95,
    n_draws: int = 300,
    seed: int = 0,
) -> StepResponseBands:
    """Bands from the ARX parameter covariance; ``data`` = the estimation data of ``fit``."""
    _check(level, n_draws, "n_draws")
    ny, nu = len(data.y_names), len(data.u_names)
    if tuple(data.u_names) != fit.model.u_names or tuple(data.y_names) != fit.model.y_names:
        raise ModelError("arx_step_bands: data signals differ from the fit's")
    ud = delay_inputs(data.u, fit.delays)
    phi, target = _regressors(ud, data.y, fit.na, fit.nb)
    theta = np.vstack(
        [fit.a[lag].T for lag in range(fit.na)] + [fit.b[lag].T for lag in range(fit.nb)]
    )
    e = target - phi @ theta
    dof = max(1, phi.shape[0] - phi.shape[1])
    sigma = e.T @ e / dof
    try:
        l_p = np.linalg.cholesky(np.linalg.inv(phi.T @ phi))
        l_s = np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        raise ModelError(
            "arx_step_bands: singular regressor or residual covariance; "
            "the data do not excite the model (more input variation needed)"
        ) from None
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_draws):
        th = theta + l_p @ rng.standard_normal(theta.shape) @ l_s.T
        a = np.stack([th[lag * ny : (lag + 1) * ny].T for lag in range(fit.na)])
        off = fit.na * ny
        b = np.stack([th[off + lag * nu : off + (lag + 1) * nu].T for lag in range(fit.nb)])
        draws.append(step_response(_to_state_space(a, b, data, fit.delays), n_steps))
    return _bands(fit.model, draws, n_steps, level, f"ARX parameter covariance ({n_draws} draws)")


def bootstrap_step_bands(
    identify: Callable[[IdData], IdentifiedModel],
    model: IdentifiedModel,
    data: IdData,
    n_steps: int,
    *,
    level: float = 0.95,
    n_boot: int = 30,
    block_length: int | None = None,
    seed: int = 0,
) -> StepResponseBands:
    """Bands by a moving-block residual bootstrap; ``identify`` re-fits the method on new data.

    ``data`` is the estimation data ``model`` was identified from.
    """
    _check(level, n_boot, "n_boot")
    y_sim = model.simulate_segments(data.u, data.y, data.segments)
    resid = data.y - y_sim
    n = data.n_samples
    blk = block_length or max(5, int(round(n ** (1 / 3))))
    if blk >= n:
        raise ModelError(f"bootstrap: block_length {blk} must be shorter than the data ({n})")
    rng = np.random.default_rng(seed)
    draws = []
    failures = 0
    for _ in range(n_boot):
        starts = rng.integers(0, n - blk + 1, size=int(np.ceil(n / blk)))
        idx = np.concatenate([np.arange(s, s + blk) for s in starts])[:n]
        boot = replace(data, y=y_sim + resid[idx])
        try:
            draws.append(step_response(identify(boot), n_steps))
        except ModelError:
            failures += 1
    if len(draws) < 10:
        raise ModelError(f"bootstrap: only {len(draws)} of {n_boot} re-identifications succeeded")
    return _bands(
        model,
        draws,
        n_steps,
        level,
        f"moving-block residual bootstrap ({len(draws)} refits, block {blk})"
        + (f", {failures} failed" if failures else ""),
    )
