"""``rtompc demo --case steel-energy``: the steel works gas network closed over secured OPC UA.

The plant (``steel_energy``: BFG/COG/LDG holders, stoves, coke ovens, reheating
furnace, boiler/CHP, natural gas, flares; :mod:`plant_models.library.steel_energy`)
runs on the HIL as its own "PLC" (``rtompc hil serve`` of a multi-unit bench, a
child process, lockstep, Basic256Sha256 SignAndEncrypt with a users file); the
event (blast-furnace stop, price swing, LDG surge, furnace throughput change:
:data:`rtompc.steel_case.EVENTS`) is the HIL's disturbance schedule. The engine
runs it as a unit of a multi-unit application (:class:`rtompc.site_run.SiteRun`):
EKF on the measured holder levels, discharge temperature and steam flow, the
stage-structured NMPC of :func:`rtompc.steel_case.steel_mpc_config`, and the
plant-wide RTO (:func:`rto.steel_site.steel_energy_rto`) as the coordinator's
target source, handed over through :class:`rto.coordinator.PlantwideCoordinator`
(ramps, steady-state gate on the measured productions and furnace throughput).
Everything it uses is measured over OPC UA (disturbances and prices are tags).

Output: site KPIs (power sold and bought, gas flared, natural gas bought, holder
extremes and time outside the band, slab discharge error, profit, NMPC step
time), trend plots (``steel_trends.png``) and the historian file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plant_models.library import load
from plant_models.library import steel_energy as se
from plant_models.samples import OperatingTarget
from rtompc.config.load import load_site
from rtompc.config.mpc_section import CvConfig, MvConfig
from rtompc.cycle import CycleRecord
from rtompc.hil_process import HilProcess, free_port, make_secure_bench, write_site_bench
from rtompc.multiunit import UnitSnapshot
from rtompc.site_run import SiteRun
from rtompc.steel_case import EVENTS, MWH, StepEvent, _kpis, steel_mpc_config

UNIT_NAME = "steel"
"""The gas network's unit name (that of the plant-wide RTO's unit)."""
GATE = ("bfg_production", "cog_production", "ldg_production", "furnace_throughput")
"""Signals whose steadiness gates the plant-wide RTO (as in :mod:`rtompc.steel_case`)."""
MEASURED = ("level_bfg", "level_cog", "level_ldg", "discharge_temperature", "steam_flow")
"""Outputs the EKF uses (one per state)."""


@dataclass(frozen=True)
class SteelDemoOptions:
    """What ``rtompc demo --case steel-energy`` runs."""

    out: Path
    """Output directory (bench, certificates, config, historian, plots, KPIs)."""
    event: str = "bf_stop"
    """Key of :data:`rtompc.steel_case.EVENTS`."""
    hours: float = 3.0
    """Plant time."""
    sample_time_s: float = 60.0
    """Control period (and HIL step)."""
    horizon_steps: int = 15
    """NMPC horizon."""
    rto_period_s: float = 900.0
    """Plant-wide RTO period."""
    plots: bool = True
    """Write the trend plots."""
    use_rto: bool = True
    """Plant-wide RTO on; False: fixed setpoints (the hand-set allocation of
    :func:`plant_models.library.steel_energy.nominal_allocation` as MV targets), the peer of
    the economic comparison on the same event."""


class SteelRtoSource:
    """The plant-wide RTO as the coordinator's target source; a Recorder of the unit's
    cycles for the steady-state gate (measured productions and throughput)."""

    def __init__(self, rto_period_s: float) -> None:
        from rto.coordinator import PlantwideCoordinator, UnitLink
        from rto.handoff import HandoffConfig, TargetHandoff
        from rto.steady_detection import RStatisticConfig, SteadyStateDetector
        from rto.steel_site import steel_energy_rto

        self.model = load("steel_energy")
        rates = {n: 0.02 * self.model.u[n].nominal for n in self.model.u.names}
        handoff = TargetHandoff(self.model, HandoffConfig(max_rate=rates))
        detector = SteadyStateDetector(RStatisticConfig(alpha=0.01))
        self.coord = PlantwideCoordinator(
            steel_energy_rto(self.model), {UNIT_NAME: UnitLink(handoff, GATE, detector)}
        )
        self.window: deque[list[float]] = deque(maxlen=15)
        self.dispatch: list[tuple[float, str]] = []
        """(time, status and message) of every RTO run."""
        self.rto_period_s = rto_period_s

    def append(self, record: CycleRecord) -> None:
        """Recorder: one row of the gate's window per cycle."""
        m = record.measurement
        if all(n in m.names and m.good(n) for n in GATE):
            self.window.append([m.value(n) for n in GATE])

    def update(
        self, time_s: float, units: Mapping[str, UnitSnapshot]
    ) -> Mapping[str, OperatingTarget]:
        from rto.coordinator import DispatchStatus

        snap = units.get(UNIT_NAME)
        if snap is None or snap.record is None:
            return {}
        m = snap.record.measurement
        d = {n: m.value(n) for n in self.model.d.names if n in m.names and m.good(n)}
        x = self.model.x.mapping(snap.record.estimate.x)
        res = self.coord.rto.solve(d={UNIT_NAME: d}, x={UNIT_NAME: x})
        windows = {UNIT_NAME: np.asarray(self.window)} if len(self.window) > 12 else {}
        disp = self.coord.dispatch(time_s, res, windows)[UNIT_NAME]
        self.dispatch.append((time_s, f"{disp.status.value} {disp.message}".strip()))
        if disp.status is DispatchStatus.ISSUED and disp.target is not None:
            return {UNIT_NAME: disp.target}
        return {}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(float(v)) if isinstance(v, float) else repr(v)


