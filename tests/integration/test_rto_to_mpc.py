"""RTO hand-off feeding the NMPC in closed loop on the Williams-Otto plant.

The plant is the three-reaction Williams-Otto model integrated with CVODES
every 60 s; the NMPC (RTI) has the same model, CVs X_P and X_G (soft limit
X_G <= 0.11) and rate-limited MVs F_B, T_R. The hand-off ramps the RTO targets
at the MV rate limits and checks their reachability. Checks: every MPC step is
usable, the MVs never move faster than their limits, the plant ends at the RTO
optimum (Marchetti et al. 2009: F_B = 4.787 kg/s, T_R = 89.70 °C,
190.98 $/s), and, with two-step RTO in the loop, steady-state detection on
the noisy closed-loop measurements hands steady data back to RTO.
"""

from __future__ import annotations

import numpy as np
import pytest

from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from plant_models.library import load
from plant_models.library.williams_otto import C0, PRICES, PUBLISHED_OPTIMUM
from plant_models.simulation import step
from rto import (
    EconomicOptimizer,
    EstimationConfig,
    HandoffConfig,
    RtoConfig,
    SteadyStateDetector,
    TargetHandoff,
    TwoStepRto,
)

DT = 60.0
RATE = {"f_b": 2e-4, "t_r": 0.02}  # kg/s per s, K per s
U0 = np.array([4.0, 75.0 + C0])
MEASURED = ("x_a", "x_b", "x_e", "x_g", "x_p")


@pytest.fixture(scope="module")
def plant():
    return load("williams_otto")


def _controller(plant):
    cfg = MpcConfig(
        horizon_steps=20, sample_time_s=DT,
        cvs=(CvSpec("x_p", weight=10.0, target=0.1),
             CvSpec("x_g", weight=1.0, target=0.1, upper=0.11, l1_penalty=100.0)),
        mvs=(MvSpec("f_b", weight=1.0, target=U0[0], move_weight=1.0,
                    max_rate_per_s=RATE["f_b"]),
             MvSpec("t_r", weight=1.0, target=U0[1], move_weight=1.0,
                    max_rate_per_s=RATE["t_r"])),
    )
    return NmpcController(plant, cfg)


def _handoff(plant, x, u):
    ho = TargetHandoff(plant, HandoffConfig(cvs=("x_p", "x_g"), max_rate=RATE,
                                            limits={"x_g": (0.0, 0.11)}))
    y = plant.outputs(x, u)
    ho.reset(0.0, {"f_b": u[0], "t_r": u[1], "x_p": y[plant.y.index("x_p")],
                   "x_g": y[plant.y.index("x_g")]})
    return ho


def _run(plant, ctrl, ho, x, u, t, steps, u_rto, y_rto=None, *, log=None):
    for _ in range(steps):
        h = ho.update(t, u_rto, y_rto)
        assert h.info.status.usable, h.info.message
        res = ctrl.step(x, target=h.target, u_prev=u, time_s=t)
        assert res.status.usable, res.message
        assert np.all(np.abs(res.u - u) <= np.array([RATE["f_b"], RATE["t_r"]]) * DT * 1.0001)
        u = res.u
        x = step(plant, x, u, plant.nominal.d, plant.nominal.p, DT, "cvodes")
        t += DT
        if log is not None:
            log.append((t, x.copy(), u.copy(), h.ramping))
    return x, u, t


def test_mpc_drives_the_plant_to_the_rto_optimum(plant) -> None:
    best = EconomicOptimizer(plant, RtoConfig(prices=PRICES)).solve()
    best.raise_for_status()
    x = plant.steady_state(u=U0).x
    ctrl, ho = _controller(plant), _handoff(plant, x, U0)
    log: list = []
    x, u, _ = _run(plant, ctrl, ho, x, U0.copy(), 0.0, 110, best.u, best.y, log=log)
    ramping = [r for *_, r in log]
    # the ramp is set by F_B: 0.787 kg/s at 2e-4 kg/s per s is 66 samples (T_R needs 12)
    assert sum(ramping) >= 60 and not any(ramping[-20:])
    assert u[0] == pytest.approx(PUBLISHED_OPTIMUM["f_b"], abs=1e-3)
    assert u[1] == pytest.approx(PUBLISHED_OPTIMUM["t_r"], abs=1e-2)
    y = dict(zip(plant.y.names, plant.outputs(x, u), strict=True))
    profit = (PRICES["f_p"] * y["f_p"] + PRICES["f_e"] * y["f_e"]
              + PRICES["f_a"] * plant.nominal.d[0] + PRICES["f_b"] * u[0])
    assert profit == pytest.approx(PUBLISHED_OPTIMUM["profit"], rel=5e-4)
    x_g = [plant.outputs(xk, uk)[plant.y.index("x_g")] for _, xk, uk, _ in log]
    assert max(x_g) <= 0.11 + 1e-3


def test_two_step_rto_closes_the_loop_through_mpc(plant) -> None:
    """Three two-step RTO iterations, each fed by steady-state detection on noisy closed-loop
    measurements; the plant's profit rises towards the two-step fixed point (~181.7 $/s)."""
    rng = np.random.default_rng(5)
    model = load("williams_otto_2r")
    rto = TwoStepRto(model, RtoConfig(prices=PRICES),
                     EstimationConfig(parameters=("nu1", "nu2"), measured=MEASURED))
    det = SteadyStateDetector()
    x = plant.steady_state(u=U0).x
    u, t = U0.copy(), 0.0
    ctrl, ho = _controller(plant), _handoff(plant, x, u)
    target = U0.copy()
    profits = []
    for _ in range(3):
        window: list[np.ndarray] = []
        steady = None
        for _k in range(300):
            x, u, t = _run(plant, ctrl, ho, x, u, t, 1, target)
            y = plant.outputs(x, u)
            window.append(np.array([y[plant.y.index(n)] for n in MEASURED])
                          + 1e-4 * rng.standard_normal(len(MEASURED)))
            if len(window) >= 30 and np.all(np.abs(u - target) <= [1e-3, 1e-2]):
                check = det.check(np.array(window[-30:]), MEASURED)
                if check.steady:
                    steady = check
                    break
        assert steady is not None, "closed loop never settled"
        yfull = dict(zip(plant.y.names, plant.outputs(x, u), strict=True))
        meas = {**{n: yfull[n] for n in plant.y.names}, **steady.mean}
        it = rto.step(u, None, meas)
        assert it.accepted, it.message
        profits.append(it.plant_profit)
        target = it.target
    assert profits[0] < profits[1] < profits[2]
    assert profits[-1] == pytest.approx(181.7, rel=0.01)
