"""The stage QP as HPIPM's tree OCP QP (C API, :mod:`mpc.hpipm_capi`): a robust horizon as a tree.

:class:`mpc.stage_solver.StageRtiSolver` stacks the scenarios of a robust tree as one chain
(node states ``[x, u_last, R]``, ``R`` carrying the moves of the branching stages from one
scenario to the next, one "move sharing" row per MV where a scenario repeats an earlier
one's move, and a "jump" from each scenario's last node to the next one's first). The same
QP is a tree: the scenarios' nodes at stage ``s`` that share their first ``min(s, Nr)``
branches are one tree node (HPIPM's ``sctree``: ``md`` branches per branching stage, robust
horizon ``Nr``), its input is decided once, and the ``R`` states, the sharing rows and the
jumps disappear. On do-mpc's industrial_poly (9 branches) HPIPM's stage shrinks from
16 + 3 to 13 + 3 (Riccati ~(nx + nu)^3 per node and iteration).

Mapping (index arrays computed once, values scattered per solve):

- tree node ``[u; x]``: ``u`` = the MVs (shared) followed by each member chain node's kept
  slack columns (slacks stay per scenario), ``x = [x, u_last]``; the root has no state
  (the measured one, step zero: its effect is in the dynamics' ``b``);
- Hessians and gradients of the member chain nodes are summed into the tree node's;
- each edge takes the dynamics (gap rows ``x``, ``u_last``) of one member;
- own rows of a chain node that touch ``R`` (move sharing) are left out (the tree shares
  the move); rows with one kept variable are boxes; the rest are HPIPM rows of the tree node.

The chain's iterate must be tree-consistent (shared copies equal, ``R`` = the moves it
stores): :meth:`HpipmTreeStageQp.consistent` makes it so before the linearisation, and
:meth:`~HpipmTreeStageQp.solve` returns a step that keeps it so (``R`` steps = the moves'
steps). On such an iterate the chain QP's solution is tree-consistent, so the step equals
the chain QP's (tested against CasADi's HPIPM on closed-loop QPs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from mpc.hpipm_capi import STATUS_TEXT, HpipmTree
from mpc.solvers import _HPIPM_STATUS
from plant_models.results import SolveStatus

if TYPE_CHECKING:
    from mpc.stage_solver import StageRtiSolver

_I = np.int64


class HpipmTreeStageQp:
    """The stage QP over the kept columns ``keep`` as HPIPM's tree OCP QP."""

    def __init__(
        self,
        solver: StageRtiSolver,
        keep: NDArray[np.bool_],
        lbw: NDArray[np.float64],
        ubw: NDArray[np.float64],
        hpipm_opts: dict[str, Any],
    ) -> None:
        sp = solver.sp
        n, ns = sp.config.horizon_steps, sp.n_scenarios
        nx, nu, nr, nxb, nub = sp.nx, sp.nu, sp.nr, sp.nxb, sp.nub
        nrob = nr // nu if nr else 0
        md = int(round(ns ** (1.0 / nrob))) if nrob else 1
        if md**nrob != ns or n <= nrob:
            raise ValueError("HPIPM tree: scenarios are not a full tree shorter than the horizon")
        off = sp.node_offsets
        nw = int(off[-1])
        cnt = [md ** min(s, nrob) for s in range(n + 1)]
        base = np.concatenate([[0], np.cumsum(cnt)]).astype(_I)
        n_tree = int(base[-1])
        ncn = ns * (n + 1)
        j_of = np.repeat(np.arange(ns), n + 1)
        s_of = np.tile(np.arange(n + 1), ns)
        tnode = base[s_of] + j_of // np.array([md ** (nrob - min(s, nrob)) for s in s_of])
        members: list[list[int]] = [[] for _ in range(n_tree)]
        for i in range(ncn):
            members[int(tnode[i])].append(i)
        nxt = nx + nu  # tree node state: x, u_last
        # column roles --------------------------------------------------------------------
        t_col = np.full(nw, -1, dtype=_I)  # tree node of a column in the QP
        p_col = np.full(nw, -1, dtype=_I)  # its position in the node's [u; x]
        rep_col = np.arange(nw, dtype=_I)  # the column whose value a shared copy takes
        nu_t = np.zeros(n_tree, dtype=_I)
        nx_t = np.array([0 if s == 0 else nxt for s in range(n + 1) for _ in range(cnt[s])])
        r_cols: list[int] = []
        r_src: list[int] = []
        for t in range(n_tree):
            mem = members[t]
            rep = mem[0]
            stage = bool(sp.is_stage[rep])
            mv_keep = keep[off[rep] + nxb : off[rep] + nxb + nu] if stage else None
            k_u = int(mv_keep.sum()) if mv_keep is not None else 0
            slot = k_u
            for i in mem:
                o = int(off[i])
                for a in range(nxt):  # x, u_last
                    rep_col[o + a] = off[rep] + a
                    if nx_t[t]:
                        t_col[o + a], p_col[o + a] = t, 0  # position set below (needs nu_t)
                if not stage:
                    continue
                uk = keep[o + nxb : o + nxb + nub]
                if mv_keep is None or np.any(uk[:nu] != mv_keep):
                    raise ValueError("HPIPM tree: MVs pinned differently across scenarios")
                pos_mv = np.cumsum(mv_keep) - 1
                for m in range(nu):
                    rep_col[o + nxb + m] = off[rep] + nxb + m
                    if mv_keep[m]:
                        t_col[o + nxb + m], p_col[o + nxb + m] = t, pos_mv[m]
                for c in range(nu, nub):
                    if uk[c]:
                        t_col[o + nxb + c], p_col[o + nxb + c] = t, slot
                        slot += 1
            nu_t[t] = slot if stage else 0
            for i in mem:
                o = int(off[i])
                if nx_t[t]:
                    p_col[o : o + nxt] = nu_t[t] + np.arange(nxt)
        for i in range(ncn):  # R: the moves of the branching stages, see the module doc
            j, s = int(j_of[i]), int(s_of[i])
            for r in range(nrob):
                for m in range(nu):
                    r_cols.append(int(off[i]) + nxt + r * nu + m)
                    if s > r:
                        r_src.append(int(off[j * (n + 1) + r]) + nxb + m)
                    elif j > 0:
                        r_src.append(int(off[(j - 1) * (n + 1) + r]) + nxb + m)
                    else:
                        r_src.append(-1)
        self._r_cols, self._r_src = np.array(r_cols, dtype=_I), np.array(r_src, dtype=_I)
        self._proj = np.flatnonzero(rep_col != np.arange(nw))
        self._proj_src = rep_col[self._proj]
        is_r = np.zeros(nw, dtype=bool)
        is_r[self._r_cols] = True
        in_qp = t_col >= 0
        self._cols = np.flatnonzero(in_qp)
        # Hessian -------------------------------------------------------------------------
        hr, hc = solver._h_trip
        if np.any(is_r[hr] | is_r[hc]):
            raise ValueError("HPIPM tree: the cost depends on R")
        pairs = set(zip(hr.tolist(), hc.tolist(), strict=True))
        mirror = [k for k, (a, b) in enumerate(zip(hr, hc, strict=True)) if (b, a) not in pairs]
        h_idx = np.concatenate([np.arange(hr.size), np.array(mirror, dtype=_I)])
        h_r = np.concatenate([hr, hc[mirror]])
        h_c = np.concatenate([hc, hr[mirror]])
        ok = in_qp[h_r] & in_qp[h_c]
        h_idx, h_r, h_c = h_idx[ok], h_r[ok], h_c[ok]
        t_h = t_col[h_r]
        if np.any(t_h != t_col[h_c]):
            raise ValueError("HPIPM tree: Hessian couples two nodes")
        pr, pc, nut = p_col[h_r], p_col[h_c], nu_t[t_h]
        # dimensions first (boxes, rows), then the HPIPM object, then targets -------------
        n_rows = solver._n_rows
        row_node = solver._row_node
        ar, ac = solver._a_trip
        lo_s = np.full(n_rows, -np.inf)
        hi_s = np.full(n_rows, np.inf)
        lo_s[solver._ro] = sp.lbg_stage
        hi_s[solver._ro] = sp.ubg_stage
        lo_s[solver._rot] = sp.lbg_term
        hi_s[solver._rot] = sp.ubg_term
        own = row_node >= 0
        touches_r = np.zeros(n_rows, dtype=bool)
        touches_r[ar[is_r[ac]]] = True
        sharing = own & touches_r
        if np.any(sharing & ~((lo_s == hi_s) | (~np.isfinite(lo_s) & ~np.isfinite(hi_s)))):
            raise ValueError("HPIPM tree: a row on R is not a move-sharing row")
        use_row = own & ~touches_r
        sel = np.flatnonzero(use_row[ar] & in_qp[ac])
        per_row = np.bincount(ar[sel], minlength=n_rows)
        box_row = use_row & (per_row == 1)
        gen_row = use_row & (per_row > 1)
        t_row = np.full(n_rows, -1, dtype=_I)
        t_row[ar[sel]] = t_col[ac[sel]]
        if np.any(gen_row & (t_row < 0)):
            raise ValueError("HPIPM tree: a row without a node")
        # box slots: columns with a static bound, and one-variable rows
        bcol = in_qp & (np.isfinite(lbw) | np.isfinite(ubw))
        sel_box = sel[box_row[ar[sel]]]
        key_t = np.concatenate([t_col[bcol], t_col[ac[sel_box]]])
        key_p = np.concatenate([p_col[bcol], p_col[ac[sel_box]]])
        uniq = np.unique(key_t * (1 << 20) + key_p)
        ut, upos = uniq >> 20, uniq & ((1 << 20) - 1)
        idxb = [upos[ut == t].tolist() for t in range(n_tree)]
        nbu = [int(np.sum(np.asarray(b) < nu_t[t])) for t, b in enumerate(idxb)]
        nbx = [len(b) - nbu[t] for t, b in enumerate(idxb)]
        gen_rows = np.flatnonzero(gen_row)
        ng = np.bincount(t_row[gen_rows], minlength=n_tree)
        self.tree = HpipmTree(
            md, nrob, n, nx_t.tolist(), nu_t.tolist(), nbx, nbu, ng.tolist(), idxb, hpipm_opts
        )
        tr = self.tree
        self.nu = nu_t.tolist()
        """Inputs per tree node."""
        self.ng = ng.tolist()
        self.n_nodes = n_tree
        # Hessian targets
        uu, xx, ux_ = (pr < nut) & (pc < nut), (pr >= nut) & (pc >= nut), (pr < nut) & (pc >= nut)
        nxh = nx_t[t_h]
        self._h_R = (h_idx[uu], tr.off_R[t_h[uu]] + pr[uu] + pc[uu] * nut[uu])
        self._h_Q = (
            h_idx[xx],
            tr.off_Q[t_h[xx]] + (pr[xx] - nut[xx]) + (pc[xx] - nut[xx]) * nxh[xx],
        )
        self._h_S = (h_idx[ux_], tr.off_S[t_h[ux_]] + pr[ux_] + (pc[ux_] - nut[ux_]) * nut[ux_])
        # gradient targets
        cu = self._cols[p_col[self._cols] < nu_t[t_col[self._cols]]]
        cx = self._cols[p_col[self._cols] >= nu_t[t_col[self._cols]]]
        self._q_r = (cu, tr.off_r[t_col[cu]] + p_col[cu])
        self._q_q = (cx, tr.off_q[t_col[cx]] + p_col[cx] - nu_t[t_col[cx]])
        self._ux_of_col = tr.off_ux[t_col[self._cols]] + p_col[self._cols]
        # dynamics: each edge from one member's gap rows (x, u_last)
        st_index = np.full(ncn, -1, dtype=_I)
        st_index[np.flatnonzero(sp.is_stage)] = np.arange(sp.n_stage_nodes)
        gap_row_of = np.full(n_rows, -1, dtype=_I)  # edge of a used gap row
        gap_pos = np.full(n_rows, -1, dtype=_I)
        for t in range(1, n_tree):
            i_prev = members[t][0] - 1
            rows = solver._rg[st_index[i_prev], :nxt]
            gap_row_of[rows] = t - 1
            gap_pos[rows] = np.arange(nxt)
        self._b_rows = np.flatnonzero(gap_row_of >= 0)
        self._b_tgt = tr.off_b[gap_row_of[self._b_rows]] + gap_pos[self._b_rows]
        ga = np.flatnonzero(gap_row_of[ar] >= 0)
        e_a = gap_row_of[ar[ga]]
        child = e_a + 1
        dad = np.array(tr.parent, dtype=_I)[child]
        col_t = t_col[ac[ga]]
        if np.any(is_r[ac[ga]]):
            raise ValueError("HPIPM tree: x or u_last dynamics depend on R")
        self._minus_i = ga[col_t == child]
        from_dad = ga[col_t == dad]
        e_d = gap_row_of[ar[from_dad]]
        nxc = nx_t[e_d + 1]
        pd = p_col[ac[from_dad]]
        nud = nu_t[dad[col_t == dad]]
        is_b = pd < nud
        row_in = gap_pos[ar[from_dad]]
        self._a_A = (
            from_dad[~is_b],
            tr.off_A[e_d[~is_b]] + row_in[~is_b] + (pd[~is_b] - nud[~is_b]) * nxc[~is_b],
        )
        self._a_B = (from_dad[is_b], tr.off_B[e_d[is_b]] + row_in[is_b] + pd[is_b] * nxc[is_b])
        # general rows
        g_of = np.full(n_rows, -1, dtype=_I)
        for t in range(n_tree):
            rr = gen_rows[t_row[gen_rows] == t]
            g_of[rr] = np.arange(rr.size)
        self._g_rows = gen_rows
        self._g_tgt = tr.off_g[t_row[gen_rows]] + g_of[gen_rows]
        sg = sel[gen_row[ar[sel]]]
        tg, pg, gg = t_col[ac[sg]], p_col[ac[sg]], g_of[ar[sg]]
        ngg, nug = ng[tg], nu_t[tg]
        d_ = pg < nug
        self._a_D = (sg[d_], tr.off_D[tg[d_]] + gg[d_] + pg[d_] * ngg[d_])
        self._a_C = (sg[~d_], tr.off_C[tg[~d_]] + gg[~d_] + (pg[~d_] - nug[~d_]) * ngg[~d_])
        # boxes: slot of each bounded column and of each one-variable row
        slot_of = {
            (t, p): int(tr.off_bx[t]) + k for t in range(n_tree) for k, p in enumerate(idxb[t])
        }
        self._bc = np.flatnonzero(bcol)
        self._bc_slot = np.array(
            [slot_of[(int(t_col[c]), int(p_col[c]))] for c in self._bc], dtype=_I
        )
        self._br = ar[sel_box]
        self._br_val = sel_box
        self._br_slot = np.array(
            [slot_of[(int(t_col[c]), int(p_col[c]))] for c in ac[sel_box]], dtype=_I
        )
        self._nw = nw
        self.nnz = (int(h_idx.size), int(sel.size))

    # ------------------------------------------------------------------------------------
    def consistent(self, z: NDArray[np.float64]) -> NDArray[np.float64]:
        """``z`` with shared copies equal to the first scenario's and ``R`` = its moves."""
        z = z.copy()
        z[self._proj] = z[self._proj_src]
        if self._r_cols.size:
            src = self._r_src
            z[self._r_cols] = np.where(src >= 0, z[np.maximum(src, 0)], 0.0)
        return z

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
        """The step of all columns (zero where left out, ``R`` = the moves' steps)."""
        d = self.tree.data
        if not (np.all(np.isfinite(hv)) and np.all(np.isfinite(av)) and np.all(np.isfinite(q))):
            return SolveStatus.NUMERICAL_ERROR, "hpipm: non-finite QP data", 0, None
        if self._r_cols.size and np.any(q[self._r_cols] != 0.0):
            return SolveStatus.NUMERICAL_ERROR, "hpipm: gradient on R", 0, None
        if np.any(av[self._minus_i] != -1.0):
            return SolveStatus.NUMERICAL_ERROR, "hpipm: dynamics rows not explicit", 0, None
        for name, (src, tgt) in (("R", self._h_R), ("Q", self._h_Q), ("S", self._h_S)):
            d[name][:] = np.bincount(tgt, weights=hv[src], minlength=d[name].size)
        for name, (src, tgt) in (("r", self._q_r), ("q", self._q_q)):
            d[name][:] = np.bincount(tgt, weights=q[src], minlength=d[name].size)
        for name, (src, tgt) in (("A", self._a_A), ("B", self._a_B)):
            d[name][:] = 0.0
            d[name][tgt] = av[src]
        d["b"][self._b_tgt] = -lba[self._b_rows]
        for name, (src, tgt) in (("C", self._a_C), ("D", self._a_D)):
            d[name][:] = 0.0
            d[name][tgt] = av[src]
        lg, ug = lba[self._g_rows], uba[self._g_rows]
        if self._g_rows.size:
            _bounds(d["lg"], d["ug"], d["lg_mask"], d["ug_mask"], self._g_tgt, lg, ug)
        lb = np.full(d["lb"].size, -np.inf)
        ub = np.full(d["ub"].size, np.inf)
        np.maximum.at(lb, self._bc_slot, lbx[self._bc])
        np.minimum.at(ub, self._bc_slot, ubx[self._bc])
        if self._br.size:
            a = av[self._br_val]
            if not np.all(np.abs(a) > 0.0):
                return (
                    SolveStatus.NUMERICAL_ERROR,
                    "hpipm: bound row with a zero coefficient",
                    0,
                    None,
                )
            rl, ru = lba[self._br] / a, uba[self._br] / a
            pos = a > 0
            np.maximum.at(lb, self._br_slot, np.where(pos, rl, ru))
            np.minimum.at(ub, self._br_slot, np.where(pos, ru, rl))
        if np.any(lb > ub):
            return SolveStatus.INFEASIBLE, "hpipm: crossing bounds", 0, None
        _bounds(d["lb"], d["ub"], d["lb_mask"], d["ub_mask"], slice(None), lb, ub)
        code, iters = self.tree.solve()
        status = _HPIPM_STATUS.get(code, SolveStatus.FAILED)
        message = f"hpipm (tree, C API): {STATUS_TEXT.get(code, f'status {code}')}"
        if not status.usable:
            return status, message, iters, None
        dz = np.zeros(self._nw)
        dz[self._cols] = d["ux"][self._ux_of_col]
        if self._r_cols.size:
            src = self._r_src
            dz[self._r_cols] = np.where(src >= 0, dz[np.maximum(src, 0)], 0.0)
        if not np.all(np.isfinite(dz)):
            return SolveStatus.NUMERICAL_ERROR, f"{message}; non-finite step", iters, None
        return status, message, iters, dz


def _bounds(
    lo_buf: NDArray[np.float64],
    hi_buf: NDArray[np.float64],
    lo_mask: NDArray[np.float64],
    hi_mask: NDArray[np.float64],
    tgt: Any,
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
) -> None:
    """Finite bounds into the buffers, infinite ones masked out (value 0, mask 0)."""
    fl, fh = np.isfinite(lo), np.isfinite(hi)
    lo_buf[tgt] = np.where(fl, lo, 0.0)
    hi_buf[tgt] = np.where(fh, hi, 0.0)
    lo_mask[tgt] = fl
    hi_mask[tgt] = fh