def _spec_table(header: str, spec: Any, section: type[Any]) -> list[str]:
    """A ``[[unit.mpc.cvs]]`` table from an ``mpc.config`` spec (fields the section has,
    when they differ from its defaults)."""
    lines = [header]
    for f in dataclasses.fields(spec):
        if f.name not in section.model_fields:
            continue
        value = getattr(spec, f.name)
        default = section.model_fields[f.name].default
        if f.name != "name" and (value is None or value == default):
            continue
        lines.append(f"{f.name} = {_toml_value(value)}")
    return lines


def site_config_text(opts: SteelDemoOptions, endpoint: str, secure: Any, historian: Path) -> str:
    """The multi-unit application of the demo (one unit: the gas network over OPC UA)."""
    mpc = steel_mpc_config(opts.sample_time_s, opts.horizon_steps)
    c = secure.client
    lines = [
        "# rtompc demo --case steel-energy: written by rtompc.steel_demo",
        "[historian]",
        f"path = {json.dumps(str(historian))}",
        "",
        "[plantwide]",
        f"every_s = {opts.rto_period_s!r}",
        "",
        "[[unit]]",
        f'name = "{UNIT_NAME}"',
        "[unit.plant]",
        'name = "steel_energy"',
        "[unit.transport]",
        'kind = "opcua"',
        f'endpoint = "{endpoint}"',
        'security = "sign-encrypt"',
        f"certificate = {json.dumps(str(c.certificate))}",
        f"private_key = {json.dumps(str(c.private_key))}",
        f"trust_list = [{json.dumps(str(c.trusted_server_certificates))}]",
        f'application_uri = "{c.application_uri}"',
        f'user = "{secure.username}"',
        'password_env = "RTOMPC_STEEL_DEMO_PASSWORD"',
        "lockstep = true",
        "[unit.loop]",
        'mode = "on"',
        "max_fallback_cycles = 5",
        "[unit.mpc]",
        f"horizon_steps = {mpc.horizon_steps}",
        f"sample_time_s = {mpc.sample_time_s!r}",
    ]
    for cv in mpc.cvs:
        lines += _spec_table("[[unit.mpc.cvs]]", cv, CvConfig)
    for mv in mpc.mvs:
        lines += _spec_table("[[unit.mpc.mvs]]", mv, MvConfig)
    lines += [
        "[unit.estimator]",
        f"measured = {_toml_value(list(MEASURED))}",
    ]
    return "\n".join(lines) + "\n"


