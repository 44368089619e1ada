"""Forced solver failures: a non-usable status, no move, and the fallback policies."""

from __future__ import annotations

import numpy as np
import pytest
from mpc_helpers import H

from mpc import (
    CvSpec,
    FallbackPolicy,
    MpcConfig,
    MpcResult,
    MvSpec,
    NmpcController,
    SolverKind,
    fallback_move,
)
from plant_models.errors import ConfigError, SolverFailed
from plant_models.results import SolveStatus

DT = 18.0


def config(**kw) -> MpcConfig:
    args = dict(
        horizon_steps=15, sample_time_s=DT,
        cvs=(CvSpec("c_b", weight=1.0, target=600.0),),
        mvs=(MvSpec("f_dil", move_weight=0.004, max_rate_per_s=1.0 / H / DT),
             MvSpec("q_k", move_weight=1e-3)),
    )
    args.update(kw)
    return MpcConfig(**args)


@pytest.fixture(scope="module")
def last_good(cstr) -> MpcResult:
    r = NmpcController(cstr, config(), SolverKind.IPOPT).step(cstr.nominal.x, u_prev=cstr.nominal.u)
    assert r.usable
    return r


def test_ipopt_iteration_limit_gives_no_move(cstr, last_good):
    ctrl = NmpcController(cstr, config(ipopt_max_iter=0), SolverKind.IPOPT)
    r = ctrl.step(cstr.nominal.x, u_prev=cstr.nominal.u)
    assert r.status is SolveStatus.MAX_ITER
    assert r.u is None and not r.usable
    with pytest.raises(SolverFailed, match="max_iter"):
        r.raise_for_status()
    move = fallback_move(FallbackPolicy.SHIFTED_PLAN, last_good, 1)
    np.testing.assert_array_equal(move, last_good.u_pred[1])
    move = fallback_move(FallbackPolicy.HOLD_LAST, last_good, 1, u_last_applied=last_good.u)
    np.testing.assert_array_equal(move, last_good.u)


@pytest.mark.parametrize("solver", [SolverKind.RTI, SolverKind.IPOPT], ids=lambda s: s.value)
def test_impossible_rate_limit_is_infeasible(cstr, solver):
    """F/V was 1 1/h last sample, its bound is 5 1/h and it may move 1 1/h per sample."""
    ctrl = NmpcController(cstr, config(), solver, ipopt_fallback=False)
    ok = ctrl.step(cstr.nominal.x, u_prev=cstr.nominal.u)  # IPOPT initialises RTI
    assert ok.usable
    u_prev = np.array([1.0 / H, cstr.nominal.u[1]])
    r = ctrl.step(cstr.nominal.x, u_prev=u_prev)
    assert not r.status.usable and r.u is None
    assert r.status in (SolveStatus.INFEASIBLE, SolveStatus.MAX_ITER,
                        SolveStatus.NUMERICAL_ERROR), r.status
    # the controller recovers once the request is feasible again (IPOPT re-initialises)
    r2 = ctrl.step(cstr.nominal.x, u_prev=ok.u)
    assert r2.usable and r2.solver == ("ipopt" if solver is SolverKind.IPOPT else "sqp")


def test_shifted_plan_walks_the_plan_and_holds_its_end(last_good):
    n = last_good.u_pred.shape[0]
    for k in (1, 2, 5):
        np.testing.assert_array_equal(
            fallback_move(FallbackPolicy.SHIFTED_PLAN, last_good, k), last_good.u_pred[k])
    np.testing.assert_array_equal(
        fallback_move(FallbackPolicy.SHIFTED_PLAN, last_good, n + 10), last_good.u_pred[-1])


def test_fallback_clips_and_handles_missing_history(last_good):
    lo = last_good.u_pred[1] + 1.0
    move = fallback_move(FallbackPolicy.SHIFTED_PLAN, last_good, 1, lower=lo)
    np.testing.assert_array_equal(move, lo)
    assert fallback_move(FallbackPolicy.HOLD_LAST, None, 1) is None
    np.testing.assert_array_equal(
        fallback_move(FallbackPolicy.SHIFTED_PLAN, None, 3, u_last_applied=[1.0, 2.0]), [1.0, 2.0])
    with pytest.raises(ConfigError, match="steps_since_good"):
        fallback_move(FallbackPolicy.HOLD_LAST, last_good, 0)
