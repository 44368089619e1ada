"""Preview of a step-test plan: the MV moves and, with a model, the CV excursions they cause.

:func:`predict` simulates a plant model (first-principles or identified) from
its nominal operating point with the planned moves and reports, per guarded
CV, the predicted range and how many times it would enter the guard band
(where the real test would back off). :func:`plot_preview` draws the plan and
the prediction into a PNG. Nothing here talks to a plant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from plant_models.model import PlantModel
from rtompc.step_plan import ResolvedPlan


@dataclass(frozen=True)
class CvExcursion:
    """Predicted behaviour of one CV during the plan."""

    name: str
    """CV name."""
    start: float
    """Value at the start, SI."""
    low: float
    """Lowest predicted value, SI."""
    high: float
    """Highest predicted value, SI."""
    guard_entries: int
    """Times the prediction enters the guard band (the test would back off about this often)."""


@dataclass(frozen=True)
class Prediction:
    """A plan simulated on a model."""

    t: NDArray[np.float64]
    """Sample times, s (N,)."""
    u: NDArray[np.float64]
    """MV values (N, n_mv), SI."""
    y: NDArray[np.float64]
    """Predicted CVs (N, n_cv), SI, ordered like the plan's CVs."""
    excursions: tuple[CvExcursion, ...]
    """Per CV."""
    model: str
    """Model name."""


def predict(plan: ResolvedPlan, model: PlantModel) -> Prediction:
    """Simulate the plan on ``model`` from its nominal point (MVs at the nominal inputs)."""
    u0 = np.array([model.nominal.u[model.u.names.index(n)] for n in plan.mv_names])
    u = u0 + plan.deviations
    traj = model.simulate(None, u, plan.sample_time_s)
    cvs = plan.settings.cvs
    y = np.column_stack([traj.y[:-1, model.y.names.index(c)] for c in cvs])
    limits = {lim.name: lim for lim in plan.settings.limits}
    out = []
    for j, c in enumerate(cvs):
        col = y[:, j]
        entries = 0
        lim = limits.get(c)
        if lim is not None:
            inside = (col > lim.upper - lim.margin) | (col < lim.lower + lim.margin)
            entries = int(np.sum(inside[1:] & ~inside[:-1]) + int(inside[0]))
        out.append(CvExcursion(c, float(col[0]), float(col.min()), float(col.max()), entries))
    return Prediction(
        plan.sample_time_s * np.arange(len(u), dtype=float), u, y, tuple(out), model.name
    )


def plot_preview(
    plan: ResolvedPlan,
    out: str | Path,
    *,
    u_start: NDArray[np.float64] | None = None,
    prediction: Prediction | None = None,
) -> Path:
    """Draw the plan (absolute MV values around ``u_start``, or deviations) and the predicted
    CVs with their limits and guard bands; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mvs = [n for n, on in zip(plan.mv_names, plan.in_test, strict=True) if on]
    n_cv = len(prediction.excursions) if prediction is not None else 0
    fig, axes = plt.subplots(
        len(mvs) + n_cv, 1, figsize=(9, 2.0 * (len(mvs) + n_cv) + 0.6), sharex=True, squeeze=False
    )
    t_min = plan.sample_time_s * np.arange(plan.deviations.shape[0]) / 60.0
    for k, name in enumerate(mvs):
        j = plan.mv_names.index(name)
        base = u_start[j] if u_start is not None else 0.0
        ax = axes[k, 0]
        ax.step(t_min, base + plan.deviations[:, j], where="post")
        ax.set_ylabel(name if u_start is not None else f"d{name}")
    if prediction is not None:
        limits = {lim.name: lim for lim in plan.settings.limits}
        for k, exc in enumerate(prediction.excursions):
            ax = axes[len(mvs) + k, 0]
            ax.plot(t_min, prediction.y[:, k], color="tab:green")
            lim = limits.get(exc.name)
            if lim is not None:
                for v, band in ((lim.upper, -lim.margin), (lim.lower, lim.margin)):
                    if math.isfinite(v):
                        ax.axhline(v, color="tab:red")
                        ax.axhline(v + band, color="tab:red", linestyle="--", linewidth=0.8)
            ax.set_ylabel(f"{exc.name} (pred.)")
            if exc.guard_entries:
                ax.set_title(
                    f"{exc.name}: enters the guard band {exc.guard_entries} time(s)",
                    fontsize=9,
                    loc="left",
                )
    axes[-1, 0].set_xlabel("time, min")
    what = f"; CVs predicted by {prediction.model}" if prediction is not None else ""
    fig.suptitle(f"step-test plan{what}", fontsize=10)
    fig.tight_layout()
    path = Path(out)
    tmp = path.with_name(path.name + ".part")
    fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path
