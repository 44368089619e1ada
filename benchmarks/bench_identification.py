"""Benchmark of the identification tools on the quadruple tank at P- (not a test).

Prints median wall times (5 repeats) of: an in-process step test (per sample),
gray-box estimation of gamma1/gamma2 (multiple shooting + IPOPT) for 200, 400
and 800 samples, n4sid (fixed order 4 and automatic order), ARX covariance step
bands (200 draws) and n4sid bootstrap bands (10 refits), with ratios.

Run: ``.venv/bin/python benchmarks/bench_identification.py``
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

import numpy as np

from interfaces.inprocess import InProcessPlantIO
from plant_models.identification import (
    ExcitationSpec,
    SignalKind,
    arx_step_bands,
    bootstrap_step_bands,
    design_experiment,
    estimate_parameters,
    fit_arx,
    n4sid,
    prepare,
)
from plant_models.library import load
from rtompc.step_test import StepTestSettings, run_step_test

DT = 5.0
REPEATS = 5


def _median(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    tank = load("quadruple_tank")
    plan = design_experiment([ExcitationSpec(SignalKind.GBN, 0.3, 60.0)] * 2, 400, DT, seed=1)

    async def step_test() -> None:
        io = InProcessPlantIO(tank, DT)
        async with io:
            await run_step_test(io, plan, StepTestSettings(cvs=("h1", "h2")))

    t_st = _median(lambda: asyncio.run(step_test()), 3)
    print(f"step test in-process, 400 samples: {t_st:.2f} s ({1e3 * t_st / 400:.2f} ms/sample)")
    grey = {}
    for n in (200, 400, 800):
        du = design_experiment([ExcitationSpec(SignalKind.GBN, 0.4, 60.0)] * 2, n, DT, seed=2)
        u = tank.nominal.u + du
        traj = tank.simulate(None, u, DT)
        y = traj.y[:-1] + 2e-4 * np.random.default_rng(0).standard_normal((n, 2))
        grey[n] = _median(lambda u=u, y=y, t=traj.t[:-1]: estimate_parameters(
            tank, t, u, y, estimate=("gamma1", "gamma2"),
            p_initial={"gamma1": 0.5, "gamma2": 0.5}).raise_for_status(), 3)
        print(f"gray-box gamma1/gamma2, {n} samples: {grey[n]:.2f} s")
    print(f"  ratio 800/200 samples: {grey[800] / grey[200]:.1f}")
    du = design_experiment([ExcitationSpec(SignalKind.GBN, 0.3, 60.0)] * 2, 1000, DT, seed=3)
    traj = tank.simulate(None, tank.nominal.u + du, DT)
    data = prepare(traj.t[:-1], traj.u, traj.y[:-1] + 1e-4 * np.random.default_rng(1)
                   .standard_normal((1000, 2)), u_names=tank.u.names, y_names=tank.y.names)
    t_fixed = _median(lambda: n4sid(data, order=4))
    t_auto = _median(lambda: n4sid(data), 3)
    print(f"n4sid 1000 samples: order 4 {t_fixed:.2f} s, automatic order {t_auto:.2f} s "
          f"(ratio {t_auto / t_fixed:.1f})")
    fit = fit_arx(data, order=2)
    t_arx = _median(lambda: arx_step_bands(fit, data, 120, n_draws=200), 3)
    model = n4sid(data, order=4).model
    t_boot = _median(lambda: bootstrap_step_bands(lambda d: n4sid(d, order=4).model, model, data,
                                                  120, n_boot=10), 1)
    print(f"step bands: ARX covariance 200 draws {t_arx:.2f} s, n4sid bootstrap 10 refits "
          f"{t_boot:.2f} s (ratio {t_boot / t_arx:.1f})")


if __name__ == "__main__":
    main()
