"""Benchmark: rtompc NMPC (RTI: Gauss-Newton SQP) against do-mpc on do-mpc's CSTR example.

Runs both controllers in one process on the same closed-loop problem
(``mpc.presets.do_mpc_cstr_config``: do-mpc 5.x examples/CSTR, horizon 20,
t_step 0.005 h, Radau collocation degree 2; the plant is integrated by CVODES
from do-mpc's initial state) and prints per-step wall time (median / p95 / max
in ms, first step excluded: both controllers solve it with IPOPT), the ratio
of the medians and the largest difference of the reactor temperature T_R
between the two closed loops. do-mpc runs with its defaults (IPOPT + MUMPS,
tol 1e-8, warm start), console output off.

Usage::

    .venv/bin/python benchmarks/bench_mpc_cstr.py [--steps 50] [--robust-steps 20]
        [--no-codegen] [--skip-robust] [--qp-solver hpipm|condensed_qpoases|condensed_daqp]

``--qp-solver`` selects the RTI's QP method (``mpc.config.QpSolver``; default:
the configuration's default). Nominal: whole-horizon transcription, condensed
QP by DAQP (AUTO); with codegen (default) the QP data, condensing and update functions are
compiled to C in the background and the benchmark waits for them before the
loop (``bench_mpc_scale.py --case cstr`` times the same RTI steps, starting with
iterated SQP instead of IPOPT, and adds CPU times and the cache-cold figure).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from mpc import NmpcController, SolverKind
from mpc.config import QpSolver
from mpc.do_mpc_backend import DoMpcController
from mpc.presets import do_mpc_cstr_config
from plant_models.library import load


def run(robust: bool, steps: int, codegen: bool, qp_solver: QpSolver | None = None) -> None:
    model = load("van_de_vusse", parameters="do_mpc")
    extra = {} if qp_solver is None else {"qp_solver": qp_solver}
    cfg = do_mpc_cstr_config(robust=robust, codegen=codegen, **extra)
    label = "robust multi-stage (9 scenarios)" if robust else "nominal"
    t0 = time.perf_counter()
    ours = NmpcController(model, cfg, SolverKind.RTI)
    t_build_ours = time.perf_counter() - t0
    # codegen: gcc runs in the background (cached by content); wait for it before timing
    if ours._rti is not None:
        ours._rti.wait_compiled(1800)
    elif ours._stage is not None and ours._stage._codegen is not None:
        ours._stage._codegen.wait(1800)
    t_compiled = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = DoMpcController(model, cfg)
    t_build_ref = time.perf_counter() - t0
    dt = cfg.sample_time_s
    xa = model.nominal.x.copy()
    xb = xa.copy()
    u0 = model.nominal.u
    ta, tb, ca_, cb, dtr, solvers = [], [], [], [], [0.0], []
    for k in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        ra = ours.step(xa, u_prev=u0 if k == 0 else None)
        ta.append(time.perf_counter() - t0)
        ca_.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        rb = ref.step(xb, u_prev=u0 if k == 0 else None)
        tb.append(time.perf_counter() - t0)
        cb.append(time.process_time() - c0)
        if ra.u is None or rb.u is None:
            print(f"step {k}: ours {ra.status.value} ({ra.message}), do-mpc {rb.status.value}")
            break
        solvers.append(ra.solver)
        xa = model.simulate(xa, [ra.u], dt).x[-1]
        xb = model.simulate(xb, [rb.u], dt).x[-1]
        dtr.append(abs(xa[2] - xb[2]))
    a = 1e3 * np.array(ta[1:])
    b = 1e3 * np.array(tb[1:])
    print(f"\n== {label}: {len(ta)} closed-loop steps, horizon {cfg.horizon_steps} ==")
    rti_note = ""
    if ours._rti is not None:
        rti_note = (f", whole-horizon, compiled to C: {ours._rti.compiled_functions or 'none'} "
                    f"(background gcc done {t_compiled:.1f} s after the start of the build), "
                    f"QP: {ours._rti.qp_solver.value}")
    elif ours._stage is not None:
        rti_note = (f", stagewise, compiled to C: {ours._stage.compiled or 'none'}, "
                    f"QP: {ours._stage.qp_solver.value}")
    print(f"build: ours {t_build_ours:.2f} s{rti_note}; do-mpc {t_build_ref:.2f} s")
    print(f"first step (both IPOPT): ours {1e3 * ta[0]:.1f} ms, do-mpc {1e3 * tb[0]:.1f} ms")
    print(f"{'per step [ms]':<16}{'median':>10}{'p95':>10}{'max':>10}")
    for name, v in (("rtompc RTI", a), ("do-mpc", b)):
        print(f"{name:<16}{np.median(v):>10.2f}{np.percentile(v, 95):>10.2f}{v.max():>10.2f}")
    print(f"ratio of medians (do-mpc / rtompc): {np.median(b) / np.median(a):.1f}x")
    cpu_a, cpu_b = np.median(ca_[1:]), np.median(cb[1:])
    print(f"CPU time per step (load-independent): rtompc {1e3 * cpu_a:.2f} ms, do-mpc "
          f"{1e3 * cpu_b:.2f} ms, ratio {cpu_b / cpu_a:.1f}x; load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"steps solved by: {', '.join(f'{s}={solvers.count(s)}' for s in sorted(set(solvers)))}")
    print(f"max |T_R difference| over the run: {max(dtr):.4f} K")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="nominal closed-loop steps")
    parser.add_argument("--robust-steps", type=int, default=20, help="robust closed-loop steps")
    parser.add_argument("--no-codegen", action="store_true", help="use the CasADi VM only")
    parser.add_argument("--skip-robust", action="store_true", help="nominal case only")
    parser.add_argument("--qp-solver", choices=[q.value for q in QpSolver], default=None,
                        help="RTI QP method (default: the configuration's)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    qp = None if args.qp_solver is None else QpSolver(args.qp_solver)
    run(False, args.steps, not args.no_codegen, qp)
    if not args.skip_robust:
        run(True, args.robust_steps, not args.no_codegen, qp)


if __name__ == "__main__":
    main()
