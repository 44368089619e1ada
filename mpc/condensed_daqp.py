"""DAQP on the condensed RTI QP (``qp_solver = "condensed_daqp"``).

DAQP (D. Arnström, A. Bemporad, D. Axehill, "A dual active-set solver for
embedded quadratic programming using recursive LDL' updates", IEEE TAC 67(8),
2022; MIT licence, pip ``daqp``) is a dual active-set method for dense QPs
with a positive definite Hessian, which the condensed Gauss-Newton QP of
:mod:`mpc.condensing` is. :class:`DaqpCondensedQp` keeps one ``daqp.Model``:
set up on the first QP, then updated in place every QP, so each solve starts
from the previous QP's active set (the warm start DAQP keeps in its
workspace). It reads the condensing's results (the nonzeros of ``Hc``, ``Ac``
and the dense vectors) from the arrays the RTI solver chains, scatters the two
matrices into dense row-major arrays allocated once, and writes the solution
where the update function reads it: the same call interface as the qpOASES
conic in :class:`mpc.solvers.RtiSolver` (a call returns 0 on success).

A failed solve (DAQP's infeasible, cycling, unbounded, iteration limit, a
Hessian that is not positive definite, a failed update, a non-finite
solution) returns 1 and leaves the solution array untouched;
:meth:`DaqpCondensedQp.cold` drops the active set, so the next QP is set up
from scratch. Its status text goes to :func:`daqp_status`.
"""

from __future__ import annotations

import math
from typing import Any

import casadi as ca
import daqp
import numpy as np
from numpy.typing import NDArray

from plant_models.results import SolveStatus

DAQP_INF = 1e30
"""DAQP's infinity: bounds at or beyond it are no bounds (``DAQP_INF`` in its constants.h)."""

PRIMAL_TOL = 1e-9
"""DAQP's primal feasibility tolerance (its default 1e-6 let a rate limit of the
Williams-Otto NMPC be exceeded by 2.4e-4 of the limit; qpOASES' answers meet it to 1e-9)."""

_EXIT = {
    1: (SolveStatus.SUCCESS, "optimal"),
    2: (SolveStatus.INFEASIBLE, "soft optimal (soft constraints relaxed)"),
    -1: (SolveStatus.INFEASIBLE, "infeasible"),
    -2: (SolveStatus.NUMERICAL_ERROR, "cycling"),
    -3: (SolveStatus.NUMERICAL_ERROR, "unbounded"),
    -4: (SolveStatus.MAX_ITER, "iteration limit"),
    -5: (SolveStatus.NUMERICAL_ERROR, "Hessian not positive definite"),
    -6: (SolveStatus.NUMERICAL_ERROR, "overdetermined initial active set"),
    -7: (SolveStatus.MAX_ITER, "time limit"),
    -8: (SolveStatus.NUMERICAL_ERROR, "NaN in the QP bounds"),
    -9: (SolveStatus.NUMERICAL_ERROR, "non-finite solution"),
}
"""DAQP's exit flags (constants.h, DAQP_EXIT_*) as statuses and texts."""


def daqp_status(stats: dict[str, Any]) -> tuple[SolveStatus, str]:
    """Translate the stats of a :class:`DaqpCondensedQp` call to a status and message."""
    code = int(stats.get("exitflag", 0))
    status, text = _EXIT.get(code, (SolveStatus.FAILED, "failed"))
    where = stats.get("where", "solve")
    return status, f"daqp: {text} (exit flag {code} in {where})"


def daqp_condensing(condense: ca.Function) -> ca.Function:
    """``condense`` (:func:`mpc.condensing.condensed_functions`) with its results laid out
    for DAQP: ``(H, q, A', bl, bu, M, m)``, with ``H`` and ``A'`` dense (the column-major
    nonzeros of a dense symmetric ``H`` and of ``A'`` are the row-major arrays DAQP reads,
    so no copy is needed) and the bounds stacked as DAQP wants them, simple bounds first:
    ``bl = [lbv; lba]``, ``bu = [ubv; uba]``."""
    ins = condense.mx_in()
    hc, qc, ac, lbac, ubac, lbv, ubv, mmat, mvec = condense.call(ins)
    outs = [
        ca.densify(hc),
        qc,
        ca.densify(ac.T),
        ca.vertcat(lbv, lbac),
        ca.vertcat(ubv, ubac),
        mmat,
        mvec,
    ]
    return ca.Function("mpc_qp_condense_daqp", ins, outs)


class DaqpCondensedQp:
    """The condensed QP ``min 1/2 v'Hv + q'v, bl <= [v; A v] <= bu`` by DAQP.

    ``inputs`` are the first five results of :func:`daqp_condensing` as arrays (``H`` and
    ``A'`` dense, column-major), shared and read in place at each call; ``res[0]``
    receives ``v``.
    """

    def __init__(self, n: int, m_a: int, inputs: list[NDArray[np.float64]], max_iter: int) -> None:
        h, f, at, bl, bu = inputs[:5]
        if h.size != n * n or at.size != n * m_a or bl.size != n + m_a or bu.size != n + m_a:
            raise ValueError(f"DAQP: QP arrays of {n} variables, {m_a} rows expected")
        self.args = inputs
        self.res = [np.zeros(n)]
        self._qp = (h.reshape(n, n), f, at.reshape(m_a, n), bu, bl)
        self._max_iter = int(max_iter)
        self._model: Any = None
        self._stats: dict[str, Any] = {}

    def cold(self) -> DaqpCondensedQp:
        """Forget the active set: the next call sets DAQP up anew (after a failed solve)."""
        self._model = None
        return self

    def __call__(self) -> int:
        """Solve the QP now in the input arrays; 0 on success (``res[0]`` written), else 1."""
        h, f, a, bu, bl = self._qp
        # DAQP's infinity is 1e30; NaN is kept (np.maximum propagates it) and refused
        np.maximum(bl, -DAQP_INF, out=bl)
        np.minimum(bu, DAQP_INF, out=bu)
        model = self._model
        if math.isnan(float(bl.sum()) + float(bu.sum())):
            flag, where = -8, "data"
        elif model is None:
            model = daqp.Model()
            model.settings = {"iter_limit": self._max_iter, "primal_tol": PRIMAL_TOL}
            flag, _ = model.setup(h, f, a, bu, bl)
            where = "setup"
            if flag >= 0:
                self._model = model
        else:
            # no rows: A stays out (daqp 0.11 indexes A[0, 0] in update even when it is empty)
            flag = model.update(H=h, f=f, A=a if a.size else None, bupper=bu, blower=bl)
            where = "update"
        if flag < 0:
            self._model = None
            self._stats = {"exitflag": flag, "iter_count": 0, "where": where}
            return 1
        x, fval, exitflag, info = model.solve()
        iters = int(info.get("iterations", 0))
        if exitflag != 1 or not (math.isfinite(fval) and np.all(np.isfinite(x))):
            code = exitflag if exitflag != 1 else -9
            self._stats = {"exitflag": code, "iter_count": iters, "where": "solve"}
            return 1
        self.res[0][:] = x
        self._stats = {"exitflag": 1, "iter_count": iters, "where": "solve"}
        return 0

    def stats(self) -> dict[str, Any]:
        """Exit flag, iteration count and phase (data/setup/update/solve) of the last call."""
        return dict(self._stats)
