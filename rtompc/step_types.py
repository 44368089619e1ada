"""The vocabulary of a step test: settings, CV limits, status, progress, control and the record.

:mod:`rtompc.step_test` runs a test with these; they are re-exported there.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import ConfigError
from plant_models.identification.data import IdData, prepare
from plant_models.samples import Quality

_log = logging.getLogger(__name__)


class StepTestStatus(Enum):
    """How a step test ended."""

    COMPLETED = "completed"
    """Every sample of the plan was applied."""
    TIMED_OUT = "timed_out"
    """``max_samples`` reached (too much back-off) before the plan finished."""
    ABORTED = "aborted"
    """The plant refused writes (LOCAL mode, link lost) ``max_write_failures`` times in a row."""
    STOPPED = "stopped"
    """Stopped from outside (:meth:`StepTestControl.stop`, e.g. Ctrl-C)."""


class StepTestControl:
    """Pause, resume and stop a running step test (call from the event loop's thread)."""

    def __init__(self) -> None:
        self.paused = False
        """The plan is frozen and the MVs are held at their start values."""
        self.stop_reason = ""
        """Why the test was stopped ("" while running)."""

    def pause(self) -> None:
        """Freeze the plan and return the MVs to their start values from the next sample."""
        self.paused = True

    def resume(self) -> None:
        """Continue the plan where it was paused."""
        self.paused = False

    def stop(self, reason: str = "stopped by the operator") -> None:
        """End the test after the current sample; the MVs return to their start values."""
        self.stop_reason = reason or "stopped"


@dataclass(frozen=True)
class StepTestProgress:
    """Where a running step test is (given to ``on_sample`` after every sample)."""

    sample: int
    """Samples done."""
    plan_samples_done: int
    """Plan position (applied plus skipped samples)."""
    plan_samples: int
    """Plan length, samples."""
    elapsed_s: float
    """Plant time since the start, s."""
    remaining_s: float
    """Plan time left, s (not counting future back-offs)."""
    back_offs: int
    """Back-offs so far."""
    backing_off: bool
    """Backed off now."""
    paused: bool
    """Paused now."""
    write_status: str
    """Outcome of this sample's write."""
    event: str = ""
    """Back-off / resume / pause event of this sample, if any."""


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
            raise ConfigError(
                f"step test: CV {self.name!r}: lower {self.lower} >= upper {self.upper}"
            )
        if not (math.isfinite(self.margin) and self.margin >= 0):
            raise ConfigError(
                f"step test: CV {self.name!r}: margin must be >= 0, got {self.margin}"
            )


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
    paused: NDArray[np.bool_]
    """True where the test was paused from outside (MVs at the start values) (N,)."""
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
        return prepare(
            self.t[keep],
            self.u_held[keep],
            self.y[keep],
            u_names=self.mv_names,
            y_names=self.cv_names,
            **kwargs,
        )

    def to_csv(self, path: str | Path) -> Path:
        """Write ``t, <mv>..., <cv>..., quality__<cv>..., backing_off`` as CSV; returns the path."""
        out = Path(path)
        with open(out, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(
                [
                    "t",
                    *self.mv_names,
                    *self.cv_names,
                    *(f"quality__{n}" for n in self.cv_names),
                    "backing_off",
                ]
            )
            for k in range(self.n_samples):
                w.writerow(
                    [
                        repr(float(self.t[k])),
                        *(repr(float(v)) for v in self.u_held[k]),
                        *(repr(float(v)) for v in self.y[k]),
                        *(q.value for q in self.y_quality[k]),
                        int(self.backing_off[k]),
                    ]
                )
        return out
