"""KPIs against known answers on synthetic traces and on synthetic CycleRecord lists."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plant_models.samples import Measurement, Mode, OperatingTarget, Quality, StateEstimate
from rtompc.cycle import CycleRecord
from rtompc.scenarios.kpis import Trace, compute_kpis, integrate, settling_time
from rtompc.scenarios.records import trace_from_records


def make_trace(
    t,
    y,
    sp,
    *,
    lower=-math.inf,
    upper=math.inf,
    u=None,
    solve=None,
    fallback=None,
    in_service=None,
    connected=None,
    profit=None,
    ideal=None,
    dt=None,
) -> Trace:
    k = t.size
    u = np.zeros((k, 1)) if u is None else np.asarray(u, float).reshape(k, -1)
    return Trace(
        t=t,
        cv_names=("c",),
        y=np.asarray(y, float).reshape(k, 1),
        y_measured=np.full((k, 1), np.nan),
        setpoint=np.asarray(sp, float).reshape(k, 1),
        cv_lower=np.array([lower]),
        cv_upper=np.array([upper]),
        mv_names=tuple(f"m{i}" for i in range(u.shape[1])),
        u=u,
        u_lower=np.zeros(u.shape[1]),
        u_upper=np.ones(u.shape[1]),
        solve_time_s=np.full(k, 1e-3) if solve is None else np.asarray(solve, float),
        fallback=np.zeros(k, bool) if fallback is None else np.asarray(fallback, bool),
        in_service=np.ones(k, bool) if in_service is None else np.asarray(in_service, bool),
        connected=np.ones(k, bool) if connected is None else np.asarray(connected, bool),
        write_failed=np.zeros(k, bool),
        profit_rate=np.zeros(0) if profit is None else np.asarray(profit, float),
        ideal_profit_rate=np.zeros(0) if ideal is None else np.asarray(ideal, float),
        wall_time_s=2.0,
        sample_time_s=float(t[1] - t[0]) if dt is None else dt,
    )


def test_first_order_step_response_iae_ise_settling() -> None:
    """e(t) = A exp(-t/tau) after a setpoint step of size A at t0:
    IAE = A tau, ISE = A^2 tau / 2, settling time into a 5 % band = tau ln(20)."""
    tau, amp, t0 = 50.0, 2.0, 100.0
    t = np.arange(0.0, 1200.0, 0.05)
    r = np.where(t < t0, 0.0, amp)
    y = np.where(t < t0, 0.0, amp - amp * np.exp(-(t - t0) / tau))
    k = compute_kpis(make_trace(t, y, r))
    # the sample at the step instant adds half a sample of the full error (trapezoid): < 0.1 %
    assert k["iae.c"] == pytest.approx(amp * tau, rel=1e-3)
    assert k["ise.c"] == pytest.approx(amp**2 * tau / 2 + 0.5 * amp**2 * 0.05, rel=1e-4)
    assert k["settling_time_s.c"] == pytest.approx(tau * math.log(20.0), abs=0.06)
    assert k["final_error.c"] == pytest.approx(amp * math.exp(-(t[-1] - t0) / tau), abs=1e-9)


def test_settling_band_override_and_never_settling() -> None:
    t = np.arange(0.0, 100.0, 1.0)
    y = np.sin(t)  # oscillates forever with amplitude 1 around 0
    r = np.zeros_like(t)
    k = compute_kpis(make_trace(t, y, r), settling_band={"c": 0.5})
    assert math.isinf(k["settling_time_s.c"])
    k = compute_kpis(make_trace(t, y, r), settling_band={"c": 1.5})
    assert k["settling_time_s.c"] == 0.0
    assert settling_time(t, np.where(t < 30, 1.0, 0.0), 0.1, 0.0) == 30.0


def test_constraint_violation_is_magnitude_times_time() -> None:
    """y = 1 + 0.5 on [10, 20) s above an upper limit of 1, then a linear return:
    trapezoid area of a plateau of 0.5 over 10 s plus two 1-s ramps = 5.5."""
    t = np.arange(0.0, 40.0, 1.0)
    y = np.where((t >= 10) & (t <= 20), 1.5, 0.9)
    k = compute_kpis(make_trace(t, y, np.full_like(t, np.nan), upper=1.0))
    # samples at 10..20 are 0.5 above; the trapezoid adds half a step at each edge (ramp from 0)
    assert k["violation.c"] == pytest.approx(0.5 * 10 + 2 * 0.5 * 0.5 * 1.0)
    assert k["max_violation.c"] == pytest.approx(0.5)
    assert "iae.c" not in k, "no setpoint, no tracking KPIs"
    k = compute_kpis(make_trace(t, 2.0 - y, np.full_like(t, np.nan), lower=1.0))
    assert k["violation.c"] == pytest.approx(5.5)


def test_mv_travel_solver_statistics_and_service_factor() -> None:
    t = np.arange(0.0, 10.0, 1.0)
    u = np.array([0, 1, 1, 3, 2, 2, 2, 0, 0, 0], float)
    solve = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, np.nan]) * 1e-3
    fallback = np.zeros(10, bool)
    fallback[[2, 5]] = True
    service = np.ones(10, bool)
    service[:4] = False
    connected = np.ones(10, bool)
    connected[7] = False
    k = compute_kpis(
        make_trace(
            t,
            np.zeros(10),
            np.zeros(10),
            u=u,
            solve=solve,
            fallback=fallback,
            in_service=service,
            connected=connected,
        )
    )
    assert k["mv_travel.m0"] == pytest.approx(1 + 2 + 1 + 2)
    assert k["solve_ms_median"] == pytest.approx(5.0)
    assert k["solve_ms_max"] == pytest.approx(9.0)
    assert k["solve_ms_p95"] == pytest.approx(np.percentile(np.arange(1, 10), 95))
    assert k["fallbacks"] == 2 and k["fallback_fraction"] == pytest.approx(0.2)
    assert k["service_factor"] == pytest.approx(0.6)
    assert k["disconnected_cycles"] == 1
    assert k["plant_time_s"] == 10.0 and k["realtime_factor"] == pytest.approx(5.0)


def test_profit_against_ideal() -> None:
    t = np.linspace(0.0, 100.0, 101)
    profit = np.where(t < 50, 1.0, 2.0)
    ideal = np.full_like(t, 2.0)
    k = compute_kpis(make_trace(t, np.zeros_like(t), np.zeros_like(t), profit=profit, ideal=ideal))
    assert k["profit"] == pytest.approx(50 * 1.0 + 50 * 2.0 + 0.5, abs=1e-9)  # one trapezoid edge
    assert k["profit_ideal"] == pytest.approx(200.0)
    assert k["profit_loss"] == pytest.approx(200.0 - k["profit"])
    assert k["profit_ratio"] == pytest.approx(k["profit"] / 200.0)


def test_integrate_trapezoid() -> None:
    t = np.linspace(0, 2, 201)
    assert integrate(t, t**2) == pytest.approx(8 / 3, rel=1e-4)
    assert integrate(t[:1], t[:1]) == 0.0


def _record(
    k: int,
    y: float,
    r: float | None,
    *,
    quality: Quality = Quality.GOOD,
    fallback: bool = False,
    written: bool = True,
    connected: bool = True,
) -> CycleRecord:
    meas = Measurement(
        time_s=10.0 * k,
        names=("c", "d"),
        values=np.array([y, 0.0]),
        quality=(quality, Quality.GOOD),
    )
    target = OperatingTarget(time_s=0.0, y={"c": r}) if r is not None else None
    u = np.array([float(k)])
    return CycleRecord(
        cycle=k,
        time_s=10.0 * k,
        wall_time_s=0.0,
        mode=Mode.ON,
        connected=connected,
        measurement=meas,
        estimate=StateEstimate(time_s=10.0 * k, x=np.zeros(1)),
        target=target,
        mv_names=("m",),
        u_computed=u,
        u_written=u if written else np.full(1, np.nan),
        u_plant=u - 1,
        solver_status="success",
        solver="rti",
        fallback=fallback,
        solve_time_s=0.002,
        estimator_time_s=0.0,
        cycle_time_s=0.003,
        overrun=False,
        write_status="verified" if written else "not_connected",
    )


def test_kpis_from_cycle_records() -> None:
    """Error 1 for three 10-s samples then 0 (trapezoid: 1*20 + 0.5*10 = 25)."""
    recs = [
        _record(0, 1.0, 0.0),
        _record(1, 1.0, 0.0),
        _record(2, 1.0, 0.0),
        _record(3, 0.0, 0.0),
        _record(4, 0.0, None, quality=Quality.BAD, written=False, connected=False, fallback=True),
    ]
    trace = trace_from_records(
        recs, ["c"], sample_time_s=10.0, setpoints={"c": 0.0}, cv_limits={"c": (-0.5, 0.5)}
    )
    assert np.isnan(trace.y[4, 0]), "a Bad measurement is not used"
    k = compute_kpis(trace)
    assert k["iae.c"] == pytest.approx(25.0)
    assert k["violation.c"] == pytest.approx(0.5 * 20 + 0.5 * 0.5 * 10)
    assert k["mv_travel.m"] == pytest.approx(3.0)  # written 0, 1, 2, 3, then the plant holds 3
    assert k["service_factor"] == pytest.approx(0.8)
    assert k["fallbacks"] == 1 and k["disconnected_cycles"] == 1
    assert k["solve_ms_median"] == pytest.approx(2.0)
