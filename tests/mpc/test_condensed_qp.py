"""The condensed RTI QP (qpOASES on the node controls) against the stage-structured one (HPIPM).

Both QP paths solve the same Gauss-Newton QP of do-mpc's CSTR example
(:func:`mpc.presets.do_mpc_cstr_config`). The condensed answer is checked
against the sparse QP itself (feasibility, objective no worse than HPIPM's),
against HPIPM's move, and in closed loop against do-mpc (independent
implementation, IPOPT on do-mpc's own NLP).
"""

from __future__ import annotations

import casadi as ca
import numpy as np
import pytest
from mpc_helpers import plant_step

from mpc import CvSpec, MvSpec, NmpcController, SolverKind
from mpc.config import QpSolver
from mpc.ocp import Ocp, build_ocp, parameter_vector
from mpc.presets import C0, do_mpc_cstr_config
from mpc.solvers import IpoptSolver, RtiSolver, _condensed_qp_data
from plant_models.errors import ConfigError
from plant_models.results import SolveStatus

DT = 18.0

CASES = {
    "nominal": {},
    # T_R starts at 134.1 degC: the soft limit at 132 degC is violated on the first nodes
    "soft-limit-active": {"cvs": (CvSpec("c_b", weight=1.0, target=600.0),
                                  CvSpec("t_r", upper=132.0 + C0, l1_penalty=1e2 * 400.0))},
    # low c_B setpoint: the dilution rate runs into its lower bound
    "inputs-saturated": {"cvs": (CvSpec("c_b", weight=1.0, target=200.0),
                                 CvSpec("t_r", upper=140.0 + C0, l1_penalty=1e2 * 400.0))},
}


def _params(ocp: Ocp, model, x, u_prev):
    cfg = ocp.config
    y_tgt = np.zeros(len(model.y))
    for c in cfg.cvs:
        if c.target is not None:
            y_tgt[model.y.index(c.name)] = c.target
    return parameter_vector(ocp, x0=x, u_prev=u_prev, d=model.resolve("d", None),
                            p=model.resolve("p", None), y_bias=np.zeros(len(model.y)),
                            u_bias=np.zeros(len(model.u)), y_target=y_tgt,
                            u_target=model.nominal.u.copy())


def _rti_problem(model, overrides):
    """An RTI step's data: IPOPT solution at the nominal state, shifted, next state's P."""
    cfg_h = do_mpc_cstr_config(qp_solver=QpSolver.HPIPM, **overrides)
    ocp = build_ocp(model, cfg_h)
    x0, u0 = model.nominal.x.copy(), model.nominal.u.copy()
    p0 = _params(ocp, model, x0, u0)
    lbw, ubw = ocp.bounds(x0, u0)
    out = IpoptSolver(ocp).solve(ocp.initial_guess(x0, u0), p0, lbw, ubw)
    assert out.w is not None, out.message
    u_first = out.w[ocp.idx_u[0]] * ocp.u_scale
    x1 = plant_step(model, x0, u_first, DT)
    return cfg_h, ocp, ocp.shift(out.w), _params(ocp, model, x1, u_first)


