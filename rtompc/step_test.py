"""Automated plant step testing through any :class:`~interfaces.plantio.PlantIO`.

:func:`run_step_test` plays a test plan (deviation inputs per MV and sample, e.g.
from :func:`plant_models.identification.design_experiment`) on the plant's MVs
around their start values, one write per sample time, and logs what happened:
time, the planned, written and held (read-back) MV values, and every CV with
its quality.

CV limits are respected with a guard band: when a CV comes within ``margin``
of a limit (optionally extrapolating its trend ``lookahead_s`` ahead), or its
quality is not GOOD, the test *backs off*: every MV is returned to its start
value and the plan is paused. The plan resumes once every CV has been clear (``resume_margin`` inside its limits, GOOD) for
``resume_samples`` samples, at the next switch of the plan after the
segment that was interrupted (``skip_segment_on_resume``; replaying that
segment would usually drive the CV to the same limit again). The run stops after ``max_samples`` samples even
if the plan is not finished (status :attr:`StepTestStatus.TIMED_OUT`).

On lockstep transports (in-process simulation, HIL lockstep) the plant is
advanced one sample per step; on real-time transports the test waits one
sample time between writes. The result converts to identification data with
:meth:`StepTestData.prepare` or to CSV with :meth:`StepTestData.to_csv`
(readable by :func:`plant_models.identification.read_csv`). An optional
historian (:class:`rtompc.historian.Historian`) gets one row per sample.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from interfaces.plantio import PlantIO, WriteStatus
from plant_models.errors import ConfigError, PlantIOError
from plant_models.identification.data import IdData, prepare
from plant_models.samples import ControlMove, Mode, Quality

_log = logging.getLogger(__name__)


class StepTestStatus(Enum):
    """How a step test ended."""

    COMPLETED = "completed"
    """Every sample of the plan was applied."""
    TIMED_OUT = "timed_out"
    """``max_samples`` reached (too much back-off) before the plan finished."""
    ABORTED = "aborted"
    """The plant refused writes (LOCAL mode, link lost) ``max_write_failures`` times in a row."""


@dataclass(frozen=True)
class CvLimit:
    """Operating limits of one CV during the test (SI); one side may be infinite."""

    name: str
    """Measured signal name (as in :attr:`PlantIO.measurement_names`)."""
    lower: float = -math.inf
    """Lowest acceptable value, SI."""
    upper: float = math.inf
    """Highest acceptable value, SI."""
    margin: float = 0.0
    """Guard band, SI: back off when the CV comes within ``margin`` of a limit."""

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ConfigError(f"step test: CV {self.name!r}: lower {self.lower} >= upper {self.upper}")
        if not (math.isfinite(self.margin) and self.margin >= 0):
            raise ConfigError(f"step test: CV {self.name!r}: margin must be >= 0, got {self.margin}")


@dataclass(frozen=True)
class StepTestSettings:
    """How the plan is applied and guarded."""

    cvs: tuple[str, ...]
    """CVs to record (measured signal names)."""
    limits: tuple[CvLimit, ...] = ()
    """Guarded CV limits (a subset of ``cvs``)."""
    resume_margin_factor: float = 2.0
    """Resume when every CV is ``resume_margin_factor * margin`` inside its limits (>= 1; capped
    at half-way between the guard band and the CV's start value)."""
    resume_samples: int = 3
    """Consecutive clear samples before the plan resumes."""
    lookahead_s: float = 0.0
    """Extrapolate each CV's last change this far ahead when checking the guard band, s."""
    skip_segment_on_resume: bool = True
    """Resume at the next change of the plan rather than inside the interrupted segment."""
    back_off_on_bad_quality: bool = True
    """Treat a guarded CV with non-GOOD quality as near its limit."""
    max_samples: int | None = None
    """Stop after this many samples (None: 3 x the plan length)."""
    max_write_failures: int = 5
    """Abort after this many consecutive refused writes."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cvs", tuple(self.cvs))
        object.__setattr__(self, "limits", tuple(self.limits))
        unknown = [lim.name for lim in self.limits if lim.name not in self.cvs]
        if unknown:
            raise ConfigError(f"step test: limits for {unknown} which are not in cvs {self.cvs}")
        if self.resume_margin_factor < 1.0:
            raise ConfigError(
                f"step test: resume_margin_factor must be >= 1, got {self.resume_margin_factor}"
            )
        if self.resume_samples < 1 or self.max_write_failures < 1:
            raise ConfigError("step test: resume_samples and max_write_failures must be >= 1")
        if not (math.isfinite(self.lookahead_s) and self.lookahead_s >= 0):
            raise ConfigError(f"step test: lookahead_s must be >= 0, got {self.lookahead_s}")


@dataclass(frozen=True)
class StepTestData:
    """What a step test recorded, one row per sample (value before the write of that sample)."""

    t: NDArray[np.float64]
    """Plant time of each sample, s (N,)."""
    mv_names: tuple[str, ...]
    """MV names."""
    cv_names: tuple[str, ...]
    """CV names."""
    u_start: NDArray[np.float64]
    """MV values when the test started, SI (nu,)."""
    u_planned: NDArray[np.float64]
    """Absolute MV values the plan asked for, SI (N, nu)."""
    u_written: NDArray[np.float64]
    """Values written after the transport's limits, SI (N, nu), NaN where not written."""
    u_held: NDArray[np.float64]
    """MV values the plant held during the sample (actuator read-back at the sample's end), SI
    (N, nu)."""
    y: NDArray[np.float64]
    """CV values read at the start of the sample, SI (N, ny)."""
    y_quality: tuple[tuple[Quality, ...], ...]
    """Quality of every CV value, per sample."""
    backing_off: NDArray[np.bool_]
    """True where the test was backed off (MVs returned to the start values) (N,)."""
    status: StepTestStatus
    """How the test ended."""
    plan_samples_done: int
    """Plan position reached (applied plus skipped samples)."""
    plan_samples_skipped: int
    """Plan samples skipped when resuming after a back-off."""
    back_off_events: int
    """Number of times the test backed off."""
    message: str = ""
    """Why the test stopped early, if it did."""
    events: tuple[str, ...] = field(default_factory=tuple)
    """Back-off and resume events with times and the CV that caused them."""

    @property
    def n_samples(self) -> int:
        """Number of recorded samples."""
        return int(self.t.shape[0])

    def prepare(self, **kwargs: Any) -> IdData:
        """Identification data (inputs: held MVs, outputs: CVs); kwargs go to ``prepare``."""
        bad = [i for i, row in enumerate(self.y_quality) if any(q is not Quality.GOOD for q in row)]
        keep = np.setdiff1d(np.arange(self.n_samples), bad)
        if bad:
            _log.warning("step test data: %d samples with non-GOOD CV quality dropped", len(bad))
        return prepare(self.t[keep], self.u_held[keep], self.y[keep], u_names=self.mv_names,
                       y_names=self.cv_names, **kwargs)

    def to_csv(self, path: str | Path) -> Path:
        """Write ``t, <mv>..., <cv>..., quality__<cv>..., backing_off`` as CSV; returns the path."""
        out = Path(path)
        with open(out, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["t", *self.mv_names, *self.cv_names,
                        *(f"quality__{n}" for n in self.cv_names), "backing_off"])
            for k in range(self.n_samples):
                w.writerow([repr(float(self.t[k])), *(repr(float(v)) for v in self.u_held[k]),
                            *(repr(float(v)) for v in self.y[k]),
                            *(q.value for q in self.y_quality[k]), int(self.backing_off[k])])
        return out


class _Recorder(Protocol):
    def append(self, record: Any) -> None: ...


def _guard(settings: StepTestSettings, names: tuple[str, ...], y: NDArray, y_prev: NDArray | None,
           quality: tuple[Quality, ...], dt: float,
           bands: Mapping[str, tuple[float, float]]) -> str:
    """Name and reason of the first guarded CV within its (lower, upper) band of a limit."""
    for lim in settings.limits:
        i = names.index(lim.name)
        if quality[i] is not Quality.GOOD or not math.isfinite(y[i]):
            if settings.back_off_on_bad_quality:
                return f"{lim.name} quality {quality[i].value}"
            continue
        band_lo, band_hi = bands[lim.name]
        values = [y[i]]
        if y_prev is not None and settings.lookahead_s > 0 and math.isfinite(y_prev[i]):
            values.append(y[i] + (y[i] - y_prev[i]) * settings.lookahead_s / dt)
        for v in values:
            if v > lim.upper - band_hi:
                return f"{lim.name}={y[i]:.6g} near upper limit {lim.upper:.6g}"
            if v < lim.lower + band_lo:
                return f"{lim.name}={y[i]:.6g} near lower limit {lim.lower:.6g}"
    return ""


def _resume_bands(settings: StepTestSettings, names: tuple[str, ...],
                  y0: NDArray) -> dict[str, tuple[float, float]]:
    """Resume bands: ``factor * margin``, but at most half-way between the guard band and the
    CV's start value (so a CV that settles back at its start value always clears)."""
    out = {}
    for lim in settings.limits:
        v = y0[names.index(lim.name)]
        sides = []
        for dist in (v - lim.lower, lim.upper - v):
            wide = settings.resume_margin_factor * lim.margin
            if math.isfinite(dist):
                wide = min(wide, 0.5 * (lim.margin + dist))
            sides.append(max(lim.margin, wide))
        out[lim.name] = (sides[0], sides[1])
    return out


async def run_step_test(
    io: PlantIO,
    plan: ArrayLike,
    settings: StepTestSettings,
    *,
    u_start: Mapping[str, float] | None = None,
    historian: _Recorder | None = None,
) -> StepTestData:
    """Apply ``plan`` (deviations, shape (N, n_mv), ordered like ``io.mv_names``) and record.

    The MVs start from ``u_start`` (default: what the plant holds). The PlantIO
    must be connected; the plant is asked for REMOTE mode first. Never raises for
    refused writes: the test aborts with status ABORTED and says why.
    """
    mvs = tuple(io.mv_names)
    dev = np.asarray(plan, dtype=float)
    if dev.ndim == 1 and len(mvs) == 1:
        dev = dev.reshape(-1, 1)
    if dev.ndim != 2 or dev.shape[1] != len(mvs) or dev.shape[0] < 1:
        raise ConfigError(f"step test: plan must have shape (N, {len(mvs)}) for MVs {mvs}, "
                          f"got {dev.shape}")
    if not np.all(np.isfinite(dev)):
        raise ConfigError("step test: plan has NaN/inf values")
    missing = [n for n in settings.cvs if n not in io.measurement_names]
    if missing:
        raise ConfigError(f"step test: CVs {missing} are not measured by the plant I/O "
                          f"(measured: {', '.join(io.measurement_names)})")
    if not io.connected:
        raise PlantIOError("step test: the plant I/O is not connected (use 'async with io')")
    act = await io.read_actuators()
    held0 = np.array([act.values[act.names.index(n)] for n in mvs], dtype=float)
    if u_start is not None:
        unknown = sorted(set(u_start) - set(mvs))
        if unknown:
            raise ConfigError(f"step test: u_start names {unknown} are not MVs {mvs}")
        u0 = np.array([float(u_start.get(n, held0[j])) for j, n in enumerate(mvs)])
    else:
        u0 = held0
    if not np.all(np.isfinite(u0)):
        raise PlantIOError(
            f"step test: start values of the MVs are not known ({dict(zip(mvs, u0, strict=True))})"
        )
    await io.request_mode(remote=True)
    n_plan = dev.shape[0]
    max_samples = settings.max_samples or 3 * n_plan
    dt = io.sample_time_s
    cv_idx = [io.measurement_names.index(n) for n in settings.cvs]
    rows: dict[str, list[Any]] = {k: [] for k in ("t", "plan", "written", "held", "y", "q", "off")}
    events: list[str] = []
    k_plan = 0
    backing = False
    clear_count = 0
    n_events = 0
    skipped = 0
    failures = 0
    y_prev: NDArray | None = None
    status = StepTestStatus.COMPLETED
    message = ""
    guard = {lim.name: (lim.margin, lim.margin) for lim in settings.limits}
    first = await io.read()
    y_first = np.array([first.values[i] for i in cv_idx], dtype=float)
    for lim in settings.limits:
        v = y_first[settings.cvs.index(lim.name)]
        if math.isfinite(v) and not lim.lower + lim.margin < v < lim.upper - lim.margin:
            raise ConfigError(
                f"step test: CV {lim.name!r} starts at {v:.6g}, inside the guard band of its "
                f"limits [{lim.lower:.6g}, {lim.upper:.6g}] (margin {lim.margin:.6g}); move the "
                f"operating point or widen the limits before testing"
            )
    resume = _resume_bands(settings, settings.cvs, y_first)
    sample = 0
    while k_plan < n_plan:
        if sample >= max_samples:
            status = StepTestStatus.TIMED_OUT
            message = (f"stopped after {sample} samples with {k_plan}/{n_plan} plan samples done; "
                       f"widen the CV limits, lower the amplitudes or raise max_samples")
            break
        meas = await io.read()
        y = np.array([meas.values[i] for i in cv_idx], dtype=float)
        q = tuple(meas.quality[i] for i in cv_idx)
        reason = _guard(settings, settings.cvs, y, y_prev, q, dt, guard)
        if not backing and reason:
            backing = True
            n_events += 1
            clear_count = 0
            events.append(f"t={meas.time_s:.6g} s: back off ({reason})")
            _log.info("step test: back off at t=%.1f s: %s", meas.time_s, reason)
        elif backing:
            if _guard(settings, settings.cvs, y, y_prev, q, dt, resume):
                clear_count = 0
            else:
                clear_count += 1
                if clear_count >= settings.resume_samples:
                    backing = False
                    if settings.skip_segment_on_resume:
                        nxt = _next_switch(dev, k_plan)
                        skipped += nxt - k_plan
                        k_plan = nxt
                        if k_plan >= n_plan:
                            break
                    events.append(f"t={meas.time_s:.6g} s: resume at plan sample {k_plan}")
        target = u0.copy() if backing else u0 + dev[k_plan]
        wr = await io.write(ControlMove(time_s=meas.time_s, u=target, names=mvs))
        if wr.status in (WriteStatus.VERIFIED, WriteStatus.MISMATCH):
            failures = 0
        else:
            failures += 1
            if failures >= settings.max_write_failures:
                status = StepTestStatus.ABORTED
                message = f"{failures} writes refused in a row ({wr.status.value}: {wr.message})"
                break
        for key, val in (("t", meas.time_s), ("plan", u0 + dev[k_plan]), ("written", wr.written),
                         ("y", y), ("q", q), ("off", backing)):
            rows[key].append(val)
        if historian is not None:
            _append_history(historian, sample, meas, target, mvs, wr.written, wr.status.value,
                            backing)
        if not backing and wr.status in (WriteStatus.VERIFIED, WriteStatus.MISMATCH):
            k_plan += 1
        y_prev = y
        sample += 1
        if io.lockstep:
            await io.advance(1)
        else:
            await asyncio.sleep(dt)
        # what the plant held over the sample, read at its end (HIL/PLC actuator feedback
        # reports the value applied in the last interval)
        act = await io.read_actuators()
        rows["held"].append(np.array([act.values[act.names.index(n)] for n in mvs], dtype=float))
    # return the MVs to their start values
    await io.write(ControlMove(time_s=float("nan"), u=u0, names=mvs))
    if status is not StepTestStatus.COMPLETED:
        _log.warning("step test %s: %s", status.value, message)
    nu, ny = len(mvs), len(settings.cvs)
    return StepTestData(
        t=np.asarray(rows["t"], dtype=float),
        mv_names=mvs,
        cv_names=settings.cvs,
        u_start=u0,
        u_planned=np.asarray(rows["plan"], dtype=float).reshape(-1, nu),
        u_written=np.asarray(rows["written"], dtype=float).reshape(-1, nu),
        u_held=np.asarray(rows["held"], dtype=float).reshape(-1, nu),
        y=np.asarray(rows["y"], dtype=float).reshape(-1, ny),
        y_quality=tuple(rows["q"]),
        backing_off=np.asarray(rows["off"], dtype=bool),
        status=status,
        plan_samples_done=k_plan,
        plan_samples_skipped=skipped,
        back_off_events=n_events,
        message=message,
        events=tuple(events),
    )


def _next_switch(dev: NDArray, k: int) -> int:
    """First sample after ``k`` where any MV's planned value changes (``len(dev)`` if none)."""
    for j in range(k + 1, len(dev)):
        if np.any(dev[j] != dev[j - 1]):
            return j
    return len(dev)


def _append_history(historian: _Recorder, sample: int, meas: Any, target: NDArray,
                    mvs: Sequence[str], written: NDArray, write_status: str, backing: bool) -> None:
    from rtompc.historian import HistorianRow as CycleRecord

    historian.append(CycleRecord(
        cycle=sample, time_s=meas.time_s, mode=Mode.ON, measurement=meas,
        move=ControlMove(time_s=meas.time_s, u=target, names=tuple(mvs)),
        written=[float(v) for v in written], write_status=write_status,
        message="step test: backing off" if backing else "step test",
        extra={"step_test": True, "backing_off": bool(backing)},
    ))
