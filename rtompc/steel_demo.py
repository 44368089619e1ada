"""``rtompc demo --case steel-energy``: the steel works as two units on two PLCs, plant-wide RTO.

The site (:mod:`rtompc.steel_site_config`): the by-product gas network (``steel``,
60 s, ``steel_energy`` with its furnace external) and the three-zone slab reheating
furnace (``furnace``, 300 s, ``reheating_furnace``), each on its own HIL "PLC"
endpoint (``rtompc hil serve`` of a multi-unit bench in a child process, lockstep,
Basic256Sha256 SignAndEncrypt with a users file), linked on the bench by the
furnace's fuel draw (``[[link]] furnace.fuel_power -> steel.furnace_demand``). The
engine runs them as a multi-unit application (:class:`rtompc.site_run.SiteRun`):
each unit its own EKF and NMPC; the plant-wide RTO is built from the config's
``[plantwide]`` section alone (:mod:`rtompc.plantwide_source`: one site NLP over
both units joined by the fuel stream, per-unit steady-state gates and ramps). The
event (blast-furnace stop, price swing, LDG surge, furnace throughput change:
:data:`rtompc.steel_case.EVENTS`) is the benches' disturbance schedule; everything
the engine uses is measured over OPC UA (prices are tags of the network's PLC).
``use_rto=False`` (``--fixed``) runs the same site without ``[plantwide]``: the
network at the hand-set allocation, the furnace at its configured targets.

Output: site KPIs (power sold and bought, gas flared, natural gas bought, holder
extremes and time outside the band, slab discharge temperature error, profit, each
unit's NMPC step time against its sample time, speed), trend plots
(``steel_trends.png``), the historian file (a run per unit) and ``kpis.json``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plant_models.library import load
from plant_models.library import steel_energy as se
from rtompc.config.load import load_site
from rtompc.cycle import CycleRecord
from rtompc.hil_process import HilProcess, free_port, make_secure_bench
from rtompc.plantwide_source import PlantwideSource
from rtompc.site_run import SiteRun
from rtompc.steel_case import EVENTS, MWH
from rtompc.steel_site_config import (
    FURNACE,
    FURNACE_DT,
    NETWORK,
    NETWORK_DT,
    Endpoint,
    bench_text,
    event_steps,
    secure_transport,
    site_config_text,
)

UNIT_NAME = NETWORK
"""The gas network's unit name."""
PASSWORD_ENV = "RTOMPC_STEEL_DEMO_PASSWORD"
"""Environment variable the config names for the OPC UA user's password."""
DISCHARGE_TARGET = 1473.15
"""Slab discharge temperature target, K (1200 degC)."""


@dataclass(frozen=True)
class SteelDemoOptions:
    """What ``rtompc demo --case steel-energy`` runs."""

    out: Path
    """Output directory (bench, certificates, config, historian, plots, KPIs)."""
    event: str = "bf_stop"
    """Key of :data:`rtompc.steel_case.EVENTS`."""
    hours: float = 3.0
    """Plant time."""
    horizon_steps: int = 15
    """Network NMPC horizon."""
    rto_period_s: float = 900.0
    """Plant-wide RTO period."""
    plots: bool = True
    """Write the trend plots."""
    use_rto: bool = True
    """Plant-wide RTO on; False: fixed setpoints (the hand-set allocation of
    :func:`plant_models.library.steel_energy.nominal_allocation` as MV targets of the
    network, the furnace at its configured targets), the peer of the economic comparison
    on the same event."""

    def __post_init__(self) -> None:
        # absolute: the bench and the config name files under ``out`` and are read
        # relative to their own folder (a relative ``out`` was doubled: out/out/pki)
        object.__setattr__(self, "out", Path(self.out).resolve())


def write_files(opts: SteelDemoOptions) -> tuple[Path, Path, str]:
    """Bench, PKI and application config under ``opts.out``; (bench, config, password)."""
    opts.out.mkdir(parents=True, exist_ok=True)
    secure = make_secure_bench(opts.out / "pki")
    urls = {u: f"opc.tcp://127.0.0.1:{free_port()}" for u in (NETWORK, FURNACE)}
    transport = secure_transport(secure, PASSWORD_ENV)
    bench = opts.out / "bench.toml"
    bench.write_text(
        bench_text(urls, events=event_steps(EVENTS[opts.event], opts.hours), secure=secure)
    )
    config = opts.out / "steel_site.toml"
    config.write_text(
        site_config_text(
            {u: Endpoint(url, transport) for u, url in urls.items()},
            historian=str(opts.out / "steel.sqlite"),
            every_s=opts.rto_period_s,
            plantwide=opts.use_rto,
            horizon_steps=opts.horizon_steps,
        )
    )
    return bench, config, secure.password


