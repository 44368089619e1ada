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
historian (:class:`rtompc.historian.Historian`) gets one row per sample, with
``extra`` = ``{"step_test": true, "backing_off": ..., "paused": ...,
"plan_sample": k}`` so that back-off segments can be skipped later.

The test is driven like ``rtompc run`` drives a plant: REMOTE is requested
without waiting (asked again every sample until granted; nothing is written and
the plan does not advance meanwhile; a refused write makes it ask again), the heartbeat counter is written every sample (so the
plant's watchdog sees a live controller), and each write's result is checked.
A :class:`StepTestControl` pauses (MVs back to their start values, plan
position frozen), resumes and stops the test from outside (signal handlers,
a keyboard); ``on_sample`` receives a :class:`StepTestProgress` every sample.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from interfaces.plantio import MvWriteStatus, PlantIO, PlantMode, WriteResult, WriteStatus
from plant_models.errors import ConfigError, PlantIOError
from plant_models.samples import ControlMove, Quality
from rtompc.step_types import (
    CvLimit,
    StepTestControl,
    StepTestData,
    StepTestProgress,
    StepTestSettings,
    StepTestStatus,
)

__all__ = [
    "CvLimit",
    "StepTestControl",
    "StepTestData",
    "StepTestProgress",
    "StepTestSettings",
    "StepTestStatus",
    "run_step_test",
]

_log = logging.getLogger(__name__)


class _Recorder(Protocol):
    def append(self, record: Any) -> None: ...


def _guard(
    settings: StepTestSettings,
    names: tuple[str, ...],
    y: NDArray,
    y_prev: NDArray | None,
    quality: tuple[Quality, ...],
    dt: float,
    bands: Mapping[str, tuple[float, float]],
) -> str:
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


def _resume_bands(
    settings: StepTestSettings, names: tuple[str, ...], y0: NDArray
) -> dict[str, tuple[float, float]]:
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
    control: StepTestControl | None = None,
    on_sample: Callable[[StepTestProgress], None] | None = None,
) -> StepTestData:
    """Apply ``plan`` (deviations, shape (N, n_mv), ordered like ``io.mv_names``) and record.

    The MVs start from ``u_start`` (default: what the plant holds). The PlantIO
    must be connected. Never raises for refused writes: the test aborts with
    status ABORTED and says why. Whatever the ending (also an exception or a
    cancellation), the MVs are written back to their start values.
    """
    mvs = tuple(io.mv_names)
    dev = np.asarray(plan, dtype=float)
    if dev.ndim == 1 and len(mvs) == 1:
        dev = dev.reshape(-1, 1)
    if dev.ndim != 2 or dev.shape[1] != len(mvs) or dev.shape[0] < 1:
        raise ConfigError(
            f"step test: plan must have shape (N, {len(mvs)}) for MVs {mvs}, got {dev.shape}"
        )
    if not np.all(np.isfinite(dev)):
        raise ConfigError("step test: plan has NaN/inf values")
    missing = [n for n in settings.cvs if n not in io.measurement_names]
    if missing:
        raise ConfigError(
            f"step test: CVs {missing} are not measured by the plant I/O "
            f"(measured: {', '.join(io.measurement_names)})"
        )
    if not io.connected:
        raise PlantIOError("step test: the plant I/O is not connected (use 'async with io')")
    # start values: the setpoints in force (a lagging actuator may still be on its way there)
    act = await io.read_setpoints()
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
    first = await io.read()
    cv_idx = [io.measurement_names.index(n) for n in settings.cvs]
    y_first = np.array([first.values[i] for i in cv_idx], dtype=float)
    for lim in settings.limits:
        v = y_first[settings.cvs.index(lim.name)]
        if math.isfinite(v) and not lim.lower + lim.margin < v < lim.upper - lim.margin:
            raise ConfigError(
                f"step test: CV {lim.name!r} starts at {v:.6g}, inside the guard band of its "
                f"limits [{lim.lower:.6g}, {lim.upper:.6g}] (margin {lim.margin:.6g}); move the "
                f"operating point or widen the limits before testing"
            )
    run = _Run(
        io,
        dev,
        settings,
        u0,
        mvs,
        cv_idx,
        historian,
        control or StepTestControl(),
        on_sample,
        _resume_bands(settings, settings.cvs, y_first),
        first.time_s,
    )
    try:
        await run.loop()
    finally:
        problem = await _return_to_start(io, u0, mvs)
        if problem:
            run.events.append(problem)
            run.message = f"{run.message}; {problem}" if run.message else problem
    if run.status is not StepTestStatus.COMPLETED:
        _log.warning("step test %s: %s", run.status.value, run.message)
    return run.data()


