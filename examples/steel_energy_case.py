"""Steel works energy case: economic gain of plant-wide RTO over fixed setpoints, 24 h.

The same disturbance sequence (:func:`rtompc.steel_case.day_profile`: day-ahead
power prices 35/70/140/45 USD/MWh, a 2 h blast-furnace stop, six LDG surges, a
furnace throughput step) is run twice in closed loop on the ``steel_energy``
plant with the same NMPC: once with the MV targets fixed at the hand-set
allocation, once with the plant-wide RTO every 15 min handing targets through
the ramped hand-off gated by steady-state detection. Prints both runs' site
KPIs, the gain (also with the holders' inventory change valued as boiler power at the
mean price, so gas left in a holder counts), the real-time factor and the NMPC step times, and saves
docs/img/steel_energy_day.png.

Run: ``python examples/steel_energy_case.py [--hours 24] [--sample 60] [--out PATH]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from plant_models.library import load  # noqa: E402
from rtompc.steel_case import MWH, day_profile, run_steel_case  # noqa: E402

KEYS = (
    "profit_usd",
    "inventory_value_usd",
    "profit_with_inventory_usd",
    "power_sold_mwh",
    "power_bought_mwh",
    "ng_bought_m3",
    "flared_gj",
    "level_bfg_min",
    "level_bfg_max",
    "level_cog_min",
    "level_cog_max",
    "level_ldg_min",
    "level_ldg_max",
    "discharge_error_max_k",
    "nmpc_step_ms_median",
    "nmpc_step_ms_max",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    ap.add_argument("--sample", type=float, default=60.0, help="NMPC sample time, s (default 60)")
    ap.add_argument("--horizon", type=int, default=15, help="NMPC horizon, samples (default 15)")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("docs/img/steel_energy_day.png"),
        help="plot file (default docs/img/steel_energy_day.png)",
    )
    args = ap.parse_args()
    runs, timing = {}, {}
    for label, use_rto in (("fixed setpoints", False), ("plant-wide RTO", True)):
        w0, c0 = time.perf_counter(), time.process_time()
        runs[label] = run_steel_case(
            day_profile(),
            hours=args.hours,
            use_rto=use_rto,
            sample_time_s=args.sample,
            horizon_steps=args.horizon,
        )
        timing[label] = (time.perf_counter() - w0, time.process_time() - c0)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'KPI':28s} {'fixed setpoints':>16s} {'plant-wide RTO':>16s}")
    for k in KEYS:
        print(
            f"{k:28s} {runs['fixed setpoints'].kpis[k]:16.4g} "
            f"{runs['plant-wide RTO'].kpis[k]:16.4g}"
        )
    for key in ("profit_usd", "profit_with_inventory_usd"):
        gain = runs["plant-wide RTO"].kpis[key] - runs["fixed setpoints"].kpis[key]
        print(
            f"economic gain of plant-wide RTO ({key}): {gain:.0f} USD over {args.hours:g} h "
            f"({gain / args.hours * 24:.0f} USD/day)"
        )
    for label, (wall, cpu) in timing.items():
        print(
            f"{label}: wall {wall:.1f} s, CPU {cpu:.1f} s, real-time factor "
            f"{args.hours * 3600 / wall:.0f}x (CPU-time {args.hours * 3600 / cpu:.0f}x)"
        )
    issued = sum(1 for _, s in runs["plant-wide RTO"].dispatch if s.startswith("issued"))
    print(f"RTO dispatches issued {issued} of {len(runs['plant-wide RTO'].dispatch)}")
    _plot(runs, args.out)


def _plot(runs, out: Path) -> None:  # type: ignore[no-untyped-def]
    model = load("steel_energy")
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    for label, res in runs.items():
        h = res.t / 3600.0

        def y(n: str, res=res) -> np.ndarray:
            return res.y[:, model.y.index(n)]

        axes[0].plot(h, np.cumsum(y("profit_rate")) * (res.t[1] - res.t[0]), label=label)
        axes[1].plot(h, y("power_export") / 1e6, label=label)
        for g, ls in (("bfg", "-"), ("cog", "--"), ("ldg", ":")):
            axes[2].plot(h, y(f"level_{g}"), ls, label=f"{g.upper()} ({label})")
        axes[3].plot(h, y("ng_flow"), label=label)
    price = runs["plant-wide RTO"].d[:, model.d.index("power_price")] * MWH
    ax = axes[1].twinx()
    ax.step(runs["plant-wide RTO"].t / 3600.0, price, "k", lw=0.8, where="post")
    ax.set_ylabel("power price, USD/MWh")
    axes[0].set_ylabel("cumulative profit, USD")
    axes[1].set_ylabel("power export, MW")
    axes[2].set_ylabel("holder level")
    axes[2].axhspan(0.3, 0.7, color="0.9")
    axes[3].set_ylabel("natural gas, m^3/s")
    axes[3].set_xlabel("time, h")
    for a in axes:
        a.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
