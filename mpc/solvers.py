"""The two numerical back ends of the NMPC controller, over one :class:`~mpc.ocp.Ocp`.

- :class:`IpoptSolver`: the full NLP with IPOPT (exact Hessian), used for the
  first solve, as fallback, and as the reference.
- :class:`RtiSolver`: Gauss-Newton SQP real-time iterations. Each iteration
  evaluates the QP data (optionally compiled to C, in the background) and solves
  one QP (``MpcConfig.qp_solver``): either the stage-structured QP with HPIPM,
  called directly through CasADi's conic interface (HPIPM inside an MX
  Function segfaults with casadi 3.8.2), or the QP condensed onto the node
  controls (:mod:`mpc.condensing`) with qpOASES, dense, hot-started. The
  functions are called through CasADi's buffer API on arrays allocated once
  (a plain Python call costs ~0.1 ms of DM conversions per function).

Both return a :class:`SolveOutcome` and never raise on a failed solve. Foreign
statuses are translated here, once.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import NDArray

from mpc.condensed_daqp import DaqpCondensedQp, daqp_condensing, daqp_status
from mpc.condensing import condensed_functions, resolve_qp_solver
from mpc.config import QpSolver
from mpc.ocp import Ocp
from mpc.stage_codegen import BackgroundCompiler, resolve_codegen
from plant_models.errors import ConfigError
from plant_models.results import SolveStatus, status_from_ipopt

log = logging.getLogger(__name__)

_HPIPM_STATUS = {
    0: SolveStatus.SUCCESS,
    1: SolveStatus.MAX_ITER,
    2: SolveStatus.NUMERICAL_ERROR,  # minimum step length
    3: SolveStatus.NUMERICAL_ERROR,  # NaN
}


@dataclass(frozen=True)
class SolveOutcome:
    """Raw outcome of one solve of the OCP."""

    status: SolveStatus
    """Translated status."""
    w: NDArray[np.float64] | None
    """Primal solution (scaled decision vector), None if the solver produced nothing."""
    iterations: int
    """Solver iterations: IPOPT's; HPIPM's summed over the SQP iterations; with qpOASES the
    working-set changes of QPs that failed plus one per SQP iteration (a successful QP's
    statistics are not read: converting them cost ~10 us per step, ~80 us cache-cold)."""
    message: str
    """Solver status text."""
    solver: str
    """``"ipopt"`` or ``"rti"``."""
    trajectories: tuple[Any, ...] | None = None
    """(X, U, Y, objective) at ``w`` when the solver already evaluated them."""


class IpoptSolver:
    """Full NLP solve with IPOPT, warm-started from a guess."""

    def __init__(self, ocp: Ocp, *, max_iter: int | None = None) -> None:
        cfg = ocp.config
        f = ca.sumsqr(ocp.residual) + ca.dot(ca.DM(ocp.linear_cost), ocp.w)
        opts: dict[str, Any] = {
            "print_time": False,
            "ipopt.print_level": 0,
            "ipopt.sb": "yes",
            "ipopt.max_iter": cfg.ipopt_max_iter if max_iter is None else max_iter,
            "ipopt.tol": cfg.ipopt_tol,
            "ipopt.linear_solver": "mumps",
            "ipopt.bound_relax_factor": 0.0,
            "error_on_fail": False,
        }
        self._ocp = ocp
        self._solver = ca.nlpsol(
            "mpc_ipopt", "ipopt", {"x": ocp.w, "p": ocp.P, "f": f, "g": ocp.g}, opts
        )

    def solve(
        self, w0: NDArray[np.float64], P: NDArray[np.float64], lbw: NDArray[np.float64],
        ubw: NDArray[np.float64],
    ) -> SolveOutcome:
        """Solve from ``w0``; never raises."""
        ocp = self._ocp
        try:
            sol = self._solver(x0=np.clip(w0, lbw, ubw), p=P, lbx=lbw, ubx=ubw, lbg=ocp.lbg,
                               ubg=ocp.ubg)
            stats = self._solver.stats()
        except RuntimeError as exc:  # evaluation errors surface as RuntimeError
            return SolveOutcome(SolveStatus.NUMERICAL_ERROR, None, 0, str(exc), "ipopt")
        status = status_from_ipopt(stats)
        w = np.asarray(sol["x"], dtype=float).reshape(-1)
        if not np.all(np.isfinite(w)):
            return SolveOutcome(SolveStatus.NUMERICAL_ERROR, None, int(stats.get("iter_count", 0)),
                                "non-finite iterate", "ipopt")
        return SolveOutcome(status, w, int(stats.get("iter_count", 0)),
                            str(stats.get("return_status", "")), "ipopt")


def _symbolic_bounds(ocp: Ocp) -> tuple[ca.SX, ca.SX]:
    """lbw, ubw as expressions of P (the initial state and previous input are in P)."""
    lbw = ca.SX(ca.DM(ocp.lbw))
    ubw = ca.SX(ca.DM(ocp.ubw))
    P = ocp.P
    lay = ocp.params
    x0 = P[lay.x0] / ca.DM(ocp.x_scale)
    up = P[lay.u_prev] / ca.DM(ocp.u_scale)
    for i, idx in enumerate(ocp.idx_x0):
        lbw[int(idx)] = x0[i]
        ubw[int(idx)] = x0[i]
    for i, idx in enumerate(ocp.idx_ul0):
        lbw[int(idx)] = up[i]
        ubw[int(idx)] = up[i]
    return lbw, ubw


def _colloc_elimination(
    ocp: Ocp, g: ca.SX, jg: ca.SX, gz: ca.SX, rows_col: list[int], cols_col: list[int],
) -> tuple[list[ca.SX], Any] | None:
    """Pieces of the numeric collocation elimination, or None when the blocks are coupled.

    Returns the SX expressions ``[RC, RHS]`` (all collocation blocks' Jacobians as one
    block-diagonal matrix, and per block its right-hand sides ``[dg/dz_used | g]`` packed
    side by side into a ``n_col x (k + 1)`` matrix) and a builder that turns their MX
    counterparts into ``(T, t)`` by one sparse QR solve (numerically, at run time)."""
    rc = jg[rows_col, cols_col]
    blocks = ocp.colloc_blocks
    starts = np.cumsum([0] + [len(r) for r, _ in blocks])
    owner = np.repeat(np.arange(len(blocks)), np.diff(starts))
    rr, cc = (np.array(v, dtype=int) for v in rc.sparsity().get_triplet())
    if rr.size and np.any(owner[rr] != owner[cc]):
        return None
    used = [sorted(set(gz[r.tolist(), :].sparsity().get_col())) for r, _ in blocks]
    width = max((len(u) for u in used), default=0)
    rhs = ca.SX.zeros(int(starts[-1]), width + 1)
    for b, (rows, _) in enumerate(blocks):
        rl = rows.tolist()
        sl = slice(int(starts[b]), int(starts[b + 1]))
        if used[b]:
            rhs[sl, : len(used[b])] = ca.densify(gz[rl, used[b]])
        rhs[sl, width] = g[rl]
    # T's pattern (block rows x used columns) and where its nonzeros sit in the dense RHS
    tr, tc, src = [], [], []
    n_rows = int(starts[-1])
    for b in range(len(blocks)):
        for j, col in enumerate(used[b]):
            for r in range(int(starts[b]), int(starts[b + 1])):
                tr.append(r)
                tc.append(col)
                src.append(j * n_rows + r)  # column-major position in the dense solution
    t_sp = ca.Sparsity.triplet(n_rows, int(ocp.idx_core.size), tr, tc)
    # the triplet order is not the pattern's (column-major) order: map through it
    lookup = {(r, c): k for k, (r, c) in enumerate(zip(tr, tc, strict=True))}
    pr, pc = t_sp.get_triplet()
    perm = [src[lookup[(r, c)]] for r, c in zip(pr, pc, strict=True)]

    def solve(rc_mx: ca.MX, rhs_mx: ca.MX) -> tuple[ca.MX, ca.MX]:
        sol = -ca.solve(rc_mx, rhs_mx, "qr")
        tmat = ca.sparsity_cast(sol.nz[perm], t_sp) if perm else ca.MX(t_sp)
        return tmat, sol[:, width]

    return [rc, ca.densify(rhs)], solve


def _condensed_qp_data(
    ocp: Ocp, *, symbolic: bool = False
) -> tuple[ca.Function, ca.Function, NDArray[np.int64]]:
    """Functions of the Gauss-Newton QP in the core variables, and the kept rows of g.

    ``qp_data(w, P) -> (H, q, A, lba, uba, lbx, ubx, T, t)`` is the QP for the
    step ``dz`` of the core variables; ``post(w, dz, T, t, P) -> (w+, X, U, Y,
    f, viol)`` applies the step and evaluates the trajectories. Collocation
    states are eliminated stage by stage: the linearised collocation equations
    give ``dc = T dz + t``, substituted into the other constraints (one Newton
    step on the collocation equations per SQP iteration, as in lifted implicit
    integrators). The blocks' linear systems are solved numerically at run time
    (one sparse QR of the block-diagonal collocation Jacobian: ``qp_data`` is an MX
    Function around one SX Function), not as symbolic expressions (a symbolic QR of
    every block made the SX function 6x larger: 55,000 instead of ~9,000
    instructions on do-mpc's CSTR). ``symbolic=True`` builds the symbolic elimination (one
    SX function, for code generation of the whole condensed QP data).
    """
    w, P = ocp.w, ocp.P
    core = ocp.idx_core
    col = ocp.idx_colloc
    r = ocp.residual
    jr = ca.jacobian(r, w)[:, core.tolist()]
    hess = 2.0 * ca.mtimes(jr.T, jr)
    lin = ocp.linear_cost[core]
    reg = np.where(lin > 0, 1e-8, 0.0)  # keeps L1-only slacks strictly convex
    hess = hess + ca.diag(ca.DM(reg))
    hess = ca.triu(hess) + ca.triu(hess, False).T
    grad = 2.0 * ca.mtimes(jr.T, r) + ca.DM(lin)
    g = ocp.g
    jg = ca.jacobian(g, w)
    gz = jg[:, core.tolist()]
    rows_col: list[int] = [i for rows, _ in ocp.colloc_blocks for i in rows.tolist()]
    cols_col: list[int] = [i for _, cols in ocp.colloc_blocks for i in cols.tolist()]
    other = np.array(sorted(set(range(g.numel())) - set(rows_col)), dtype=int)
    ol = other.tolist()
    lbw, ubw = _symbolic_bounds(ocp)
    z = w[core.tolist()]
    lbx = lbw[core.tolist()] - z
    ubx = ubw[core.tolist()] - z
    lbg_o, ubg_o = ca.DM(ocp.lbg[other]), ca.DM(ocp.ubg[other])
    elim = (_colloc_elimination(ocp, g, jg, gz, rows_col, cols_col)
            if col.size and not symbolic else None)
    if elim is not None:
        pieces, solve = elim
        gc = jg[ol, col.tolist()]
        sx = ca.Function("mpc_qp_stage_data", [w, P],
                         [hess, grad, gz[ol, :], g[ol], gc, lbx, ubx, *pieces])
        wm, pm = ca.MX.sym("w", w.sparsity()), ca.MX.sym("P", P.sparsity())
        h_m, q_m, a_m, g_m, gc_m, lbx_m, ubx_m, rc_m, rhs_m = sx(wm, pm)
        tmat_m, tvec_m = solve(rc_m, rhs_m)
        a_red_m = a_m + ca.mtimes(gc_m, tmat_m)
        g_red_m = g_m + ca.mtimes(gc_m, tvec_m)
        qp_data = ca.Function(
            "mpc_qp_data", [wm, pm],
            [h_m, q_m, a_red_m, lbg_o - g_red_m, ubg_o - g_red_m, lbx_m, ubx_m, tmat_m, tvec_m])
        tmat_sp, n_t = tmat_m.sparsity(), int(tvec_m.numel())
    else:
        if col.size == 0:
            a_red, g_red = gz, g
            tmat, tvec = ca.SX(0, core.size), ca.SX(0, 1)
        else:  # coupled collocation blocks: eliminated symbolically
            t_blocks = []
            tt_blocks = []
            for rows, cols in ocp.colloc_blocks:
                rl, cl = rows.tolist(), cols.tolist()
                rc = jg[rl, cl]
                rz = gz[rl, :]
                nzc = sorted(set(rz.sparsity().get_col()))
                tb = ca.SX(len(rl), core.size)
                if nzc:
                    tb[:, nzc] = -ca.solve(rc, ca.densify(rz[:, nzc]))
                t_blocks.append(tb)
                tt_blocks.append(-ca.solve(rc, g[rl]))
            tmat = ca.vertcat(*t_blocks)
            tvec = ca.vertcat(*tt_blocks)
            gc = jg[:, col.tolist()]
            a_red = gz[ol, :] + ca.mtimes(gc[ol, :], tmat)
            g_red = g[ol] + ca.mtimes(gc[ol, :], tvec)
        qp_data = ca.Function("mpc_qp_data", [w, P],
                              [hess, grad, a_red, lbg_o - g_red, ubg_o - g_red, lbx, ubx, tmat,
                               tvec])
        tmat_sp, n_t = tmat.sparsity(), int(tvec.numel())

    dz = ca.SX.sym("dz", core.size)
    tm = ca.SX.sym("T", tmat_sp)
    tv = ca.SX.sym("t", n_t)
    w_new = ca.SX(w)
    w_new[core.tolist()] = z + dz
    if col.size:
        w_new[col.tolist()] = w[col.tolist()] + ca.mtimes(tm, dz) + tv
    xs, us, ys, f = ocp.trajectories(w_new, P)
    viol = ca.mmax(ca.vertcat(ca.fmax(lbw - w_new, 0), ca.fmax(w_new - ubw, 0)))
    post = ca.Function("mpc_post", [w, dz, tm, tv, P], [w_new, xs, us, ys, f, viol])
    return qp_data, post, other


def _hpipm_status(stats: dict[str, Any]) -> tuple[SolveStatus, str]:
    """Translate HPIPM's integer return code from the conic stats."""
    raw = stats.get("return_status", -1)
    code = int(raw) if isinstance(raw, (int, float)) else -1
    return _HPIPM_STATUS.get(code, SolveStatus.FAILED), f"hpipm return status {code}"


