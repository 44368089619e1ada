"""HPIPM's OCP QP for the stage-structured solver, with per-stage control sizes.

:class:`HpipmStageQp` owns one CasADi ``conic("hpipm")`` over a subset of the
decision vector of a :class:`~mpc.stagewise.StageProblem`: the node controls
that equal static bounds pin (above all the slacks of hard CV bounds, pinned
to zero from the second predicted node on) are left out of the QP, so HPIPM's
stage ``k`` has ``nu_k`` controls, the node's free ones only. The Riccati
recursion costs about ``(nx + nu_k)^3`` per stage and iteration: on do-mpc's
industrial_poly (13 node states, 3 inputs, 11 slacks) the pinned slacks made
it ``27^3`` where ``16^3`` is the problem's own size.

A constraint row of a node that, among the kept columns, touches one variable only
(a hard bound on an output that is a state, from the second predicted node on,
where its slack is left out) is a bound on that variable, not a row: HPIPM gets
it as the variable's box (every variable has a box in CasADi's interface anyway,
``inf`` where unbounded) and its stage keeps only the general rows. General rows
cost HPIPM ``ng (nx + nu)^2`` per stage and iteration, boxes ``nx + nu``.

The QP data arrive in the solver's triplet order (Hessian and constraint
Jacobian nonzeros of all nodes, see :class:`mpc.stage_solver.StageRtiSolver`);
index arrays computed once pick and permute the kept ones into CasADi's
column-compressed order. The step of a left-out control is zero: the solver
clips the iterate to its bounds before each QP, so a pinned control sits on
its bound.
"""

from __future__ import annotations

from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import NDArray

from mpc.solvers import _hpipm_status
from plant_models.results import SolveStatus


class StageQpLayout:
    """Which columns and rows of the stage QP a structured QP solver gets (HPIPM, PIQP).

    ``row_node`` gives, for each row of the constraint vector, the node owning it (its own
    constraints), -1 for a dynamics (gap) row and -2 for a row to leave out (unbounded).
    ``bounds_as_boxes=False`` keeps one-variable rows as rows (for comparison).
    """

    def __init__(
        self,
        keep: NDArray[np.bool_],
        node_offsets: NDArray[np.int64],
        nxb: int,
        row_node: NDArray[np.int64],
        h_trip: tuple[NDArray[np.int64], NDArray[np.int64]],
        a_trip: tuple[NDArray[np.int64], NDArray[np.int64]],
        *,
        bounds_as_boxes: bool = True,
    ) -> None:
        nw = keep.size
        self.cols = np.flatnonzero(keep)
        """Columns of the decision vector in the QP, in order."""
        new = np.full(nw, -1, dtype=np.int64)
        new[self.cols] = np.arange(self.cols.size)
        n_nodes = node_offsets.size - 1
        self.nu = [
            int(keep[node_offsets[k] + nxb : node_offsets[k + 1]].sum()) for k in range(n_nodes)
        ]
        """Controls per HPIPM stage (the node's free ones)."""
        if not all(keep[o : o + nxb].all() for o in node_offsets[:-1]):
            raise ValueError("HPIPM stage QP: node states must all stay in the QP")
        hr, hc = h_trip
        sel_h = np.flatnonzero(keep[hr] & keep[hc])
        sp_h, perm_h = ccs(self.cols.size, self.cols.size, new[hr[sel_h]], new[hc[sel_h]])
        self._h_idx = sel_h[perm_h]
        ar, ac = a_trip
        n_rows = row_node.size
        sel_a = np.flatnonzero(keep[ac])
        per_row = np.bincount(ar[sel_a], minlength=n_rows)
        box_row = (row_node >= 0) & (per_row == 1) & bounds_as_boxes
        t_box = sel_a[box_row[ar[sel_a]]]
        self._box_rows = ar[t_box]
        """Rows that are bounds on one variable, ..."""
        self._box_cols = new[ac[t_box]]
        """... its position in the QP, ..."""
        self._box_val = t_box
        """... and the row's coefficient (index into the constraint Jacobian triplets)."""
        self.rows = np.flatnonzero(~box_row & (row_node != -2))
        """Rows of the constraint vector left as rows of the QP, in order."""
        new_r = np.full(n_rows, -1, dtype=np.int64)
        new_r[self.rows] = np.arange(self.rows.size)
        sel_g = sel_a[new_r[ar[sel_a]] >= 0]
        sp_a, perm_a = ccs(self.rows.size, self.cols.size, new_r[ar[sel_g]], new[ac[sel_g]])
        self._a_idx = sel_g[perm_a]
        own = row_node[self.rows]
        ng = np.bincount(own[own >= 0], minlength=n_nodes).tolist()
        self.ng = ng
        """General constraint rows per HPIPM stage."""
        self._sp_h, self._sp_a = sp_h, sp_a
        self.nnz = (sp_h.nnz(), sp_a.nnz())

    def boxes(
        self,
        av: NDArray[np.float64],
        lba: NDArray[np.float64],
        uba: NDArray[np.float64],
        lbx: NDArray[np.float64],
        ubx: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]] | tuple[SolveStatus, str]:
        """Bounds of the kept columns with the one-variable rows folded in, or a failure."""
        c = self.cols
        lo, hi = lbx[c], ubx[c]
        if self._box_rows.size:
            a = av[self._box_val]
            if not np.all(np.abs(a) > 0.0):
                return SolveStatus.NUMERICAL_ERROR, "bound row with a zero coefficient"
            rl, ru = lba[self._box_rows] / a, uba[self._box_rows] / a
            pos = a > 0
            np.maximum.at(lo, self._box_cols, np.where(pos, rl, ru))
            np.minimum.at(hi, self._box_cols, np.where(pos, ru, rl))
            if np.any(lo > hi):
                return SolveStatus.INFEASIBLE, "crossing bounds"
        return lo, hi