async def _return_to_start(io: PlantIO, u0: NDArray, mvs: tuple[str, ...]) -> str:
    """Write the start values (asking for REMOTE again and retrying up to 3 times when the
    plant refuses); "" when done, else what went wrong. Never raises."""
    why = ""
    for attempt in range(3):
        try:
            if attempt:
                await io.request_mode(remote=True)
            wr = await io.write(ControlMove(time_s=math.nan, u=u0, names=mvs))
            if wr.status in (WriteStatus.VERIFIED, WriteStatus.MISMATCH):
                return ""
            why = f"{wr.status.value}: {wr.message}"
        except Exception as exc:  # noqa: BLE001 - report, never mask the original error
            why = str(exc)
        await asyncio.sleep(min(1.0, io.sample_time_s))
    _log.error("step test: MVs could not be returned to their start values: %s", why)
    return (
        f"MVs NOT returned to their start values {dict(zip(mvs, u0.tolist(), strict=True))}: {why}"
    )


class _Run:
    """State of one step test (the loop of :func:`run_step_test`)."""

    def __init__(
        self,
        io: PlantIO,
        dev: NDArray,
        settings: StepTestSettings,
        u0: NDArray,
        mvs: tuple[str, ...],
        cv_idx: list[int],
        historian: _Recorder | None,
        control: StepTestControl,
        on_sample: Callable[[StepTestProgress], None] | None,
        resume: dict[str, tuple[float, float]],
        t_start: float,
    ) -> None:
        self.io, self.dev, self.settings, self.u0, self.mvs = io, dev, settings, u0, mvs
        self.cv_idx, self.historian, self.control, self.on_sample = (
            cv_idx,
            historian,
            control,
            on_sample,
        )
        self.resume, self.t_start = resume, t_start
        self.guard = {lim.name: (lim.margin, lim.margin) for lim in settings.limits}
        self.rows: dict[str, list[Any]] = {
            k: [] for k in ("t", "plan", "written", "held", "y", "q", "off", "paused")
        }
        self.events: list[str] = []
        self.k_plan = self.sample = self.n_events = self.skipped = self.failures = 0
        self.backing = False
        self.clear_count = 0
        self.y_prev: NDArray | None = None
        self.remote = False
        self.status = StepTestStatus.COMPLETED
        self.message = ""

    async def loop(self) -> None:
        n_plan = self.dev.shape[0]
        max_samples = self.settings.max_samples or 3 * n_plan
        while self.k_plan < n_plan:
            if self.control.stop_reason:
                self.status, self.message = StepTestStatus.STOPPED, self.control.stop_reason
                break
            if self.sample >= max_samples:
                self.status = StepTestStatus.TIMED_OUT
                self.message = (
                    f"stopped after {self.sample} samples with {self.k_plan}/{n_plan} plan "
                    f"samples done; widen the CV limits, lower the amplitudes or raise max_samples"
                )
                break
            try:
                if not await self.step():
                    break
            except PlantIOError as exc:  # link lost mid-sample: retry, abort when it persists
                self.failures += 1
                self.remote = False
                self.events.append(f"sample {self.sample}: plant I/O failed ({exc})")
                _log.warning("step test: plant I/O failed (%d in a row): %s", self.failures, exc)
                if self.failures >= self.settings.max_write_failures:
                    self.status = StepTestStatus.ABORTED
                    self.message = f"plant I/O failed {self.failures} times in a row: {exc}"
                    break
                await asyncio.sleep(min(1.0, self.io.sample_time_s))

    async def step(self) -> bool:
        """One sample; False when the test must end (plan done after a skip, or aborted)."""
        io, settings = self.io, self.settings
        n_plan = self.dev.shape[0]
        meas = await io.read()
        y = np.array([meas.values[i] for i in self.cv_idx], dtype=float)
        q = tuple(meas.quality[i] for i in self.cv_idx)
        event = ""
        reason = _guard(settings, settings.cvs, y, self.y_prev, q, io.sample_time_s, self.guard)
        if not self.backing and reason:
            self.backing = True
            self.n_events += 1
            self.clear_count = 0
            event = f"t={meas.time_s:.6g} s: back off ({reason})"
            _log.info("step test: back off at t=%.1f s: %s", meas.time_s, reason)
        elif self.backing:
            if _guard(settings, settings.cvs, y, self.y_prev, q, io.sample_time_s, self.resume):
                self.clear_count = 0
            else:
                self.clear_count += 1
                if self.clear_count >= settings.resume_samples:
                    self.backing = False
                    if settings.skip_segment_on_resume:
                        nxt = _next_switch(self.dev, self.k_plan)
                        self.skipped += nxt - self.k_plan
                        self.k_plan = nxt
                        if self.k_plan >= n_plan:
                            return False
                    event = f"t={meas.time_s:.6g} s: resume at plan sample {self.k_plan}"
        if event:
            self.events.append(event)
        if not self.remote:
            self.remote = await io.request_mode(remote=True) is PlantMode.REMOTE
        paused = self.control.paused
        hold = self.backing or paused or not self.remote
        target = self.u0.copy() if hold else self.u0 + self.dev[self.k_plan]
        if self.remote:
            wr = await io.write(ControlMove(time_s=meas.time_s, u=target, names=self.mvs))
        else:  # a plant in LOCAL refuses writes: do not send any, ask for REMOTE next sample
            wr = _not_written(meas.time_s, self.mvs, target)
        accepted = wr.status in (WriteStatus.VERIFIED, WriteStatus.MISMATCH)
        if accepted:
            self.failures = 0
        else:
            self.remote = False  # ask again next sample (LOCAL, link lost)
            self.failures += 1
            if self.failures >= settings.max_write_failures:
                self.status = StepTestStatus.ABORTED
                self.message = (
                    f"{self.failures} samples in a row without an accepted write "
                    f"({wr.status.value}: {wr.message})"
                )
                return False
        await io.heartbeat((self.sample + 1) % 2**32)
        row = {
            "t": meas.time_s,
            "plan": self.u0 + self.dev[self.k_plan],
            "written": wr.written,
            "y": y,
            "q": q,
            "off": self.backing,
            "paused": paused,
        }
        if self.historian is not None:
            _append_history(
                self.historian,
                self.sample,
                meas,
                target,
                self.mvs,
                wr,
                self.backing,
                paused,
                self.k_plan,
            )
        if not hold and accepted:
            self.k_plan += 1
        self.y_prev = y
        self.sample += 1
        if io.lockstep:
            await io.advance(1)
        else:
            await asyncio.sleep(io.sample_time_s)
        # what the plant held over the sample, read at its end (HIL/PLC actuator feedback
        # reports the value applied in the last interval)
        act = await io.read_actuators()
        row["held"] = np.array([act.values[act.names.index(n)] for n in self.mvs], dtype=float)
        for key, val in row.items():  # a sample counts once it is complete
            self.rows[key].append(val)
        if self.on_sample is not None:
            self.on_sample(
                StepTestProgress(
                    sample=self.sample,
                    plan_samples_done=self.k_plan,
                    plan_samples=n_plan,
                    elapsed_s=meas.time_s + io.sample_time_s - self.t_start,
                    remaining_s=(n_plan - self.k_plan) * io.sample_time_s,
                    back_offs=self.n_events,
                    backing_off=self.backing,
                    paused=paused,
                    write_status=wr.status.value,
                    event=event,
                )
            )
        return True

    def data(self) -> StepTestData:
        nu, ny = len(self.mvs), len(self.settings.cvs)
        rows = self.rows
        n = len(rows["held"])
        return StepTestData(
            t=np.asarray(rows["t"][:n], dtype=float),
            mv_names=self.mvs,
            cv_names=self.settings.cvs,
            u_start=self.u0,
            u_planned=np.asarray(rows["plan"][:n], dtype=float).reshape(-1, nu),
            u_written=np.asarray(rows["written"][:n], dtype=float).reshape(-1, nu),
            u_held=np.asarray(rows["held"], dtype=float).reshape(-1, nu),
            y=np.asarray(rows["y"][:n], dtype=float).reshape(-1, ny),
            y_quality=tuple(rows["q"][:n]),
            backing_off=np.asarray(rows["off"][:n], dtype=bool),
            paused=np.asarray(rows["paused"][:n], dtype=bool),
            status=self.status,
            plan_samples_done=self.k_plan,
            plan_samples_skipped=self.skipped,
            back_off_events=self.n_events,
            message=self.message,
            events=tuple(self.events),
        )


