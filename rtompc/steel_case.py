"""Steel works energy case, in-process: plant-wide RTO -> hand-off -> NMPC on the gas network.

:func:`run_steel_case` closes the loop on the ``steel_energy`` plant (simulated
in lockstep, full state feedback) with the stage-structured NMPC of
:func:`steel_mpc_config` (holder levels in their zones with hard safety
levels, consumers' heat and mixing margins, slab discharge temperature, boiler
steam limits, MV targets from the RTO). With ``use_rto=True`` the plant-wide
RTO (:func:`rto.steel_site.steel_energy_rto`) runs every ``rto_period_s`` on the
measured disturbances and prices, and :class:`rto.coordinator.PlantwideCoordinator`
hands its optimum to the NMPC through :class:`rto.handoff.TargetHandoff`, gated
by steady-state detection on noisy measurements of the unit. With
``use_rto=False`` the MV targets stay at the hand-set allocation
(:func:`plant_models.library.steel_energy.nominal_allocation`): fixed setpoints.

Events (:class:`StepEvent`) change disturbances and prices for a time window;
:data:`EVENTS` holds the named ones (blast-furnace stop, price swing, LDG
surge / holder high level, furnace throughput change) and :func:`day_profile`
a 24 h sequence for the economic comparison. KPIs: profit (USD), power sold and
bought (MWh), natural gas bought (m^3), gas flared (GJ), holder extremes and time
outside the band, slab discharge error, NMPC step times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from mpc.config import CvSpec, MpcConfig, MvSpec
from mpc.controller import NmpcController
from plant_models.library import load
from plant_models.library import steel_energy as se
from plant_models.samples import OperatingTarget
from plant_models.simulation import step
from rto.coordinator import DispatchStatus, PlantwideCoordinator, UnitLink
from rto.handoff import HandoffConfig, TargetHandoff
from rto.steady_detection import RStatisticConfig, SteadyStateDetector
from rto.steel_site import UNIT, steel_energy_rto

MWH = 3.6e9
"""J per MWh."""


@dataclass(frozen=True)
class StepEvent:
    """Disturbances (by name, SI) replaced between ``start_s`` and ``end_s``."""

    start_s: float
    """Start, s from the beginning of the run."""
    end_s: float
    """End, s (inf: to the end)."""
    values: dict[str, float]
    """New values of ``steel_energy`` disturbances."""


EVENTS: dict[str, tuple[StepEvent, ...]] = {
    "bf_stop": (StepEvent(1800.0, 9000.0, {"bfg_production": 14.0, "stove_demand": 0.0}),),
    "price_swing": (StepEvent(1800.0, 5400.0, {"power_price": 150.0 / MWH}),),
    "ldg_high_level": (StepEvent(1800.0, 4500.0, {"ldg_production": 28.0}),),
    "furnace_throughput": (StepEvent(1800.0, float("inf"), {"furnace_throughput": 65.0}),),
}
"""Named event sequences of the plant-wide checks."""


def day_profile() -> tuple[StepEvent, ...]:
    """24 h: day-ahead power prices (night 35, day 70, evening peak 140 USD/MWh), a 2 h
    blast-furnace stop, LDG surges and a furnace throughput change (assumed sequence)."""
    ev = [
        StepEvent(0.0, 6 * 3600.0, {"power_price": 35.0 / MWH}),
        StepEvent(6 * 3600.0, 17 * 3600.0, {"power_price": 70.0 / MWH}),
        StepEvent(17 * 3600.0, 21 * 3600.0, {"power_price": 140.0 / MWH}),
        StepEvent(21 * 3600.0, 24 * 3600.0, {"power_price": 45.0 / MWH}),
        StepEvent(9 * 3600.0, 11 * 3600.0, {"bfg_production": 14.0, "stove_demand": 0.0}),
        StepEvent(13 * 3600.0, 14 * 3600.0, {"furnace_throughput": 65.0}),
    ]
    ev += [
        StepEvent(h * 3600.0, h * 3600.0 + 1200.0, {"ldg_production": 22.0})
        for h in (2, 5, 8, 15, 19, 22)
    ]
    return tuple(ev)


def disturbances_at(t: float, events: Sequence[StepEvent]) -> dict[str, float]:
    """Nominal disturbances with every event active at ``t`` applied (later ones win)."""
    d = se.nominal_disturbances()
    for ev in events:
        if ev.start_s <= t < ev.end_s:
            d.update(ev.values)
    return d


def steel_mpc_config(sample_time_s: float = 60.0, horizon_steps: int = 15) -> MpcConfig:
    """NMPC of the gas network: zones and hard safety levels on holders, margins, targets."""
    cvs = [
        CvSpec(
            f"level_{g}",
            lower=se.LEVEL_SAFETY[0] + 0.02,
            upper=se.LEVEL_SAFETY[1] - 0.02,
            l1_penalty=1e3,
            zone=se.LEVEL_BAND,
            zone_weight=100.0,
            hard_lower=se.LEVEL_SAFETY[0],
            hard_upper=se.LEVEL_SAFETY[1],
        )
        for g in se.HOLDERS
    ]
    for c in ("stoves", "coke_ovens"):
        cvs.append(
            CvSpec(
                f"{c}_heat_margin",
                weight=10.0,
                target=0.0,
                cost_scale=1e6,
                lower=0.0,
                l1_penalty=100.0,
            )
        )
        cvs.append(CvSpec(f"{c}_lhv_margin", lower=0.0, l1_penalty=100.0))
    cvs += [
        CvSpec("furnace_lhv_margin", lower=0.0, l1_penalty=100.0),
        CvSpec(
            "discharge_error",
            weight=1.0,
            target=0.0,
            cost_scale=1.0,
            lower=-10.0,
            upper=10.0,
            l1_penalty=10.0,
        ),
        CvSpec("steam_flow", lower=se.STEAM_LIMITS[0], upper=se.STEAM_LIMITS[1], l1_penalty=100.0),
    ]
    model_u = se.nominal_allocation()
    # flares are the last resort and natural gas costs money: heavier resting weights
    weight = {
        n: (100.0 if n.startswith("flare_") else 10.0 if n.startswith("ng_") else 1.0)
        for n in model_u
    }
    mvs = [
        MvSpec(n, weight=weight[n], target=float(v), move_weight=0.1) for n, v in model_u.items()
    ]
    return MpcConfig(
        horizon_steps=horizon_steps, sample_time_s=sample_time_s, cvs=tuple(cvs), mvs=tuple(mvs)
    )


@dataclass(frozen=True)
class SteelCaseResult:
    """Trajectories and KPIs of one run."""

    t: NDArray[np.float64]
    """Sample times, s."""
    x: NDArray[np.float64]
    """States at the samples (rows)."""
    u: NDArray[np.float64]
    """Applied inputs."""
    d: NDArray[np.float64]
    """Disturbances."""
    y: NDArray[np.float64]
    """Outputs."""
    kpis: dict[str, float]
    """Site KPIs (see module docstring)."""
    dispatch: list[tuple[float, str]] = field(default_factory=list)
    """(time, status) of every RTO dispatch of the unit."""


def run_steel_case(
    events: Sequence[StepEvent],
    *,
    hours: float,
    use_rto: bool = True,
    sample_time_s: float = 60.0,
    horizon_steps: int = 15,
    rto_period_s: float = 900.0,
    noise: float = 5e-3,
    seed: int = 2010,
) -> SteelCaseResult:
    """Closed loop over ``hours`` with the given events (see module docstring)."""
    model = load("steel_energy")
    ctrl = NmpcController(model, steel_mpc_config(sample_time_s, horizon_steps))
    rng = np.random.default_rng(seed)
    # the gas network is algebraic at steady state once supplies and demands settle: gate the
    # RTO on the measured productions and the furnace throughput (not on the MPC's own moves)
    gate = ("bfg_production", "cog_production", "ldg_production", "furnace_throughput")
    coord = None
    if use_rto:
        rto = steel_energy_rto(model)
        rates = {n: 0.02 * model.u[n].nominal for n in model.u.names}
        handoff = TargetHandoff(model, HandoffConfig(max_rate=rates))
        detector = SteadyStateDetector(RStatisticConfig(alpha=0.01))
        coord = PlantwideCoordinator(rto, {UNIT: UnitLink(handoff, gate, detector)})
    n = int(round(hours * 3600.0 / sample_time_s))
    x = model.nominal.x.copy()
    u_prev = model.nominal.u.copy()
    target: OperatingTarget | None = None
    ts, xs, us, ds, ys, solve = [], [], [], [], [], []
    window: list[list[float]] = []
    dispatch: list[tuple[float, str]] = []
    gi = [model.d.index(s) for s in gate]
    for k in range(n):
        t = k * sample_time_s
        dmap = disturbances_at(t, events)
        dv = model.d.vector(dmap)
        window.append([dv[i] * (1.0 + noise * rng.standard_normal()) for i in gi])
        window = window[-15:]
        if coord is not None and k % max(1, int(round(rto_period_s / sample_time_s))) == 0:
            res = coord.rto.solve(d={UNIT: dmap}, x={UNIT: model.x.mapping(x)})
            out = coord.dispatch(t, res, {UNIT: np.asarray(window)} if len(window) > 12 else {})
            disp = out[UNIT]
            dispatch.append((t, f"{disp.status.value} {disp.message}"))
            if disp.status is DispatchStatus.ISSUED:
                target = disp.target
        r = ctrl.step(x, d=dv, target=target, time_s=t)
        u = r.u if r.usable and r.u is not None else u_prev
        solve.append(r.solve_time_s)
        ts.append(t)
        xs.append(x)
        us.append(u)
        ds.append(dv)
        ys.append(model.outputs(x, u, dv))
        x = step(model, x, u, dv, model.nominal.p, sample_time_s)
        u_prev = u
    t_arr, y_arr = np.asarray(ts), np.asarray(ys)
    kpis = _kpis(model, t_arr, y_arr, np.asarray(ds), sample_time_s, np.asarray(solve))
    # holder inventory gained over the run, valued as boiler power at the run's mean price
    price = float(np.mean(np.asarray(ds)[:, model.d.index("power_price")]))
    inventory = 0.0
    for g in se.HOLDERS:
        dvol = float(x[model.x.index(f"v_{g}")] - model.nominal.x[model.x.index(f"v_{g}")])
        per_m3 = se.GASES[g]["lhv"] * se.GASES[g]["boiler_eff"] / se.DH_STEAM * se.W_CONDENSING
        inventory += dvol * per_m3 * price
    kpis["inventory_value_usd"] = inventory
    kpis["profit_with_inventory_usd"] = kpis["profit_usd"] + inventory
    return SteelCaseResult(
        t_arr, np.asarray(xs), np.asarray(us), np.asarray(ds), y_arr, kpis, dispatch
    )


def _kpis(model, t, y, d, dt, solve) -> dict[str, float]:  # type: ignore[no-untyped-def]
    def col(name: str) -> NDArray[np.float64]:
        return y[:, model.y.index(name)]

    export = col("power_export")
    out = {
        "hours": float(t.size * dt / 3600.0),
        "profit_usd": float(np.sum(col("profit_rate")) * dt),
        "power_sold_mwh": float(np.sum(np.maximum(export, 0.0)) * dt / MWH),
        "power_bought_mwh": float(np.sum(np.maximum(-export, 0.0)) * dt / MWH),
        "ng_bought_m3": float(np.sum(col("ng_flow")) * dt),
        "flared_gj": float(np.sum(col("flare_power")) * dt / 1e9),
        "discharge_error_max_k": float(np.max(np.abs(col("discharge_error")))),
        "nmpc_step_ms_median": float(np.median(solve) * 1e3),
        "nmpc_step_ms_max": float(np.max(solve) * 1e3),
    }
    for g in se.HOLDERS:
        lv = col(f"level_{g}")
        out[f"level_{g}_min"] = float(np.min(lv))
        out[f"level_{g}_max"] = float(np.max(lv))
        outside = (lv < se.LEVEL_BAND[0] - 1e-3) | (lv > se.LEVEL_BAND[1] + 1e-3)
        out[f"level_{g}_outside_band_s"] = float(np.sum(outside) * dt)
    for c in ("stoves", "coke_ovens"):
        out[f"{c}_heat_shortfall_max_w"] = float(np.max(np.maximum(-col(f"{c}_heat_margin"), 0)))
    return out