class _Trace:
    """Recorder of one unit's measured outputs and disturbances (SI) and solve times."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.t: list[float] = []
        self.y: list[list[float]] = []
        self.d: list[list[float]] = []
        self.solve: list[float] = []

    def append(self, rec: CycleRecord) -> None:
        m = rec.measurement
        self.t.append(rec.time_s)
        self.y.append([m.value(n) if n in m.names else math.nan for n in self.model.y.names])
        self.d.append([m.value(n) if n in m.names else math.nan for n in self.model.d.names])
        self.solve.append(rec.solve_time_s)

    def col(self, name: str) -> Any:
        m = self.model
        if name in m.y:
            return np.asarray(self.y)[:, m.y.index(name)]
        return np.asarray(self.d)[:, m.d.index(name)]


def site_kpis(net: _Trace, fur: _Trace) -> dict[str, Any]:
    """Site KPIs from the two units' traces (network quantities integrated over its 60 s
    samples; the slab discharge error at the furnace's samples)."""
    dt = NETWORK_DT
    export = net.col("power_export")
    out: dict[str, Any] = {
        "hours": float(len(net.t) * dt / 3600.0),
        "profit_usd": float(np.sum(net.col("profit_rate")) * dt),
        "power_sold_mwh": float(np.sum(np.maximum(export, 0.0)) * dt / MWH),
        "power_bought_mwh": float(np.sum(np.maximum(-export, 0.0)) * dt / MWH),
        "ng_bought_m3": float(np.sum(net.col("ng_flow")) * dt),
        "flared_gj": float(np.sum(net.col("flare_power")) * dt / 1e9),
        "furnace_heat_shortfall_max_mw": float(
            np.max(np.maximum(-net.col("furnace_heat_margin"), 0.0)) / 1e6
        ),
        "discharge_error_max_k": float(np.max(np.abs(fur.col("t_discharge") - DISCHARGE_TARGET))),
        "furnace_fuel_gj": float(np.sum(fur.col("fuel_power")) * FURNACE_DT / 1e9),
    }
    for g in se.HOLDERS:
        lv = net.col(f"level_{g}")
        out[f"level_{g}_min"] = float(np.min(lv))
        out[f"level_{g}_max"] = float(np.max(lv))
        outside = (lv < se.LEVEL_BAND[0] - 1e-3) | (lv > se.LEVEL_BAND[1] + 1e-3)
        out[f"level_{g}_outside_band_s"] = float(np.sum(outside) * dt)
    for name, tr, st in ((NETWORK, net, NETWORK_DT), (FURNACE, fur, FURNACE_DT)):
        solve = np.asarray(tr.solve) * 1e3
        out[f"{name}_nmpc_ms_median"] = float(np.median(solve))
        out[f"{name}_nmpc_ms_p95"] = float(np.percentile(solve, 95))
        out[f"{name}_sample_s"] = st
        out[f"{name}_cycles"] = len(tr.t)
    # gas left in (or taken from) the holders, valued as boiler power at the run's mean price
    # (as rtompc.steel_case does): profit alone rewards emptying the holders
    price = float(np.nanmean(net.col("power_price")))
    inventory = 0.0
    for g in se.HOLDERS:
        lv = net.col(f"level_{g}")
        per_m3 = se.GASES[g]["lhv"] * se.GASES[g]["boiler_eff"] / se.DH_STEAM * se.W_CONDENSING
        inventory += float(lv[-1] - lv[0]) * se.HOLDERS[g] * per_m3 * price
    out["inventory_value_usd"] = inventory
    out["profit_with_inventory_usd"] = out["profit_usd"] + inventory
    return out


