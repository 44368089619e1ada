"""Identification data straight from the historian: step-test runs, cleaned and merged.

:func:`historian_data` reads one or more runs of a historian file (written by
``rtompc steptest`` or ``rtompc run``) and returns an
:class:`~plant_models.identification.IdData` with every usable stretch as its
own record (``IdData.segments``):

- inputs are the MV values the plant was given (``written__<mv>``; the value is
  held over the sample, as the row's measurement is read before the write),
  outputs the measured CVs (``meas__<cv>``);
- a sample is dropped when the test was backing off (``extra.backing_off``: the
  MVs were driven by the CVs, not by the plan), when a CV's quality is not
  ``good`` or its value is missing, or when an MV was not written; the record is
  cut there, and stretches shorter than ``min_record_samples`` are left out;
- every run is put in deviations around the first run's start (the mean of its
  first ``initial_samples`` kept samples): the operating point of the model.
  Each record gets its own initial state in the fit, so a run that starts while
  the unit still moves (right after another test) is fine; runs at different
  operating points need separate models.

MVs default to those the step test moved (``mvs_in_test`` in the run's meta),
CVs to the test's CVs; both can be given. Units come from the run's meta
(``rtompc steptest`` records the model's SI units there), else ``"1"``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from plant_models.errors import ConfigError
from plant_models.identification.data import DataError, IdData, concatenate
from rtompc.historian import Historian

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistorianData:
    """Identification data from historian runs, and what was left out."""

    data: IdData
    """The merged records (deviations; ``segments`` mark the cuts)."""
    runs: tuple[int, ...]
    """Run ids read."""
    rows: int
    """Rows read."""
    backing_off: int
    """Rows dropped because the test was backing off."""
    bad_quality: int
    """Rows dropped for a CV with non-good quality or no value, or an MV not written."""
    short_records: int
    """Rows in stretches too short to use."""
    u_limits: tuple[tuple[float, float], ...] = ()
    """The MVs' (lower, upper) from the first run's meta, SI (empty: not recorded)."""

    def summary(self) -> dict[str, Any]:
        """JSON-able facts for the report."""
        return {
            "historian_runs": list(self.runs),
            "rows_read": self.rows,
            "rows_backing_off_skipped": self.backing_off,
            "rows_bad_quality_skipped": self.bad_quality,
            "rows_in_short_records_skipped": self.short_records,
            "records": len(self.data.segments) + 1,
        }


def historian_data(
    path: str | Path,
    run_ids: Sequence[int],
    *,
    mv: Sequence[str] | None = None,
    cv: Sequence[str] | None = None,
    min_record_samples: int = 60,
    initial_samples: int = 10,
) -> HistorianData:
    """Read, clean and merge the runs (module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"historian {p}: file does not exist")
    if not run_ids:
        raise ConfigError("sysid: give at least one --run")
    hist = Historian(p)
    try:
        infos = {r.run_id: r for r in hist.runs()}
        missing = [r for r in run_ids if r not in infos]
        if missing:
            raise ConfigError(
                f"historian {p}: no run {missing[0]} (runs: "
                + ", ".join(f"{r.run_id} ({r.kind}, {r.cycles} rows)" for r in infos.values())
                + ")"
            )
        first = infos[run_ids[0]]
        mvs = tuple(mv or first.meta.get("mvs_in_test") or first.layout.mvs)
        cvs = tuple(cv or first.meta.get("cvs") or first.layout.outputs)
        parts: list[IdData] = []
        counts = {"rows": 0, "off": 0, "bad": 0, "short": 0}
        op: tuple[np.ndarray, np.ndarray] | None = None
        dt = None
        for run in run_ids:
            info = infos[run]
            for name in mvs:
                if name not in info.layout.mvs:
                    raise ConfigError(
                        f"historian {p}: run {run} has no MV {name!r} "
                        f"(MVs: {', '.join(info.layout.mvs)})"
                    )
            for name in cvs:
                if name not in info.layout.measured:
                    raise ConfigError(
                        f"historian {p}: run {run} has no measured {name!r} "
                        f"(measured: {', '.join(info.layout.measured)})"
                    )
            records, dt_run = _records(hist.rows(run), mvs, cvs, counts, min_record_samples)
            if dt is None:
                dt = dt_run
            elif dt_run is not None and not math.isclose(dt, dt_run, rel_tol=1e-6):
                raise DataError(
                    f"historian {p}: run {run} is sampled at {dt_run:g} s, run "
                    f"{run_ids[0]} at {dt:g} s; identify them separately"
                )
            if not records:
                continue
            if op is None:  # the first run's start is the operating point of every run
                t0, u0r, y0r = records[0]
                k0 = max(1, min(initial_samples, len(t0)))
                op = (u0r[:k0].mean(axis=0), y0r[:k0].mean(axis=0))
            u_op, y_op = op
            units = info.meta.get("units", {})
            for t, u, y in records:
                parts.append(
                    IdData(
                        t - t[0],
                        u - u_op,
                        y - y_op,
                        mvs,
                        cvs,
                        float(dt or 1.0),
                        op[0],
                        op[1],
                        tuple(units.get(n, "1") for n in mvs),
                        tuple(units.get(n, "1") for n in cvs),
                    )
                )
    finally:
        hist.close()
    if not parts:
        raise DataError(
            f"historian {p}: runs {list(run_ids)} hold no stretch of at least "
            f"{min_record_samples} usable samples ({counts['off']} rows backing off, "
            f"{counts['bad']} with bad quality)"
        )
    data = concatenate(parts)
    dead = [n for j, n in enumerate(mvs) if float(np.std(data.u[:, j])) <= 1e-12]
    if dead:
        raise DataError(
            f"historian {p}: MVs without excitation in the usable rows: "
            f"{', '.join(dead)}; leave them out (--mv) or test them"
        )
    _log.info(
        "historian %s: %d rows, %d records, %d backing off and %d bad rows skipped",
        p,
        counts["rows"],
        len(parts),
        counts["off"],
        counts["bad"],
    )
    lims = first.meta.get("limits", {})
    u_limits = (
        tuple(
            (
                -math.inf if (lims.get(n) or [None, None])[0] is None else float(lims[n][0]),
                math.inf if (lims.get(n) or [None, None])[1] is None else float(lims[n][1]),
            )
            for n in mvs
        )
        if lims
        else ()
    )
    return HistorianData(
        data,
        tuple(run_ids),
        counts["rows"],
        counts["off"],
        counts["bad"],
        counts["short"],
        u_limits,
    )


