"""PIQP (proximal interior point, sparse) as the QP solver of the stage-structured NMPC.

:class:`PiqpStageQp` solves the same QP as :class:`mpc.stage_hpipm.HpipmStageQp` (same kept
columns, same one-variable rows folded into boxes, see :class:`mpc.stage_hpipm.StageQpLayout`)
as one sparse QP: the variables stacked node by node, the dynamics (gap) rows as equalities
``A dz = b``, the nodes' own rows as two-sided inequalities ``h_l <= G dz <= h_u`` and the
bounds as boxes ``x_l <= dz <= x_u``. The sparsity pattern is fixed when the solver is built,
so PIQP's ``setup`` (symbolic factorisation) runs once and every RTI step only calls
``update`` with new values. The initial node's state and previous input (the first
``n_fixed`` columns, pinned by the measurement every step) are left out: their step is zero
because the solver clips the iterate to its bounds before each QP.

PIQP: Schwan, Jiang, Kuhn, Jones, "PIQP: A Proximal Interior-Point Quadratic Programming
Solver", IEEE CDC 2023 (https://predict-epfl.github.io/piqp/).
"""

from __future__ import annotations

import numpy as np
import piqp
import scipy.sparse as sps
from numpy.typing import NDArray

from mpc.stage_hpipm import StageQpLayout
from plant_models.results import SolveStatus

PIQP_ITER_FACTOR = 3
"""PIQP's iteration cap is this times ``MpcConfig.qp_max_iter`` (a count sized for HPIPM):
PIQP's iterations are cheaper and it needs about twice as many (industrial_poly robust:
28-34 per RTI QP against HPIPM's 15-17; ~160 on the cold first step's relaxed QP)."""

_STATUS = {
    piqp.PIQP_SOLVED: SolveStatus.SUCCESS,
    piqp.PIQP_MAX_ITER_REACHED: SolveStatus.MAX_ITER,
    piqp.PIQP_PRIMAL_INFEASIBLE: SolveStatus.INFEASIBLE,
    piqp.PIQP_DUAL_INFEASIBLE: SolveStatus.INFEASIBLE,
}


