"""Benchmark: column A and the reheating furnace, NMPC step time vs sample time, do-mpc, RTO gain.

Parts (``--part``, default all):

- ``steps``: the NMPC of the shipped scenarios against do-mpc in the same process, same
  OCP and plant (each controller on its own CVODES copy): column A (82 states, N = 20,
  1 min samples, Radau collocation of degree 1, purity step 0.995 / 0.005 with the feed
  20 % up) and the three-zone furnace (63 states, N = 36, 5 min samples, discharge
  setpoint +30 K). do-mpc cannot take the scenarios' L2 soft-limit penalties: both get the
  scenario's problem with the L2 terms removed (the soft limits stay, L1). Per step: wall
  median / p95 / max (first step excluded: both solve it to convergence), CPU time, the
  ratio, and the step time as a share of the sample time.
- ``scenarios``: the shipped ``col_*`` and ``furnace_*`` scenarios closed-loop in-process
  (EKF + NMPC + plant; RTO where configured): real-time factor, NMPC median / p95 / max.
- ``rto``: ``col_rto_energy_price`` with its RTO and again with the operators' targets held
  (the same scenario without ``[rto]``): profit over the run and the gain of the RTO.

Usage::

    .venv/bin/python benchmarks/bench_column_furnace.py [--part steps scenarios rto] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mpc import CvSpec, MpcConfig, NmpcController
from mpc.config import Discretisation
from mpc.do_mpc_backend import DoMpcController
from mpc.presets import column_a_config
from plant_models.library import load
from plant_models.library.distillation_column_a import KMOL_PER_MIN
from plant_models.library.slab_furnace import C0
from rtompc.scenarios.runner import load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


def _ms(v: list[float]) -> str:
    a = 1e3 * np.asarray(v)
    return f"{np.median(a):9.1f}{np.percentile(a, 95):9.1f}{a.max():9.1f}"


def _no_l2(cfg: MpcConfig) -> MpcConfig:
    return replace(cfg, cvs=tuple(replace(c, l2_penalty=0.0) for c in cfg.cvs))


def compare(name: str, plant: str, cfg: MpcConfig, d: np.ndarray, steps: int) -> None:
    """Closed loop of ours and do-mpc side by side; print the step-time table."""
    model = load(plant)
    t0 = time.perf_counter()
    ours = NmpcController(model, cfg)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = DoMpcController(model, cfg)
    t_ref = time.perf_counter() - t0
    xa = model.nominal.x.copy()
    xb = xa.copy()
    u0 = model.nominal.u
    wa: list[float] = []
    wb: list[float] = []
    ca: list[float] = []
    cb: list[float] = []
    dt = cfg.sample_time_s
    for k in range(steps):
        w0, c0 = time.perf_counter(), time.process_time()
        ra = ours.step(xa, d=d, u_prev=u0 if k == 0 else None)
        wa.append(time.perf_counter() - w0)
        ca.append(time.process_time() - c0)
        w0, c0 = time.perf_counter(), time.process_time()
        rb = ref.step(xb, d=d, u_prev=u0 if k == 0 else None)
        wb.append(time.perf_counter() - w0)
        cb.append(time.process_time() - c0)
        if ra.u is None or rb.u is None:
            raise RuntimeError(f"{name} step {k}: ours {ra.status.value}, do-mpc {rb.status.value}")
        xa = model.simulate(xa, [ra.u], dt, d=[d]).x[-1]
        xb = model.simulate(xb, [rb.u], dt, d=[d]).x[-1]
    ya = model.outputs(x=xa, u=ra.u, d=d)
    yb = model.outputs(x=xb, u=rb.u, d=d)
    cv = cfg.cvs[0].name
    i = model.y.index(cv)
    print(
        f"\n== {name}: {len(model.x)} states, N = {cfg.horizon_steps}, sample {dt:g} s, "
        f"{steps} closed-loop steps =="
    )
    print(f"  build: ours {t_ours:.2f} s ({ours.transcription.value}), do-mpc {t_ref:.2f} s")
    print(f"  {'':<8}{'median':>9}{'p95':>9}{'max':>9}   [ms wall per step, first excluded]")
    print(f"  {'ours':<8}{_ms(wa[1:])}")
    print(f"  {'do-mpc':<8}{_ms(wb[1:])}")
    ma, mb = float(np.median(wa[1:])), float(np.median(wb[1:]))
    qa, qb = float(np.median(ca[1:])), float(np.median(cb[1:]))
    print(
        f"  ratio of medians: {mb / ma:.1f}x wall, {qb / qa:.1f}x CPU "
        f"(ours {1e3 * qa:.1f} ms CPU, do-mpc {1e3 * qb:.1f} ms CPU)"
    )
    print(
        f"  ours per step: median {100 * ma / dt:.2f} % of the sample time, max "
        f"{100 * max(wa[1:]) / dt:.2f} %; first step ours {1e3 * wa[0]:.0f} ms, do-mpc "
        f"{1e3 * wb[0]:.0f} ms; fallbacks {ours.fallbacks}"
    )
    print(
        f"  {cv} at the end: ours {ya[i]:.6g}, do-mpc {yb[i]:.6g} (difference "
        f"{abs(ya[i] - yb[i]):.2e})"
    )


def part_steps(steps: int) -> None:
    col = column_a_config(
        discretisation=Discretisation.COLLOCATION,
        horizon_steps=20,
        cvs=(
            CvSpec("x_d", weight=1.0, target=0.995, cost_scale=1e-3),
            CvSpec("x_b", weight=1.0, target=0.005, cost_scale=1e-3),
        ),
    )
    compare(
        "column A (col_* scenarios' OCP)",
        "distillation_column_a",
        col,
        np.array([1.2 * KMOL_PER_MIN, 0.5]),
        steps,
    )
    spec = load_scenario(SCENARIOS / "furnace_discharge_setpoint.toml")
    cvs = tuple(
        replace(c, target=1230.0 + C0) if c.name == "t_discharge" else c for c in spec.mpc.cvs
    )
    furnace = load("reheating_furnace")
    compare(
        "reheating furnace (furnace_* scenarios' OCP, setpoint +30 K)",
        "reheating_furnace",
        _no_l2(replace(spec.mpc, cvs=cvs)),
        furnace.nominal.d,
        steps,
    )


def part_scenarios() -> None:
    print("\n== shipped scenarios, in-process lockstep (EKF + NMPC + CVODES plant) ==")
    print(
        f"  {'scenario':<34}{'cycles':>7}{'sample':>8}{'x real':>8}"
        f"{'NMPC ms med':>13}{'p95':>8}{'max':>8}{'max/sample':>12}  status"
    )
    for path in sorted(SCENARIOS.glob("col_*.toml")) + sorted(SCENARIOS.glob("furnace_*.toml")):
        spec = load_scenario(path)
        c0 = time.process_time()
        res = run_scenario(spec)
        k = res.kpis
        dt = spec.loop.sample_time_s
        print(
            f"  {spec.name:<34}{k['cycles']:7.0f}{dt:8.0f}{k['realtime_factor']:8.0f}"
            f"{k['solve_ms_median']:13.1f}{k['solve_ms_p95']:8.1f}{k['solve_ms_max']:8.1f}"
            f"{100 * k['solve_ms_max'] / 1e3 / dt:11.2f}%  {res.status.value} "
            f"(CPU {time.process_time() - c0:.1f} s)"
        )


def part_rto() -> None:
    spec = load_scenario(SCENARIOS / "col_rto_energy_price.toml")
    with_rto = run_scenario(spec)
    fixed = run_scenario(replace(spec, rto=None))
    a, b = with_rto.kpis, fixed.kpis
    hours = spec.duration_s / 3600.0
    print("\n== column A RTO (col_rto_energy_price, steam 10 -> 5 $/GJ at 40 min) ==")
    print(
        f"  profit over {spec.duration_s / 60:.0f} min: RTO {a['profit']:.1f} $ "
        f"({a['profit_ratio']:.5f} of the ideal), operators' fixed 0.995 / 0.005 targets "
        f"{b['profit']:.1f} $ ({b['profit_ratio']:.5f})"
    )
    gain = a["profit"] - b["profit"]
    print(
        f"  RTO gain: {gain:.1f} $ = {gain / hours:.1f} $/h = "
        f"{100 * gain / b['profit']:.1f} % of the fixed-target profit"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--part",
        nargs="*",
        choices=["steps", "scenarios", "rto"],
        default=["steps", "scenarios", "rto"],
    )
    parser.add_argument("--steps", type=int, default=10, help="closed-loop steps per controller")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if "steps" in args.part:
        part_steps(args.steps)
    if "rto" in args.part:
        part_rto()
    if "scenarios" in args.part:
        part_scenarios()
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