def _bench_disturbances(
    events: tuple[StepEvent, ...], hours: float
) -> list[tuple[str, float, float]]:
    """(signal, start_s, value) steps of the HIL schedule: each event's values, and back to
    nominal at its end."""
    model = load("steel_energy")
    steps = []
    for ev in events:
        for name, value in ev.values.items():
            steps.append((name, ev.start_s, float(value)))
            if math.isfinite(ev.end_s) and ev.end_s < hours * 3600.0:
                steps.append((name, ev.end_s, float(model.nominal.d[model.d.index(name)])))
    return steps


def _gate_noise() -> dict[str, float]:
    """Measurement noise (0.5 % of nominal, as in :mod:`rtompc.steel_case`) on the productions
    and the throughput: the steady-state gate judges noisy plant data, as on a plant."""
    model = load("steel_energy")
    return {n: 5e-3 * abs(float(model.nominal.d[model.d.index(n)])) for n in GATE}


def write_files(opts: SteelDemoOptions) -> tuple[Path, Path, str, str]:
    """Bench, PKI and application config under ``opts.out``; (bench, config, endpoint,
    password)."""
    opts.out.mkdir(parents=True, exist_ok=True)
    secure = make_secure_bench(opts.out / "pki")
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    bench = write_site_bench(
        opts.out / "bench.toml",
        {
            UNIT_NAME: (
                "steel_energy",
                {},
                dict(
                    endpoint=endpoint,
                    sample_time_s=opts.sample_time_s,
                    speed=None,
                    secure=secure,
                    watchdog_timeout_s=20 * opts.sample_time_s,
                    noise_std=_gate_noise(),
                    seed=2010,
                ),
            )
        },
    )
    events = EVENTS[opts.event]
    text = bench.read_text()
    for signal, start, value in _bench_disturbances(events, opts.hours):
        text += (
            f'[[unit.simulator.disturbance]]\nsignal = "{signal}"\nkind = "step"\n'
            f"start_s = {start!r}\nvalue = {value!r}\n"
        )
    bench.write_text(text)
    config = opts.out / "steel_site.toml"
    config.write_text(site_config_text(opts, endpoint, secure, opts.out / "steel.sqlite"))
    return bench, config, endpoint, secure.password


class _Trace:
    """Recorder of the measured outputs and disturbances (SI) and solve times."""

    def __init__(self) -> None:
        self.model = load("steel_energy")
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