def test_numeric_collocation_elimination_equals_the_symbolic_one(cstr):
    """The QP data with the collocation blocks eliminated by one numeric sparse QR per step
    equal those of the symbolic elimination (an SX QR of every block, the former code and
    the code generated for ``codegen``), at an RTI point with the soft limit active."""
    _, ocp, guess, P = _rti_problem(cstr, CASES["soft-limit-active"])
    numeric, _, _ = _condensed_qp_data(ocp)
    symbolic, _, _ = _condensed_qp_data(ocp, symbolic=True)
    assert numeric.is_a("MXFunction") and symbolic.is_a("SXFunction")
    assert numeric.n_instructions() < 100  # one SX call, one QR solve, a few sparse products
    for i, (a, b) in enumerate(zip(numeric(guess, P), symbolic(guess, P), strict=True)):
        a, b = np.asarray(ca.DM(a).full()), np.asarray(ca.DM(b).full())
        fin = np.isfinite(b)
        np.testing.assert_array_equal(a[~fin], b[~fin])  # infinite bounds stay infinite
        scale = max(1.0, float(np.max(np.abs(b[fin]), initial=0.0)))
        err = float(np.max(np.abs(a[fin] - b[fin]), initial=0.0))
        assert err <= 1e-10 * scale, f"output {i}: {err}"


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_condensed_step_solves_the_sparse_qp_and_matches_hpipm(cstr, case):
    """Same move as HPIPM; the condensed answer is feasible for the sparse QP and its objective
    is not above HPIPM's (HPIPM stops at residuals 1e-8 and complementarity 1e-7, the
    active-set answer is exact)."""
    cfg_h, ocp_h, guess, P = _rti_problem(cstr, CASES[case])
    ocp_c = build_ocp(cstr, do_mpc_cstr_config(qp_solver=QpSolver.CONDENSED_QPOASES,
                                               **CASES[case]))
    hp = RtiSolver(ocp_h).solve(guess, P)
    co = RtiSolver(ocp_c).solve(guess, P)
    assert hp.w is not None and co.w is not None, (hp.message, co.message)
    assert "qpoases" in co.message and "hpipm" in hp.message

    # the sparse QP both solved
    qp_data, _, _ = _condensed_qp_data(ocp_h)
    h, q, a, lba, uba, lbx, ubx, _, _ = (np.asarray(ca.DM(v).full()) for v in qp_data(guess, P))
    q, lba, uba, lbx, ubx = (v.ravel() for v in (q, lba, uba, lbx, ubx))
    core = ocp_h.idx_core

    def objective(dz):
        return 0.5 * dz @ h @ dz + q @ dz

    dz_c = (co.w - guess)[core]
    dz_h = (hp.w - guess)[core]
    ad = a @ dz_c
    assert np.all(ad >= lba - 1e-9) and np.all(ad <= uba + 1e-9)
    assert np.all(dz_c >= lbx - 1e-9) and np.all(dz_c <= ubx + 1e-9)
    assert objective(dz_c) <= objective(dz_h) + 1e-12

    # the moves: first move and plan, in SI, relative to the input ranges
    span = np.array([m.upper - m.lower for m in cstr.u])
    u_c = co.w[ocp_c.idx_u] * ocp_c.u_scale
    u_h = hp.w[ocp_h.idx_u] * ocp_h.u_scale
    assert np.max(np.abs(u_c[0] - u_h[0]) / span) < 1e-4
    # the plan: HPIPM stops at a mean complementarity of 1e-7 (mpc.solvers), which leaves the
    # flat tail of the plan up to 1.7e-3 of the span off the exact active-set answer (measured)
    assert np.max(np.abs(u_c - u_h) / span) < 3e-3
    if case == "soft-limit-active":
        slack = co.w[ocp_c.stage_offsets[0] + ocp_c.nx_stage[0] + len(cstr.u) + ocp_c.n_colloc]
        assert slack > 1e-3  # the limit is violated at the first node: the slack carries it
    if case == "inputs-saturated":
        lo = np.array([m.lower for m in cstr.u])
        assert np.any(np.abs(u_c - lo) / span < 1e-9)


@pytest.mark.parametrize("qp_solver", [QpSolver.CONDENSED_QPOASES, QpSolver.CONDENSED_DAQP,
                                       QpSolver.HPIPM],
                         ids=["condensed-qpoases", "condensed-daqp", "hpipm"])
def test_closed_loop_agrees_with_do_mpc(cstr, qp_solver):
    """20 closed-loop steps: T_R within 0.01 K of do-mpc's closed loop with either QP path."""
    from mpc.do_mpc_backend import DoMpcController

    cfg = do_mpc_cstr_config(qp_solver=qp_solver)
    ours = NmpcController(cstr, cfg, SolverKind.RTI, ipopt_fallback=False)
    ref = DoMpcController(cstr, cfg)
    xa = cstr.nominal.x.copy()
    xb = xa.copy()
    worst = 0.0
    for k in range(20):
        ra = ours.step(xa, u_prev=cstr.nominal.u if k == 0 else None)
        rb = ref.step(xb, u_prev=cstr.nominal.u if k == 0 else None)
        assert ra.usable and rb.usable, (ra.message, rb.message)
        assert ra.solver == ("sqp" if k == 0 else "rti")  # no IPOPT built: first step by SQP
        xa = plant_step(cstr, xa, ra.u, DT)
        xb = plant_step(cstr, xb, rb.u, DT)
        worst = max(worst, abs(xa[2] - xb[2]))
    assert worst < 0.01