def _records(
    rows: Any, mvs: tuple[str, ...], cvs: tuple[str, ...], counts: dict[str, int], min_len: int
) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], float | None]:
    """Contiguous usable stretches (t, u, y) of one run, and its sample time."""
    out = []
    cur: list[tuple[float, list[float], list[float]]] = []
    times: list[float] = []
    last_cycle = None

    def close() -> None:
        if len(cur) >= min_len:
            out.append(
                (
                    np.array([r[0] for r in cur]),
                    np.array([r[1] for r in cur]),
                    np.array([r[2] for r in cur]),
                )
            )
        else:
            counts["short"] += len(cur)
        cur.clear()

    for row in rows:
        counts["rows"] += 1
        times.append(float(row["time_s"]))
        extra = json.loads(row["extra"]) if row.get("extra") else {}
        u = [row.get(f"written__{n}") for n in mvs]
        y = [row.get(f"meas__{n}") for n in cvs]
        good = all(row.get(f"qual__{n}") == "good" for n in cvs)
        if last_cycle is not None and row["cycle"] != last_cycle + 1:
            close()
        last_cycle = row["cycle"]
        if extra.get("backing_off"):
            counts["off"] += 1
            close()
            continue
        if not good or any(v is None for v in (*u, *y)):
            counts["bad"] += 1
            close()
            continue
        cur.append((float(row["time_s"]), [float(v) for v in u], [float(v) for v in y]))
    close()
    dt = float(np.median(np.diff(times))) if len(times) > 1 else None
    for t, _, _ in out:
        if dt is not None and not np.allclose(np.diff(t), dt, rtol=0.25):
            raise DataError(
                f"historian rows are not uniformly sampled (median {dt:g} s); "
                f"export the run and resample with 'rtompc sysid DATA.csv "
                f"--sample-time'"
            )
    return out, dt
