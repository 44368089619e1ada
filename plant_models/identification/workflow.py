"""The identification workflow behind ``rtompc sysid``: fit, validate, bands, files.

:func:`identify_to_directory` splits prepared data into an estimation and a
held-back part, identifies a model with the chosen :class:`Method`, validates
it on the held-back part, computes step-response confidence bands (ARX:
parameter covariance; other methods: block bootstrap) and writes into one
directory:

- ``model.json`` (the identified model; ``plant_models.library.load`` reads it),
- ``edits_template.toml`` (every channel's gain, interval and dead time, and the choices
  made, as a model-edits file to review and pass back with ``--edits``),
- ``report.json`` (the summary returned as a dict) and ``report.html`` (the same as a
  page with the plots embedded),
- ``fit.png``, ``step_responses.png``, ``residuals.png``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from plant_models.errors import ModelError
from plant_models.identification.arx import fit_arx
from plant_models.identification.data import IdData
from plant_models.identification.editing import CvEdit, ModelEdits, identify_edited, template
from plant_models.identification.fopdt import fit_fopdt
from plant_models.identification.linear_model import IdentifiedModel
from plant_models.identification.subspace import n4sid
from plant_models.identification.uncertainty import (
    StepResponseBands,
    arx_step_bands,
    bootstrap_step_bands,
)
from plant_models.identification.validation import validate

_log = logging.getLogger(__name__)


class Method(Enum):
    """Identification method."""

    N4SID = "n4sid"
    """Subspace state-space model (PO-MOESP), order by held-back fit."""
    ARX = "arx"
    """MIMO ARX, order by AIC."""
    FOPDT = "fopdt"
    """First order plus dead time per channel."""


@dataclass(frozen=True)
class SysIdSettings:
    """Choices of one identification run."""

    method: Method = Method.N4SID
    """Identification method."""
    order: int | None = None
    """Model order (None: automatic). n4sid: states; ARX: na = nb."""
    split: float = 0.7
    """Fraction of the record used for estimation; the rest is held back for validation."""
    band_samples: int = 20
    """Models sampled for the step bands (ARX draws or bootstrap refits); 0: no bands."""
    band_level: float = 0.95
    """Confidence level of the step bands."""
    step_horizon_s: float | None = None
    """Length of the plotted step responses, s (None: a third of the record)."""
    seed: int = 0
    """Random seed of the band sampling."""
    edits: ModelEdits | None = None
    """Model edits (n4sid only): order per CV, zeroed gains, signs, ratios, dead times."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", Method(self.method))
        if self.edits is not None and self.method is not Method.N4SID:
            raise ModelError("sysid: model edits need the n4sid method")
        if self.band_samples and self.band_samples < 10:
            raise ModelError(f"sysid: band_samples must be 0 or >= 10, got {self.band_samples}")


def _identify(
    method: Method, data: IdData, order: int | None, edits: ModelEdits | None = None
) -> IdentifiedModel:
    if edits is not None:
        return identify_edited(data, edits)
    if method is Method.N4SID:
        return n4sid(data, order=order).model
    if method is Method.ARX:
        return fit_arx(data, order=order).model
    return fit_fopdt(data).to_identified()


