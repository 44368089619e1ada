"""Benchmark: the NMPC at industrial size against do-mpc, in one process, same problem and plant.

Every case runs our controller with its default ``codegen = "auto"`` (compiled to C in the
background when gcc is found, unless ``RTOMPC_CODEGEN=off``), except ``cstr-vm`` and
``scaling``. gcc runs before any timing: the build-cost run in a fresh interpreter waits for it
and fills the cache, so the closed loop starts compiled.

Cases (``--case``, default all):

- ``poly``, ``poly-robust``: do-mpc's ``examples/industrial_poly`` (10 states, 3 inputs,
  economic cost -m_P, the example's hard state bounds; robust: 9 branches),
  ``mpc.presets.industrial_poly_config``;
- ``column-rk4``, ``column-colloc``: Skogestad's column A (82 states), N = 30, 1 min
  samples, RK4 with 16 substeps / Radau collocation of degree 1, a purity step
  (x_D 0.99 -> 0.995, x_B 0.01 -> 0.005), ``mpc.presets.column_a_config``; do-mpc gets the
  same problem (for RK4: a discrete do-mpc model of the same RK4 map; do-mpc cannot build it,
  see the case's label); the stage functions compiled (collocation ~0.3 MB of C);
- ``cstr``: do-mpc's CSTR example (nominal), whole-horizon transcription, condensed DAQP (AUTO),
  QP data / condensing / update compiled to C, first step by iterated SQP
  (``ipopt_fallback=False``); the same RTI steps as ``bench_mpc_cstr.py`` (which starts
  with IPOPT), with the cache-cold figure added; ``cstr-vm``: the same, CasADi VM only
  (``codegen=False``);
- ``scaling`` (``codegen=False``: the CasADi VM): build time, peak memory and step time against
  the number of states (column with 5 .. 125 stages: 10 .. 250 states, N = 30) and against the horizon
  (column A, N = 10 .. 100), plotted into ``docs/img/nmpc_scaling.png``.

Every closed-loop case runs both controllers on their own copy of the plant (CVODES) and
prints per-step wall time (median / p95 / max in ms, first step excluded: both solve it to
convergence) in three modes (``--mode``, default all): tight-loop (each tool's steps back to
back in its own closed loop, do-mpc's after ours), interleaved (the two tools alternate step by
step, each evicting the other's caches) and cache-cold (a 32 MB sweep and a 200,000-number
sort between every two steps, as I/O and the historian do on a plant), the ratio of the
medians, our build time and peak memory (measured in a fresh interpreter), the steps that
fell back (cold re-solve) and IPOPT runs (none: ``ipopt_fallback=False``).

Usage::

    .venv/bin/python benchmarks/bench_mpc_scale.py [--case poly ...] [--steps 20] [--qp-solver piqp ...]
        [--hpipm-casadi]
"""

from __future__ import annotations

import os

# One BLAS thread for both tools (before numpy loads OpenBLAS; an explicit setting wins). With
# OpenBLAS' default two threads on this 2-vCPU machine a worker thread spun during our steps:
# CPU time per CSTR step 0.62 ms for 0.31 ms wall, and up to 0.59 ms wall. do-mpc lost nothing
# with one thread (CSTR 28.6 vs 26.9 ms, industrial_poly robust 873 vs 979 ms: noise).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import multiprocessing as mp
import resource
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mpc import CvSpec, MpcConfig, NmpcController, stage_solver
from mpc.config import Discretisation, QpSolver
from mpc.presets import column_a_config, do_mpc_cstr_config, industrial_poly_config
from plant_models.library import load
from plant_models.model import PlantModel

ROOT = Path(__file__).resolve().parents[1]
_SINK = np.zeros(4_000_000)  # 32 MB swept between steps in the cache-cold runs
_KEYS = np.random.default_rng(0).random(200_000)


def _other_work() -> None:
    """What runs between two controller steps on a plant (I/O, historian): evicts caches.

    Single-threaded on purpose: a BLAS product here (a 300x300 one until 2026-12-02) left
    OpenBLAS' worker threads spinning into the step timed next, counted as its CPU time
    (do-mpc's CPU time per step read twice its wall time)."""
    _SINK[:] += 1.0
    float(np.sort(_KEYS)[-1])


