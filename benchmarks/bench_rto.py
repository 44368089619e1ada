"""Benchmark of the rto layer on the Williams-Otto case (not a test).

Prints median and 90th-percentile wall times of: building the economic NLP;
one economic optimisation (warm and cold start); one steady-state parameter
estimation; one modifier-adaptation iteration (model part only, the plant's
steady states excluded); one hand-off target calculation; one R-statistic
check of a 100-sample x 5-signal window; and ratios to the optimisation.

Run: ``.venv/bin/python benchmarks/bench_rto.py``
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from plant_models.library import load
from plant_models.library.williams_otto import C0, PRICES
from rto import (
    EconomicOptimizer,
    EstimationConfig,
    GradientSource,
    HandoffConfig,
    ModifierAdaptation,
    ModifierAdaptationConfig,
    ParameterEstimator,
    RtoConfig,
    SteadyPlant,
    SteadyStateDetector,
    TargetHandoff,
)

REPEATS = 30


def _timeit(fn: Callable[[], object], repeats: int = REPEATS) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.quantile(times, 0.9))


def main() -> None:
    plant, model = load("williams_otto"), load("williams_otto_2r")
    config = RtoConfig(prices=PRICES, limits={"x_g": (0.0, 0.1)})
    results: dict[str, tuple[float, float]] = {}
    results["build optimiser (NLP + IPOPT)"] = _timeit(
        lambda: EconomicOptimizer(plant, config), 5)
    opt = EconomicOptimizer(plant, config)
    first = opt.solve()
    results["optimise, cold start (SS guess)"] = _timeit(lambda: opt.solve())
    results["optimise, warm start"] = _timeit(lambda: opt.solve(u=first.u, x_guess=first.x))
    u = np.array([4.3, 82.0 + C0])
    y = SteadyPlant(plant)(u)
    est = ParameterEstimator(model, EstimationConfig(
        parameters=("nu1", "nu2"), measured=("x_a", "x_b", "x_e", "x_g", "x_p")))
    results["parameter estimation"] = _timeit(lambda: est.estimate(u, None, y))
    sp = SteadyPlant(plant)
    ma = ModifierAdaptation(model, RtoConfig(prices=PRICES), ModifierAdaptationConfig(
        gradient=GradientSource.FINITE_DIFFERENCES))
    pts = ma.probe_points(u)
    probes = [(p, sp(p)) for p in pts]
    results["modifier-adaptation iteration"] = _timeit(lambda: ma.step(u, None, y, probes))
    ho = TargetHandoff(plant, HandoffConfig(cvs=("x_p", "x_g"), limits={"x_g": (0.0, 0.1)}))
    results["hand-off target calculation"] = _timeit(lambda: ho.update(0.0, first.u, first.y))
    det = SteadyStateDetector()
    window = np.random.default_rng(0).standard_normal((100, 5))
    names = [f"s{i}" for i in range(5)]
    results["R-statistic check 100x5"] = _timeit(lambda: det.check(window, names), 200)

    base = results["optimise, warm start"][0]
    print(f"{'operation':40s} {'median ms':>10s} {'p90 ms':>10s} {'/ warm opt':>10s}")
    for name, (med, p90) in results.items():
        print(f"{name:40s} {1e3 * med:10.2f} {1e3 * p90:10.2f} {med / base:10.2f}")


if __name__ == "__main__":
    main()
