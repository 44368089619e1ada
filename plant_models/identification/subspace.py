"""Subspace identification of a MIMO state-space model (past-output MOESP, N4SID family).

Algorithm (Verhaegen, "Identification of the deterministic part of MIMO state
space models given in innovations form from input-output data", Automatica 30
(1994) 61-74; the same Hankel/LQ/SVD structure as N4SID in Van Overschee & De
Moor, Subspace Identification for Linear Systems, Kluwer 1996):

1. block Hankel matrices of past/future inputs and outputs with s block rows;
2. LQ factorisation of [U_f; U_p; Y_p; Y_f];
3. SVD of the part of Y_f explained by the past data (instrument [U_p; Y_p]),
   whose dominant left singular vectors span the extended observability
   matrix Gamma_s; the order is the number of singular values kept;
4. C from the first block row of Gamma_s, A from its shift invariance;
5. B, D and the initial state by linear least squares on the output equation.

Order selection (``order=None``): every order 1..max_order is estimated on
the first 70 % of the data and simulated on the last 30 %. Two pieces of
evidence are combined:

- the simulation error ``e_n = 100 - fit_n`` (fit in %, mean over outputs):
  orders with ``e_n <= (1 + order_rel_tolerance) * e_best + order_abs_tolerance``
  qualify (a *relative* tolerance, since the error floor is set by the noise);
- the singular values of step 3: the orders whose singular value exceeds
  ``sv_floor_ratio`` x the noise floor (the first singular value beyond
  ``max_order``, at least 1e-3 x the largest: noise-free simulated data have no
  floor) are significant.

The order is the smallest qualifying order that is not below the number of
significant singular values (the smallest qualifying one if none is). The
validation fit alone cannot see a fast mode with a small share of the output:
on the quadruple tank (4 states) order 3 misses order 4's fit by 0.02-0.8
points depending on the record, and the earlier rule (smallest order within
1 fit point of the best) chose 3, with a 2.2-3 % gain error and one zero
instead of two; the 4th singular value stands 5-7 x above the noise floor.
Then the model is re-estimated on all data.

Independent records (``IdData.segments``: several tests, or back-off periods
cut out) are handled as in multi-experiment subspace identification: their
Hankel columns are put side by side and every record gets its own initial
state in the least-squares step for B and D.

Input dead times (samples) can be given;
the inputs are shifted before identification and the delays kept in the model.
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
class SubspaceFit:
    """A subspace-identified model and how its order was chosen."""

    model: IdentifiedModel
    """The model (deviation variables, with dead times)."""
    order: int
    """State dimension."""
    singular_values: NDArray[np.float64]
    """Singular values of step 3 (order evidence), largest first."""
    validation_fit_by_order: dict[int, float]
    """Mean validation fit (%) per candidate order (empty if the order was given)."""


def _hankel(w: NDArray, start: int, rows: int, cols: int) -> NDArray:
    return np.vstack([w[start + i : start + i + cols].T for i in range(rows)])


def _ac_and_sv(
    u: NDArray, y: NDArray, s: int, n_max: int, bounds: list[tuple[int, int]]
) -> tuple[NDArray, NDArray]:
    """Gamma_s basis (first n_max columns scaled) and the singular values; the Hankel
    columns of every independent record (``bounds``) side by side."""
    m = u.shape[1]
    ell = y.shape[1]
    blocks = []
    for lo, hi in bounds:
        j = hi - lo - 2 * s + 1
        if j < 1:
            continue
        us, ys = u[lo:hi], y[lo:hi]
        blocks.append(
            np.vstack(
                [
                    _hankel(us, s, s, j),
                    _hankel(us, 0, s, j),
                    _hankel(ys, 0, s, j),
                    _hankel(ys, s, s, j),
                ]
            )
        )
    if not blocks:
        raise DataError(f"n4sid: every record is shorter than {2 * s} samples")
    z = np.hstack(blocks)
    z = z / np.sqrt(z.shape[1])
    r = np.asarray(np.linalg.qr(z.T, mode="r"))
    low = r.T
    a, b = s * m, s * m + s * (m + ell)
    l32 = low[b:, a:b]
    uu, sv, _ = np.linalg.svd(l32, full_matrices=False)
    return uu[:, :n_max] * np.sqrt(sv[:n_max]), sv


def _ac_from_gamma(gamma: NDArray, ell: int, n: int) -> tuple[NDArray, NDArray]:
    g = gamma[:, :n]
    c = g[:ell]
    a = np.linalg.lstsq(g[:-ell], g[ell:], rcond=None)[0]
    return a, c


def _bd_x0(
    a: NDArray,
    c: NDArray,
    u: NDArray,
    y: NDArray,
    feedthrough: bool,
    bounds: list[tuple[int, int]] | None = None,
    constraints: NDArray | None = None,
) -> tuple[NDArray, NDArray, list[NDArray]]:
    """Least squares for B, D and one x0 per record given A, C:
    y[k] = C A^k x0 + sum C A^(k-1-t) B u[t] + D u[k].

    ``constraints`` (G, shape (k, n*m)) adds ``G vec(B) = 0`` with vec(B) the columns of B
    one after the other (gain ratios and fixed gains are linear in B for given A, C)."""
    n = a.shape[0]
    n_samp, m = u.shape
    ell = y.shape[1]
    bounds = bounds or [(0, n_samp)]
    n_rec = len(bounds)
    rows = []
    for r, (lo, hi) in enumerate(bounds):
        length = hi - lo
        cols = [np.zeros((length * ell, n)) for _ in range(n_rec)]
        x = np.eye(n)
        obs = np.empty((length, ell, n))
        for k in range(length):
            obs[k] = c @ x
            x = a @ x
        cols[r] = obs.reshape(length * ell, n)
        for q in range(m):  # B columns: response to B = e_r e_q^T
            resp = np.empty((length, ell, n))
            xs = np.zeros((n, n))
            for k in range(length):
                resp[k] = c @ xs
                xs = a @ xs + np.eye(n) * u[lo + k, q]
            cols.append(resp.reshape(length * ell, n))
        if feedthrough:
            for q in range(m):
                blk = np.zeros((length, ell, ell))
                blk[:, np.arange(ell), np.arange(ell)] = u[lo:hi, q][:, None]
                cols.append(blk.reshape(length * ell, ell))
        rows.append(np.hstack(cols))
    phi = np.vstack(rows)
    rhs = np.concatenate([y[lo:hi].reshape(-1) for lo, hi in bounds])
    if constraints is not None and constraints.size:
        g = np.zeros((constraints.shape[0], phi.shape[1]))
        g[:, n_rec * n : n_rec * n + n * m] = constraints
        _, sv, vt = np.linalg.svd(g)
        rank = int(np.sum(sv > 1e-12 * max(sv[0], 1e-300)))
        null = vt[rank:].T  # theta = null @ z satisfies g theta = 0
        theta = null @ np.linalg.lstsq(phi @ null, rhs, rcond=None)[0]
    else:
        theta = np.linalg.lstsq(phi, rhs, rcond=None)[0]
    x0s = [theta[r * n : (r + 1) * n] for r in range(n_rec)]
    off = n_rec * n
    bmat = theta[off : off + n * m].reshape(m, n).T
    dmat = theta[off + n * m :].reshape(m, ell).T if feedthrough else np.zeros((ell, m))
    return bmat, dmat, x0s


def _validation_fit(
    a: NDArray,
    b: NDArray,
    c: NDArray,
    d: NDArray,
    u: NDArray,
    y: NDArray,
    est: list[tuple[int, int]],
    val: list[tuple[int, int]],
    x0s: list[NDArray],
    starts: set[int],
) -> float:
    """Fit on the held-back records: a record that continues the last estimation record starts
    from its state, the others from their best-fitting initial state."""
    y_hat = []
    for lo, hi in val:
        if est and est[-1][1] == lo and lo not in starts:
            e_lo, e_hi = est[-1]
            x = _state_at(a, b, u[e_lo:e_hi], x0s[-1])
            y_hat.append(_simulate(a, b, c, d, u[lo:hi], x))
        else:
            forced = _simulate(a, b, c, d, u[lo:hi], np.zeros(a.shape[0]))
            _, _, x0 = _bd_x0(a, c, np.zeros((hi - lo, 0)), y[lo:hi] - forced, False)
            y_hat.append(
                forced
                + _simulate(
                    a,
                    np.zeros((a.shape[0], 0)),
                    c,
                    np.zeros((c.shape[0], 0)),
                    np.zeros((hi - lo, 0)),
                    x0[0],
                )
            )
    return _fit(np.vstack([y[lo:hi] for lo, hi in val]), np.vstack(y_hat))


def _fit(y: NDArray, yhat: NDArray) -> float:
    num = np.linalg.norm(y - yhat, axis=0)
    den = np.maximum(np.linalg.norm(y - y.mean(axis=0), axis=0), 1e-300)
    return float(np.mean(100.0 * (1.0 - num / den)))


def _simulate(a: NDArray, b: NDArray, c: NDArray, d: NDArray, u: NDArray, x0: NDArray) -> NDArray:
    x = x0.copy()
    out = np.empty((u.shape[0], c.shape[0]))
    for k in range(u.shape[0]):
        out[k] = c @ x + d @ u[k]
        x = a @ x + b @ u[k]
    return out


def n4sid(
    data: IdData,
    *,
    order: int | None = None,
    max_order: int = 8,
    block_rows: int | None = None,
    delays: Sequence[int] | None = None,
    feedthrough: bool = False,
    order_rel_tolerance: float = 0.1,
    order_abs_tolerance: float = 0.1,
    sv_floor_ratio: float = 3.0,
) -> SubspaceFit:
    """Identify a discrete state-space model from ``data`` (see the module docstring)."""
    if not (order_rel_tolerance >= 0 and order_abs_tolerance >= 0):
        raise ModelError("n4sid: order tolerances must be >= 0")
    nu, ny = len(data.u_names), len(data.y_names)
    dl = tuple(int(d) for d in delays) if delays is not None else (0,) * nu
    if len(dl) != nu or any(d < 0 for d in dl):
        raise ModelError(f"n4sid: delays must be {nu} integers >= 0, got {delays}")
    bounds = data.bounds()
    u = np.vstack([delay_inputs(data.u[lo:hi], dl) for lo, hi in bounds])
    y = data.y
    s = block_rows if block_rows is not None else max(2 * max_order // max(ny, 1) + 2, 10)
    n_cand = order if order is not None else max_order
    if n_cand < 1 or n_cand > s * ny:
        raise ModelError(f"n4sid: order {n_cand} must be in 1..{s * ny} (block_rows x outputs)")
    need = 2 * s + 10 * s * (nu + ny)
    if data.n_samples < need:
        raise DataError(
            f"n4sid: {data.n_samples} samples are too few for {s} block rows (need about {need}); "
            f"record longer or pass a smaller block_rows"
        )
    scores: dict[int, float] = {}
    if order is None:
        k = int(0.7 * data.n_samples)
        est = [(lo, min(hi, k)) for lo, hi in bounds if lo < k]
        val = [(max(lo, k), hi) for lo, hi in bounds if hi > k]
        gamma, sv_est = _ac_and_sv(u, y, s, max_order, est)
        for n in range(1, max_order + 1):
            a, c = _ac_from_gamma(gamma, ny, n)
            b, d, x0s = _bd_x0(a, c, u, y, feedthrough, est)
            scores[n] = _validation_fit(a, b, c, d, u, y, est, val, x0s, set(data.segments))
        n_sv = significant_order(sv_est, max_order, sv_floor_ratio)
        order = select_order(scores, order_rel_tolerance, order_abs_tolerance, n_sv)
    gamma, sv = _ac_and_sv(u, y, s, order, bounds)
    a, c = _ac_from_gamma(gamma, ny, order)
    b, d, _ = _bd_x0(a, c, u, y, feedthrough, bounds)
    model = IdentifiedModel(
        a,
        b,
        c,
        d,
        data.sample_time_s,
        data.u_names,
        data.y_names,
        data.u0,
        data.y0,
        delays=dl,
        u_units=data.u_units,
        y_units=data.y_units,
        method=f"subspace (PO-MOESP) order {order}",
        info={
            "order": order,
            "block_rows": s,
            "singular_values": [float(v) for v in sv[: min(len(sv), 12)]],
            "validation_fit_by_order": {str(k): v for k, v in scores.items()},
        },
    )
    return SubspaceFit(model, order, sv, scores)


def select_order(
    fit_by_order: dict[int, float],
    rel_tolerance: float = 0.1,
    abs_tolerance: float = 0.1,
    min_order: int = 0,
) -> int:
    """Smallest order whose validation error (100 - fit %) is within the tolerances of the
    best, and not below ``min_order`` when such an order qualifies."""
    finite = {n: v for n, v in fit_by_order.items() if np.isfinite(v)}
    if not finite:
        raise ModelError("n4sid: no candidate order gave a finite validation fit")
    err = {n: 100.0 - v for n, v in finite.items()}
    best = min(err.values())
    ok = [n for n, e in err.items() if e <= (1.0 + rel_tolerance) * best + abs_tolerance]
    return min([n for n in ok if n >= min_order] or ok)


def significant_order(singular_values: NDArray, max_order: int, floor_ratio: float) -> int:
    """Number of singular values above ``floor_ratio`` x the noise floor, taken as the first
    singular value beyond ``max_order`` (orders above the candidates are noise by assumption)
    but at least 1e-3 x the largest; 0 when there is none."""
    if singular_values.size <= max_order or floor_ratio <= 0:
        return 0
    # noise-free (simulated) data have no noise floor: there, modes below 1e-3 of the largest
    # singular value (nonlinearity, numerical dust) do not count either
    floor = max(float(singular_values[max_order]), 1e-3 * float(singular_values[0]))
    return int(np.sum(singular_values[:max_order] > floor_ratio * floor))


def _state_at(a: NDArray, b: NDArray, u: NDArray, x0: NDArray) -> NDArray:
    x = x0.copy()
    for k in range(u.shape[0]):
        x = a @ x + b @ u[k]
    return x