def _next_switch(dev: NDArray, k: int) -> int:
    """First sample after ``k`` where any MV's planned value changes (``len(dev)`` if none)."""
    for j in range(k + 1, len(dev)):
        if np.any(dev[j] != dev[j - 1]):
            return j
    return len(dev)


def _not_written(time_s: float, mvs: tuple[str, ...], target: NDArray) -> WriteResult:
    nan = np.full(len(mvs), np.nan)
    return WriteResult(
        time_s=time_s,
        names=mvs,
        status=WriteStatus.REJECTED,
        requested=target.copy(),
        written=nan,
        readback=nan.copy(),
        message="not written: the plant has not granted REMOTE (asked again every sample)",
        mv_status=tuple(MvWriteStatus.NOT_WRITTEN for _ in mvs),
    )


def _append_history(
    historian: _Recorder,
    sample: int,
    meas: Any,
    target: NDArray,
    mvs: Sequence[str],
    wr: WriteResult,
    backing: bool,
    paused: bool,
    plan_sample: int,
) -> None:
    from rtompc.historian import HistorianRow

    state = "backing off" if backing else "paused" if paused else "running"
    historian.append(
        HistorianRow(
            cycle=sample,
            time_s=meas.time_s,
            mode="steptest",
            measurement=meas,
            move=ControlMove(time_s=meas.time_s, u=target, names=tuple(mvs)),
            requested=[float(v) for v in wr.requested],
            written=[float(v) for v in wr.written],
            readback=[float(v) for v in wr.readback],
            mv_status=[m.value for m in wr.mv_status],
            write_status="not_remote" if wr.message.startswith("not written") else wr.status.value,
            message=f"step test: {state}",
            extra={
                "step_test": True,
                "backing_off": bool(backing),
                "paused": bool(paused),
                "plan_sample": int(plan_sample),
            },
        )
    )
