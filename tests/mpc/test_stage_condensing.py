"""StageCondenser's batched condensing against the plain per-node recursion.

The reference below is the textbook forward condensing, node by node (the form the
condenser had before its cost and rows were evaluated for all nodes of a kind at once): a
chain of two scenarios (stage nodes, a terminal node with a jump to the next scenario's
start, stage nodes, a terminal node), tracked states only in the Hessians, cross terms,
kept rows on stage and terminal nodes, and a pinned control. The QP handed to qpOASES must
be the same matrices, and the step the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpc.stage_condensing import StageCondenser

NXB, NUB = 5, 2
IS_STAGE = np.array([True, True, True, False, True, True, True, False])
KEEP_STAGE = np.array([True, False, True])
KEEP_TERM = np.array([False, True])


def _data(rng: np.random.Generator) -> tuple[Any, ...]:
    n_st, n_tm = int(IS_STAGE.sum()), int((~IS_STAGE).sum())
    nz = NXB + NUB
    a_stage = 0.5 * rng.standard_normal((n_st, NXB, nz))
    c_stage = rng.standard_normal((n_st, NXB))
    a_jump = 0.5 * rng.standard_normal((1, NXB, NXB))
    c_jump = rng.standard_normal((1, NXB))
    h_stage = np.zeros((n_st, nz, nz))
    for k in range(n_st):
        m = rng.standard_normal((nz, nz))
        h = m @ m.T + nz * np.eye(nz)
        h[[0, 2, 4], :NXB] = 0.0  # states 1 and 3 tracked only
        h[:NXB, [0, 2, 4]] = 0.0
        h[[0, 2, 4], NXB:] = 0.0
        h[NXB:, [0, 2, 4]] = 0.0
        h_stage[k] = h
    q_stage = rng.standard_normal((n_st, nz))
    h_term = np.zeros((n_tm, NXB, NXB))
    h_term[:, 1, 1] = 3.0
    h_term[:, 3, 3] = 2.0
    q_term = rng.standard_normal((n_tm, NXB))
    g_stage = rng.standard_normal((n_st, 3, nz))
    lo_stage = -5.0 - rng.random((n_st, 3))
    hi_stage = 5.0 + rng.random((n_st, 3))
    g_term = rng.standard_normal((n_tm, 2, NXB))
    lo_term = -5.0 - rng.random((n_tm, 2))
    hi_term = 5.0 + rng.random((n_tm, 2))
    nv = n_st * NUB
    lbv, ubv = -np.ones(nv), np.ones(nv)
    lbv[3] = ubv[3] = 0.25  # pinned
    return (
        a_stage,
        c_stage,
        a_jump,
        c_jump,
        h_stage,
        q_stage,
        h_term,
        q_term,
        g_stage,
        lo_stage,
        hi_stage,
        g_term,
        lo_term,
        hi_term,
        lbv,
        ubv,
    )


def _reference(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Hc, qc, A (stage rows, then terminal rows), lba, uba and the node maps (S_i, O_i)."""
    (
        a_stage,
        c_stage,
        a_jump,
        c_jump,
        h_stage,
        q_stage,
        h_term,
        q_term,
        g_stage,
        lo_stage,
        hi_stage,
        g_term,
        lo_term,
        hi_term,
        _,
        _,
    ) = args
    nv = int(IS_STAGE.sum()) * NUB
    hc, qc = np.zeros((nv, nv)), np.zeros(nv)
    rows: dict[bool, list[Any]] = {True: [], False: []}
    sens, off = np.zeros((NXB, nv)), np.zeros(NXB)
    maps = []
    a_i = b_i = 0
    for stage in IS_STAGE:
        maps.append((sens, off))
        if stage:
            e = np.zeros((NUB, nv))
            e[:, a_i * NUB : (a_i + 1) * NUB] = np.eye(NUB)
            big = np.vstack([sens, e])  # [dX; dU] = big v + [off; 0]
            shift = np.concatenate([off, np.zeros(NUB)])
            h = h_stage[a_i]
            hc += big.T @ h @ big
            qc += big.T @ (h @ shift + q_stage[a_i])
            g = g_stage[a_i][KEEP_STAGE]
            rows[True].append(
                (
                    g @ big,
                    lo_stage[a_i][KEEP_STAGE] - g @ shift,
                    hi_stage[a_i][KEEP_STAGE] - g @ shift,
                )
            )
            a = a_stage[a_i]
            sens, off = a @ big, a @ shift + c_stage[a_i]
            a_i += 1
        else:
            h = h_term[b_i]
            hc += sens.T @ h @ sens
            qc += sens.T @ (h @ off + q_term[b_i])
            g = g_term[b_i][KEEP_TERM]
            rows[False].append(
                (g @ sens, lo_term[b_i][KEEP_TERM] - g @ off, hi_term[b_i][KEEP_TERM] - g @ off)
            )
            if b_i < a_jump.shape[0]:
                sens, off = a_jump[b_i] @ sens, a_jump[b_i] @ off + c_jump[b_i]
            b_i += 1
    both = rows[True] + rows[False]
    amat = np.vstack([r for r, _, _ in both])
    return (
        hc,
        qc,
        amat,
        np.concatenate([lo for _, lo, _ in both]),
        np.concatenate([hi for _, _, hi in both]),
        maps,
    )


class _Recorder:
    """Stands between the condenser and its qpOASES conic: keeps what it was given."""

    def __init__(self, qp: Any) -> None:
        self.qp, self.given = qp, {}

    def __call__(self, **kw: Any) -> Any:
        self.given = {k: np.asarray(v, dtype=float) for k, v in kw.items()}
        return self.qp(**kw)

    def stats(self) -> dict[str, Any]:
        return dict(self.qp.stats())


def test_batched_condensing_equals_the_per_node_recursion() -> None:
    rng = np.random.default_rng(7)
    args = _data(rng)
    lbv = args[-2]
    free = lbv != args[-1]
    cond = StageCondenser(IS_STAGE, NXB, NUB, KEEP_STAGE, KEEP_TERM, 100, free)
    rec = _Recorder(cond.qp)
    cond.qp = rec
    for _ in range(2):  # the second call reuses the sensitivity buffer
        status, _, _, dx, v = cond.solve(*args)
        assert status.usable and dx is not None and v is not None
        hc, qc, amat, lba, uba, maps = _reference(args)
        fx = ~free
        shift = amat[:, fx] @ lbv[fx]
        given = rec.given
        np.testing.assert_allclose(given["h"], hc[np.ix_(free, free)], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            given["g"].ravel(), qc[free] + hc[np.ix_(free, fx)] @ lbv[fx], rtol=1e-12, atol=1e-12
        )
        np.testing.assert_allclose(given["a"], amat[:, free], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(given["lba"].ravel(), lba - shift, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(given["uba"].ravel(), uba - shift, rtol=1e-12, atol=1e-12)
        # the state steps follow from the controls through the same maps
        want = np.stack([s @ v + o for s, o in maps])
        np.testing.assert_allclose(dx, want, rtol=1e-12, atol=1e-12)
        assert v[3] == 0.25
