"""Gauss-Newton SQP on a :class:`~mpc.stagewise.StageProblem` with HPIPM's OCP QP.

Each iteration evaluates the mapped stage functions (dynamics and their
sensitivities, cost, constraints) for all nodes, scatters their blocks into
the nonzeros of the stage-structured QP with index arrays computed once, and
calls HPIPM through CasADi's conic interface directly (HPIPM inside an MX
Function segfaults with casadi 3.8.2). The QP keeps the OCP structure: the
``N``, ``nx``, ``nu``, ``ng`` options tell HPIPM the stage sizes, and its
Riccati recursion is linear in the number of nodes.

The first step (and a step after a failure) runs up to
``MpcConfig.first_sqp_iterations`` iterations from a constant guess, until the
scaled step is below ``rti_step_tol``; later steps shift the last solution and
run ``rti_iterations`` iterations (real-time iteration).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mpc.config import QpSolver
from mpc.hpipm_capi import HpipmLibraryError
from mpc.solvers import SolveOutcome, _Buffered
from mpc.stage_codegen import BackgroundCompiler, resolve_codegen
from mpc.stage_condensing import StageCondenser, free_controls, resolve_stage_qp
from mpc.stage_hpipm import HpipmStageQp
from mpc.stage_hpipm_tree import HpipmTreeStageQp
from mpc.stage_piqp import PIQP_ITER_FACTOR, PiqpStageQp
from mpc.stagewise import StageProblem, eliminate_colloc
from plant_models.results import SolveStatus

log = logging.getLogger(__name__)

HPIPM_C_API = True
"""HPIPM through its C library (CasADi's copy), scenarios as HPIPM's tree QP
(:mod:`mpc.stage_hpipm_tree`); False: CasADi's ``conic("hpipm")`` over the scenario chain
(``benchmarks/bench_mpc_scale.py --hpipm-casadi`` compares the two)."""

COLD_START_ACCEPT_STEP = 1e-3
"""A cold-start SQP that has not reached ``rti_step_tol`` within its iteration limit is still
accepted (status ACCEPTABLE) when its last scaled step is below this."""


@dataclass
class StageIterate:
    """Primal iterate: the node blocks and the lifted collocation states."""

    z: NDArray[np.float64]
    """Decision vector (scaled), node by node."""
    xc: NDArray[np.float64]
    """Collocation states per stage node, shape (n_stage_nodes, n_colloc)."""

    def copy(self) -> StageIterate:
        """Deep copy."""
        return StageIterate(self.z.copy(), self.xc.copy())


class StageRtiSolver:
    """SQP (Gauss-Newton, full steps) on the stage-structured QP, solved by HPIPM."""

    def __init__(self, sp: StageProblem) -> None:
        self.sp = sp
        cfg = sp.config
        ns, n = sp.n_scenarios, cfg.horizon_steps
        n_st, n_nodes = sp.n_stage_nodes, sp.n_nodes
        nx, nu, nxb, nub = sp.nx, sp.nu, sp.nxb, sp.nub
        off = sp.node_offsets
        self._stage_nodes = np.flatnonzero(sp.is_stage)
        self._term_nodes = np.flatnonzero(~sp.is_stage)
        st, tm = self._stage_nodes, self._term_nodes
        self._dyn = _Buffered(sp.dyn.map(n_st, "serial"))
        self._stage = _Buffered(sp.stage.map(n_st, "serial"))
        self._term = _Buffered(sp.terminal.map(ns, "serial"))
        self._out = _Buffered(sp.outputs.map(n + 1, "serial"))
        self.compiled: list[str] = []
        """Stage functions running as compiled C (swapped in when the background gcc is done)."""
        self._codegen: BackgroundCompiler | None = None
        if resolve_codegen(cfg.codegen):
            self._codegen = BackgroundCompiler(
                {"dyn": sp.dyn, "stage": sp.stage, "term": sp.terminal}, cfg.codegen_budget_s
            )
        # index arrays: node blocks of z
        self._ix = off[st][:, None] + np.arange(nxb)[None, :]  # X of stage nodes
        self._iu = off[st][:, None] + nxb + np.arange(nub)[None, :]  # U of stage nodes
        self._ixt = off[tm][:, None] + np.arange(nxb)[None, :]
        self._ixn = off[st + 1][:, None] + np.arange(nxb)[None, :]  # X of the next node
        self._ix_nodes = off[:-1][:, None] + np.arange(nxb)[None, :]  # X of every node
        self._ix_all_stage = off[st][:, None] + np.arange(nxb + nub)[None, :]
        # Hessian triplets -----------------------------------------------------
        hs_r, hs_c = (np.array(v, dtype=np.int64) for v in sp.stage.sparsity_out(0).get_triplet())
        ht_r, ht_c = (
            np.array(v, dtype=np.int64) for v in sp.terminal.sparsity_out(0).get_triplet()
        )
        h_rows = np.concatenate(
            [(off[st][:, None] + hs_r[None, :]).ravel(), (off[tm][:, None] + ht_r[None, :]).ravel()]
        )
        h_cols = np.concatenate(
            [(off[st][:, None] + hs_c[None, :]).ravel(), (off[tm][:, None] + ht_c[None, :]).ravel()]
        )
        nw = sp.nw
        self._h_trip = (h_rows, h_cols)
        # constraint rows ----------------------------------------------------------
        ng = np.where(sp.is_stage, sp.ng_stage, sp.ng_term)
        gap = np.where(np.arange(n_nodes) < n_nodes - 1, nxb, 0)
        row0 = np.concatenate([[0], np.cumsum(gap + ng)]).astype(np.int64)
        self._n_rows = int(row0[-1])
        self._rg = row0[st][:, None] + np.arange(nxb)[None, :]  # gap rows of stage nodes
        jumps = tm[tm < n_nodes - 1]
        self._jumps = jumps
        self._rgj = row0[jumps][:, None] + np.arange(nxb)[None, :]
        self._ro = row0[st][:, None] + nxb + np.arange(sp.ng_stage)[None, :]
        gap_t = np.where(tm < n_nodes - 1, nxb, 0)
        self._rot = (row0[tm] + gap_t)[:, None] + np.arange(sp.ng_term)[None, :]
        rows: list[NDArray[np.int64]] = []
        cols: list[NDArray[np.int64]] = []
        nr = sp.nr
        # static part of the stage gap Jacobians: u_last <- u, R update
        tpl = np.zeros((n_st, nxb, nxb + nub))
        tpl[:, nx : nx + nu, nxb : nxb + nu] = np.eye(nu)
        pst = sp.pn_static[st]
        onehot = pst[:, sp.pn.onehot]
        rho = pst[:, sp.pn.rho]
        nrob = onehot.shape[1]
        for r in range(nrob):
            sel = rho * onehot[:, r]  # 1 where node writes its move into slot r
            blk = slice(nx + nu + r * nu, nx + nu + (r + 1) * nu)
            tpl[:, blk, nxb : nxb + nu] += sel[:, None, None] * np.eye(nu)[None]
            tpl[:, blk, blk] -= sel[:, None, None] * np.eye(nu)[None]
        tpl[:, nx + nu : nxb, nx + nu : nxb] += np.eye(nr)[None]
        self._gap_tpl = tpl
        self._r_sel = rho[:, None] * onehot  # (n_st, nrob)
        # seg 1: gap Jacobians of stage nodes, structural nonzeros only (A, B, static parts)
        mask = np.zeros((nxb, nxb + nub), dtype=bool)
        mask[:nx, :nx] = True
        mask[:nx, nxb : nxb + nu] = True
        mask |= (tpl != 0).any(axis=0)
        self._gap_r, self._gap_c = np.nonzero(mask)
        rows.append(self._rg[:, self._gap_r].ravel())
        cols.append((off[st][:, None] + self._gap_c[None, :]).ravel())
        # seg 2: -I on the next node's state, for every gap
        gap_nodes = np.arange(n_nodes - 1)
        rows.append((row0[gap_nodes][:, None] + np.arange(nxb)[None, :]).ravel())
        cols.append((off[gap_nodes + 1][:, None] + np.arange(nxb)[None, :]).ravel())
        # seg 3: R carried over a scenario jump
        nr = sp.nr
        rows.append((row0[jumps][:, None] + nx + nu + np.arange(nr)[None, :]).ravel())
        cols.append((off[jumps][:, None] + nx + nu + np.arange(nr)[None, :]).ravel())
        # seg 4/5: own rows
        gs_r, gs_c = (np.array(v, dtype=np.int64) for v in sp.stage.sparsity_out(3).get_triplet())
        gt_r, gt_c = (
            np.array(v, dtype=np.int64) for v in sp.terminal.sparsity_out(3).get_triplet()
        )
        rows.append((self._ro[:, gs_r] if gs_r.size else np.zeros((n_st, 0), int)).ravel())
        cols.append((off[st][:, None] + gs_c[None, :]).ravel())
        rows.append((self._rot[:, gt_r] if gt_r.size else np.zeros((ns, 0), int)).ravel())
        cols.append((off[tm][:, None] + gt_c[None, :]).ravel())
        self._seg = np.cumsum([0] + [r.size for r in rows])
        self._a_trip = (np.concatenate(rows), np.concatenate(cols))
        if np.any(self._a_trip[1] >= nw):
            raise ValueError("stage QP: constraint column out of range")
        self._a_vals = np.zeros(int(self._seg[-1]))
        self._a_vals[self._seg[1] : self._seg[2]] = -1.0
        self._a_vals[self._seg[2] : self._seg[3]] = 1.0
        # HPIPM -----------------------------------------------------------------
        row_node = np.full(self._n_rows, -1, dtype=np.int64)  # owner of each own row
        row_node[self._ro] = st[:, None]
        row_node[self._rot] = tm[:, None]
        # rows unbounded on both sides at every step (e.g. a robust tree's move-sharing rows
        # after the branching stages) are left out of HPIPM's QP
        free_s = ~np.isfinite(sp.lbg_stage) & ~np.isfinite(sp.ubg_stage)
        row_node[self._ro[free_s]] = -2
        free_t = ~np.isfinite(sp.lbg_term) & ~np.isfinite(sp.ubg_term)
        row_node[self._rot[free_t]] = -2
        self._row_node = row_node
        self._hpipm_opts: dict[str, Any] = {
            "iter_max": cfg.qp_max_iter,
            "res_g_max": 1e-8,
            "res_b_max": 1e-8,
            "res_d_max": 1e-8,
            "res_m_max": 1e-7,
            "mode": "robust",
        }
        self._hpipm: HpipmStageQp | HpipmTreeStageQp | PiqpStageQp | None = None
        """The QP without the controls pinned by static bounds (hard-bound slacks after node 1),
        solved by HPIPM or (``qp_solver = "piqp"``) PIQP."""
        self._hpipm_relaxed: HpipmStageQp | HpipmTreeStageQp | PiqpStageQp | None = None
        """The QP with every hard-bound slack free, built when first needed."""
        # dense node blocks for the condensing
        self._hs_idx = (hs_r, hs_c)
        self._ht_idx = (ht_r, ht_c)
        self._gs_idx = (gs_r, gs_c)
        self._gt_idx = (gt_r, gt_c)
        tpl_j = np.zeros((jumps.size, nxb, nxb))
        tpl_j[:, nx + nu :, nx + nu :] = np.eye(nr)[None]
        self._jump_tpl = tpl_j
        n_soft = sp.nub - sp.nu - sp.n_hard
        self._hard_slack_idx = (
            off[st][:, None] + nxb + nu + n_soft + np.arange(sp.n_hard)[None, :]
        ).ravel()
        self._has_hard = sp.n_hard > 0
        self.relaxed_qps = 0
        """QPs solved with the hard bounds relaxed to exact penalties (infeasible linearisation)."""
        self.qp_solver = resolve_stage_qp(sp)
        """The QP method in use (HPIPM on the OCP QP, or condensed qpOASES)."""
        self._condenser: StageCondenser | None = None
        self._condenser_relaxed: StageCondenser | None = None
        if self.qp_solver is QpSolver.CONDENSED_QPOASES:
            keep_s = np.isfinite(sp.lbg_stage).any(axis=0) | np.isfinite(sp.ubg_stage).any(axis=0)
            keep_t = (
                np.isfinite(sp.lbg_term).any(axis=0) | np.isfinite(sp.ubg_term).any(axis=0)
                if sp.ng_term
                else np.zeros(0, dtype=bool)
            )
            self._condenser = StageCondenser(
                sp.is_stage, nxb, nub, keep_s, keep_t, cfg.qp_max_iter, free_controls(sp)
            )
        else:  # the conic interface analyses the structure at creation: only when used
            self._hpipm = self._hpipm_qp(sp.lbw != sp.ubw)

    # ------------------------------------------------------------------------
    def initial_guess(self, x0: NDArray[np.float64], u: NDArray[np.float64]) -> StageIterate:
        """Every node at (x0, u), collocation states at x0, slacks and R zero."""
        sp = self.sp
        z = np.zeros(sp.nw)
        xs, us = x0 / sp.x_scale, u / sp.u_scale
        for o, stage in zip(sp.node_offsets[:-1], sp.is_stage, strict=True):
            z[o : o + sp.nx] = xs
            z[o + sp.nx : o + sp.nx + sp.nu] = us
            if stage:
                z[o + sp.nxb : o + sp.nxb + sp.nu] = us
        z = np.clip(z, sp.lbw, sp.ubw)
        deg = sp.n_colloc // sp.nx if sp.nx else 0
        xc = np.tile(np.tile(xs, deg), (sp.n_stage_nodes, 1))
        return StageIterate(z, xc)

    def shift(self, it: StageIterate) -> StageIterate:
        """Warm start for the next sample: every node one step earlier in its scenario."""
        sp = self.sp
        n = sp.config.horizon_steps
        z = it.z.copy()
        xc = it.xc.copy()
        off = sp.node_offsets
        nxb = sp.nxb
        for j in range(sp.n_scenarios):
            base = j * (n + 1)
            for k in range(n - 1):
                i = base + k
                z[off[i] : off[i + 1]] = it.z[off[i + 1] : off[i + 2]]
                xc[j * n + k] = it.xc[j * n + k + 1]
            last = base + n - 1
            z[off[last] : off[last] + nxb] = it.z[off[last + 1] : off[last + 1] + nxb]
        return StageIterate(z, xc)

    def node_params(
        self,
        d: NDArray[np.float64],
        p: NDArray[np.float64],
        y_bias: NDArray[np.float64],
        u_bias: NDArray[np.float64],
        y_target: NDArray[np.float64],
        u_target: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """Parameters of every node for this step, shape (n_nodes, pn.size)."""
        sp = self.sp
        lay = sp.pn
        out = sp.pn_static.copy()
        out[:, lay.d] = d
        out[:, lay.p] = np.where(sp.p_fixed, out[:, lay.p], p[None, :])
        out[:, lay.y_bias] = y_bias
        out[:, lay.u_bias] = u_bias
        out[:, lay.y_target] = y_target
        out[:, lay.u_target] = u_target
        return out

    # ------------------------------------------------------------------------
    def solve(
        self,
        it: StageIterate,
        pn: NDArray[np.float64],
        x0: NDArray[np.float64],
        u_prev: NDArray[np.float64],
        iterations: int,
        solver: str = "rti",
    ) -> tuple[SolveOutcome, StageIterate | None]:
        """Up to ``iterations`` SQP iterations from ``it``; never raises."""
        if self._codegen is not None:
            self._swap_compiled()
        sp = self.sp
        cfg = sp.config
        nx, nu, nxb = sp.nx, sp.nu, sp.nxb
        lay = sp.pn
        st, tm = self._stage_nodes, self._term_nodes
        lbw, ubw = sp.lbw.copy(), sp.ubw.copy()
        lbw[:nx] = ubw[:nx] = x0 / sp.x_scale
        lbw[nx : nx + nu] = ubw[nx : nx + nu] = u_prev / sp.u_scale
        z = np.clip(it.z, lbw, ubw)
        if isinstance(self._hpipm, HpipmTreeStageQp):  # the tree QP needs shared copies equal
            z = self._hpipm.consistent(z)
        xc = it.xc.copy()
        pn_st, pn_tm = pn[st], pn[tm]
        da = self._dyn.args
        _set(da[3], pn_st[:, lay.d])
        _set(da[4], pn_st[:, lay.p])
        _set(da[5], pn_st[:, lay.u_bias])
        _set(self._stage.args[2], pn_st)
        _set(self._term.args[1], pn_tm)
        x0s = np.concatenate([x0 / sp.x_scale, u_prev / sp.u_scale])
        total_iter = 0
        message = ""
        f_val = 0.0
        step_norm = np.inf
        ubw_check = ubw
        for _ in range(iterations):
            zx, zu, zxt = z[self._ix], z[self._iu], z[self._ixt]
            _set(da[0], zx[:, :nx])
            _set(da[1], zu[:, :nu])
            _set(da[2], xc)
            _set(self._stage.args[0], zx)
            _set(self._stage.args[1], zu)
            _set(self._term.args[0], zxt)
            if self._dyn() or self._stage() or self._term():
                return SolveOutcome(
                    SolveStatus.NUMERICAL_ERROR,
                    None,
                    total_iter,
                    "stage function evaluation failed",
                    solver,
                ), None
            n_st = sp.n_stage_nodes
            try:
                xnext, amat, bmat, tmat, tvec = self._dynamics()
            except np.linalg.LinAlgError:
                xnext = amat = np.full(1, np.nan)
            if not (np.all(np.isfinite(xnext)) and np.all(np.isfinite(amat))):
                return SolveOutcome(
                    SolveStatus.NUMERICAL_ERROR, None, total_iter, "non-finite dynamics", solver
                ), None
            # A values
            gapj = self._gap_tpl.copy()
            gapj[:, :nx, :nx] = amat
            gapj[:, :nx, nxb : nxb + nu] = bmat
            av = self._a_vals
            seg = self._seg
            av[seg[0] : seg[1]] = gapj[:, self._gap_r, self._gap_c].ravel()
            av[seg[3] : seg[4]] = self._stage.res[3]
            av[seg[4] : seg[5]] = self._term.res[3]
            hv = np.concatenate([self._stage.res[0], self._term.res[0]])
            q = np.zeros(sp.nw)
            q[self._ix] = self._stage.res[1].reshape(n_st, -1)[:, :nxb]
            q[self._iu] = self._stage.res[1].reshape(n_st, -1)[:, nxb:]
            q[self._ixt] = self._term.res[1].reshape(len(tm), -1)
            f_val = float(self._stage.res[4].sum() + self._term.res[4].sum())
            # constraint bounds
            lba = np.zeros(self._n_rows)
            uba = np.zeros(self._n_rows)
            pred = np.empty((n_st, nxb))
            pred[:, :nx] = xnext
            pred[:, nx : nx + nu] = zu[:, :nu]
            if sp.nr:
                rr = zx[:, nx + nu :].copy()
                for r in range(self._r_sel.shape[1]):
                    blk = slice(r * nu, (r + 1) * nu)
                    sel = self._r_sel[:, r][:, None]
                    rr[:, blk] += sel * (zu[:, :nu] - rr[:, blk])
                pred[:, nx + nu :] = rr
            gapv = z[self._ixn] - pred
            lba[self._rg] = gapv
            uba[self._rg] = gapv
            if self._jumps.size:
                jx = z[sp.node_offsets[self._jumps + 1][:, None] + np.arange(nxb)[None, :]]
                jpred = np.empty_like(jx)
                jpred[:, : nx + nu] = x0s
                jpred[:, nx + nu :] = z[
                    sp.node_offsets[self._jumps][:, None] + nx + nu + np.arange(sp.nr)[None, :]
                ]
                lba[self._rgj] = jx - jpred
                uba[self._rgj] = jx - jpred
            gs = self._stage.res[2].reshape(n_st, -1)
            lba[self._ro] = sp.lbg_stage - gs
            uba[self._ro] = sp.ubg_stage - gs
            gt = self._term.res[2].reshape(len(tm), -1)
            lba[self._rot] = sp.lbg_term - gt
            uba[self._rot] = sp.ubg_term - gt
            status, message, qp_it, dz_or_none = self._qp_step(
                gapj, gapv, lba, uba, q, z, lbw, ubw, hv, av
            )
            total_iter += qp_it
            if dz_or_none is None and self._has_hard:
                # the linearised hard bounds can be infeasible far from the solution (a cold
                # start, a large disturbance): solve this QP with them as exact penalties
                self.relaxed_qps += 1
                gt_ = self._term.res[2].reshape(len(tm), -1)
                lba[self._rot] = -np.inf - gt_
                uba[self._rot] = np.inf - gt_
                status, message, qp_it, dz_or_none = self._qp_step(
                    gapj, gapv, lba, uba, q, z, lbw, self._relax_ub(ubw), hv, av, relaxed=True
                )
                total_iter += qp_it
                message = f"{message}; hard bounds relaxed to exact penalties in this QP"
                ubw_check = self._relax_ub(ubw)
            if dz_or_none is None:
                return SolveOutcome(status, None, total_iter, message, solver), None
            dz = dz_or_none
            if not np.all(np.isfinite(dz)):
                return SolveOutcome(
                    SolveStatus.NUMERICAL_ERROR,
                    None,
                    total_iter,
                    f"{message}; non-finite step",
                    solver,
                ), None
            if sp.n_colloc:
                dzu = np.concatenate([dz[self._ix][:, :nx], dz[self._iu][:, :nu]], axis=1)
                xc = xc + np.einsum("nij,nj->ni", tmat, dzu) + tvec
            z = z + dz
            step_norm = float(np.max(np.abs(dz))) if dz.size else 0.0
            if step_norm < cfg.rti_step_tol:
                break
        viol = float(np.max(np.maximum(lbw - z, 0) + np.maximum(z - ubw_check, 0)))
        if viol > 1e-6:
            return SolveOutcome(
                SolveStatus.INFEASIBLE,
                None,
                total_iter,
                f"{message}; bound violation {viol:.3g}",
                solver,
            ), None
        final = SolveStatus.SUCCESS
        if solver != "rti" and step_norm > max(cfg.rti_step_tol, 1e-6):
            if step_norm > COLD_START_ACCEPT_STEP:
                return SolveOutcome(
                    SolveStatus.MAX_ITER,
                    None,
                    total_iter,
                    f"SQP not converged in {iterations} iterations (last step {step_norm:.3g})",
                    solver,
                ), None
            final = SolveStatus.ACCEPTABLE  # Gauss-Newton converges linearly; RTI goes on
            message = f"{message}; SQP stopped at step {step_norm:.3g}"
        new = StageIterate(z, xc)
        return SolveOutcome(
            final, z, total_iter, message, solver, self.trajectories(new, pn, f_val)
        ), new

    def _dynamics(self) -> tuple[NDArray[np.float64], ...]:
        """(x_next, A, B, T, t) of every stage node from the evaluated ``dyn`` map."""
        sp = self.sp
        n_st, nx, nu, nc = sp.n_stage_nodes, sp.nx, sp.nu, sp.n_colloc
        res = self._dyn.res
        if sp.colloc is not None:
            return eliminate_colloc(
                sp.colloc[0],
                sp.colloc[1],
                res[0].reshape(n_st, nx),
                res[1].reshape(n_st, nc),
                res[2].reshape(n_st, nc, nc).transpose(0, 2, 1),
                res[3].reshape(n_st, nx + nu, nc).transpose(0, 2, 1),
            )
        return (
            res[0].reshape(n_st, nx),
            res[1].reshape(n_st, nx, nx).transpose(0, 2, 1),
            res[2].reshape(n_st, nu, nx).transpose(0, 2, 1),
            res[3].reshape(n_st, nx + nu, nc).transpose(0, 2, 1),
            res[4].reshape(n_st, nc),
        )

    def _swap_compiled(self) -> None:
        """Put compiled stage functions in place of the interpreted ones, once available."""
        assert self._codegen is not None
        done = self._codegen.ready()
        if done is None:
            return
        self._codegen = None
        sp = self.sp
        sizes = {"dyn": sp.n_stage_nodes, "stage": sp.n_stage_nodes, "term": sp.n_scenarios}
        for key, fun in done.items():
            old: _Buffered = getattr(self, f"_{key}")
            new = _Buffered(fun.map(sizes[key], "serial"))
            for a, b in zip(new.args, old.args, strict=True):
                a[:] = b
            setattr(self, f"_{key}", new)
            self.compiled.append(key)
        log.info("stage functions compiled: %s", ", ".join(self.compiled) or "none")

    def _relax_ub(self, ubw: NDArray[np.float64]) -> NDArray[np.float64]:
        out = ubw.copy()
        out[self._hard_slack_idx] = np.inf
        return out

    def _qp_step(
        self,
        gapj: NDArray[np.float64],
        gapv: NDArray[np.float64],
        lba: NDArray[np.float64],
        uba: NDArray[np.float64],
        q: NDArray[np.float64],
        z: NDArray[np.float64],
        lbw: NDArray[np.float64],
        ubw: NDArray[np.float64],
        hv: NDArray[np.float64],
        av: NDArray[np.float64],
        relaxed: bool = False,
    ) -> tuple[SolveStatus, str, int, NDArray[np.float64] | None]:
        """One QP for the step ``dz`` (condensed qpOASES or HPIPM); None if it failed."""
        if self._condenser is not None:
            if relaxed and self._condenser_relaxed is None:
                c = self._condenser
                self._condenser_relaxed = StageCondenser(
                    c.is_stage, c.nxb, c.nub, c.keep_stage, c.keep_term, c.max_iter
                )
            cond = self._condenser_relaxed if relaxed else self._condenser
            assert cond is not None
            return self._condensed(gapj, gapv, lba, uba, q, z, lbw, ubw, cond)
        if relaxed:
            if self._hpipm_relaxed is None:
                ub = self._relax_ub(self.sp.ubw)
                self._hpipm_relaxed = self._hpipm_qp(self.sp.lbw != ub, ub)
            qp = self._hpipm_relaxed
        else:
            assert self._hpipm is not None
            qp = self._hpipm
        return qp.solve(hv, av, q, lba, uba, lbw - z, ubw - z)

    def _hpipm_qp(
        self, free: NDArray[np.bool_], ubw: NDArray[np.float64] | None = None
    ) -> HpipmStageQp | HpipmTreeStageQp | PiqpStageQp:
        """The structured QP over the node states and the controls ``free`` (static bounds)
        marks: HPIPM's tree QP through its C API (CasADi's interface when the library or the
        structure does not allow it, or :data:`HPIPM_C_API` is False), or PIQP's for
        ``qp_solver = "piqp"``."""
        sp = self.sp
        keep = free.copy()
        for o in sp.node_offsets[:-1]:  # node states stay (HPIPM's stage layout)
            keep[o : o + sp.nxb] = True
        if self.qp_solver is QpSolver.HPIPM and HPIPM_C_API:
            try:
                # complementarity to 1e-8 (HPIPM's default): at CasADi's 1e-7 the tree QP
                # stopped 2e-4 short on a nearly flat robust-horizon-2 QP (one more iteration)
                opts = {**self._hpipm_opts, "res_m_max": 1e-8}
                return HpipmTreeStageQp(self, keep, sp.lbw, sp.ubw if ubw is None else ubw, opts)
            except HpipmLibraryError as exc:
                log.warning("HPIPM's C API unavailable (%s): CasADi's HPIPM interface", exc)
            except ValueError as exc:
                log.info("HPIPM tree QP not applicable (%s): CasADi's HPIPM interface", exc)
        if self.qp_solver is QpSolver.PIQP:
            return PiqpStageQp(
                keep,
                sp.node_offsets,
                sp.nxb,
                self._row_node,
                self._h_trip,
                self._a_trip,
                sp.nx + sp.nu,  # the measured state and the previous input: fixed
                PIQP_ITER_FACTOR * sp.config.qp_max_iter,
            )
        return HpipmStageQp(
            keep,
            sp.node_offsets,
            sp.nxb,
            self._row_node,
            self._h_trip,
            self._a_trip,
            self._hpipm_opts,
        )

    @property
    def qp_nnz(self) -> tuple[int, int]:
        """Nonzeros of the Hessian and constraint Jacobian of the QP in use (HPIPM)."""
        return self._hpipm.nnz if self._hpipm is not None else (0, 0)

    @property
    def qp_stage_controls(self) -> list[int]:
        """HPIPM's controls per stage (empty on the condensed path)."""
        return list(self._hpipm.nu) if self._hpipm is not None else []

    def _condensed(
        self,
        gapj: NDArray[np.float64],
        gapv: NDArray[np.float64],
        lba: NDArray[np.float64],
        uba: NDArray[np.float64],
        q: NDArray[np.float64],
        z: NDArray[np.float64],
        lbw: NDArray[np.float64],
        ubw: NDArray[np.float64],
        cond: StageCondenser,
    ) -> tuple[SolveStatus, str, int, NDArray[np.float64] | None]:
        """The QP step by condensing (see :mod:`mpc.stage_condensing`)."""
        sp = self.sp
        n_st, ns = sp.n_stage_nodes, sp.n_scenarios
        nxb, nub = sp.nxb, sp.nub
        nz = nxb + nub
        hs = np.zeros((n_st, nz, nz))
        r, c = self._hs_idx
        hs[:, r, c] = self._stage.res[0].reshape(n_st, -1)
        ht = np.zeros((ns, nxb, nxb))
        r, c = self._ht_idx
        ht[:, r, c] = self._term.res[0].reshape(ns, -1)
        gs = np.zeros((n_st, sp.ng_stage, nz))
        r, c = self._gs_idx
        gs[:, r, c] = self._stage.res[3].reshape(n_st, -1)
        gt = np.zeros((ns, sp.ng_term, nxb))
        r, c = self._gt_idx
        gt[:, r, c] = self._term.res[3].reshape(ns, -1)
        c_jump = -lba[self._rgj] if self._jumps.size else np.zeros((0, nxb))
        lbv = (lbw - z)[self._iu].ravel()
        ubv = (ubw - z)[self._iu].ravel()
        status, message, iters, dx, v = cond.solve(
            gapj,
            -gapv,
            self._jump_tpl,
            c_jump,
            hs,
            q[self._ix_all_stage],
            ht,
            q[self._ixt],
            gs,
            lba[self._ro],
            uba[self._ro],
            gt,
            lba[self._rot],
            uba[self._rot],
            lbv,
            ubv,
        )
        if dx is None or v is None:
            return status, message, iters, None
        dz = np.zeros(sp.nw)
        dz[self._ix_nodes] = dx
        dz[self._iu] = v.reshape(n_st, nub)
        return status, message, iters, dz

    def trajectories(
        self, it: StageIterate, pn: NDArray[np.float64], f_val: float
    ) -> tuple[Any, ...]:
        """(X (nx x N+1), U (nu x N), Y (ny x N+1), objective) of scenario 0, SI."""
        sp = self.sp
        n = sp.config.horizon_steps
        nx, nu, nxb = sp.nx, sp.nu, sp.nxb
        off = sp.node_offsets
        xb = np.stack([it.z[off[k] : off[k] + nxb] for k in range(n + 1)])
        ub = np.stack([it.z[off[k] + nxb : off[k] + nxb + nu] for k in range(n)])
        u_out = np.vstack([ub, xb[n, nx : nx + nu]])
        _set(self._out.args[0], xb)
        _set(self._out.args[1], u_out)
        _set(self._out.args[2], pn[: n + 1])
        self._out()
        ys = self._out.res[0].reshape(n + 1, -1)
        return ((xb[:, :nx] * sp.x_scale).T, (ub * sp.u_scale).T, ys.T, f_val)


def _set(buf: NDArray[np.float64], val: NDArray[np.float64]) -> None:
    """Write a (nodes, k) array into a mapped function's column-major input buffer."""
    buf[:] = np.ascontiguousarray(val).ravel()
