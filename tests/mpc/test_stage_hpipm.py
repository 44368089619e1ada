"""HPIPM's stage QP (mpc.stage_hpipm): per-stage sizes and the same step as the full QP.

- the slacks of hard CV bounds sit in HPIPM's stages only where the bound is soft (the
  first predicted node); from the second node on a stage has the inputs (and soft-limit
  slacks) only, and the hard bounds on states are boxes, not rows; at the fixed initial
  node limits on states are constants: neither row nor slack;
- the QP step with the pinned slacks left out and the bounds as boxes equals the step of
  the full QP (every slack a column, every bound a row) on a real linearisation of do-mpc's
  industrial_poly;
- the robust industrial_poly (9 branches) closed loop runs without a fallback and keeps
  the hard bounds in the predictions (on HPIPM's tree QP, :mod:`mpc.stage_hpipm_tree`;
  CasADi's interface, ``mpc.stage_solver.HPIPM_C_API = False``, keeps the scenarios as one
  chain).
"""

from __future__ import annotations

import numpy as np
import pytest

from mpc import NmpcController, stage_solver
from mpc.presets import industrial_poly_config
from mpc.stage_hpipm import HpipmStageQp
from mpc.stage_hpipm_tree import HpipmTreeStageQp
from mpc.stage_solver import StageRtiSolver
from mpc.stagewise import build_stage_problem
from plant_models.library import load


@pytest.fixture(scope="module")
def poly():
    return load("industrial_poly")


def test_hard_bound_slacks_only_where_the_bound_is_soft(poly, monkeypatch):
    n = 20
    sp = build_stage_problem(poly, industrial_poly_config())
    s = StageRtiSolver(sp)
    assert sp.n_hard == 10 and sp.nub == 3 + 1 + 10  # inputs, T_R soft limit, hard bounds
    assert s.qp_stage_controls == [3, 14] + [4] * (n - 2) + [0]
    assert s._hpipm is not None
    # from the second node on only the soft T_R row is a row; the 15 hard bound rows on
    # states are HPIPM boxes, as are the terminal node's
    assert s._hpipm.ng[:2] == [0, 16] and s._hpipm.ng[2:] == [1] * (n - 2) + [0]
    # CasADi's interface: the 9 scenarios as one chain
    monkeypatch.setattr(stage_solver, "HPIPM_C_API", False)
    rob = StageRtiSolver(build_stage_problem(poly, industrial_poly_config(robust=True)))
    assert isinstance(rob._hpipm, HpipmStageQp)
    per_scenario = [3, 13] + [3] * (n - 2) + [0]
    assert rob.qp_stage_controls == per_scenario * 9
    assert set(rob._hpipm.ng[2:n]) == {0}
    # the C API: a tree, the initial move decided once, no R states or move-sharing rows
    monkeypatch.setattr(stage_solver, "HPIPM_C_API", True)
    tree = StageRtiSolver(build_stage_problem(poly, industrial_poly_config(robust=True)))
    assert isinstance(tree._hpipm, HpipmTreeStageQp)
    assert tree.qp_stage_controls == [3] + [13] * 9 + [3] * (9 * (n - 2)) + [0] * 9
    assert tree._hpipm.tree.nx == [0] + [13] * (9 * n)  # x, u_last; the root's is measured
    assert tree._hpipm.ng[0] == 0 and set(tree._hpipm.ng[10:]) == {0}


def test_reduced_qp_step_equals_the_full_qp_step(poly, monkeypatch):
    seen: dict[str, object] = {}
    solve = HpipmStageQp.solve

    def capture(self, *args):
        seen["qp"], seen["args"] = self, [a.copy() for a in args]
        return solve(self, *args)

    monkeypatch.setattr(HpipmStageQp, "solve", capture)
    monkeypatch.setattr(stage_solver, "HPIPM_C_API", False)
    ctrl = NmpcController(poly, industrial_poly_config())
    x = poly.nominal.x.copy()
    for k in range(3):
        r = ctrl.step(x, u_prev=poly.nominal.u if k == 0 else None)
        assert r.usable, r.message
        x = poly.simulate(x, [r.u], 50.0).x[-1]
    stage = ctrl._stage
    assert isinstance(stage, StageRtiSolver)
    args = seen["args"]
    assert isinstance(args, list)
    small = solve(seen["qp"], *args)
    full_qp = HpipmStageQp(
        np.ones(stage.sp.nw, dtype=bool),
        stage.sp.node_offsets,
        stage.sp.nxb,
        np.where(stage._row_node == -2, -2, np.maximum(stage._row_node, -1)),
        stage._h_trip,
        stage._a_trip,
        stage._hpipm_opts,
        bounds_as_boxes=False,
    )
    assert full_qp.nu[2] == 14 and full_qp.ng[2] == 16
    full = solve(full_qp, *args)
    assert small[3] is not None and full[3] is not None, (small[1], full[1])
    scale = np.max(np.abs(full[3]))
    assert scale > 1e-6  # a real step, not a converged point
    np.testing.assert_allclose(small[3], full[3], atol=1e-6 * scale)


@pytest.mark.slow
def test_robust_poly_runs_on_the_reduced_qp_without_fallback(poly):
    ctrl = NmpcController(poly, industrial_poly_config(robust=True))
    x = poly.nominal.x.copy()
    for k in range(4):
        r = ctrl.step(x, u_prev=poly.nominal.u if k == 0 else None)
        assert r.usable, r.message
        assert r.solver in ("sqp", "rti")
        y = r.y_pred[2:]
        assert np.all(y[:, 3] >= 363.15 - 2.0 - 1e-6) and np.all(y[:, 3] <= 363.15 + 2.0 + 1e-6)
        assert np.all(y[:, 9] <= 382.15 + 1e-6)
        x = poly.simulate(x, [r.u], 50.0).x[-1]
    assert ctrl.fallbacks == 0