def _qpoases_status(stats: dict[str, Any]) -> tuple[SolveStatus, str]:
    """Translate qpOASES' return text (CasADi's conic stats) to a status."""
    text = str(stats.get("return_status", ""))
    if stats.get("success", False):
        return SolveStatus.SUCCESS, f"qpoases: {text}"
    low = text.lower()
    if "infeasib" in low:
        return SolveStatus.INFEASIBLE, f"qpoases: {text}"
    if "nwsr" in low or "maximum number" in low:
        return SolveStatus.MAX_ITER, f"qpoases: {text}"
    return SolveStatus.NUMERICAL_ERROR, f"qpoases: {text or 'failed'}"


class _Buffered:
    """A CasADi Function called through its buffer API on pre-allocated numpy arrays.

    A normal Python call converts every argument and result to DM (about
    0.1 ms for the RTI functions); the buffer evaluates in place. With
    ``via_call`` the same arrays go through the ordinary call instead. Inputs and
    outputs are the nonzeros of the Function's sparsity patterns. ``args``
    entries given as arrays are shared (another buffer's results, no copy), and
    so are ``res`` (a fresh buffer writing where an old one did).
    """

    def __init__(self, fun: ca.Function, args: dict[int, NDArray[np.float64]] | None = None,
                 *, via_call: bool = False, res: list[NDArray[np.float64]] | None = None) -> None:
        self.fun = fun
        self._via_call = via_call
        self.args = [np.zeros(fun.nnz_in(i)) for i in range(fun.n_in())]
        for i, arr in (args or {}).items():
            if arr.size != fun.nnz_in(i):
                raise ValueError(f"{fun.name()} input {i}: {arr.size} values, needs {fun.nnz_in(i)}")
            self.args[i] = arr
        self.res = res if res is not None else [np.zeros(fun.nnz_out(i))
                                                for i in range(fun.n_out())]
        self._shapes = [(fun.size2_out(i), fun.size1_out(i)) for i in range(fun.n_out())]
        if via_call:
            return
        self._buf, self._eval = fun.buffer()
        for i, arr in enumerate(self.args):
            self._buf.set_arg(i, memoryview(arr))  # type: ignore[call-arg, arg-type]
        for i, arr in enumerate(self.res):
            self._buf.set_res(i, memoryview(arr))  # type: ignore[call-arg, arg-type]

    def __call__(self) -> int:
        """Evaluate; returns CasADi's return flag (0 on success, 1 if it raised)."""
        try:
            if self._via_call:
                fun = self.fun
                ins = [ca.DM(fun.sparsity_in(i), a) for i, a in enumerate(self.args)]
                outs = fun.call(ins)
                for arr, out in zip(self.res, outs, strict=True):
                    arr[:] = out.nonzeros()
                return 0
            self._eval()
        except RuntimeError as exc:  # evaluation errors surface as RuntimeError
            log.debug("%s failed: %s", self.fun.name(), exc)
            return 1
        return int(self._buf.ret())

    def stats(self) -> dict[str, Any]:
        """Statistics of the last evaluation (solvers)."""
        return dict(self.fun.stats() if self._via_call else self._buf.stats())

    def dense_out(self, i: int) -> NDArray[np.float64]:
        """Copy of output ``i`` as a dense 2-D array (the outputs are dense)."""
        return self.res[i].reshape(self._shapes[i]).T.copy()


