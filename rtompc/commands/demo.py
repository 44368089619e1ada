"""``rtompc demo``: the README's main job.

Until the closed loop over OPC UA lands (issue 6), the demo runs an open-loop
simulation of the Van de Vusse CSTR from the published Klatt & Engell steady
state through a feed-rate step and a cooling step, checks the final state
against a fresh steady-state solve, prints the figures and writes a trend plot.
It says so when it starts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from plant_models.library import load

H = 3600.0


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("rtompc demo: the closed loop over OPC UA is not built yet; this demo runs an "
          "open-loop plant simulation of the Van de Vusse CSTR (CVODES) and a steady-state check.")
    model = load("van_de_vusse")
    dt = 18.0
    n = int(args.duration_h * H / dt)
    u = np.tile(model.nominal.u, (n, 1))
    u[n // 3:, 0] *= 1.2  # +20 % feed at t = T/3
    u[2 * n // 3:, 1] *= 1.5  # +50 % cooling at t = 2T/3
    traj = model.simulate(None, u, dt)
    ss = model.steady_state(u=u[-1], x_guess=traj.x[-1])
    final = dict(zip(model.x.names, traj.x[-1], strict=True))
    summary: dict[str, Any] = {
        "plant": model.name, "steps": n, "sample_time_s": dt,
        "final_state": final,
        "steady_state_at_final_inputs": dict(zip(model.x.names, ss.x, strict=True)),
        "max_gap_to_steady_state_rel": float(np.max(np.abs(traj.x[-1] - ss.x) / model.x.nominal)),
    }
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    th = traj.t / H
    axes[0].plot(th, traj.x[:, 0] / 1e3, label="c_A")
    axes[0].plot(th, traj.x[:, 1] / 1e3, label="c_B")
    axes[0].set_ylabel("mol/l")
    axes[1].plot(th, traj.x[:, 2] - 273.15, label="T_R")
    axes[1].plot(th, traj.x[:, 3] - 273.15, label="T_K")
    axes[1].set_ylabel("°C")
    axes[2].step(th[:-1], traj.u[:, 0] * H, where="post", label="F/V [1/h]")
    ax2 = axes[2].twinx()
    ax2.step(th[:-1], traj.u[:, 1] * H / 1e3, where="post", color="C3", label="Q_K [kJ/h]")
    axes[2].set_xlabel("time [h]")
    for ax in axes[:2]:
        ax.legend()
        ax.grid(True)
    fig.suptitle("Van de Vusse CSTR, open-loop simulation (CVODES)")
    fig.tight_layout()
    png = out / "demo_trends.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"simulated {n} steps of {dt:.0f} s ({args.duration_h} h of plant time)")
        for k, v in final.items():
            print(f"  final {k:5s} = {v:10.3f} {model.x[k].unit}")
        print(f"  gap to the steady state at the final inputs: "
              f"{summary['max_gap_to_steady_state_rel']:.2e} (relative)")
        print(f"wrote {png} and {out / 'demo_summary.json'}")
    return 0


def register(sub: Any) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser("demo", help="run the main demonstration (see README)")
    p.add_argument("--out", default="rtompc-demo", help="output directory for plots and data")
    p.add_argument("--duration-h", type=float, default=3.0, help="simulated plant time in hours")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_run)