@dataclass
class Case:
    """One closed-loop benchmark problem."""

    name: str
    plant: str
    plant_params: dict[str, Any]
    config: MpcConfig
    steps: int
    x0: Callable[[PlantModel], np.ndarray] | None = None
    peer_config: MpcConfig | None = None
    """do-mpc's problem where it cannot be given ours (labelled in the output)."""
    peer_label: str = ""
    peer_elements: int = 1
    """Finite elements per sample of do-mpc's collocation (``collocation_ni``)."""


def _hwm_mb() -> float:
    """Peak resident set of this process (VmHWM, MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _peak_build(
    plant: str, params: dict[str, Any], cfg: MpcConfig, q: Any, hpipm_c_api: bool = True
) -> None:
    """In a fresh interpreter: build time, peak RSS increase by the build, peak RSS.

    The peak is reset first (``/proc/self/clear_refs``): a spawned child starts from a fork
    of the parent and would otherwise inherit its high-water mark."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    stage_solver.HPIPM_C_API = hpipm_c_api
    model = load(plant, **params)
    base = _hwm_mb()
    t0 = time.perf_counter()
    ctrl = NmpcController(model, cfg)
    q.put((time.perf_counter() - t0, _hwm_mb() - base, _hwm_mb()))
    _wait_codegen(ctrl)  # let a background gcc finish (and fill the cache) before exiting


