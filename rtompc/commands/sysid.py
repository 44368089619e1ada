"""``rtompc sysid DATA.csv --mv ... --cv ... --time-column T --out DIR``: identify a model from logs.

Reads the CSV (plain logs, step-test records or historian exports; see
:func:`plant_models.identification.read_csv`), identifies a linear model
(n4sid, ARX or FOPDT), validates it on held-back data and writes the model JSON,
a JSON report and PNG plots into ``--out``; prints a summary (``--json``: the
report as JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from plant_models.identification import Detrend, read_csv
from plant_models.identification.workflow import Method, SysIdSettings, identify_to_directory


def _names(text: str) -> list[str]:
    out = [n.strip() for n in text.split(",") if n.strip()]
    if not out:
        raise argparse.ArgumentTypeError("give at least one name (comma-separated)")
    return out


def register(subparsers: Any) -> None:
    """Add the ``sysid`` sub-command."""
    p = subparsers.add_parser(
        "sysid", help="identify a linear model from logged data (CSV)",
        description="Identify a discrete-time linear model from a CSV record, validate it on "
        "held-back data and write model.json, report.json and PNG plots.",
    )
    p.add_argument("data", type=Path, help="CSV file with a time column, MV and CV columns")
    p.add_argument("--mv", type=_names, required=True, help="MV column names, comma-separated")
    p.add_argument("--cv", type=_names, required=True, help="CV column names, comma-separated")
    p.add_argument("--time-column", default="t",
                   help="time column: seconds or ISO 8601 timestamps (default: t)")
    p.add_argument("--method", choices=[m.value for m in Method], default=Method.N4SID.value,
                   help="identification method (default: n4sid)")
    p.add_argument("--order", type=int, default=None, help="model order (default: automatic)")
    p.add_argument("--sample-time", type=float, default=None,
                   help="resample to this sample time, s (default: the data's)")
    p.add_argument("--detrend", choices=[d.value for d in Detrend], default=Detrend.INITIAL.value,
                   help="operating-point removal (default: initial = the first samples)")
    p.add_argument("--split", type=float, default=0.7,
                   help="fraction of the record for estimation, the rest is held back (0.7)")
    p.add_argument("--band-samples", type=int, default=20,
                   help="models sampled for step-response bands (0: none; default 20)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the identification; returns the exit code."""
    logged = read_csv(args.data, time_column=args.time_column, mv=args.mv, cv=args.cv)
    data = logged.prepare(sample_time_s=args.sample_time, detrend=Detrend(args.detrend))
    settings = SysIdSettings(method=Method(args.method), order=args.order, split=args.split,
                             band_samples=args.band_samples)
    summary = identify_to_directory(data, settings, args.out, source=str(args.data),
                                    extra={"dropped_rows": logged.dropped_rows})
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=float)
        sys.stdout.write("\n")
        return 0
    w = sys.stdout.write
    w(f"{summary['method']} from {args.data}: {summary['samples']} samples at "
      f"{summary['sample_time_s']:g} s ({summary['estimation_samples']} for estimation)\n")
    for y, fit in summary["fit_percent_held_back"].items():
        res = summary["residuals"][y]
        w(f"  {y}: fit on held-back data {fit:.1f} %, residuals white: {res['white']}\n")
    w("  steady-state gains:\n")
    bands = summary.get("step_bands")
    for y, row in summary["gain"].items():
        for u, k in row.items():
            extra = ""
            if bands:
                extra = (f"  [{bands['gain_lower'][y][u]:.4g}, {bands['gain_upper'][y][u]:.4g}] "
                         f"{100 * bands['level']:.0f} %")
            w(f"    d{y}/d{u} = {k:.4g}{extra}\n")
    if summary.get("zeros_continuous_1_per_s"):
        zs = ", ".join(f"{z[0]:.4g}" + (f"{z[1]:+.3g}j" if abs(z[1]) > 1e-12 else "")
                       for z in summary["zeros_continuous_1_per_s"])
        w(f"  transmission zeros (continuous, 1/s): {zs}\n")
    w(f"  wrote {', '.join(summary['files'].values())}\n")
    return 0
