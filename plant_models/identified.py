"""Load an identified-model file (JSON) as a discrete-time PlantModel.

``plant_models.library.load("path/model.json")`` calls :func:`load_model`. The
file format is written by
:meth:`plant_models.identification.IdentifiedModel.save` (``format`` =
``"rtompc.identified_model"``, ``version`` 1): sample time, inputs and outputs
with names, units, operating points, input dead times (samples) and optional
input limits (``lower``/``upper``, SI; null: unbounded), and the
matrices A, B, C, D of the deviation model. Files are JSON, never pickle; an
error names the file, the key and what was expected.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from plant_models.errors import ModelError
from plant_models.identification.linear_model import FORMAT, VERSION, IdentifiedModel
from plant_models.model import PlantModel


def _get(doc: dict[str, Any], key: str, path: Path, what: str) -> Any:
    if key not in doc:
        raise ModelError(f"identified model {path}: missing key {key!r} ({what})")
    return doc[key]


def read_identified(path: str | Path) -> IdentifiedModel:
    """Read and validate an identified-model JSON file."""
    p = Path(path)
    if p.suffix == ".npz":
        raise ModelError(f"identified model {p}: .npz files are not supported; save as .json")
    if not p.is_file():
        raise ModelError(f"identified model {p}: file does not exist")
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"identified model {p}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelError(f"identified model {p}: key 'format' must be {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise ModelError(
            f"identified model {p}: key 'version' is {doc.get('version')!r}, this reader knows {VERSION}"
        )
    inputs = _get(doc, "inputs", p, "list of {name, unit, operating_point, delay_samples}")
    outputs = _get(doc, "outputs", p, "list of {name, unit, operating_point}")
    try:
        u_names = tuple(str(e["name"]) for e in inputs)
        y_names = tuple(str(e["name"]) for e in outputs)
        u_units = tuple(str(e.get("unit", "1")) for e in inputs)
        y_units = tuple(str(e.get("unit", "1")) for e in outputs)
        u0 = np.array([float(e["operating_point"]) for e in inputs])
        y0 = np.array([float(e["operating_point"]) for e in outputs])
        delays = tuple(int(e.get("delay_samples", 0)) for e in inputs)
        limits = tuple(
            (float(e["lower"]) if e.get("lower") is not None else -math.inf,
             float(e["upper"]) if e.get("upper") is not None else math.inf)
            for e in inputs
        ) if any("lower" in e or "upper" in e for e in inputs) else ()
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(
            f"identified model {p}: 'inputs'/'outputs' entries need name and operating_point "
            f"({exc!r})"
        ) from None
    mats = {}
    for k in "ABCD":
        raw = _get(doc, k, p, "matrix as a list of rows")
        try:
            mats[k] = np.array(raw, dtype=float)
        except (TypeError, ValueError):
            raise ModelError(f"identified model {p}: key {k!r} is not a numeric matrix") from None
    raw_dt = _get(doc, "sample_time_s", p, "sample time in seconds")
    try:
        dt = float(raw_dt)
    except (TypeError, ValueError):
        raise ModelError(f"identified model {p}: key 'sample_time_s' must be a number") from None
    nx = mats["A"].shape[0] if mats["A"].ndim == 2 else 0
    for k, shape in (("A", (nx, nx)), ("B", (nx, len(u_names))), ("C", (len(y_names), nx)),
                     ("D", (len(y_names), len(u_names)))):
        if mats[k].shape != shape:
            raise ModelError(f"identified model {p}: key {k!r} has shape {mats[k].shape}, "
                             f"expected {shape}")
    return IdentifiedModel(
        mats["A"], mats["B"], mats["C"], mats["D"], dt, u_names, y_names, u0, y0, delays=delays,
        u_units=u_units, y_units=y_units, method=str(doc.get("method", "")), u_limits=limits,
        info=dict(doc.get("info", {})),
    )


def load_model(path: str | Path, **params: Any) -> PlantModel:
    """Discrete-time PlantModel from an identified-model file.

    Accepted ``params``: ``model_name`` (default: the file stem).
    """
    unknown = sorted(set(params) - {"model_name"})
    if unknown:
        raise ModelError(
            f"identified model {path}: unknown parameter(s) {', '.join(unknown)}; "
            f"accepted: model_name"
        )
    model = read_identified(path)
    return model.to_plant_model(str(params.get("model_name") or Path(path).stem))
