"""Numerical condensing of the stage-structured QP onto the node controls.

For problems with few controls over the horizon (column A: 2 inputs x 30
stages) and many states, eliminating the states is far cheaper than a
Riccati recursion on 84-dimensional stages: the dense QP has ``n_v`` =
(controls + slacks) x stages variables. :class:`StageCondenser` does it in
numpy from the per-node blocks the stage functions produce (forward
recursion of the state sensitivities ``dX_i = S_i v + s_i``, ``dX_0 = 0``),
and solves the dense QP with qpOASES (hot-started by CasADi between calls).
:func:`resolve_stage_qp` decides when condensing pays (the AUTO rule).
"""

from __future__ import annotations

from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import NDArray

from mpc.config import QpSolver
from mpc.solvers import _qpoases_status, _quiet_stdout
from mpc.stagewise import StageProblem
from plant_models.errors import ConfigError
from plant_models.results import SolveStatus

CONDENSE_MAX_VARIABLES = 200
"""Largest number of node controls (inputs and slacks over all stage nodes) for which
the stage-structured solver condenses; above it HPIPM solves the OCP QP."""


class StageCondenser:
    """Condense and solve the QP of a chain of nodes (stage nodes with controls, terminal
    nodes without); the row masks of the own constraints are fixed at construction."""

    def __init__(
        self,
        is_stage: NDArray[np.bool_],
        nxb: int,
        nub: int,
        keep_stage: Any,
        keep_term: Any,
        max_iter: int,
        free: NDArray[np.bool_] | None = None,
    ) -> None:
        self.is_stage = is_stage
        self.nxb, self.nub = nxb, nub
        self.n_st = int(is_stage.sum())
        self.nv = self.n_st * nub
        self.keep_stage = keep_stage
        self.keep_term = keep_term
        self.max_iter = max_iter
        self.n_rows = int(keep_stage.sum() * self.n_st + keep_term.sum() * (~is_stage).sum())
        self._st = np.flatnonzero(is_stage)
        self._tm = np.flatnonzero(~is_stage)
        self._k = np.arange(self.n_st)
        self._sens = np.zeros((is_stage.size, nxb, self.nv))
        """Node sensitivities, reused: per node only the columns of earlier controls are
        written (the rest stay zero)."""
        self.free = np.ones(self.nv, dtype=bool) if free is None else free
        """Controls the QP optimises; the others are pinned by equal bounds (e.g. the slacks of
        hard bounds from the second node on) and are eliminated before qpOASES."""
        n_free = int(self.free.sum())
        opts: dict[str, Any] = {
            "sparse": False,
            "hessian_type": "posdef",
            "printLevel": "none",
            "error_on_fail": False,
            "nWSR": max(10 * n_free, max_iter),
        }
        sp = {
            "h": ca.Sparsity.dense(n_free, n_free),
            "a": ca.Sparsity.dense(self.n_rows, n_free),
        }
        with _quiet_stdout():
            self.qp = ca.conic("mpc_stage_condensed", "qpoases", sp, opts)

    def solve(
        self,
        a_stage: NDArray[np.float64],
        c_stage: NDArray[np.float64],
        a_jump: NDArray[np.float64],
        c_jump: NDArray[np.float64],
        h_stage: NDArray[np.float64],
        q_stage: NDArray[np.float64],
        h_term: NDArray[np.float64],
        q_term: NDArray[np.float64],
        g_stage: NDArray[np.float64],
        lo_stage: NDArray[np.float64],
        hi_stage: NDArray[np.float64],
        g_term: NDArray[np.float64],
        lo_term: NDArray[np.float64],
        hi_term: NDArray[np.float64],
        lbv: NDArray[np.float64],
        ubv: NDArray[np.float64],
    ) -> tuple[SolveStatus, str, int, NDArray[np.float64] | None, NDArray[np.float64] | None]:
        """Condense and solve; returns status, message, iterations, dX (nodes, nxb), v.

        ``a_stage`` (n_st, nxb, nxb+nub) and ``c_stage`` (n_st, nxb) give
        ``dX_next = a [dX; dU] + c``; ``a_jump``/``c_jump`` the same for terminal nodes
        followed by another scenario. Rows: ``lo <= g [dX; dU] <= hi``.
        """
        nxb, nub, nv = self.nxb, self.nub, self.nv
        is_stage = self.is_stage
        n_nodes = is_stage.size
        # forward recursion of the node sensitivities dX_i = S_i v + O_i (S_i is zero beyond
        # the controls before node i; those columns of the buffer are never written)
        sens, off = self._sens, np.zeros((n_nodes, nxb))
        a_i = b_i = 0
        for i in range(n_nodes - 1):
            act = a_i * nub
            if is_stage[i]:
                amat = a_stage[a_i]
                ax = amat[:, :nxb]
                if act:
                    sens[i + 1, :, :act] = ax @ sens[i, :, :act]
                sens[i + 1, :, act : act + nub] = amat[:, nxb:]
                off[i + 1] = ax @ off[i] + c_stage[a_i]
                a_i += 1
            else:
                if b_i < a_jump.shape[0]:
                    sens[i + 1, :, :act] = a_jump[b_i] @ sens[i, :, :act]
                    off[i + 1] = a_jump[b_i] @ off[i] + c_jump[b_i]
                b_i += 1
        # cost and rows, all nodes of a kind at once
        st, tm = self._st, self._tm
        n_st, k = st.size, self._k
        s_st, o_st = sens[st], off[st]
        hxx, hxu, huu = h_stage[:, :nxb, :nxb], h_stage[:, :nxb, nxb:], h_stage[:, nxb:, nxb:]
        hc = np.zeros((nv, nv))
        qc = np.zeros(nv)
        blocks = hc.reshape(n_st, nub, n_st, nub)  # view: [stage, ., stage, .] blocks
        blocks[k, :, k, :] += huu
        qc += (np.einsum("kiu,ki->ku", hxu, o_st) + q_stage[:, nxb:]).ravel()
        qc += np.einsum("kiv,ki->v", s_st, np.einsum("kij,kj->ki", hxx, o_st) + q_stage[:, :nxb])
        nz = np.flatnonzero(np.any(hxx != 0.0, axis=(0, 1)) | np.any(hxx != 0.0, axis=(0, 2)))
        if nz.size:  # tracked states only
            sz = s_st[:, nz, :]
            hz = sz.reshape(-1, nv).T @ (hxx[:, nz][:, :, nz] @ sz).reshape(-1, nv)
            hc += hz
        nzc = np.flatnonzero(np.any(hxu != 0.0, axis=(0, 2)))
        if nzc.size:  # cross terms: column block of stage k gets S_k' hxu_k
            cross = np.einsum("kiv,kiu->vku", s_st[:, nzc, :], hxu[:, nzc, :]).reshape(nv, nv)
            hc += cross
            hc += cross.T
        rows: list[NDArray[np.float64]] = []
        lo: list[NDArray[np.float64]] = []
        hi: list[NDArray[np.float64]] = []
        g = g_stage[:, self.keep_stage]
        if g.shape[1]:
            gx = g[:, :, :nxb]
            row = np.einsum("kri,kiv->krv", gx, s_st)
            row.reshape(n_st, -1, n_st, nub)[k, :, k, :] += g[:, :, nxb:]
            shift = np.einsum("kri,ki->kr", gx, o_st)
            rows.append(row.reshape(-1, nv))
            lo.append((lo_stage[:, self.keep_stage] - shift).ravel())
            hi.append((hi_stage[:, self.keep_stage] - shift).ravel())
        if tm.size:
            s_tm, o_tm = sens[tm], off[tm]
            nzt = np.flatnonzero(
                np.any(h_term != 0.0, axis=(0, 1)) | np.any(h_term != 0.0, axis=(0, 2))
            )
            if nzt.size:
                sz = s_tm[:, nzt, :]
                hc += sz.reshape(-1, nv).T @ (h_term[:, nzt][:, :, nzt] @ sz).reshape(-1, nv)
            qc += np.einsum("kiv,ki->v", s_tm, np.einsum("kij,kj->ki", h_term, o_tm) + q_term)
            gt = g_term[:, self.keep_term]
            if gt.shape[1]:
                rows.append(np.einsum("kri,kiv->krv", gt, s_tm).reshape(-1, nv))
                shift = np.einsum("kri,ki->kr", gt, o_tm)
                lo.append((lo_term[:, self.keep_term] - shift).ravel())
                hi.append((hi_term[:, self.keep_term] - shift).ravel())
        hc = 0.5 * (hc + hc.T)
        amat_c = np.vstack(rows) if rows else np.zeros((0, nv))
        lba = np.concatenate(lo) if lo else np.zeros(0)
        uba = np.concatenate(hi) if hi else np.zeros(0)
        fr = self.free
        fx = ~fr
        dv_fix = lbv[fx]
        shift_a = amat_c[:, fx] @ dv_fix
        sol = self.qp(
            h=hc[np.ix_(fr, fr)],
            g=qc[fr] + hc[np.ix_(fr, fx)] @ dv_fix,
            a=amat_c[:, fr],
            lba=lba - shift_a,
            uba=uba - shift_a,
            lbx=lbv[fr],
            ubx=ubv[fr],
        )
        stats = self.qp.stats()
        status, message = _qpoases_status(stats)
        iters = int(stats.get("iter_count", 0) or 0)
        if not status.usable:
            return status, message, iters, None, None
        v = np.empty(nv)
        v[fr] = np.asarray(sol["x"], dtype=float).reshape(-1)
        v[fx] = dv_fix
        dx = sens @ v + off
        return status, message, iters, dx, v


