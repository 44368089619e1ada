"""Trend plots of a scenario run as PNG bytes (matplotlib, Agg backend, no display).

:func:`trend_png` draws one panel per CV (true value, measurement, setpoint,
limits and the controller's prediction snapshots) and one per MV (applied value
and bounds), with the scenario events as vertical lines.
"""

from __future__ import annotations

import io
import math

import numpy as np

from rtompc.scenarios.result import ScenarioResult


def trend_png(result: ScenarioResult, *, dpi: int = 80) -> bytes | None:
    """PNG of the run's trends, or None when the result has no trace."""
    tr = result.trace
    if tr is None or tr.t.size == 0:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    n_cv, n_mv = len(tr.cv_names), len(tr.mv_names)
    rows = max(1, n_cv + n_mv)
    fig = Figure(figsize=(8, 1.9 * rows), dpi=dpi)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    scale, unit = (3600.0, "h") if tr.t[-1] > 7200 else (60.0, "min")
    t = tr.t / scale
    event_times = []
    for line in result.events:
        if " event: " in line and line.startswith("t="):
            try:
                event_times.append(float(line[2 : line.index("s ")]) / scale)
            except ValueError:
                continue
    for j, name in enumerate(tr.cv_names):
        ax = axes[j]
        ax.plot(t, tr.y[:, j], color="C0", lw=1.4, label=f"{name} (true)")
        if np.any(np.isfinite(tr.y_measured[:, j])):
            ax.plot(t, tr.y_measured[:, j], color="C0", lw=0.6, ls=":", label="measured")
        if np.any(np.isfinite(tr.setpoint[:, j])):
            ax.step(t, tr.setpoint[:, j], where="post", color="k", ls="--", lw=1, label="target")
        for lim, lab in ((tr.cv_lower[j], "lower"), (tr.cv_upper[j], "upper")):
            if math.isfinite(lim):
                ax.axhline(lim, color="C3", lw=1, label=f"{lab} limit")
        for k, pred in enumerate(result.predictions):
            ax.plot(
                pred.t / scale,
                pred.y[:, j],
                color="C2",
                lw=0.8,
                alpha=0.7,
                label="prediction" if k == 0 else None,
            )
        ax.set_ylabel(name)
        ax.legend(loc="best", fontsize=7)
    for i, name in enumerate(tr.mv_names):
        ax = axes[n_cv + i]
        ax.step(t, tr.u[:, i], where="post", color="C1", lw=1.2, label=name)
        for lim in (tr.u_lower[i], tr.u_upper[i]):
            ax.axhline(lim, color="C3", lw=0.8, ls=":")
        lo, hi = np.nanmin(tr.u[:, i]), np.nanmax(tr.u[:, i])
        pad = 0.1 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1e-12)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_ylabel(name)
        ax.legend(loc="best", fontsize=7)
    for ax in axes:
        ax.grid(True, alpha=0.3)
        for te in event_times:
            ax.axvline(te, color="0.5", lw=0.8, ls="-.")
    axes[-1].set_xlabel(f"plant time [{unit}]")
    fig.suptitle(f"{result.name}: {result.status.value}", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
