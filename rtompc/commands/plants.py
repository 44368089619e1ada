"""``rtompc plants [NAME] [--json]``: list the reference plants or describe one."""

from __future__ import annotations

import argparse
import json
from typing import Any

from plant_models.library import load, names
from plant_models.model import PlantModel


def describe(model: PlantModel) -> dict[str, Any]:
    """A JSON-ready description of a model's signals and nominal point."""
    def sigs(kind: str) -> list[dict[str, Any]]:
        sset = getattr(model, kind)
        nominal = getattr(model.nominal, kind, None)
        out = []
        for i, s in enumerate(sset):
            entry = {"name": s.name, "unit": s.unit, "lower": s.lower, "upper": s.upper,
                     "description": s.description}
            if nominal is not None:
                entry["nominal_value"] = float(nominal[i])
            out.append(entry)
        return out

    return {
        "name": model.name, "description": model.description, "source": model.source,
        "time_domain": model.time_domain.value, "sample_time_s": model.sample_time_s,
        **{kind: sigs(kind) for kind in ("x", "u", "d", "p", "y")},
    }


def _run(args: argparse.Namespace) -> int:
    if args.name is None:
        listing = {n: load(n).description for n in names()}
        if args.json:
            print(json.dumps(listing, indent=2))
        else:
            for n, desc in listing.items():
                print(f"{n:20s} {desc}")
        return 0
    info = describe(load(args.name))
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"{info['name']}: {info['description']}\n  source: {info['source']}")
    for kind in ("x", "u", "d", "p", "y"):
        for s in info[kind]:
            nom = f" = {s['nominal_value']:.6g}" if "nominal_value" in s else ""
            print(f"  {kind} {s['name']:12s} [{s['unit']}] {s['lower']:.4g}..{s['upper']:.4g}{nom}"
                  f"  {s['description']}")
    return 0


def register(sub: Any) -> None:
    """Add the ``plants`` command."""
    p = sub.add_parser("plants", help="list reference plants or describe one")
    p.add_argument("name", nargs="?", help="plant name (registry)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_run)