class PiqpStageQp(StageQpLayout):
    """The stage QP over the kept columns as one sparse QP, set up once, solved by PIQP."""

    def __init__(
        self,
        keep: NDArray[np.bool_],
        node_offsets: NDArray[np.int64],
        nxb: int,
        row_node: NDArray[np.int64],
        h_trip: tuple[NDArray[np.int64], NDArray[np.int64]],
        a_trip: tuple[NDArray[np.int64], NDArray[np.int64]],
        n_fixed: int,
        max_iter: int,
    ) -> None:
        super().__init__(keep, node_offsets, nxb, row_node, h_trip, a_trip)
        if self.cols.size < n_fixed or np.any(self.cols[:n_fixed] != np.arange(n_fixed)):
            raise ValueError("PIQP stage QP: the fixed initial columns must be in the QP")
        nv = self.cols.size - n_fixed
        self._n_fixed = n_fixed
        # Hessian: the upper triangle of the free columns, CCS order kept
        hp = _csc_of(self._sp_h)
        hcol = np.repeat(np.arange(hp.shape[1]), np.diff(hp.indptr))
        sel = (hp.indices <= hcol) & (hp.indices >= n_fixed)
        self._p_idx = self._h_idx[sel]
        self._p_tpl = _sub(hp.indices[sel] - n_fixed, hcol[sel] - n_fixed, nv, nv)
        # constraint rows: gaps are equalities, own rows inequalities; free columns only
        ap = _csc_of(self._sp_a)
        acol = np.repeat(np.arange(ap.shape[1]), np.diff(ap.indptr))
        is_eq = row_node[self.rows] == -1
        col_ok = acol >= n_fixed
        self._eq_rows, self._in_rows = self.rows[is_eq], self.rows[~is_eq]
        eq_new = np.cumsum(is_eq) - 1
        in_new = np.cumsum(~is_eq) - 1
        r_eq = is_eq[ap.indices] & col_ok
        r_in = ~is_eq[ap.indices] & col_ok
        # the fixed columns' steps (zero up to rounding) move the rows and the gradient
        self._is_eq = is_eq
        self._fa = (self._a_idx[~col_ok], ap.indices[~col_ok], acol[~col_ok])
        fh = (hcol < n_fixed) & (hp.indices >= n_fixed)
        self._fh = (self._h_idx[fh], hp.indices[fh] - n_fixed, hcol[fh])
        self._a_eq_idx = self._a_idx[r_eq]
        self._a_eq_tpl = _sub(
            eq_new[ap.indices[r_eq]], acol[r_eq] - n_fixed, self._eq_rows.size, nv
        )
        self._g_idx = self._a_idx[r_in]
        self._g_tpl = _sub(in_new[ap.indices[r_in]], acol[r_in] - n_fixed, self._in_rows.size, nv)
        self.nnz = (self._p_idx.size, self._a_eq_idx.size + self._g_idx.size)
        self.solver = piqp.SparseSolver()
        st = self.solver.settings
        st.max_iter = max_iter
        st.eps_abs, st.eps_rel = 1e-8, 1e-9
        st.verbose = False
        st.kkt_solver = piqp.KKTSolver.sparse_multistage
        self._ready = False

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
        """The step of all columns (zero where left out); None if PIQP failed."""
        bx = self.boxes(av, lba, uba, lbx, ubx)
        if isinstance(bx[0], SolveStatus):
            return bx[0], f"piqp: {bx[1]}", 0, None
        lo, hi = bx
        nf = self._n_fixed
        v = lo[:nf]
        if np.any(hi[:nf] != v):
            return SolveStatus.NUMERICAL_ERROR, "piqp: initial node not fixed", 0, None
        ai, ar, ac = self._fa
        shift = np.bincount(ar, weights=av[ai] * v[ac], minlength=self.rows.size)
        hi_, hr, hc = self._fh
        c = self.cols[nf:]
        grad = q[c] + np.bincount(hr, weights=hv[hi_] * v[hc], minlength=c.size)
        eq, ineq = self._is_eq, ~self._is_eq
        b_lo, b_hi = lba[self._eq_rows] - shift[eq], uba[self._eq_rows] - shift[eq]
        if np.any(b_lo != b_hi):
            return SolveStatus.NUMERICAL_ERROR, "piqp: a dynamics row is not an equality", 0, None
        data = {
            "P": _with(self._p_tpl, hv[self._p_idx]),
            "c": grad,
            "A": _with(self._a_eq_tpl, av[self._a_eq_idx]),
            "b": b_lo,
            "G": _with(self._g_tpl, av[self._g_idx]),
            "h_l": lba[self._in_rows] - shift[ineq],
            "h_u": uba[self._in_rows] - shift[ineq],
            "x_l": lo[nf:],
            "x_u": hi[nf:],
        }
        mats = (data["P"].data, data["A"].data, data["G"].data, grad, b_lo)
        if not all(np.all(np.isfinite(m)) for m in mats):
            return SolveStatus.NUMERICAL_ERROR, "piqp: non-finite QP data", 0, None
        try:
            if self._ready:
                self.solver.update(**data)
            else:
                self.solver.setup(**data)
                self._ready = True
            code = self.solver.solve()
        except (RuntimeError, ValueError) as exc:
            self._ready = False  # set up again on the next call
            return SolveStatus.NUMERICAL_ERROR, f"piqp: {exc}", 0, None
        info = self.solver.result.info
        iters = int(info.iter)
        status = _STATUS.get(code, SolveStatus.NUMERICAL_ERROR)
        message = f"piqp: {code.name if hasattr(code, 'name') else code}"
        if status is not SolveStatus.SUCCESS:
            self._ready = False  # a failed solve leaves PIQP's iterates unusable: set up anew
            return status, message, iters, None
        x = np.asarray(self.solver.result.x, dtype=float)
        if not np.all(np.isfinite(x)):
            return SolveStatus.NUMERICAL_ERROR, f"{message}; non-finite step", iters, None
        dz = np.zeros(q.size)
        dz[c] = x
        return status, message, iters, dz


def _csc_of(sp: object) -> sps.csc_matrix:
    """The pattern of a CasADi sparsity as a scipy CSC matrix (values = CCS position)."""
    nrow, ncol = sp.size1(), sp.size2()  # type: ignore[attr-defined]
    colind = np.asarray(sp.colind(), dtype=np.int64)  # type: ignore[attr-defined]
    row = np.asarray(sp.row(), dtype=np.int64)  # type: ignore[attr-defined]
    vals = np.arange(row.size, dtype=float)
    return sps.csc_matrix((vals, row, colind), shape=(nrow, ncol))


def _sub(
    rows: NDArray[np.int64], cols: NDArray[np.int64], nrow: int, ncol: int
) -> tuple[NDArray[np.int32], NDArray[np.int32], tuple[int, int]]:
    """CSC index arrays of entries already in column-major order (rows sorted per column)."""
    if rows.size > 1:
        order = np.lexsort((rows, cols))
        if np.any(order != np.arange(rows.size)):
            raise ValueError("PIQP stage QP: entries not in column-compressed order")
    indptr = np.zeros(ncol + 1, dtype=np.int32)
    np.add.at(indptr, cols + 1, 1)
    return rows.astype(np.int32), np.cumsum(indptr).astype(np.int32), (nrow, ncol)


def _with(
    tpl: tuple[NDArray[np.int32], NDArray[np.int32], tuple[int, int]], vals: NDArray[np.float64]
) -> sps.csc_matrix:
    """A CSC matrix of the fixed pattern ``tpl`` with the values ``vals``."""
    rows, indptr, shape = tpl
    return sps.csc_matrix((vals, rows, indptr), shape=shape)
