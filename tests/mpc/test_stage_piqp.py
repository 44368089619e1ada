"""PIQP as the stage QP solver (mpc.stage_piqp), checked against HPIPM on real linearisations.

- on do-mpc's industrial_poly (nominal and robust, 9 branches), the step PIQP computes from
  the QP data HPIPM was given in the closed loop equals HPIPM's step;
- ``qp_solver = "piqp"`` runs the nominal closed loop without fallback and keeps the
  example's hard bounds in the predictions;
- a PIQP failure (iteration limit, non-finite data, crossing bounds) comes back as a status
  with no step, never as a NaN step; 'piqp' with the whole-horizon transcription is refused.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mpc import NmpcController, stage_solver
from mpc.config import Transcription
from mpc.presets import industrial_poly_config
from mpc.stage_hpipm import HpipmStageQp
from mpc.stage_piqp import PiqpStageQp
from mpc.stage_solver import StageRtiSolver
from plant_models.errors import ConfigError
from plant_models.library import load
from plant_models.results import SolveStatus


@pytest.fixture(scope="module")
def poly():
    return load("industrial_poly")


def _hpipm_qps(poly, robust: bool, steps: int, monkeypatch):
    """The closed loop on HPIPM; its last QP's data and the stage solver."""
    seen: dict[str, object] = {}
    solve = HpipmStageQp.solve

    def capture(self, *args):
        out = solve(self, *args)
        if out[3] is not None and np.max(np.abs(out[3])) > 1e-3:  # a real step
            seen["qp"], seen["args"], seen["dz"] = self, [a.copy() for a in args], out[3]
        return out

    monkeypatch.setattr(HpipmStageQp, "solve", capture)
    monkeypatch.setattr(stage_solver, "HPIPM_C_API", False)  # CasADi's HPIPM: one chain
    ctrl = NmpcController(poly, industrial_poly_config(robust=robust))
    x = poly.nominal.x.copy()
    for k in range(steps):
        r = ctrl.step(x, u_prev=poly.nominal.u if k == 0 else None)
        assert r.usable, r.message
        x = poly.simulate(x, [r.u], 50.0).x[-1]
    stage = ctrl._stage
    assert isinstance(stage, StageRtiSolver)
    return stage, seen


def _piqp_like(stage: StageRtiSolver, qp: HpipmStageQp, max_iter: int = 300) -> PiqpStageQp:
    sp = stage.sp
    keep = np.zeros(sp.nw, dtype=bool)
    keep[qp.cols] = True
    return PiqpStageQp(
        keep,
        sp.node_offsets,
        sp.nxb,
        stage._row_node,
        stage._h_trip,
        stage._a_trip,
        sp.nx + sp.nu,
        max_iter,
    )


@pytest.mark.parametrize("robust", [False, True], ids=["nominal", "robust"])
def test_piqp_step_equals_hpipm_step(poly, robust, monkeypatch):
    stage, seen = _hpipm_qps(poly, robust, 2 if robust else 3, monkeypatch)
    qp, args, ref = seen["qp"], seen["args"], seen["dz"]
    assert isinstance(qp, HpipmStageQp) and isinstance(args, list)
    pq = _piqp_like(stage, qp)
    status, message, iters, dz = pq.solve(*args)
    assert status is SolveStatus.SUCCESS and dz is not None, message
    assert iters > 0
    scale = np.max(np.abs(ref))
    np.testing.assert_allclose(dz, ref, atol=5e-6 * scale)
    # the same numbers again through update() (pattern fixed, no new setup)
    status2, _, _, dz2 = pq.solve(*args)
    assert status2 is SolveStatus.SUCCESS
    np.testing.assert_allclose(dz2, ref, atol=5e-6 * scale)


def test_piqp_closed_loop_without_fallback(poly):
    cfg = replace(industrial_poly_config(), qp_solver="piqp")
    ctrl = NmpcController(poly, cfg)
    assert ctrl.transcription is Transcription.STAGEWISE
    assert isinstance(ctrl._stage, StageRtiSolver)
    assert isinstance(ctrl._stage._hpipm, PiqpStageQp)
    x = poly.nominal.x.copy()
    for k in range(5):
        r = ctrl.step(x, u_prev=poly.nominal.u if k == 0 else None)
        assert r.usable, r.message
        assert "piqp" in r.message
        y = r.y_pred[2:]
        assert np.all(y[:, 9] <= 382.15 + 1e-6)  # T_adiab, the example's hard bound
        x = poly.simulate(x, [r.u], 50.0).x[-1]
    assert ctrl.fallbacks == 0


def test_piqp_failures_are_reported_not_nan(poly, monkeypatch):
    stage, seen = _hpipm_qps(poly, False, 2, monkeypatch)
    qp, args = seen["qp"], seen["args"]
    assert isinstance(qp, HpipmStageQp) and isinstance(args, list)
    short = _piqp_like(stage, qp, max_iter=2)
    status, message, _, dz = short.solve(*args)
    assert status is SolveStatus.MAX_ITER and dz is None and "piqp" in message
    pq = _piqp_like(stage, qp)
    bad = [a.copy() for a in args]
    bad[2][qp.cols[-1]] = np.nan  # gradient
    status, message, _, dz = pq.solve(*bad)
    assert status is SolveStatus.NUMERICAL_ERROR and dz is None, message
    # crossing bounds: never handed to the solver
    bad = [a.copy() for a in args]
    j = qp.cols[-1]
    bad[5][j], bad[6][j] = 1.0, -1.0
    status, message, _, dz = pq.solve(*bad)
    assert status is SolveStatus.INFEASIBLE and dz is None
    # and a good solve after the failures
    status, message, _, dz = pq.solve(*args)
    assert status is SolveStatus.SUCCESS and dz is not None and np.all(np.isfinite(dz))


def test_piqp_needs_the_stage_transcription(poly):
    cfg = replace(industrial_poly_config(), qp_solver="piqp", transcription="whole_horizon")
    with pytest.raises(ConfigError, match="piqp"):
        NmpcController(poly, cfg)
