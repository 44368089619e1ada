"""``rtompc sysid``: identify a linear model from a historian run or a CSV log.

Two sources:

- ``rtompc sysid --historian H.sqlite --run ID [--run ID2 ...] --out DIR``: the
  runs are read straight from the historian (:mod:`rtompc.sysid_source`):
  back-off rows of a step test and rows with bad CV quality are skipped (the
  record is cut there), several runs are merged as independent records; MVs and
  CVs default to the step test's.
- ``rtompc sysid DATA.csv --mv ... --cv ... --time-column T --out DIR``: plain
  logs, step-test records or historian exports
  (:func:`plant_models.identification.read_csv`).

It identifies a linear model (n4sid, ARX or FOPDT), validates it on held-back
data and writes into ``--out``: ``model.json`` (name it in ``[plant]`` of a run
config), ``report.json``, ``report.html`` (fit, residual tests, step-response
bands, gains with confidence intervals, RGA, condition number) and PNG plots;
prints a summary (``--json``: the report as JSON). ``--edits EDITS.toml``
applies model edits (:mod:`plant_models.identification.editing`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from plant_models.errors import ConfigError
from plant_models.identification import Detrend, read_csv
from plant_models.identification.editing import ModelEdits
from plant_models.identification.workflow import Method, SysIdSettings, identify_to_directory


def _names(text: str) -> list[str]:
    out = [n.strip() for n in text.split(",") if n.strip()]
    if not out:
        raise argparse.ArgumentTypeError("give at least one name (comma-separated)")
    return out


def read_edits(path: Path) -> ModelEdits:
    """The model edits file (every problem with file, line and key path)."""
    from pydantic import ValidationError

    from rtompc.config.errors import ConfigProblems, Problem
    from rtompc.config.lines import LineIndex
    from rtompc.config.load import _problems, read_toml

    text, raw = read_toml(path)
    try:
        return ModelEdits.model_validate(raw)
    except ValidationError as exc:
        index = LineIndex(text)
        raise ConfigProblems(
            [
                Problem(
                    q.loc,
                    q.message,
                    q.file,
                    index.line(q.loc),
                    q.expected,
                    q.allowed,
                    q.suggestion,
                    q.notes,
                )
                for q in _problems(exc, ModelEdits, raw, path)
            ],
            path,
        ) from None


def register(subparsers: Any) -> None:
    """Add the ``sysid`` sub-command."""
    p = subparsers.add_parser(
        "sysid",
        help="identify a linear model from a historian run or logged data (CSV)",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "data",
        type=Path,
        nargs="?",
        help="CSV file with a time column, MV and CV columns (or use --historian)",
    )
    p.add_argument("--historian", type=Path, help="historian file (SQLite) to read runs from")
    p.add_argument(
        "--run",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="historian run id (repeat to merge several tests)",
    )
    p.add_argument(
        "--mv",
        type=_names,
        help="MV names, comma-separated (CSV: required; historian: default the MVs the test moved)",
    )
    p.add_argument(
        "--cv",
        type=_names,
        help="CV names, comma-separated (CSV: required; historian: default the test's CVs)",
    )
    p.add_argument(
        "--time-column",
        default="t",
        help="time column: seconds or ISO 8601 timestamps (default: t)",
    )
    p.add_argument(
        "--method",
        choices=[m.value for m in Method],
        default=Method.N4SID.value,
        help="identification method (default: n4sid)",
    )
    p.add_argument("--order", type=int, default=None, help="model order (default: automatic)")
    p.add_argument(
        "--sample-time",
        type=float,
        default=None,
        help="resample to this sample time, s (default: the data's)",
    )
    p.add_argument(
        "--detrend",
        choices=[d.value for d in Detrend],
        default=Detrend.INITIAL.value,
        help="operating-point removal (default: initial = the first samples)",
    )
    p.add_argument(
        "--split",
        type=float,
        default=0.7,
        help="fraction of the record for estimation, the rest is held back (0.7)",
    )
    p.add_argument(
        "--band-samples",
        type=int,
        default=20,
        help="models sampled for step-response bands (0: none; default 20)",
    )
    p.add_argument(
        "--edits",
        type=Path,
        help="model edits (TOML): order per CV, zeroed gains, fixed signs and ratios, dead times",
    )
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the identification; returns the exit code."""
    if (args.historian is None) == (args.data is None):
        raise ConfigError("sysid: give either a CSV file or --historian H.sqlite --run ID")
    edits = read_edits(args.edits) if args.edits else None
    settings = SysIdSettings(
        method=Method(args.method),
        order=args.order,
        split=args.split,
        band_samples=args.band_samples,
        edits=edits,
    )
    if args.historian is not None:
        from rtompc.sysid_source import historian_data

        hd = historian_data(args.historian, args.run, mv=args.mv, cv=args.cv)
        data, extra = hd.data, hd.summary()
        source = f"{args.historian} run(s) {', '.join(str(r) for r in args.run)}"
    else:
        if not args.mv or not args.cv:
            raise ConfigError("sysid: a CSV source needs --mv and --cv")
        logged = read_csv(args.data, time_column=args.time_column, mv=args.mv, cv=args.cv)
        data = logged.prepare(sample_time_s=args.sample_time, detrend=Detrend(args.detrend))
        extra, source = {"dropped_rows": logged.dropped_rows}, str(args.data)
    summary = identify_to_directory(data, settings, args.out, source=source, extra=extra)
    if args.historian is not None and hd.u_limits:  # the plant's MV limits go with the model
        from dataclasses import replace

        from plant_models.identified import read_identified

        path = Path(summary["files"]["model"])
        replace(read_identified(path), u_limits=hd.u_limits).save(path)
    if args.json:
        json.dump(summary, sys.stdout, indent=2, default=float)
        sys.stdout.write("\n")
        return 0
    w = sys.stdout.write
    w(
        f"{summary['method']} from {source}: {summary['samples']} samples at "
        f"{summary['sample_time_s']:g} s ({summary['estimation_samples']} for estimation)\n"
    )
    for y, fit in summary["fit_percent_held_back"].items():
        res = summary["residuals"][y]
        w(f"  {y}: fit on held-back data {fit:.1f} %, residuals white: {res['white']}\n")
    w("  steady-state gains:\n")
    bands = summary.get("step_bands")
    for y, row in summary["gain"].items():
        for u, k in row.items():
            ci = ""
            if bands:
                ci = (
                    f"  [{bands['gain_lower'][y][u]:.4g}, {bands['gain_upper'][y][u]:.4g}] "
                    f"{100 * bands['level']:.0f} %"
                )
            w(f"    d{y}/d{u} = {k:.4g}{ci}\n")
    if summary.get("zeros_continuous_1_per_s"):
        zs = ", ".join(
            f"{z[0]:.4g}" + (f"{z[1]:+.3g}j" if abs(z[1]) > 1e-12 else "")
            for z in summary["zeros_continuous_1_per_s"]
        )
        w(f"  transmission zeros (continuous, 1/s): {zs}\n")
    w(f"  wrote {', '.join(summary['files'].values())}\n")
    return 0