async def run_steel_demo(
    opts: SteelDemoOptions, out: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the demo; returns the KPIs (also written to ``kpis.json``)."""
    import os

    bench, config, _endpoint, password = write_files(opts)
    os.environ["RTOMPC_STEEL_DEMO_PASSWORD"] = password
    site = load_site(config)
    source = SteelRtoSource(opts.rto_period_s)
    trace = _Trace()
    async with HilProcess(bench, log_path=opts.out / "hil.log") as hil:
        out(
            f"HIL: steel_energy at {hil.endpoints.get(UNIT_NAME, hil.endpoint)} "
            "(lockstep, SignAndEncrypt)"
        )
        run = SiteRun(site, source=source if opts.use_rto else None, print_every=0, out=out)
        loop = run.units[UNIT_NAME].loop
        loop.recorders += [source, trace]
        await run.start()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        try:
            await run.run(duration_s=opts.hours * 3600.0)
        finally:
            outcome = await run.close()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    model = trace.model
    dt = opts.sample_time_s
    y, d = np.asarray(trace.y), np.asarray(trace.d)
    kpis: dict[str, Any] = _kpis(model, np.asarray(trace.t), y, d, dt, np.asarray(trace.solve))
    issued = sum(1 for _, s in source.dispatch if s.startswith("issued"))
    # gas left in (or taken from) the holders, valued as boiler power at the run's mean price
    # (as rtompc.steel_case does): profit alone rewards emptying the holders
    price = float(np.nanmean(d[:, model.d.index("power_price")]))
    inventory = 0.0
    for g in se.HOLDERS:
        lv = y[:, model.y.index(f"level_{g}")]
        per_m3 = se.GASES[g]["lhv"] * se.GASES[g]["boiler_eff"] / se.DH_STEAM * se.W_CONDENSING
        inventory += float(lv[-1] - lv[0]) * se.HOLDERS[g] * per_m3 * price
    kpis.update(
        event=opts.event,
        rto="plant-wide RTO" if opts.use_rto else "fixed setpoints",
        exit=outcome.reason,
        exit_code=int(outcome.code),
        cycles=len(trace.t),
        realtime_factor=opts.hours * 3600.0 / wall,
        realtime_factor_cpu=opts.hours * 3600.0 / max(cpu, 1e-9),
        rto_runs=len(source.dispatch),
        rto_issued=issued,
        inventory_value_usd=inventory,
        profit_with_inventory_usd=kpis["profit_usd"] + inventory,
        rto_dispatch=source.dispatch,
        fallbacks=loop.stats.fallbacks,
        write_failures=loop.stats.write_failures,
    )
    (opts.out / "kpis.json").write_text(json.dumps(kpis, indent=2))
    if opts.plots:
        _plot(opts.out / "steel_trends.png", np.asarray(trace.t), y, d, model, opts.event)
        kpis["plots"] = str(opts.out / "steel_trends.png")
    return kpis


def _plot(path: Path, t: Any, y: Any, d: Any, model: Any, event: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = t / 3600.0
    fig, ax = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    for g in se.HOLDERS:
        ax[0].plot(h, y[:, model.y.index(f"level_{g}")], label=f"level {g.upper()}")
    for lim in (*se.LEVEL_BAND, *se.LEVEL_SAFETY):
        ax[0].axhline(lim, color="grey", lw=0.6, ls=":" if lim in se.LEVEL_SAFETY else "--")
    ax[0].set_ylabel("holder level (-)")
    ax[0].legend(loc="best", fontsize=8)
    ax[1].plot(h, y[:, model.y.index("power_export")] / 1e6, label="power export (MW)")
    ax[1].plot(h, y[:, model.y.index("flare_power")] / 1e6, label="flare (MW)")
    ax[1].plot(h, d[:, model.d.index("power_price")] * MWH, label="power price (USD/MWh)")
    ax[1].legend(loc="best", fontsize=8)
    ax[2].plot(h, y[:, model.y.index("ng_flow")], label="natural gas (m3/s)")
    ax[2].plot(
        h, d[:, model.d.index("bfg_production")] / 100.0, label="BFG production / 100 (m3/s)"
    )
    ax[2].legend(loc="best", fontsize=8)
    ax[3].plot(h, y[:, model.y.index("discharge_temperature")] - 273.15, label="slab discharge")
    ax[3].plot(h, d[:, model.d.index("discharge_target")] - 273.15, "--", label="target")
    ax[3].set_ylabel("degC")
    ax[3].set_xlabel("plant time (h)")
    ax[3].legend(loc="best", fontsize=8)
    fig.suptitle(f"rtompc demo --case steel-energy ({event}): RTO -> NMPC over OPC UA")
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
        f"slab discharge error max {k['discharge_error_max_k']:.1f} K; NMPC step median "
        f"{k['nmpc_step_ms_median']:.0f} ms (max {k['nmpc_step_ms_max']:.0f}) per "
        f"{60:.0f} s sample; RTO runs {k['rto_runs']} ({k['rto_issued']} issued); fallbacks "
        f"{k['fallbacks']}; exit {k['exit_code']} ({k['exit']})",
    ]


def main_sync(opts: SteelDemoOptions) -> dict[str, Any]:
    """Run the demo from synchronous code (the CLI)."""
    return asyncio.run(run_steel_demo(opts))