def build_cost(plant: str, params: dict[str, Any], cfg: MpcConfig) -> tuple[float, float, float]:
    """(build seconds, peak RSS in MB of a fresh interpreter that loads the model and builds)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_peak_build, args=(plant, params, cfg, q, stage_solver.HPIPM_C_API))
    p.start()
    out = q.get(timeout=1800)
    p.join()
    return out


def _wait_codegen(ours: NmpcController) -> float | None:
    """Wait for the background compilation (None when there is none); seconds since start."""
    t0 = time.perf_counter()
    if ours._rti is not None and ours.config.codegen:
        ours._rti.wait_compiled(1800)
        ours._rti._swap_compiled()  # the next step would do it
        return time.perf_counter() - t0
    if ours._stage is not None and ours._stage._codegen is not None:
        ours._stage._codegen.wait(1800)
        return time.perf_counter() - t0
    return None


def _stats(v: list[float]) -> str:
    a = 1e3 * np.asarray(v)
    return f"{np.median(a):9.2f}{np.percentile(a, 95):9.2f}{a.max():9.2f}"


MODES = ("tight", "interleaved", "cache-cold")
"""How the steps are timed. ``tight``: each controller runs its own closed loop, nothing between
its steps but the plant simulation (do-mpc's loop after ours, same process, same plant);
``interleaved``: the two controllers alternate, so each step starts after the other tool's step
(caches partly evicted); ``cache-cold``: 32 MB swept and 200,000 numbers sorted between any two
steps (the other work of a plant's cycle: I/O, historian)."""


def closed_loop(case: Case, mode: str, peer: bool = True) -> dict[str, Any]:
    """Run ours and do-mpc on the same closed loop (``mode``: :data:`MODES`); per-step times,
    fallbacks, final states."""
    from mpc.do_mpc_backend import DoMpcController

    model = load(case.plant, **case.plant_params)
    cfg = case.config
    ours = NmpcController(model, cfg)
    codegen_s = _wait_codegen(ours)
    if codegen_s is not None and mode == "tight":
        done = ours._rti.compiled_functions if ours._rti is not None else "stage functions"
        print(
            f"  codegen (background gcc, cached by content): waited {codegen_s:.1f} s after "
            f"the build; compiled: {done or 'none'} (in use from the first step)"
        )
    ref = (
        DoMpcController(model, case.peer_config or cfg, collocation_elements=case.peer_elements)
        if peer
        else None
    )
    dt = cfg.sample_time_s
    xa = case.x0(model) if case.x0 else model.nominal.x.copy()
    xb = xa.copy()
    u0 = model.nominal.u
    ta: list[float] = []
    tb: list[float] = []
    ca_: list[float] = []
    cb: list[float] = []
    solvers: list[str] = []
    ref_fail = 0
    cold = mode == "cache-cold"
    order = (
        [(k, who) for who in ("ours", "peer") for k in range(case.steps)]
        if mode == "tight"
        else [(k, who) for k in range(case.steps) for who in ("ours", "peer")]
    )
    for k, who in order:
        if who == "peer" and (ref is None or ref_fail):
            continue
        if cold:
            _other_work()
        if who == "ours":
            t0, c0 = time.perf_counter(), time.process_time()
            ra = ours.step(xa, u_prev=u0 if k == 0 else None)
            ta.append(time.perf_counter() - t0)
            ca_.append(time.process_time() - c0)
            if ra.u is None:
                raise RuntimeError(f"{case.name} step {k}: ours {ra.status.value} {ra.message}")
            solvers.append(ra.solver)
            xa = model.simulate(xa, [ra.u], dt).x[-1]
        else:
            assert ref is not None
            t0, c0 = time.perf_counter(), time.process_time()
            rb = ref.step(xb, u_prev=u0 if k == 0 else None)
            tb.append(time.perf_counter() - t0)
            cb.append(time.process_time() - c0)
            if rb.u is None:
                ref_fail += 1
                continue
            xb = model.simulate(xb, [rb.u], dt).x[-1]
    return {
        "ta": ta,
        "tb": tb,
        "ca": ca_,
        "cb": cb,
        "solvers": solvers,
        "fallbacks": ours.fallbacks,
        "relaxed": ours._stage.relaxed_qps if ours._stage is not None else 0,
        "xa": xa,
        "xb": xb,
        "ref_fail": ref_fail,
        "ours": ours,
        "model": model,
    }


def report(case: Case, peer: bool = True, modes: tuple[str, ...] = MODES) -> None:
    """Print the table of one case (:data:`MODES`)."""
    build_s, peak_mb, peak_abs = build_cost(case.plant, case.plant_params, case.config)
    print(f"\n== {case.name}: N = {case.config.horizon_steps}, {case.steps} closed-loop steps ==")
    print(f"  load average at start of case: {_loadavg()}")
    if case.peer_label and peer:
        print(f"  do-mpc peer: {case.peer_label}")
        _discretisation_errors(case)
    for mode in modes:
        t0 = time.perf_counter()
        r = closed_loop(case, mode, peer)
        ours = r["ours"]
        if mode == "tight":
            qp = (
                ours._stage.qp_solver.value
                if ours._stage is not None
                else (ours._rti.qp_solver.value if ours._rti is not None else "-")
            )
            print(
                f"ours: {ours.transcription.value} transcription, QP {qp}; build "
                f"{build_s:.2f} s, peak RSS +{peak_mb:.0f} MB by the build, {peak_abs:.0f} MB "
                "in all (fresh interpreter)"
            )
        print(f"  {mode:<11}{'median':>9}{'p95':>9}{'max':>9}   [ms per step, first excluded]")
        print(f"  {'ours':<11}{_stats(r['ta'][1:])}")
        if r["tb"]:
            print(f"  {'do-mpc':<11}{_stats(r['tb'][1:])}")
            ratio = np.median(r["tb"][1:]) / np.median(r["ta"][1:])
            print(
                f"  ratio of medians (do-mpc / ours): {ratio:.1f}x;  do-mpc first step "
                f"{1e3 * r['tb'][0]:.0f} ms, ours {1e3 * r['ta'][0]:.0f} ms"
            )
            cpu_a, cpu_b = np.median(r["ca"][1:]), np.median(r["cb"][1:])
            print(
                f"  CPU time per step (load-independent): ours {1e3 * cpu_a:.2f} ms, "
                f"do-mpc {1e3 * cpu_b:.2f} ms, ratio {cpu_b / cpu_a:.1f}x"
            )
        n_ipopt = r["solvers"].count("ipopt")
        print(
            f"  fallbacks (cold re-solves): {r['fallbacks']}; QPs with hard bounds relaxed: "
            f"{r['relaxed']}; IPOPT runs: {n_ipopt}; "
            f"steps by {sorted(set(r['solvers']))}; do-mpc failures: {r['ref_fail']}; "
            f"wall {time.perf_counter() - t0:.0f} s; load average {_loadavg()}"
        )
        if r["tb"] and mode == "tight":
            model = r["model"]
            dx = np.abs(r["xa"] - r["xb"]) / np.maximum(np.abs(model.x.nominal), 1e-12)
            print(
                f"  final states, largest difference / nominal: {dx.max():.2e} "
                f"({model.x.names[int(dx.argmax())]})"
            )


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _discretisation_errors(case: Case) -> None:
    """One sample from the nominal state with a 2 % input step: ours' and the peer's
    discretisation against CVODES (max over states of |x - x_cvodes| / max |x_cvodes - x0|)."""
    import casadi as ca

    from mpc.stagewise import _rk4_step

    model = load(case.plant, **case.plant_params)
    x0, u, d, p = model.nominal.x, 1.02 * model.nominal.u, model.nominal.d, model.nominal.p
    dt = case.config.sample_time_s
    ref = model.simulate(x0, [u], dt).x[-1]
    xs = ca.SX.sym("x", len(x0))

    def err(x1: np.ndarray) -> float:
        return float(np.max(np.abs(x1 - ref)) / np.max(np.abs(ref - x0)))

    runs = (
        ("ours", case.config, 1),
        ("do-mpc", case.peer_config or case.config, case.peer_elements),
    )
    for label, cfg, elements in runs:
        if cfg.discretisation is Discretisation.RK4:
            h = dt / cfg.rk4_substeps
            step = ca.Function("s", [xs], [_rk4_step(model, xs, ca.DM(u), ca.DM(d), ca.DM(p), h)])
            x = ca.DM(x0)
            for _ in range(cfg.rk4_substeps):
                x = step(x)
            x1 = np.asarray(x, dtype=float).ravel()
            what = f"RK4 x {cfg.rk4_substeps}"
        else:
            dae = {"x": xs, "ode": model.f(xs, ca.DM(u), ca.DM(d), ca.DM(p))}
            opts = {
                "collocation_scheme": "radau",
                "interpolation_order": cfg.collocation_degree,
                "number_of_finite_elements": elements,
            }
            integ = ca.integrator("c", "collocation", dae, 0.0, dt, opts)
            x1 = np.asarray(integ(x0=x0)["xf"], dtype=float).ravel()
            what = f"Radau collocation degree {cfg.collocation_degree}, {elements} element(s)"
        print(f"  one-sample error vs CVODES, {label} ({what}): {err(x1):.2e}")


def _column_cfg(disc: Discretisation, n: int = 30) -> MpcConfig:
    cvs = (
        CvSpec("x_d", weight=1.0, target=0.995, cost_scale=1e-3),
        CvSpec("x_b", weight=1.0, target=0.005, cost_scale=1e-3),
    )
    return column_a_config(discretisation=disc, horizon_steps=n, cvs=cvs)


def cases(steps: int) -> dict[str, Case]:
    """The closed-loop cases."""
    return {
        "cstr": Case(
            "do-mpc CSTR, nominal (QP data compiled to C)",
            "van_de_vusse",
            {"parameters": "do_mpc"},
            do_mpc_cstr_config(ipopt_fallback=False),  # codegen "auto" (default): compiled
            max(steps, 30),
        ),
        "cstr-vm": Case(
            "do-mpc CSTR, nominal (CasADi VM, no codegen)",
            "van_de_vusse",
            {"parameters": "do_mpc"},
            do_mpc_cstr_config(ipopt_fallback=False, codegen=False),
            max(steps, 30),
        ),
        "poly": Case(
            "industrial_poly, nominal", "industrial_poly", {}, industrial_poly_config(), steps
        ),
        "poly-robust": Case(
            "industrial_poly, robust (9 branches)",
            "industrial_poly",
            {},
            industrial_poly_config(robust=True),
            steps,
        ),
        "column-rk4": Case(
            "column A, RK4 x 16",
            "distillation_column_a",
            {},
            _column_cfg(Discretisation.RK4),
            steps,
            # do-mpc did not finish building the discrete model of the same RK4 map (9 min,
            # 6.4 GB): its peer solves the continuous model by Radau collocation of degree 3
            # on 4 elements per sample, the cheapest within an order of magnitude of RK4 x 16's
            # one-sample accuracy (5e-4 vs 9e-5; degree 2 on one element: 0.1)
            peer_config=replace(_column_cfg(Discretisation.COLLOCATION), collocation_degree=3),
            peer_elements=4,
            peer_label="NOT the same discretisation: do-mpc's Radau collocation, degree 3, 4 "
            "elements per sample, of the continuous model (do-mpc cannot build the RK4 x 16 map)",
        ),
        "column-colloc": Case(
            "column A, Radau collocation degree 1 (stage functions compiled to C)",
            "distillation_column_a",
            {},
            _column_cfg(Discretisation.COLLOCATION),
            steps,
        ),
    }


def _step_time(plant: str, params: dict[str, Any], cfg: MpcConfig, steps: int = 8) -> float:
    y0 = load(plant, **params).outputs()
    cvs = (
        CvSpec("x_d", weight=1.0, target=y0[0] + 0.1 * (1 - y0[0]), cost_scale=1e-3),
        CvSpec("x_b", weight=1.0, target=0.9 * y0[1], cost_scale=1e-3),
    )
    case = Case("scale", plant, params, replace(cfg, cvs=cvs, first_sqp_iterations=60), steps)
    r = closed_loop(case, "tight", peer=False)
    return float(np.median(r["ta"][1:]))


def scaling(out: Path) -> None:
    """Build time, peak memory and step time vs nx and vs N; PNG to ``out``."""
    rows_nx = []
    for stages in (5, 11, 21, 41, 81, 125):
        params = {"n_stages": stages}
        cfg = replace(_column_cfg(Discretisation.RK4), codegen=False)  # as plotted: the VM
        b, _, m = build_cost("distillation_column_a", params, cfg)
        s = _step_time("distillation_column_a", params, cfg)
        rows_nx.append((2 * stages, b, m, s))
        print(f"nx {2 * stages:4d}: build {b:6.2f} s, peak RSS {m:6.0f} MB, step {1e3 * s:8.1f} ms")
    rows_n = []
    for n in (10, 30, 60, 100):
        cfg = replace(_column_cfg(Discretisation.RK4, n), codegen=False)
        b, _, m = build_cost("distillation_column_a", {}, cfg)
        s = _step_time("distillation_column_a", {}, cfg)
        rows_n.append((n, b, m, s))
        print(f"N {n:4d}: build {b:6.2f} s, peak RSS {m:6.0f} MB, step {1e3 * s:8.1f} ms")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for row, (data, xlabel) in enumerate(
        ((rows_nx, "states nx (column, N = 30)"), (rows_n, "horizon N (column A, nx = 82)"))
    ):
        arr = np.array(data)
        for col, (idx, ylabel, scale) in enumerate(
            (
                (1, "build time [s]", 1.0),
                (2, "peak RSS, whole process [MB]", 1.0),
                (3, "RTI step [ms]", 1e3),
            )
        ):
            ax = axes[row, col]
            ax.plot(arr[:, 0], arr[:, idx] * scale, "o-")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, alpha=0.3)
    fig.suptitle("Stage-structured NMPC on Skogestad's column (RK4 x 16, condensed QP)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"plot: {out}")


CASES = ["cstr", "cstr-vm", "poly", "poly-robust", "column-rk4", "column-colloc", "scaling"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--case",
        action="append",
        default=None,
        choices=CASES,
    )
    parser.add_argument("--steps", type=int, default=15, help="closed-loop steps per case")
    parser.add_argument(
        "--mode",
        action="append",
        default=None,
        choices=MODES,
        help="how steps are timed (default all): tight (each tool's own loop), interleaved "
        "(alternating), cache-cold (other work between steps)",
    )
    parser.add_argument(
        "--no-peer",
        action="append",
        default=[],
        help="run this case without do-mpc",
    )
    parser.add_argument(
        "--qp-solver",
        action="append",
        default=None,
        choices=[q.value for q in QpSolver],
        help="override the cases' qp_solver (default: their own, mostly auto); repeat it for "
        "an A/B in one process: each case runs once per value, in the order given",
    )
    parser.add_argument(
        "--hpipm-casadi",
        action="store_true",
        help="HPIPM through CasADi's conic interface (scenarios as one chain) instead of its C API"
        " (a tree); for comparison",
    )
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "nmpc_scaling.png")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    chosen = args.case or CASES
    all_cases = cases(args.steps)
    stage_solver.HPIPM_C_API = not args.hpipm_casadi
    for name in chosen:
        if name == "scaling":
            scaling(args.png)
            continue
        case = all_cases[name]
        for qp in args.qp_solver or [None]:
            if qp is not None:
                case.config = replace(case.config, qp_solver=QpSolver(qp))
                print(f"\n-- qp_solver = {qp!r}")
            report(case, peer=name not in args.no_peer, modes=tuple(args.mode or MODES))
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print(
        "Wall times on a machine with load average > 2 are inflated by waiting for a core;"
        " the CPU-time ratio is the load-independent one."
    )


if __name__ == "__main__":
    main()