def _dense_outputs(fun: ca.Function, keep_sparse: tuple[int, ...] = ()) -> ca.Function:
    """``fun`` with all outputs densified but ``keep_sparse`` (matrices passed on as nonzeros)."""
    ins: Any = fun.mx_in() if fun.is_a("MXFunction") else fun.sx_in()
    outs = fun.call(ins)
    outs = [o if i in keep_sparse else ca.densify(o) for i, o in enumerate(outs)]
    return ca.Function(fun.name(), ins, outs)


def _folded_condensing(ocp: Ocp, condense: ca.Function) -> ca.Function:
    """``condense`` as one scalar (SX) function for code generation, with the QP data's
    constant nonzeros (a Gauss-Newton Hessian of linear residuals, the identity blocks of the
    gap rows, limit rows on states) folded in as numbers: gcc then sees about a third of the
    scalar code of the fully symbolic condensing. The constants are found on the symbolic
    form of the QP data (collocation blocks eliminated symbolically), whose patterns lie
    inside the numeric form's; the inputs keep the numeric form's patterns."""
    qp_sym, _, _ = _condensed_qp_data(ocp, symbolic=True)
    sym_out = qp_sym.call(qp_sym.sx_in())
    ins = []
    used = []
    for i in range(7):
        sp = condense.sparsity_in(i)
        arg = ca.SX.sym(condense.name_in(i), sp)
        ins.append(arg)
        ref = ca.project(sym_out[i], sp) if sym_out[i].shape == sp.shape else None
        if ref is None or not sym_out[i].sparsity().is_subset(sp):
            raise ConfigError(f"codegen: QP data output {i} has another pattern")
        nz = [ref.nz[k] if ref.nz[k].is_constant() else arg.nz[k] for k in range(sp.nnz())]
        used.append(ca.SX(sp, ca.vertcat(*nz)) if nz else ca.SX(sp))
    expanded = condense.expand()
    return ca.Function("mpc_qp_condense_c", ins, expanded.call(used))


