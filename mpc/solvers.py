"""The two numerical back ends of the NMPC controller, over one :class:`~mpc.ocp.Ocp`.

- :class:`IpoptSolver`: the full NLP with IPOPT (exact Hessian), used for the
  first solve, as fallback, and as the reference.
- :class:`RtiSolver`: Gauss-Newton SQP real-time iterations. Each iteration
  evaluates the QP data (an SX function, optionally compiled to C) and solves
  one stage-structured QP with HPIPM, called directly through CasADi's conic
  interface (HPIPM inside an MX Function segfaults with casadi 3.8.2).

Both return a :class:`SolveOutcome` and never raise on a failed solve. Foreign
statuses are translated here, once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import NDArray

from mpc.ocp import Ocp
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
    """Solver iterations."""
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


def _cache_dir() -> Path:
    root = os.environ.get("RTOMPC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rtompc")
    return Path(root) / "mpc_codegen"


def _run_compiler(cmd: list[str], timeout_s: float) -> None:
    """Run the compiler in its own process group; kill the whole group on timeout."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=err)


def _compile(fun: ca.Function, timeout_s: float = 900.0) -> ca.Function | None:
    """Compile ``fun`` to a shared library (cached by source hash); None if impossible.

    Large sources (robust scenario trees) are compiled without optimisation:
    gcc's time grows steeply with the size of the one generated function.
    """
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        log.info("no C compiler found; QP data evaluated by the CasADi VM")
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="rtompc_mpc_") as tmp:
            cg = ca.CodeGenerator(f"{fun.name()}.c", {"with_header": False})
            cg.add(fun)
            c_path = Path(tmp) / f"{fun.name()}.c"
            cg.generate(str(tmp) + os.sep)
            source = c_path.read_bytes()
            flags = ["-O1" if len(source) < 4_000_000 else "-O0", "-fPIC", "-shared"]
            key = hashlib.sha256(source + " ".join([cc, *flags]).encode()).hexdigest()[:24]
            cache = _cache_dir()
            cache.mkdir(parents=True, exist_ok=True)
            so_path = cache / f"{fun.name()}_{key}.so"
            if not so_path.exists():
                part = cache / f"{so_path.name}.{os.getpid()}.part"
                _run_compiler([cc, *flags, str(c_path), "-o", str(part)], timeout_s)
                os.replace(part, so_path)
        return ca.external(fun.name(), str(so_path))
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        log.warning("code generation failed (%s); using the CasADi VM", exc)
        return None


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