@pytest.mark.parametrize("qp_solver", [QpSolver.CONDENSED_QPOASES, QpSolver.HPIPM],
                         ids=["condensed-qpoases", "hpipm"])
def test_converged_sqp_reaches_the_ipopt_optimum(cstr, qp_solver):
    """Repeated Gauss-Newton SQP iterations reach IPOPT's exact-Hessian optimum."""
    cfg = do_mpc_cstr_config(qp_solver=qp_solver, rti_iterations=40, rti_step_tol=1e-12)
    rti = NmpcController(cstr, cfg, SolverKind.RTI, ipopt_fallback=False)
    ipo = NmpcController(cstr, cfg, SolverKind.IPOPT)
    first = rti.step(cstr.nominal.x, u_prev=cstr.nominal.u)
    x1 = plant_step(cstr, cstr.nominal.x, first.u, DT)
    r = rti.step(x1, u_prev=first.u)
    ref = ipo.step(x1, u_prev=first.u)
    assert r.solver == "rti" and r.usable and ref.usable, (r.message, ref.message)
    np.testing.assert_allclose(r.u, ref.u, rtol=1e-5)
    np.testing.assert_allclose(r.x_pred, ref.x_pred, rtol=1e-4)  # flat optimum (tiny move weights)
    assert r.objective == pytest.approx(ref.objective, rel=1e-6)


def test_auto_condenses_nominal_and_keeps_hpipm_for_scenario_trees(cstr):
    nominal = RtiSolver(build_ocp(cstr, do_mpc_cstr_config()))
    robust = RtiSolver(build_ocp(cstr, do_mpc_cstr_config(robust=True)))
    assert do_mpc_cstr_config().qp_solver is QpSolver.AUTO
    assert nominal.qp_solver is QpSolver.CONDENSED_DAQP
    assert robust.qp_solver is QpSolver.HPIPM


def test_qp_solver_accepts_its_value_and_rejects_unknown_names():
    assert do_mpc_cstr_config(qp_solver="hpipm").qp_solver is QpSolver.HPIPM
    with pytest.raises(ConfigError, match="qp_solver"):
        do_mpc_cstr_config(qp_solver="osqp")


@pytest.mark.parametrize("qp_solver", [QpSolver.CONDENSED_QPOASES, QpSolver.CONDENSED_DAQP],
                         ids=["condensed-qpoases", "condensed-daqp"])
def test_infeasible_qp_is_reported_and_later_steps_recover(cstr, qp_solver):
    """An unsatisfiable rate limit (previous f_dil far outside its bounds) makes the condensed
    QP infeasible: the step reports INFEASIBLE with u=None; after it the controller re-solves
    with IPOPT and its next RTI move equals that of a controller that never failed."""
    mvs = (MvSpec("f_dil", move_weight=0.004, max_rate_per_s=1e-8), MvSpec("q_k", move_weight=1e-3))
    cfg = do_mpc_cstr_config(qp_solver=qp_solver, mvs=mvs)
    x0, u0 = cstr.nominal.x.copy(), cstr.nominal.u.copy()
    failing = NmpcController(cstr, cfg, SolverKind.RTI, ipopt_fallback=False)
    fresh = NmpcController(cstr, cfg, SolverKind.RTI, ipopt_fallback=False)
    assert failing.step(x0, u_prev=u0).usable
    bad = u0.copy()
    bad[0] = 36 * cstr.u["f_dil"].upper
    r = failing.step(x0, u_prev=bad)
    assert r.status is SolveStatus.INFEASIBLE and r.u is None and r.solver in ("rti", "sqp")
    first = failing.step(x0, u_prev=u0)
    assert first.solver == "sqp" and first.usable
    x1 = plant_step(cstr, x0, first.u, DT)
    again = failing.step(x1, u_prev=first.u)
    ref_first = fresh.step(x0, u_prev=u0)
    ref = fresh.step(x1, u_prev=ref_first.u)
    assert again.solver == ref.solver == "rti" and again.usable and ref.usable
    np.testing.assert_allclose(again.u, ref.u, rtol=1e-9)