def identify_to_directory(
    data: IdData,
    settings: SysIdSettings,
    out_dir: str | Path,
    *,
    source: str = "",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the workflow (module docstring); returns the summary also written to report.json.

    ``extra`` entries (e.g. facts about the data source) are added to the summary.
    """
    from plant_models.identification.plots import plot_fit, plot_residuals, plot_step_bands
    from plant_models.identification.report_html import write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    est, _ = data.split(settings.split)
    method = settings.method
    order = settings.order
    model = _identify(method, est, order, settings.edits)
    if method is not Method.N4SID:
        order = None if method is Method.FOPDT else int(model.info.get("na", 0)) or None
    report = validate(model, data, score_from=est.n_samples)
    n_steps = max(
        10, int(round((settings.step_horizon_s or data.t[-1] / 3.0) / data.sample_time_s))
    )
    bands: StepResponseBands | None = None
    if settings.band_samples:
        if method is Method.ARX:
            bands = arx_step_bands(
                fit_arx(est, order=order),
                est,
                n_steps,
                level=settings.band_level,
                n_draws=settings.band_samples,
                seed=settings.seed,
            )
        else:
            fixed = model.nx if method is Method.N4SID else None
            edits = _fixed_orders(settings.edits, model)
            bands = bootstrap_step_bands(
                lambda d: _identify(method, d, fixed, edits),
                model,
                est,
                n_steps,
                level=settings.band_level,
                n_boot=settings.band_samples,
                seed=settings.seed,
            )
    k = model.gain()
    summary: dict[str, Any] = {
        "source": source,
        "method": model.method,
        "sample_time_s": model.sample_time_s,
        "samples": data.n_samples,
        "estimation_samples": est.n_samples,
        "order": model.nx,
        "delays_samples": dict(zip(model.u_names, model.delays, strict=True)),
        "operating_point": {
            "u": dict(zip(model.u_names, model.u0.tolist(), strict=True)),
            "y": dict(zip(model.y_names, model.y0.tolist(), strict=True)),
        },
        "fit_percent_held_back": dict(zip(model.y_names, report.fit_percent, strict=True)),
        "gain": {
            y: dict(zip(model.u_names, k[i].tolist(), strict=True))
            for i, y in enumerate(model.y_names)
        },
        "condition_number": report.condition_number,
        "rga": report.rga.tolist() if report.rga is not None else None,
        "poles": [[float(p.real), float(p.imag)] for p in model.poles()],
        "residuals": {
            t.output: {
                "white": t.white,
                "ljung_box_p": t.ljung_box_p,
                "independent_of_inputs": t.independent_of_inputs,
            }
            for t in report.residuals
        },
    }
    if settings.edits is not None:
        summary["edits"] = model.info["edits"]
        summary["channels"] = model.info["channels"]
    if len(model.u_names) == len(model.y_names):
        zeros = model.transmission_zeros()
        summary["zeros_discrete"] = [[float(z.real), float(z.imag)] for z in zeros]
        with np.errstate(divide="ignore", invalid="ignore"):
            cont = np.log(zeros.astype(complex)) / model.sample_time_s
        summary["zeros_continuous_1_per_s"] = [[float(z.real), float(z.imag)] for z in cont]
    files = {"model": str(model_path := out / "model.json")}
    model_info = IdentifiedModel(
        model.A,
        model.B,
        model.C,
        model.D,
        model.sample_time_s,
        model.u_names,
        model.y_names,
        model.u0,
        model.y0,
        delays=model.delays,
        u_units=model.u_units,
        y_units=model.y_units,
        method=model.method,
        info={**model.info, "fit_percent_held_back": list(report.fit_percent), "source": source},
    )
    model_info.save(model_path)
    files["fit_plot"] = str(plot_fit(model, data, est.n_samples, report, out / "fit.png"))
    files["residual_plot"] = str(
        plot_residuals(report, data.n_samples - est.n_samples, out / "residuals.png")
    )
    if bands is not None:
        lo, hi = bands.gain_interval()
        summary["step_bands"] = {
            "method": bands.method,
            "level": bands.level,
            "horizon_s": float(bands.t[-1]),
            "gain_lower": {
                y: dict(zip(model.u_names, lo[i].tolist(), strict=True))
                for i, y in enumerate(model.y_names)
            },
            "gain_upper": {
                y: dict(zip(model.u_names, hi[i].tolist(), strict=True))
                for i, y in enumerate(model.y_names)
            },
        }
        files["step_plot"] = str(plot_step_bands(bands, out / "step_responses.png"))
    lo_hi = bands.gain_interval() if bands is not None else (None, None)
    files["edits_template"] = str(out / "edits_template.toml")
    (out / "edits_template.toml").write_text(template(model, *lo_hi))
    summary.update(extra or {})
    files["report"] = str(out / "report.json")
    files["html"] = str(out / "report.html")
    summary["files"] = files
    (out / "report.json").write_text(json.dumps(summary, indent=2, default=float))
    write_report(summary, out / "report.html")
    _log.info("identified %s from %s: fit %s", model.method, source, report.fit_percent)
    return summary


def _fixed_orders(edits: ModelEdits | None, model: IdentifiedModel) -> ModelEdits | None:
    """The edits with every CV's order fixed to the one chosen (for bootstrap refits)."""
    if edits is None:
        return None
    orders = model.info.get("order_per_cv", {})
    cv = {
        name: edits.cv.get(name, CvEdit()).model_copy(update={"order": int(n)})
        for name, n in orders.items()
    }
    return edits.model_copy(update={"cv": cv})