async def run_steel_demo(
    opts: SteelDemoOptions, out: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the demo; returns the KPIs (also written to ``kpis.json``)."""
    bench, config, password = write_files(opts)
    os.environ[PASSWORD_ENV] = password
    site = load_site(config)
    traces = {
        NETWORK: _Trace(load("steel_energy", furnace="external")),
        FURNACE: _Trace(load("reheating_furnace")),
    }
    async with HilProcess(bench, log_path=opts.out / "hil.log") as hil:
        out(
            "HIL: "
            + ", ".join(f"{u} at {url}" for u, url in hil.endpoints.items())
            + " (lockstep, SignAndEncrypt, fuel link furnace -> network)"
        )
        run = SiteRun(site, print_every=0, out=out)
        for name, tr in traces.items():
            run.units[name].loop.recorders.append(tr)
        await run.start()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            await run.run(duration_s=opts.hours * 3600.0)
        finally:
            outcome = await run.close()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    kpis = site_kpis(traces[NETWORK], traces[FURNACE])
    source = run.source
    history = source.history if isinstance(source, PlantwideSource) else []
    dispatch = [
        (t, {u: f"{r.status.value} {r.message}".strip() for u, r in disp.items()})
        for t, disp in history
    ]
    kpis.update(
        event=opts.event,
        rto="plant-wide RTO" if opts.use_rto else "fixed setpoints",
        exit=outcome.reason,
        exit_code=int(outcome.code),
        cycles=len(traces[NETWORK].t),
        realtime_factor=opts.hours * 3600.0 / wall,
        realtime_factor_cpu=opts.hours * 3600.0 / max(cpu, 1e-9),
        load_average=os.getloadavg()[0],
        rto_runs=len(history),
        rto_issued={
            u: sum(1 for _, d in dispatch if d[u].startswith("issued")) for u in (NETWORK, FURNACE)
        },
        rto_dispatch=dispatch,
        fallbacks={u: s.loop.stats.fallbacks for u, s in run.units.items()},
        write_failures={u: s.loop.stats.write_failures for u, s in run.units.items()},
    )
    (opts.out / "kpis.json").write_text(json.dumps(kpis, indent=2))
    if opts.plots:
        _plot(opts.out / "steel_trends.png", traces[NETWORK], traces[FURNACE], opts.event)
        kpis["plots"] = str(opts.out / "steel_trends.png")
    return kpis


def _plot(path: Path, net: _Trace, fur: _Trace, event: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = np.asarray(net.t) / 3600.0
    hf = np.asarray(fur.t) / 3600.0
    fig, ax = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    for g in se.HOLDERS:
        ax[0].plot(h, net.col(f"level_{g}"), label=f"level {g.upper()}")
    for lim in (*se.LEVEL_BAND, *se.LEVEL_SAFETY):
        ax[0].axhline(lim, color="grey", lw=0.6, ls=":" if lim in se.LEVEL_SAFETY else "--")
    ax[0].set_ylabel("holder level (-)")
    ax[0].legend(loc="best", fontsize=8)
    ax[1].plot(h, net.col("power_export") / 1e6, label="power export (MW)")
    ax[1].plot(h, net.col("flare_power") / 1e6, label="flare (MW)")
    ax[1].plot(h, net.col("power_price") * MWH, label="power price (USD/MWh)")
    ax[1].legend(loc="best", fontsize=8)
    ax[2].plot(h, net.col("ng_flow"), label="natural gas (m3/s)")
    ax[2].plot(h, net.col("bfg_production") / 100.0, label="BFG production / 100 (m3/s)")
    ax[2].plot(h, net.col("furnace_demand") / 1e7, label="furnace fuel draw (10 MW)")
    ax[2].legend(loc="best", fontsize=8)
    ax[3].plot(hf, fur.col("t_discharge") - 273.15, "o-", ms=3, label="slab discharge (furnace)")
    ax[3].axhline(DISCHARGE_TARGET - 273.15, color="grey", ls="--", label="target")
    ax[3].set_ylabel("degC")
    ax[3].set_xlabel("plant time (h)")
    ax[3].legend(loc="best", fontsize=8)
    fig.suptitle(
        f"rtompc demo --case steel-energy ({event}): plant-wide RTO -> 2 NMPC units over OPC UA"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def kpi_lines(k: Mapping[str, Any]) -> list[str]:
    """The site KPIs for people."""
    return [
        f"steel-energy ({k['event']}, {k['rto']}): {k['hours']:.1f} h, {k['cycles']} cycles, "
        f"{k['realtime_factor']:.0f}x real time ({k['realtime_factor_cpu']:.0f}x per CPU s)",
        f"profit {k['profit_usd']:,.0f} USD ({k['profit_with_inventory_usd']:,.0f} with the holder "
        f"inventory change valued); power sold {k['power_sold_mwh']:.1f} MWh, bought "
        f"{k['power_bought_mwh']:.1f} MWh; natural gas {k['ng_bought_m3']:,.0f} m3; flared "
        f"{k['flared_gj']:.1f} GJ",
        "holders: "
        + ", ".join(
            f"{g.upper()} {k[f'level_{g}_min']:.2f}-{k[f'level_{g}_max']:.2f} "
            f"({k[f'level_{g}_outside_band_s'] / 60:.0f} min outside the band)"
            for g in se.HOLDERS
        ),
        f"slab discharge error max {k['discharge_error_max_k']:.1f} K; furnace fuel "
        f"{k['furnace_fuel_gj']:,.0f} GJ; RTO runs {k['rto_runs']} (issued "
        + ", ".join(f"{u} {n}" for u, n in k["rto_issued"].items())
        + f"); exit {k['exit_code']} ({k['exit']})",
        "NMPC step: "
        + "; ".join(
            f"{u} median {k[f'{u}_nmpc_ms_median']:.0f} ms, p95 {k[f'{u}_nmpc_ms_p95']:.0f} ms "
            f"per {k[f'{u}_sample_s']:.0f} s sample ({k[f'{u}_cycles']} cycles, fallbacks "
            f"{k['fallbacks'][u]})"
            for u in (NETWORK, FURNACE)
        )
        + f"; load average {k['load_average']:.1f}",
    ]


def main_sync(opts: SteelDemoOptions) -> dict[str, Any]:
    """Run the demo from synchronous code (the CLI)."""
    return asyncio.run(run_steel_demo(opts))