def _condensed_qp_data(ocp: Ocp) -> tuple[ca.Function, ca.Function, NDArray[np.int64]]:
    """Functions of the Gauss-Newton QP in the core variables, and the kept rows of g.

    ``qp_data(w, P) -> (H, q, A, lba, uba, lbx, ubx, T, t)`` is the QP for the
    step ``dz`` of the core variables; ``post(w, dz, T, t, P) -> (w+, X, U, Y,
    f, viol)`` applies the step and evaluates the trajectories. Collocation
    states are eliminated stage by stage: the linearised collocation equations
    give ``dc = T dz + t``, substituted into the other constraints (one Newton
    step on the collocation equations per SQP iteration, as in lifted implicit
    integrators).
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
    rows_col: list[int] = []
    if col.size == 0:
        a_red, g_red = gz, g
        tmat, tvec = ca.SX(0, core.size), ca.SX(0, 1)
    else:
        t_blocks = []
        tt_blocks = []
        for rows, cols in ocp.colloc_blocks:
            rl, cl = rows.tolist(), cols.tolist()
            rows_col += rl
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
        other_rows = sorted(set(range(g.numel())) - set(rows_col))
        gc = jg[:, col.tolist()]
        a_red = gz[other_rows, :] + ca.mtimes(gc[other_rows, :], tmat)
        g_red = g[other_rows] + ca.mtimes(gc[other_rows, :], tvec)
    other = np.array(sorted(set(range(g.numel())) - set(rows_col)), dtype=int)
    lbw, ubw = _symbolic_bounds(ocp)
    z = w[core.tolist()]
    lba = ca.DM(ocp.lbg[other]) - g_red
    uba = ca.DM(ocp.ubg[other]) - g_red
    lbx = lbw[core.tolist()] - z
    ubx = ubw[core.tolist()] - z
    qp_data = ca.Function("mpc_qp_data", [w, P], [hess, grad, a_red, lba, uba, lbx, ubx, tmat, tvec])

    dz = ca.SX.sym("dz", core.size)
    tm = ca.SX.sym("T", tmat.sparsity())
    tv = ca.SX.sym("t", tvec.numel())
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


class RtiSolver:
    """Gauss-Newton SQP (real-time iteration) with HPIPM."""

    def __init__(self, ocp: Ocp) -> None:
        cfg = ocp.config
        self._ocp = ocp
        qp_data, post, _ = _condensed_qp_data(ocp)
        self.compiled = False
        if cfg.codegen:
            cq, cp = _compile(qp_data), _compile(post)
            if cq is not None and cp is not None:
                qp_data, post = cq, cp
                self.compiled = True
        self._qp_data = qp_data
        self._post = post
        n = len(ocp.nu_stage)
        nu = [v - c for v, c in zip(ocp.nu_stage, ocp.colloc_stage, strict=True)] + [0]
        ng = [v - c for v, c in zip(ocp.ng_stage[:n], ocp.colloc_stage, strict=True)] + [
            ocp.ng_stage[n]]
        sp = {"h": qp_data.sparsity_out(0), "a": qp_data.sparsity_out(2)}
        opts: dict[str, Any] = {
            "N": n, "nx": ocp.nx_stage, "nu": nu, "ng": ng, "inf": 1e8, "error_on_fail": False,
            "hpipm": {"iter_max": cfg.qp_max_iter, "res_g_max": 1e-8, "res_b_max": 1e-8,
                      "res_d_max": 1e-8, "res_m_max": 1e-8, "mode": "robust"},
        }
        self._qp = ca.conic("mpc_qp", "hpipm", sp, opts)

    def solve(self, w0: NDArray[np.float64], P: NDArray[np.float64]) -> SolveOutcome:
        """Run ``rti_iterations`` Gauss-Newton SQP iterations from ``w0``; never raises."""
        cfg = self._ocp.config
        w: ca.DM | NDArray[np.float64] = w0
        total_iter = 0
        message = ""
        traj = None
        viol = 0.0
        for it in range(cfg.rti_iterations):
            try:
                hess, grad, a, lba, uba, lbx, ubx, tmat, tvec = self._qp_data(w, P)
                sol = self._qp(h=hess, g=grad, a=a, lba=lba, uba=uba, lbx=lbx, ubx=ubx)
                stats = self._qp.stats()
                status, message = _hpipm_status(stats)
                total_iter += max(int(stats.get("iter_count", 0)), 0)
                if not status.usable:
                    return SolveOutcome(status, None, total_iter, message, "rti")
                dz = sol["x"]
                w, xs, us, ys, f, v = self._post(w, dz, tmat, tvec, P)
            except RuntimeError as exc:
                return SolveOutcome(SolveStatus.NUMERICAL_ERROR, None, total_iter, str(exc), "rti")
            viol = float(v)
            traj = (xs, us, ys, f)
            if it + 1 < cfg.rti_iterations and float(ca.norm_inf(dz)) < cfg.rti_step_tol:
                break
        w_np = np.asarray(w, dtype=float).reshape(-1)
        if not np.all(np.isfinite(w_np)):
            return SolveOutcome(SolveStatus.NUMERICAL_ERROR, None, total_iter,
                                f"{message}; non-finite iterate", "rti")
        # A QP "solved" on an inconsistent linearisation still leaves bounds violated.
        if viol > 1e-6:
            return SolveOutcome(SolveStatus.INFEASIBLE, None, total_iter,
                                f"{message}; bound violation {viol:.3g}", "rti")
        return SolveOutcome(SolveStatus.SUCCESS, w_np, total_iter, message, "rti", traj)


def now() -> float:
    """Monotonic wall clock in seconds."""
    return time.perf_counter()
