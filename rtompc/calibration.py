"""Grey-box calibration of a first-principles model from a historian run, written into the config.

:func:`run_record` reads one historian run as the grey-box fit wants it: the
longest stretch of rows where every measured output has good quality and every
MV was written (back-off rows are kept: a physical model does not mind who
moved the MVs). :func:`calibrate` fits the named parameters of the config's
model (``[model]``, else ``[plant]``) with
:func:`plant_models.identification.estimate_parameters` (multiple shooting,
IPOPT, confidence intervals). :func:`write_parameters` puts the estimates into
the config's ``[model]`` table as ``p = { name = value, ... }``: it replaces a
one-line ``p = ...`` there, or adds the key, or appends a ``[model]`` table
(name and builder parameters of ``[plant]``) when there is none. The new text
is validated as an application config before anything is written; the file is
written to a temporary file and renamed (never half-written), and an in-place
update keeps the old file as ``APP.toml.bak``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import ConfigError
from plant_models.identification import ParameterEstimate, estimate_parameters
from plant_models.model import PlantModel
from rtompc.config import AppConfig, load_app
from rtompc.historian import Historian

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRecord:
    """One stretch of a historian run, in SI."""

    t: NDArray[np.float64]
    """Times, s (N,)."""
    u: NDArray[np.float64]
    """MVs held over each sample (N, nu), ordered like the model's u."""
    y: NDArray[np.float64]
    """Measured outputs (N, ny), ordered like ``measured``."""
    d: NDArray[np.float64]
    """Measured disturbances (N, nd) (the model's nominal values where not recorded)."""
    measured: tuple[str, ...]
    """Output names."""
    rows_read: int
    """Rows of the run."""