class RtiSolver:
    """Gauss-Newton SQP (real-time iteration): HPIPM on the stage-structured QP, or
    qpOASES on the QP condensed onto the node controls (``MpcConfig.qp_solver``).

    Every Function (QP data, condensing, QP solver, update) runs through the CasADi
    buffer API on arrays allocated once; each Function's results are the next one's
    inputs. With ``MpcConfig.codegen`` the QP data, condensing and update functions
    are compiled to C in the background (:class:`mpc.stage_codegen.BackgroundCompiler`:
    gcc budget, content cache) while the CasADi VM runs, and swapped in at the start
    of a later step (:attr:`compiled`).
    """

    def __init__(self, ocp: Ocp) -> None:
        cfg = ocp.config
        self._ocp = ocp
        self.qp_solver = resolve_qp_solver(ocp)
        """The QP method in use (``MpcConfig.qp_solver`` with AUTO resolved)."""
        qp_data, post, _ = _condensed_qp_data(ocp)
        qp_data = _dense_outputs(qp_data, keep_sparse=(0, 2, 7))
        post = _dense_outputs(post)
        update = post
        condense: ca.Function | None = None
        if self.qp_solver in (QpSolver.CONDENSED_QPOASES, QpSolver.CONDENSED_DAQP):
            try:
                condense, update = condensed_functions(ocp, qp_data, post)
                if self.qp_solver is QpSolver.CONDENSED_DAQP:
                    condense = daqp_condensing(condense)
            except ConfigError as exc:
                if cfg.qp_solver is not QpSolver.AUTO:
                    raise
                log.info("QP not condensable (%s); using HPIPM", exc)
                self.qp_solver = QpSolver.HPIPM
        if self.qp_solver is QpSolver.HPIPM:
            update = ca.Function(
                "mpc_post_hpipm", post.sx_in(),
                [*post.call(post.sx_in()), ca.norm_inf(post.sx_in()[1])])
        self.compiled = False
        """True once compiled functions are in use (:attr:`compiled_functions`)."""
        self.compiled_functions: list[str] = []
        """Which of ``data``, ``cond``, ``update`` run as compiled C."""
        self._data = _Buffered(qp_data)
        self._ok_message = "qpoases: Successful return."
        d = self._data.res
        self._cond: _Buffered | None = None
        self._cold_qp: Callable[[], _Buffered | DaqpCondensedQp] | None = None
        self._qp: _Buffered | DaqpCondensedQp
        if condense is not None:
            self._cond = _Buffered(condense, {i: d[i] for i in range(7)})
            c = self._cond.res
            sp = {"h": condense.sparsity_out(0), "a": condense.sparsity_out(2)}
            max_iter = max(cfg.qp_max_iter, 10 * condense.nnz_out(1))
            i_m = 7  # condensing's results: QP, then M, m (DAQP's: 5 for the QP)
            if self.qp_solver is QpSolver.CONDENSED_DAQP:
                i_m = 5
                dq = DaqpCondensedQp(condense.size1_out(1), condense.size2_out(2), c[:5],
                                     max_iter)
                self._qp = dq  # the same call interface as the conic's _Buffered
                self._cold_qp = dq.cold
                self._status, self._ok_message = daqp_status, "daqp: optimal"
            else:
                opts: dict[str, Any] = {"sparse": False, "hessian_type": "posdef",
                                        "printLevel": "none", "error_on_fail": False,
                                        "nWSR": max_iter}
                with _quiet_stdout():  # qpOASES prints a banner whenever a memory is created
                    qp = ca.conic("mpc_qp_condensed", "qpoases", sp, opts)
                    self._qp = _Buffered(qp, {i: c[i] for i in range(7)})
                self._cold_qp = lambda: _Buffered(qp, {i: c[i] for i in range(7)},
                                                  res=self._qp.res)
                self._status = _qpoases_status
            # update(w, v, M, m, T, t, P)
            self._update = _Buffered(update, {0: self._data.args[0], 1: self._qp.res[0],
                                              2: c[i_m], 3: c[i_m + 1], 4: d[7], 5: d[8],
                                              6: self._data.args[1]})
        else:
            n = len(ocp.nu_stage)
            nu = [v - c for v, c in zip(ocp.nu_stage, ocp.colloc_stage, strict=True)] + [0]
            ng = [v - c for v, c in zip(ocp.ng_stage[:n], ocp.colloc_stage, strict=True)] + [
                ocp.ng_stage[n]]
            sp = {"h": qp_data.sparsity_out(0), "a": qp_data.sparsity_out(2)}
            opts = {
                "N": n, "nx": ocp.nx_stage, "nu": nu, "ng": ng, "inf": 1e8,
                "error_on_fail": False,
                # Complementarity to 1e-7, not 1e-8: the bound multipliers of soft-limit slacks
                # are sqrt(l1_penalty) (200 on do-mpc's CSTR) and the interior point stalls near
                # a mean complementarity of 1e-8. Measured: at 1e-8 HPIPM hit iter_max in 24 of
                # 160 robust CSTR steps with setpoint changes (each then solved by IPOPT,
                # ~400 ms); at 1.5e-8 and above, none. The price: SQP iterated to convergence
                # lands within 6e-4 (relative) of IPOPT's optimum on the MVs, below what one
                # real-time iteration per step leaves anyway.
                "hpipm": {"iter_max": cfg.qp_max_iter, "res_g_max": 1e-8, "res_b_max": 1e-8,
                          "res_d_max": 1e-8, "res_m_max": 1e-7, "mode": "robust"},
            }
            qp = ca.conic("mpc_qp", "hpipm", sp, opts)
            # HPIPM through a reused FunctionBuffer returned bound-violating answers from the
            # second call on (casadi 3.8.2): it goes through the ordinary call.
            self._qp = _Buffered(qp, {i: d[i] for i in range(7)}, via_call=True)
            self._status = _hpipm_status
            # update(w, dz, T, t, P)
            self._update = _Buffered(update, {0: self._data.args[0], 1: self._qp.res[0],
                                              2: d[7], 3: d[8], 4: self._data.args[1]})
        self._codegen: BackgroundCompiler | None = None
        if resolve_codegen(cfg.codegen):
            funs = {"update": update, "data": qp_data}
            if condense is not None:
                try:
                    funs["cond"] = _folded_condensing(ocp, condense)
                except ConfigError as exc:  # not expected: a pattern the VM chain lacks
                    log.warning("%s; the condensing stays interpreted", exc)
            self._codegen = BackgroundCompiler(funs, cfg.codegen_budget_s)

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Block until the background compilation is over (benchmarks, tests); True when it
        finished (the compiled functions are swapped in at the next :meth:`solve`)."""
        return self._codegen is None or self._codegen.wait(timeout)

    def _swap_compiled(self) -> None:
        """Put the compiled functions in place of the interpreted ones, once gcc is done:
        the same arrays, so the chain of inputs and results stays as built."""
        if self._codegen is None:
            return
        done = self._codegen.ready()
        if done is None:
            return
        self._codegen = None
        for key in ("data", "cond", "update"):
            buf = getattr(self, f"_{key}")
            if buf is None or key not in done:
                continue
            setattr(self, f"_{key}", _Buffered(done[key], dict(enumerate(buf.args)),
                                               res=buf.res))
            self.compiled_functions.append(key)
        self.compiled = bool(self.compiled_functions)
        log.info("RTI functions compiled to C: in use")

    def solve(self, w0: NDArray[np.float64], P: NDArray[np.float64],
              iterations: int | None = None, solver: str = "rti") -> SolveOutcome:
        """Run ``iterations`` (default ``rti_iterations``) Gauss-Newton SQP iterations from
        ``w0``, stopping early once the step is below ``rti_step_tol``; never raises."""
        if self._codegen is not None:
            self._swap_compiled()
        cfg = self._ocp.config
        n_iter = cfg.rti_iterations if iterations is None else iterations
        data, cond, up = self._data, self._cond, self._update
        w_in, p_in = data.args
        w_in[:] = w0
        p_in[:] = P
        total_iter = 0
        message = ""
        viol = 0.0
        for it in range(n_iter):
            if data() != 0 or (cond is not None and cond() != 0):
                return SolveOutcome(SolveStatus.NUMERICAL_ERROR, None, total_iter,
                                    "QP data evaluation failed", solver)
            flag = self._qp()
            if flag == 0 and self._cold_qp is not None:  # qpOASES/DAQP: 0 is success
                message = self._ok_message
                total_iter += 1
            else:
                stats = self._qp.stats()
                status, message = self._status(stats)
                total_iter += max(int(stats.get("iter_count", 0)), 0)
                if flag != 0 and status is SolveStatus.SUCCESS:
                    status, message = SolveStatus.NUMERICAL_ERROR, f"{message}; QP call failed"
                if not status.usable:
                    if self._cold_qp is not None:  # drop the hot start: next QP starts cold
                        with _quiet_stdout():
                            self._qp = self._cold_qp()
                    return SolveOutcome(status, None, total_iter, message, solver)
            if up() != 0:
                return SolveOutcome(SolveStatus.NUMERICAL_ERROR, None, total_iter,
                                    "update evaluation failed", solver)
            w_in[:] = up.res[0]
            viol = float(up.res[5][0])
            if it + 1 < n_iter and float(up.res[6][0]) < cfg.rti_step_tol:
                break
        w_np = w_in.copy()
        if not np.isfinite(w_np).all():  # the method: ~3 us less than np.all(...) per step
            return SolveOutcome(SolveStatus.NUMERICAL_ERROR, None, total_iter,
                                f"{message}; non-finite iterate", solver)
        # A QP "solved" on an inconsistent linearisation still leaves bounds violated.
        if viol > 1e-6:
            return SolveOutcome(SolveStatus.INFEASIBLE, None, total_iter,
                                f"{message}; bound violation {viol:.3g}", solver)
        traj = (up.dense_out(1), up.dense_out(2), up.dense_out(3), float(up.res[4][0]))
        return SolveOutcome(SolveStatus.SUCCESS, w_np, total_iter, message, solver, traj)


def _flush_c_stdio() -> None:
    """fflush(NULL) of the C library, if it can be reached."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence stdout for the block: Python's ``sys.stdout`` (CasADi routes some solver output
    there) and the C library's file descriptor 1."""
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            if sys.__stdout__ is not None:
                sys.__stdout__.flush()
            saved = os.dup(1)
        except (OSError, ValueError):
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 1)
                try:
                    yield
                finally:
                    _flush_c_stdio()  # C printf output is buffered: drop it before restoring
                    os.dup2(saved, 1)
        finally:
            os.close(saved)


def now() -> float:
    """Monotonic wall clock in seconds."""
    return time.perf_counter()
