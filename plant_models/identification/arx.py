"""MIMO ARX models by linear least squares, with order selection by Akaike's criterion.

Model (every output regresses on all past outputs and all inputs):

    y[k] + A_1 y[k-1] + ... + A_na y[k-na] = B_0 u~[k] + ... + B_(nb-1) u~[k-nb+1] + e[k],
    u~_j[k] = u_j[k - nk_j]

with an input delay nk_j >= 1 samples per input (default 1: no dead time
beyond the sample-and-hold). Orders na = nb = n are selected among
1..max_order by AIC = N log det(Sigma_e) + 2 (number of parameters) on the
estimation data. The result is converted to state space with the state
[y[k-1..k-na], u~[k-1..k-nb+1]] (not minimal, but exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import ModelError
from plant_models.identification.data import DataError, IdData
from plant_models.identification.linear_model import IdentifiedModel, delay_inputs


@dataclass(frozen=True)
class ArxFit:
    """A fitted MIMO ARX model."""

    na: int
    """Output order."""
    nb: int
    """Input order (number of B matrices)."""
    delays: tuple[int, ...]
    """Input delays nk_j, samples."""
    a: NDArray[np.float64]
    """A_1..A_na stacked, shape (na, ny, ny)."""
    b: NDArray[np.float64]
    """B_0..B_(nb-1) stacked, shape (nb, ny, nu)."""
    aic: float
    """Akaike information criterion on the estimation data."""
    aic_by_order: dict[int, float]
    """AIC of every candidate order tried."""
    model: IdentifiedModel
    """The same model in state space."""


def _regressors(u: NDArray, y: NDArray, na: int, nb: int) -> tuple[NDArray, NDArray]:
    start = max(na, nb - 1)
    n = y.shape[0]
    cols = [-y[start - lag: n - lag] for lag in range(1, na + 1)]
    cols += [u[start - lag: n - lag] for lag in range(nb)]
    return np.hstack(cols), y[start:]


def fit_arx(
    data: IdData,
    *,
    order: int | None = None,
    max_order: int = 6,
    delays: Sequence[int] | None = None,
) -> ArxFit:
    """Least-squares MIMO ARX; ``order=None`` selects na = nb in 1..max_order by AIC."""
    nu, ny = len(data.u_names), len(data.y_names)
    nk = tuple(int(d) for d in delays) if delays is not None else (1,) * nu
    if len(nk) != nu or any(d < 1 for d in nk):
        raise ModelError(f"ARX: delays must be {nu} integers >= 1 (samples), got {delays}")
    ud = delay_inputs(data.u, nk)
    orders = [order] if order is not None else list(range(1, max_order + 1))
    if any(o < 1 for o in orders):
        raise ModelError(f"ARX: order must be >= 1, got {order}")
    results: dict[int, tuple[float, NDArray]] = {}
    for n in orders:
        phi, target = _regressors(ud, data.y, n, n)
        n_par = phi.shape[1]
        if target.shape[0] < 3 * n_par:
            if order is not None:
                raise DataError(
                    f"ARX order {n}: {target.shape[0]} usable samples for {n_par} parameters per "
                    f"output; record at least {3 * n_par} samples or lower the order"
                )
            break
        theta, *_ = np.linalg.lstsq(phi, target, rcond=None)
        e = target - phi @ theta
        sigma = (e.T @ e) / e.shape[0]
        sign, logdet = np.linalg.slogdet(sigma)
        if sign <= 0:
            logdet = -np.inf
        aic = float(e.shape[0] * logdet + 2.0 * n_par * ny)
        results[n] = (aic, theta)
    if not results:
        raise DataError("ARX: too few samples for even a first-order model; record longer")
    best = min(results, key=lambda k: results[k][0])
    theta = results[best][1]
    a = np.stack([theta[(lag) * ny:(lag + 1) * ny].T for lag in range(best)])
    off = best * ny
    b = np.stack([theta[off + lag * nu: off + (lag + 1) * nu].T for lag in range(best)])
    model = _to_state_space(a, b, data, nk)
    return ArxFit(best, best, nk, a, b, results[best][0],
                  {k: v[0] for k, v in results.items()}, model)


def _to_state_space(a: NDArray, b: NDArray, data: IdData, nk: tuple[int, ...]) -> IdentifiedModel:
    na, ny, _ = a.shape
    nb, _, nu = b.shape
    nxu = (nb - 1) * nu
    nx = na * ny + nxu
    c = np.hstack([-a[lag] for lag in range(na)] + [b[lag] for lag in range(1, nb)])
    d = b[0]
    big_a = np.zeros((nx, nx))
    big_b = np.zeros((nx, nu))
    big_a[:ny] = c
    big_b[:ny] = d
    for lag in range(1, na):  # shift the y block
        big_a[lag * ny:(lag + 1) * ny, (lag - 1) * ny: lag * ny] = np.eye(ny)
    o = na * ny
    if nb > 1:
        big_b[o:o + nu] = np.eye(nu)
        for lag in range(1, nb - 1):
            big_a[o + lag * nu: o + (lag + 1) * nu, o + (lag - 1) * nu: o + lag * nu] = np.eye(nu)
    return IdentifiedModel(
        big_a, big_b, c, d, data.sample_time_s, data.u_names, data.y_names, data.u0, data.y0,
        delays=nk, u_units=data.u_units, y_units=data.y_units, method=f"arx na=nb={na}",
        info={"na": na, "nb": nb, "delays": list(nk)},
    )
