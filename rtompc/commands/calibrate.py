"""``rtompc calibrate APP.toml --historian H --run ID --param NAME ...``: fit model parameters.

Fits the named parameters of the config's first-principles model (``[model]``,
else ``[plant]``) to one historian run (a step test, or normal operation with
enough movement) by grey-box least squares (multiple shooting, IPOPT), prints
the estimates with confidence intervals, and writes them into the config's
``[model]`` table (``p = { ... }``): into ``--out NEW.toml`` (next to the old
one), or in place with ``--in-place`` (the old file kept as ``APP.toml.bak``).
The new config is validated before it is written and is never half-written
(:mod:`rtompc.calibration`). Nothing is written when the fit fails (exit 3).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from plant_models.errors import ConfigError
from rtompc.calibration import calibrate, run_record, write_parameters
from rtompc.config import build, load_app


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _run(args: argparse.Namespace) -> int:
    config = Path(args.config)
    if args.out is None and not args.in_place:
        raise ConfigError("calibrate: give --out NEW.toml or --in-place")
    cfg = load_app(config)
    model = build.models(cfg).model
    if model.time_domain.value != "continuous":
        raise ConfigError(
            f"{config}: calibrate fits first-principles (continuous-time) models; "
            f"{model.name!r} is discrete (identified)"
        )
    params = [n for group in args.param for n in _names(group)]
    record = run_record(
        args.historian,
        args.run,
        model,
        _names(args.measured) if args.measured else None,
        every=args.every,
    )
    # start from the controller model's own values ([plant] p is the simulated plant's truth)
    p_initial = dict(cfg.model.p) if cfg.model is not None else {}
    est = calibrate(model, record, params, p_initial or None)
    summary: dict[str, Any] = {
        "status": est.status.value,
        "message": est.message,
        "samples": int(record.t.size),
        "measured": list(record.measured),
        "parameters": {},
    }
    if not est.status.usable or est.value is None:
        print(
            json.dumps(summary, indent=2)
            if args.json
            else f"calibrate: fit failed ({est.status.value}: {est.message}); nothing written",
            file=sys.stdout,
        )
        return 3
    for i, name in enumerate(est.names):
        entry: dict[str, Any] = {
            "value": float(est.value[i]),
            "nominal": float(model.nominal.p[model.p.index(name)]),
        }
        if est.ci_lower is not None and est.ci_upper is not None:
            entry["interval"] = [float(est.ci_lower[i]), float(est.ci_upper[i])]
        summary["parameters"][name] = entry
    target = write_parameters(config, est.as_dict(), None if args.in_place else Path(args.out))
    summary["written"] = str(target)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"calibrate: {record.t.size} samples of run {args.run}, outputs "
        f"{', '.join(record.measured)}; {est.status.value}"
    )
    for name, entry in summary["parameters"].items():
        ci = entry.get("interval")
        ci_txt = (
            f"  [{ci[0]:.6g}, {ci[1]:.6g}] {100 * est.confidence:.0f} %"
            if ci
            else "  (no interval: not identifiable from these data)"
        )
        print(f"  {name} = {entry['value']:.6g} (was {entry['nominal']:.6g}){ci_txt}")
    print(
        f"  wrote [model] p into {target}"
        + (f" (old file: {config.name}.bak)" if args.in_place else "")
    )
    return 0


def register(sub: Any) -> None:
    """Add the ``calibrate`` command."""
    p = sub.add_parser(
        "calibrate",
        help="fit first-principles model parameters to a historian run",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="application config (TOML)")
    p.add_argument("--historian", type=Path, required=True, help="historian file (SQLite)")
    p.add_argument("--run", type=int, required=True, help="run id")
    p.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="NAME",
        help="parameter to fit (repeat, or comma-separated)",
    )
    p.add_argument(
        "--measured",
        help="outputs to fit, comma-separated (default: every model output the run recorded)",
    )
    p.add_argument("--every", type=int, default=1, help="use every n-th row (long runs)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", help="write the calibrated config here (next to APP.toml)")
    where.add_argument(
        "--in-place",
        action="store_true",
        help="update APP.toml (the old file kept as APP.toml.bak)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_run)
