"""Validation plots of identified models (PNG): fit on held-back data, step bands, residuals.

Uses matplotlib's object API (``Figure``, no pyplot state), so it is safe in
library code, threads and headless machines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from plant_models.identification.data import IdData
from plant_models.identification.linear_model import IdentifiedModel
from plant_models.identification.uncertainty import StepResponseBands
from plant_models.identification.validation import Z99, ValidationReport


def _figure(rows: int, cols: int, size: tuple[float, float]):  # noqa: ANN202 - matplotlib type
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    return fig, axes


def plot_fit(
    model: IdentifiedModel,
    data: IdData,
    score_from: int,
    report: ValidationReport,
    path: str | Path,
) -> Path:
    """Measured vs simulated outputs; the held-back part (from ``score_from``) is shaded."""
    y_sim = model.simulate_segments(data.u, data.y, data.segments)
    ny = len(model.y_names)
    fig, axes = _figure(ny, 1, (9.0, 2.6 * ny))
    for i, name in enumerate(model.y_names):
        ax = axes[i, 0]
        ax.plot(data.t, data.y[:, i] + model.y0[i], lw=0.8, label="measured")
        ax.plot(data.t, y_sim[:, i] + model.y0[i], lw=1.0, label="model (simulated)")
        ax.axvspan(data.t[score_from], data.t[-1], color="0.9", zorder=0, label="held back")
        unit = model.y_units[i] if model.y_units else ""
        ax.set_ylabel(f"{name} [{unit}]" if unit else name)
        ax.set_title(f"{name}: fit on held-back data {report.fit_percent[i]:.1f} %", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time [s]")
    out = Path(path)
    fig.savefig(out, dpi=110)
    return out


def plot_step_bands(bands: StepResponseBands, path: str | Path) -> Path:
    """Grid of unit-step responses (outputs x inputs) with their confidence bands."""
    ny, nu = len(bands.y_names), len(bands.u_names)
    fig, axes = _figure(ny, nu, (3.6 * nu, 2.6 * ny))
    for i in range(ny):
        for j in range(nu):
            ax = axes[i, j]
            ax.fill_between(
                bands.t,
                bands.lower[:, i, j],
                bands.upper[:, i, j],
                alpha=0.3,
                label=f"{100 * bands.level:.0f} % band",
            )
            ax.plot(bands.t, bands.response[:, i, j], lw=1.2, label="model")
            ax.set_title(f"{bands.y_names[i]} / {bands.u_names[j]}", fontsize=9)
            ax.axhline(0.0, color="0.6", lw=0.5)
    axes[0, 0].legend(fontsize=7)
    for j in range(nu):
        axes[-1, j].set_xlabel("time [s]")
    fig.suptitle(f"unit-step responses ({bands.method})", fontsize=9)
    out = Path(path)
    fig.savefig(out, dpi=110)
    return out


def plot_residuals(report: ValidationReport, n_samples: int, path: str | Path) -> Path:
    """Residual autocorrelation per output with the 99 % whiteness band."""
    ny = len(report.residuals)
    fig, axes = _figure(ny, 1, (7.0, 2.2 * ny))
    band = Z99 / np.sqrt(n_samples)
    for i, test in enumerate(report.residuals):
        ax = axes[i, 0]
        lags = np.arange(1, test.autocorrelation.size + 1)
        ax.bar(lags, test.autocorrelation, width=0.6)
        ax.axhline(band, color="r", lw=0.8, ls="--")
        ax.axhline(-band, color="r", lw=0.8, ls="--")
        ax.set_title(
            f"{test.output}: residual autocorrelation (white: {test.white}, "
            f"Ljung-Box p = {test.ljung_box_p:.2g})",
            fontsize=9,
        )
    axes[-1, 0].set_xlabel("lag [samples]")
    out = Path(path)
    fig.savefig(out, dpi=110)
    return out
