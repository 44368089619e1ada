"""Condensing of the RTI's stage-structured QP onto the node controls.

The RTI QP (:func:`mpc.solvers._condensed_qp_data`) is written in the core
variables ``dz`` (node states and node controls, collocation states already
eliminated). Its gap rows ``A_i dX_i + B_i dU_i - dX_{i+1} = b_i`` give every
node state as an affine function of the free variables ``v`` (all node
controls: inputs and slacks), ``dz = M v + m``, with the first node's state
fixed by its bounds (initial state and previous input). Substituting gives the
dense QP::

    min 1/2 v' (M'HM) v + (M'(Hm + q))' v
    s.t. lba_o - A_o m <= A_o M v <= uba_o - A_o m,   lbx_v <= v <= ubx_v

where ``o`` are the other (non-gap) rows. :func:`condensed_functions` builds
one MX function that condenses the sparse QP data (forward recursion of the
state sensitivities, sparse block products), and one function that maps ``v`` back to the new iterate and the
trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np
from numpy.typing import NDArray

from mpc.config import QpSolver
from mpc.ocp import Ocp
from plant_models.errors import ConfigError


@dataclass(frozen=True)
class CoreLayout:
    """Where the node blocks sit in ``dz`` (core variables) and in the reduced constraint rows."""

    x_cols: list[NDArray[np.int64]]
    """Per node: positions of its state block in ``dz``."""
    u_cols: list[NDArray[np.int64]]
    """Per node but the last: positions of its (non-collocation) control block in ``dz``."""
    gap_rows: list[NDArray[np.int64]]
    """Per node but the last: its gap rows in the reduced constraint matrix."""
    other_rows: NDArray[np.int64]
    """The remaining (stage) rows of the reduced constraint matrix."""
    n_core: int
    """Length of ``dz``."""


def core_layout(ocp: Ocp) -> CoreLayout:
    """Node blocks of ``dz`` and of the reduced rows (gap rows first in each node's block)."""
    pos_in_core = np.full(ocp.nw, -1, dtype=int)
    pos_in_core[ocp.idx_core] = np.arange(ocp.idx_core.size)
    off = ocp.stage_offsets
    n_nodes = len(ocp.nx_stage)
    x_cols, u_cols, gap_rows = [], [], []
    other: list[int] = []
    row = 0
    for i in range(n_nodes):
        nxb = ocp.nx_stage[i]
        x_cols.append(pos_in_core[off[i]:off[i] + nxb])
        if i < n_nodes - 1:
            blk = pos_in_core[off[i] + nxb:off[i + 1]]
            u_cols.append(blk[blk >= 0])
            gap_rows.append(np.arange(row, row + nxb))
            row += nxb
            n_own = ocp.ng_stage[i] - ocp.colloc_stage[i]
        else:
            n_own = ocp.ng_stage[i]
        other += list(range(row, row + n_own))
        row += n_own
    return CoreLayout(x_cols, u_cols, gap_rows, np.array(other, dtype=int), int(ocp.idx_core.size))


def _check_structure(ocp: Ocp, lay: CoreLayout, a_sp: ca.Sparsity) -> None:
    """The condensing needs free node states (no bounds) and gap rows local to two nodes."""
    x0_pinned = ocp.lbw[: ocp.nx_stage[0]] == ocp.ubw[: ocp.nx_stage[0]]
    pinned = set(ocp.idx_x0.tolist()) | set(ocp.idx_ul0.tolist()) | set(
        np.flatnonzero(x0_pinned).tolist())
    if len(pinned) != ocp.nx_stage[0]:
        raise ConfigError("qp_solver: condensing needs the whole first node state fixed")
    core_lb = ocp.lbw[ocp.idx_core]
    core_ub = ocp.ubw[ocp.idx_core]
    for cols in lay.x_cols[1:]:
        if np.any(np.isfinite(core_lb[cols])) or np.any(np.isfinite(core_ub[cols])):
            raise ConfigError("qp_solver: condensing needs node states without bounds")
    trip_rows, trip_cols = a_sp.get_triplet()
    rows_a, cols_a = np.array(trip_rows), np.array(trip_cols)
    for i, g_rows in enumerate(lay.gap_rows):
        allowed = set(lay.x_cols[i].tolist()) | set(lay.u_cols[i].tolist()) | set(
            lay.x_cols[i + 1].tolist())
        used = set(cols_a[np.isin(rows_a, g_rows)].tolist())
        if not used <= allowed:
            raise ConfigError(f"qp_solver: gap rows of node {i} reach beyond nodes {i}, {i + 1}")


CONDENSED_MAX_VARIABLES = 150
"""Largest number of free variables (node controls) :attr:`QpSolver.AUTO` condenses."""


def resolve_qp_solver(ocp: Ocp) -> QpSolver:
    """The QP method ``ocp.config.qp_solver`` stands for (AUTO resolved; see :class:`QpSolver`)."""
    choice = ocp.config.qp_solver
    if choice is QpSolver.PIQP:
        raise ConfigError("qp_solver: 'piqp' needs the stage transcription "
                          "(transcription = \"stagewise\" or \"auto\")")
    if choice is not QpSolver.AUTO:
        return choice
    lay = core_layout(ocp)
    n_free = sum(int(c.size) for c in lay.u_cols)
    if ocp.n_scenarios > 1 or n_free > CONDENSED_MAX_VARIABLES:
        return QpSolver.HPIPM
    core_lb = ocp.lbw[ocp.idx_core]
    core_ub = ocp.ubw[ocp.idx_core]
    for cols in lay.x_cols[1:]:
        if np.any(np.isfinite(core_lb[cols])) or np.any(np.isfinite(core_ub[cols])):
            return QpSolver.HPIPM
    return QpSolver.CONDENSED_DAQP


def condensed_functions(
    ocp: Ocp, qp_data: ca.Function, post: ca.Function,
) -> tuple[ca.Function, ca.Function]:
    """``(condense, expand)`` from the sparse QP functions of the RTI solver.

    ``condense(H, q, A, lba, uba, lbx, ubx) -> (Hc, qc, Ac, lbac, ubac, lbv, ubv, M, m)``
    takes the first seven outputs of ``qp_data`` (the solver chains the two; each can be
    compiled on its own: the condensing expands to scalar code, ``qp_data`` holds a
    numeric linear solve that cannot);
    ``expand(w, v, M, m, T, t, P) -> (w+, X, U, Y, f, viol, |dz|_inf)``.
    ``qp_data`` and ``post`` must be the symbolic (not compiled) functions.
    """
    lay = core_layout(ocp)
    a_sp = qp_data.sparsity_out(2)
    _check_structure(ocp, lay, a_sp)
    n_nodes = len(ocp.nx_stage)
    ins = [ca.MX.sym(qp_data.name_out(i), qp_data.sparsity_out(i)) for i in range(7)]
    hess, grad, a, lba, uba, lbx, ubx = ins
    tmat_sp, n_t = qp_data.sparsity_out(7), qp_data.nnz_out(8)
    v_cols = np.concatenate(lay.u_cols) if lay.u_cols else np.zeros(0, dtype=int)
    nv = int(v_cols.size)
    v_start = np.cumsum([0] + [c.size for c in lay.u_cols])
    # forward recursion of the node-state sensitivities dX_i = S_i v + s_i
    nxb0 = ocp.nx_stage[0]
    sens = ca.MX(nxb0, nv)
    offset = lbx[lay.x_cols[0].tolist()]
    blocks_m: list[tuple[ca.MX, ca.MX]] = [(sens, offset)]
    for i in range(n_nodes - 1):
        g_rows = lay.gap_rows[i].tolist()
        ai = a[g_rows, lay.x_cols[i].tolist()]
        nui = int(lay.u_cols[i].size)
        bi = a[g_rows, lay.u_cols[i].tolist()] if nui else ca.MX(len(g_rows), 0)
        bfull = ca.horzcat(ca.MX(len(g_rows), int(v_start[i])), bi,
                           ca.MX(len(g_rows), nv - int(v_start[i]) - nui))
        sens = ca.mtimes(ai, sens) + bfull
        offset = ca.mtimes(ai, offset) - lba[g_rows]
        blocks_m.append((sens, offset))
    # assemble M, m in dz order
    m_parts: list[ca.MX] = []
    s_parts: list[ca.MX] = []
    eye_v = ca.DM.eye(nv) if nv else ca.DM(0, 0)
    for i in range(n_nodes):
        sm, sv = blocks_m[i]
        m_parts.append(sm)
        s_parts.append(sv)
        if i < n_nodes - 1 and lay.u_cols[i].size:
            sel = eye_v[int(v_start[i]):int(v_start[i + 1]), :]
            m_parts.append(ca.MX(ca.sparsify(sel)))
            s_parts.append(ca.MX(int(lay.u_cols[i].size), 1))
    order = np.concatenate([np.concatenate([lay.x_cols[i], lay.u_cols[i]])
                            if i < n_nodes - 1 else lay.x_cols[i] for i in range(n_nodes)])
    if not np.array_equal(order, np.arange(lay.n_core)):
        raise ConfigError("qp_solver: unexpected ordering of the core variables")
    mmat = ca.vertcat(*m_parts)
    mvec = ca.vertcat(*s_parts)
    hm = ca.mtimes(hess, mmat)
    hc = ca.mtimes(mmat.T, hm)
    hc = 0.5 * (hc + hc.T)
    qc = ca.mtimes(mmat.T, ca.mtimes(hess, mvec) + grad)
    o = lay.other_rows.tolist()
    a_o = a[o, :]
    ac = ca.mtimes(a_o, mmat)
    a_m = ca.mtimes(a_o, mvec)
    lbac = lba[o] - a_m
    ubac = uba[o] - a_m
    lbv = lbx[v_cols.tolist()]
    ubv = ubx[v_cols.tolist()]
    condense = ca.Function(
        "mpc_qp_condense", ins,
        [hc, ca.densify(qc), ac, ca.densify(lbac), ca.densify(ubac), ca.densify(lbv),
         ca.densify(ubv), mmat, ca.densify(mvec)])

    ws = ca.SX.sym("w", ocp.nw)
    Ps = ca.SX.sym("P", ocp.params.size)
    vs = ca.SX.sym("v", nv)
    ms = ca.SX.sym("M", mmat.sparsity())
    mv = ca.SX.sym("m", lay.n_core)
    tm = ca.SX.sym("T", tmat_sp)
    tv = ca.SX.sym("t", n_t)
    dz = ca.mtimes(ms, vs) + mv
    outs = post(ws, dz, tm, tv, Ps)
    expand = ca.Function("mpc_post_condensed", [ws, vs, ms, mv, tm, tv, Ps],
                         [*outs, ca.norm_inf(dz)])
    return condense, expand