def run_record(
    path: str | Path,
    run_id: int,
    model: PlantModel,
    measured: Sequence[str] | None = None,
    *,
    every: int = 1,
) -> RunRecord:
    """The longest usable stretch of a run (module docstring); ``every``: keep every n-th row."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"historian {p}: file does not exist")
    hist = Historian(p)
    try:
        infos = {r.run_id: r for r in hist.runs()}
        if run_id not in infos:
            raise ConfigError(
                f"historian {p}: no run {run_id} (runs: {', '.join(str(r) for r in infos)})"
            )
        lay = infos[run_id].layout
        meas = tuple(measured) if measured else tuple(n for n in model.y.names if n in lay.measured)
        missing = [n for n in (*meas, *model.u.names) if n not in (*lay.measured, *lay.mvs)]
        if missing or not meas:
            raise ConfigError(
                f"historian {p}: run {run_id} lacks {missing or 'measured outputs'} "
                f"of model {model.name!r}"
            )
        best: list[dict] = []
        cur: list[dict] = []
        n_rows = 0
        for row in hist.rows(run_id):
            n_rows += 1
            ok = all(
                row.get(f"qual__{n}") == "good" and row.get(f"meas__{n}") is not None for n in meas
            ) and all(row.get(f"written__{n}") is not None for n in model.u.names)
            if ok:
                cur.append(row)
            else:
                best, cur = (cur if len(cur) > len(best) else best), []
        best = cur if len(cur) > len(best) else best
    finally:
        hist.close()
    best = best[:: max(1, int(every))]
    if len(best) < 20:
        raise ConfigError(f"historian {p}: run {run_id} has no stretch of 20 usable rows")
    d_nom = model.nominal.d
    d = np.array(
        [
            [
                row.get(f"meas__{n}") if row.get(f"meas__{n}") is not None else d_nom[i]
                for i, n in enumerate(model.d.names)
            ]
            for row in best
        ],
        dtype=float,
    )
    return RunRecord(
        t=np.array([row["time_s"] for row in best], dtype=float),
        u=np.array([[row[f"written__{n}"] for n in model.u.names] for row in best], dtype=float),
        y=np.array([[row[f"meas__{n}"] for n in meas] for row in best], dtype=float),
        d=d.reshape(len(best), len(model.d.names)),
        measured=meas,
        rows_read=n_rows,
    )


def calibrate(
    model: PlantModel,
    record: RunRecord,
    params: Sequence[str],
    p_initial: Mapping[str, float] | None = None,
) -> ParameterEstimate:
    """Fit ``params`` of ``model`` to the record (initial state estimated too)."""
    ss = model.steady_state(
        u=record.u[0],
        d=record.d[0] if record.d.size else None,
        p=dict(p_initial) if p_initial else None,
    )
    return estimate_parameters(
        model,
        record.t,
        record.u,
        record.y,
        estimate=tuple(params),
        measured=record.measured,
        d=record.d if record.d.size else None,
        p_initial=p_initial,
        x0=ss.x if ss.status.usable and ss.x is not None else None,
    )


def _p_line(values: Mapping[str, float]) -> str:
    inner = ", ".join(f"{k} = {float(v)!r}" for k, v in values.items())
    return f"p = {{ {inner} }}"


def updated_text(text: str, cfg: AppConfig, values: Mapping[str, float]) -> str:
    """The config text with ``values`` as ``[model]`` parameters (module docstring)."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"' ]+?)\s*\]\]?\s*(#.*)?$")
    start = next(
        (i for i, ln in enumerate(lines) if re.match(r"^\s*\[\s*model\s*\]\s*(#.*)?$", ln)), None
    )
    if start is None:
        old = dict(cfg.model.p) if cfg.model is not None else {}
        merged = {**old, **values}
        block = [
            "",
            "# written by rtompc calibrate: the controller's model with calibrated parameters",
            "[model]",
            f"name = {json.dumps(cfg.plant.name)}",
        ]
        if cfg.plant.params:
            inner = ", ".join(f"{k} = {json.dumps(v)}" for k, v in cfg.plant.params.items())
            block.append(f"params = {{ {inner} }}")
        block.append(_p_line(merged))
        return "\n".join([*lines, *block]) + "\n"
    end = next((i for i in range(start + 1, len(lines)) if header.match(lines[i])), len(lines))
    if any(re.match(r"^\s*\[\s*model\.p\s*\]", ln) for ln in lines):
        raise ConfigError(
            "calibrate: [model.p] is written as a table; write it as "
            "'p = { ... }' inside [model] so it can be updated"
        )
    old = dict(cfg.model.p) if cfg.model is not None else {}
    new_line = _p_line({**old, **values})
    for i in range(start + 1, end):
        if re.match(r"^\s*p\s*=", lines[i]):
            if lines[i].count("{") != lines[i].count("}"):
                raise ConfigError(
                    "calibrate: [model] p spans several lines; write it on one "
                    "line so it can be updated"
                )
            lines[i] = new_line
            return "\n".join(lines) + "\n"
    lines.insert(start + 1, new_line)
    return "\n".join(lines) + "\n"


def write_parameters(config: Path, values: Mapping[str, float], out: Path | None) -> Path:
    """Write the calibrated config to ``out`` (None: in place, old file kept as ``.bak``)."""
    cfg = load_app(config)
    text = config.read_text(encoding="utf-8")
    new_text = updated_text(text, cfg, values)
    target = out or config
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_text(new_text, encoding="utf-8")
    try:
        checked = load_app(tmp)  # the result must be a valid config before it replaces anything
        model_p = dict(checked.model.p) if checked.model is not None else {}
        for k, v in values.items():
            if not math.isclose(model_p.get(k, math.nan), v, rel_tol=1e-12):
                raise ConfigError(f"calibrate: the new config does not hold {k} = {v!r}")
        if target.resolve().parent != config.resolve().parent:
            raise ConfigError(
                f"calibrate: write the new config next to {config} (relative "
                f"paths in it are resolved from its directory)"
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if out is None:
        shutil.copy2(config, config.with_name(config.name + ".bak"))
    os.replace(tmp, target)
    _log.info("calibrate: wrote %s", target)
    return target