class HpipmStageQp(StageQpLayout):
    """The OCP QP over the kept columns ``keep`` of the decision vector, solved by HPIPM."""

    def __init__(
        self,
        keep: NDArray[np.bool_],
        node_offsets: NDArray[np.int64],
        nxb: int,
        row_node: NDArray[np.int64],
        h_trip: tuple[NDArray[np.int64], NDArray[np.int64]],
        a_trip: tuple[NDArray[np.int64], NDArray[np.int64]],
        hpipm_opts: dict[str, Any],
        *,
        bounds_as_boxes: bool = True,
    ) -> None:
        super().__init__(
            keep, node_offsets, nxb, row_node, h_trip, a_trip, bounds_as_boxes=bounds_as_boxes
        )
        n_nodes = node_offsets.size - 1
        ng = self.ng
        opts: dict[str, Any] = {
            "N": n_nodes - 1,
            "nx": [nxb] * n_nodes,
            "nu": self.nu,
            "ng": ng,
            "inf": 1e8,
            "error_on_fail": False,
            "hpipm": hpipm_opts,
        }
        self.fn = ca.conic("mpc_stage_qp", "hpipm", {"h": self._sp_h, "a": self._sp_a}, opts)

    def solve(
        self,
        hv: NDArray[np.float64],
        av: NDArray[np.float64],
        q: NDArray[np.float64],
        lba: NDArray[np.float64],
        uba: NDArray[np.float64],
        lbx: NDArray[np.float64],
        ubx: NDArray[np.float64],
    ) -> tuple[SolveStatus, str, int, NDArray[np.float64] | None]:
        """The step of all columns (zero where left out); None if HPIPM failed."""
        c = self.cols
        bx = self.boxes(av, lba, uba, lbx, ubx)
        if isinstance(bx[0], SolveStatus):
            return bx[0], f"hpipm: {bx[1]}", 0, None
        lo, hi = bx
        r = self.rows
        try:
            sol = self.fn(
                h=ca.DM(self._sp_h, hv[self._h_idx]),
                g=q[c],
                a=ca.DM(self._sp_a, av[self._a_idx]),
                lba=lba[r],
                uba=uba[r],
                lbx=lo,
                ubx=hi,
            )
        except RuntimeError as exc:
            return SolveStatus.NUMERICAL_ERROR, f"hpipm: {exc}", 0, None
        stats = self.fn.stats()
        status, message = _hpipm_status(stats)
        iters = max(int(stats.get("iter_count", 0)), 0)
        if not status.usable:
            return status, message, iters, None
        dz = np.zeros(q.size)
        dz[c] = np.asarray(sol["x"], dtype=float).reshape(-1)
        return status, message, iters, dz


def ccs(
    nrow: int, ncol: int, rows: NDArray[np.int64], cols: NDArray[np.int64]
) -> tuple[ca.Sparsity, NDArray[np.int64]]:
    """Sparsity of the triplets and the permutation from triplet order to CCS order."""
    rows, cols = rows.astype(np.int64), cols.astype(np.int64)
    perm = np.lexsort((rows, cols))
    r, c = rows[perm], cols[perm]
    if r.size > 1 and np.any((np.diff(c) == 0) & (np.diff(r) == 0)):
        raise ValueError("duplicate QP nonzeros")
    sp = ca.Sparsity.triplet(nrow, ncol, r.tolist(), c.tolist())
    return sp, perm
