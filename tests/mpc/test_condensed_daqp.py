"""DAQP on the condensed RTI QP (``qp_solver = "condensed_daqp"``) against qpOASES.

Both solve the same condensed Gauss-Newton QP of do-mpc's CSTR example
(:func:`mpc.presets.do_mpc_cstr_config`) exactly (active-set methods), so their
RTI steps must agree to rounding, on captured QPs with the soft limit active
and with saturated inputs, and over a closed loop with setpoint changes; the
closed loop against do-mpc is in ``test_condensed_qp.py``. Failures (an
infeasible or iteration-limited QP, NaN data) must give a status and no step.
"""

from __future__ import annotations

import numpy as np
import pytest
from mpc_helpers import plant_step
from test_condensed_qp import CASES, DT, _rti_problem

from mpc import NmpcController, SolverKind
from mpc.condensed_daqp import DaqpCondensedQp, daqp_status
from mpc.config import QpSolver, Transcription
from mpc.ocp import build_ocp
from mpc.presets import do_mpc_cstr_config
from mpc.solvers import RtiSolver
from plant_models.errors import ConfigError
from plant_models.results import SolveStatus
from plant_models.samples import OperatingTarget


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_daqp_step_equals_the_qpoases_step(cstr, case):
    """The same RTI step (one QP from an IPOPT-shifted guess) from both solvers, to 1e-9."""
    _, _, guess, P = _rti_problem(cstr, CASES[case])
    steps = {}
    for qs in (QpSolver.CONDENSED_QPOASES, QpSolver.CONDENSED_DAQP):
        rti = RtiSolver(build_ocp(cstr, do_mpc_cstr_config(qp_solver=qs, **CASES[case])))
        assert rti.qp_solver is qs
        out = rti.solve(guess, P)
        assert out.status is SolveStatus.SUCCESS and out.w is not None, out.message
        steps[qs] = out
    q, d = steps[QpSolver.CONDENSED_QPOASES], steps[QpSolver.CONDENSED_DAQP]
    assert d.message.startswith("daqp: optimal") and "qpoases" in q.message
    np.testing.assert_allclose(d.w, q.w, rtol=1e-9, atol=1e-9 * np.max(np.abs(q.w)))
    assert d.trajectories is not None and q.trajectories is not None
    assert d.trajectories[3] == pytest.approx(q.trajectories[3], rel=1e-9)


def test_warm_started_closed_loop_equals_qpoases(cstr):
    """40 closed-loop steps with two setpoint changes: DAQP warm-started from the previous
    active set gives qpOASES' (hot-started) moves; its active set is reused (one setup)."""
    ctl = {
        qs: NmpcController(
            cstr, do_mpc_cstr_config(qp_solver=qs), SolverKind.RTI, ipopt_fallback=False
        )
        for qs in (QpSolver.CONDENSED_QPOASES, QpSolver.CONDENSED_DAQP)
    }
    xs = {qs: cstr.nominal.x.copy() for qs in ctl}
    worst = 0.0
    span = np.array([m.upper - m.lower for m in cstr.u])
    for k in range(40):
        tgt = OperatingTarget(k * DT, y={"c_b": 700.0 if 10 <= k < 25 else 500.0})
        res = {
            qs: c.step(xs[qs], target=tgt, u_prev=cstr.nominal.u if k == 0 else None)
            for qs, c in ctl.items()
        }
        for qs, r in res.items():
            assert r.usable, (qs, r.message)
            xs[qs] = plant_step(cstr, xs[qs], r.u, DT)
        a, b = res.values()
        worst = max(worst, float(np.max(np.abs(a.u - b.u) / span)))
    assert worst < 1e-7
    daqp_ctl = ctl[QpSolver.CONDENSED_DAQP]
    assert daqp_ctl.fallbacks == 0
    qp = daqp_ctl._rti._qp  # type: ignore[union-attr]
    assert isinstance(qp, DaqpCondensedQp) and qp._model is not None


def _small_qp(max_iter: int = 100) -> tuple[DaqpCondensedQp, list[np.ndarray]]:
    """min 1/2|v|^2 - [1 1 1]'v with v <= 0.5 and 0 <= v1 + v2 + v3 <= 1 (answer 1/3 each)."""
    n, m = 3, 1
    arrays = [
        np.eye(n).reshape(-1, order="F"),
        -np.ones(n),
        np.ones(n * m),
        np.array([-np.inf] * n + [0.0]),
        np.array([0.5] * n + [1.0]),
    ]
    return DaqpCondensedQp(n, m, arrays, max_iter), arrays


def test_solution_written_only_on_success_and_statuses_mapped():
    qp, arrays = _small_qp()
    assert qp() == 0
    np.testing.assert_allclose(qp.res[0], [1 / 3] * 3, atol=1e-12)
    assert daqp_status(qp.stats())[0] is SolveStatus.SUCCESS
    good = qp.res[0].copy()

    arrays[3][3], arrays[4][3] = 2.0, 3.0  # rows need v1+v2+v3 >= 2 but v <= 0.5: infeasible
    assert qp() == 1
    status, msg = daqp_status(qp.stats())
    assert status is SolveStatus.INFEASIBLE and "daqp: infeasible" in msg
    np.testing.assert_array_equal(qp.res[0], good)  # nothing written from the failed solve

    arrays[3][3] = np.nan  # NaN data: refused before DAQP sees it
    assert qp.cold()() == 1
    assert daqp_status(qp.stats())[0] is SolveStatus.NUMERICAL_ERROR
    np.testing.assert_array_equal(qp.res[0], good)

    arrays[3][3], arrays[4][3] = 0.0, 1.0
    assert qp() == 0  # set up anew after the failures
    np.testing.assert_allclose(qp.res[0], [1 / 3] * 3, atol=1e-12)


def test_iteration_limit_is_max_iter():
    qp, _ = _small_qp(max_iter=1)  # the answer needs the row and three bounds checked
    assert qp() == 1
    assert daqp_status(qp.stats())[0] is SolveStatus.MAX_ITER


def test_condensed_daqp_needs_the_whole_horizon_transcription(cstr):
    cfg = do_mpc_cstr_config(qp_solver="condensed_daqp", transcription=Transcription.STAGEWISE)
    with pytest.raises(ConfigError, match="condensed_daqp.*whole-horizon"):
        NmpcController(cstr, cfg, SolverKind.RTI, ipopt_fallback=False)


def test_a_qp_without_rows_is_solved_warm():
    """Only simple bounds (no constraint rows): set up, then updated in place."""
    arrays = [
        np.eye(2).reshape(-1),
        np.array([-2.0, 1.0]),
        np.zeros(0),
        np.full(2, -1.0),
        np.full(2, 1.0),
    ]
    qp = DaqpCondensedQp(2, 0, arrays, 100)
    for shift in (0.0, 0.5):
        arrays[1][:] = [-2.0 + shift, 1.0]
        assert qp() == 0, qp.stats()
        np.testing.assert_allclose(qp.res[0], [1.0, -1.0], atol=1e-12)