def resolve_stage_qp(sp: StageProblem) -> QpSolver:
    """QP method of the stage-structured solver: ``MpcConfig.qp_solver``, AUTO resolved.

    AUTO condenses (qpOASES, dense) when the free node controls (inputs and slacks of all
    stage nodes not pinned by equal bounds) are at most
    :data:`mpc.stage_condensing.CONDENSE_MAX_VARIABLES` and the constraint rows over the
    horizon are no more than those controls: the condensed QP is then small whatever the
    number of states (column A: 60 variables, no rows, for 84 states per stage, where
    HPIPM's Riccati recursion costs ~nx^3 per stage and iteration). Otherwise (robust
    trees, long horizons, many inputs, many hard or soft output rows such as
    industrial_poly's 17 per stage, where dense qpOASES measured 10x slower than HPIPM)
    HPIPM solves the OCP QP, linear in the number of nodes.
    """
    choice = sp.config.qp_solver
    if choice is QpSolver.CONDENSED_DAQP:
        raise ConfigError(
            "qp_solver: 'condensed_daqp' needs the whole-horizon transcription "
            '(transcription = "whole_horizon" or "auto" on a small '
            "nominal problem)"
        )
    if choice is not QpSolver.AUTO:
        return choice
    nv = int(free_controls(sp).sum())
    rows = int((np.isfinite(sp.lbg_stage) | np.isfinite(sp.ubg_stage)).sum()) + int(
        (np.isfinite(sp.lbg_term) | np.isfinite(sp.ubg_term)).sum()
    )
    small = nv <= CONDENSE_MAX_VARIABLES and rows <= nv
    return QpSolver.CONDENSED_QPOASES if small else QpSolver.HPIPM


def free_controls(sp: StageProblem) -> NDArray[np.bool_]:
    """Per node control (stage nodes, in order): False where equal bounds pin it."""
    off = sp.node_offsets[np.flatnonzero(sp.is_stage)]
    idx = (off[:, None] + sp.nxb + np.arange(sp.nub)[None, :]).ravel()
    return np.asarray(sp.lbw[idx] != sp.ubw[idx])
