"""Actuator supervision: compare actuator feedback with the setpoint's expected response.

Owns :class:`ActuatorSupervisor`, one per control loop. Each cycle, for every MV
whose plant I/O has actuator feedback (position / PV, not the setpoint's
read-back), it advances the expected position through a first-order lag toward
the setpoint the plant held over the last period, and compares it with the
feedback read now. A disagreement beyond the deadband over ``detect_samples``
consecutive samples declares the MV

- ``saturated`` when the feedback moved toward the setpoint (by more than the
  deadband) within the detection window and then stopped short of it: the
  actuator works but tops out there, so the MV stays in service with its bound on
  the setpoint's side moved to the position;
- ``stuck`` when the feedback did not move over the window: the MV goes out of
  service, held (setpoint tracking the position, so a freed actuator does not
  jump) and left out of the plan.

The supervisor only judges while the loop owns the setpoint (ON mode, last write
accepted); otherwise it re-synchronises its expectation with the feedback. The
measured positions go to the estimator instead of the commanded values. A
faulty MV returns to service by the operator (:meth:`return_to_service`) or, if
configured, on trial after ``retry_after_s`` (doubling after each relapse).
State changes are logged once and reported as events; flags (``q_k:stuck``) are
reported every cycle while they hold.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from plant_models.model import PlantModel
from plant_models.samples import Measurement, Quality
from rtompc.supervision.settings import DEFAULT_DEADBAND_FRACTION, ActuatorSupervision

logger = logging.getLogger(__name__)


class MvHealth(Enum):
    """Health of one MV's actuator as judged from its feedback."""

    OK = "ok"
    """Feedback follows the setpoint (or the MV is not judged now)."""
    STUCK = "stuck"
    """Feedback does not follow the setpoint: out of service, held at its position."""
    SATURATED = "saturated"
    """Feedback moved, then stopped short of the setpoint: that side's bound is moved to the
    position."""
    NO_FEEDBACK = "no_feedback"
    """No actuator feedback for this MV (tag map has none): not supervised."""


@dataclass(frozen=True)
class ActuatorReport:
    """What the supervisor concluded in one cycle."""

    u_measured: NDArray[np.float64]
    """Feedback per MV, SI (NaN where none or not Good)."""
    u_estimator: NDArray[np.float64]
    """Input for the estimator: the measured position where valid, else the setpoint held."""
    health: tuple[MvHealth, ...]
    """Per MV health after this cycle."""
    bounds: dict[str, tuple[float, float]]
    """Restricted MV bounds the controller must plan with (empty: none)."""
    in_service: NDArray[np.bool_]
    """Per MV: False when taken out of service by the supervisor."""
    events: tuple[str, ...] = ()
    """State changes this cycle (one line each)."""
    flags: tuple[str, ...] = ()
    """``mv:health`` for every MV not OK."""
    changed: bool = False
    """True when ``bounds`` or ``in_service`` changed this cycle (the controller re-plans)."""


@dataclass
class _Track:
    expected: float = math.nan
    bad: int = 0
    health: MvHealth = MvHealth.OK
    since_s: float = 0.0
    retry_s: float = 0.0
    bound: tuple[float, float] | None = None
    recent: deque[tuple[float, float]] = field(default_factory=deque)
    """(time, feedback) of the last samples, oldest first, over the detection window."""


class ActuatorSupervisor:
    """Per-MV actuator checks of one loop (stateful; call :meth:`observe` once per cycle)."""

    def __init__(
        self,
        model: PlantModel,
        sample_time_s: float,
        settings: ActuatorSupervision,
        feedback: Sequence[str],
    ) -> None:
        self.model = model
        self.settings = settings
        self._dt = float(sample_time_s)
        names = model.u.names
        self._supervised = np.array(
            [settings.enabled and n in feedback and settings.check(n).enabled for n in names]
        )
        self._deadband = np.array(
            [
                settings.check(n).deadband
                if settings.check(n).deadband is not None
                else DEFAULT_DEADBAND_FRACTION * (model.u[n].upper - model.u[n].lower)
                for n in names
            ],
            dtype=float,
        )
        tau = np.array([settings.check(n).time_constant_s for n in names], dtype=float)
        self._alpha = np.where(tau > 0, 1.0 - np.exp(-self._dt / np.where(tau > 0, tau, 1.0)), 1.0)
        self._tracks = [_Track() for _ in names]
        self._feedback = tuple(n for n in names if n in feedback)

    @property
    def feedback(self) -> tuple[str, ...]:
        """MVs with actuator feedback (read each cycle)."""
        return self._feedback

    @property
    def active(self) -> bool:
        """True when at least one MV is supervised."""
        return bool(self._supervised.any())

    def health(self, name: str) -> MvHealth:
        """Current health of MV ``name``."""
        i = self.model.u.index(name)
        return self._tracks[i].health if self._supervised[i] else MvHealth.NO_FEEDBACK

    def return_to_service(self, name: str, time_s: float = 0.0) -> bool:
        """Operator request: clear a stuck/saturated MV (True when it was faulty)."""
        i = self.model.u.index(name)
        t = self._tracks[i]
        if t.health is MvHealth.OK:
            return False
        self._tracks[i] = _Track(expected=math.nan)
        logger.warning("%s: returned to service by request at t=%g s", name, time_s)
        return True

    def observe(
        self,
        time_s: float,
        setpoint_held: NDArray[np.float64],
        feedback: Measurement | None,
        judged: bool,
    ) -> ActuatorReport:
        """Judge one cycle.

        ``setpoint_held`` is what the plant held over the last period (SI, model order);
        ``feedback`` the actuator read (None when not read); ``judged`` is True when the
        loop wrote the setpoints the plant held (ON mode, write accepted last cycle).
        """
        names = self.model.u.names
        nu = len(names)
        u_meas = np.full(nu, np.nan)
        if feedback is not None:
            for i, n in enumerate(names):
                if n in feedback.names:
                    j = feedback.names.index(n)
                    v = float(feedback.values[j])
                    if feedback.quality[j] is Quality.GOOD and math.isfinite(v):
                        u_meas[i] = v
        events: list[str] = []
        changed = False
        for i, n in enumerate(names):
            if not self._supervised[i] or not math.isfinite(u_meas[i]):
                continue
            t = self._tracks[i]
            sp = float(setpoint_held[i])
            fb = float(u_meas[i])
            t.recent.append((time_s, fb))
            window = (self.settings.check(n).detect_samples + 2) * self._dt
            while t.recent and time_s - t.recent[0][0] > window + 1e-9 * self._dt:
                t.recent.popleft()
            if not (judged and math.isfinite(sp) and math.isfinite(t.expected)):
                t.expected, t.bad = fb, 0
                continue
            t.expected += self._alpha[i] * (sp - t.expected)
            miss = fb - t.expected
            if t.health is not MvHealth.OK:
                changed |= self._maybe_retry(i, n, time_s, events)
                t.expected = fb
                continue
            if abs(miss) <= self._deadband[i]:
                t.bad = 0
                continue
            t.bad += 1
            if t.bad < self.settings.check(n).detect_samples:
                continue
            changed |= self._declare(i, n, time_s, sp, fb, miss, events)
            t.expected = fb
        health = tuple(
            t.health if self._supervised[i] else MvHealth.NO_FEEDBACK
            for i, t in enumerate(self._tracks)
        )
        held = np.asarray(setpoint_held, dtype=float)
        u_est = np.where(np.isfinite(u_meas), u_meas, held)
        bounds = {names[i]: t.bound for i, t in enumerate(self._tracks) if t.bound is not None}
        in_service = np.array([t.health is not MvHealth.STUCK for t in self._tracks])
        flags = tuple(
            f"{names[i]}:{h.value}"
            for i, h in enumerate(health)
            if h in (MvHealth.STUCK, MvHealth.SATURATED)
        )
        return ActuatorReport(
            u_meas, u_est, health, bounds, in_service, tuple(events), flags, changed
        )

    def _declare(
        self,
        i: int,
        name: str,
        time_s: float,
        sp: float,
        fb: float,
        miss: float,
        events: list[str],
    ) -> bool:
        t = self._tracks[i]
        sig = self.model.u[name]
        check = self.settings.check(name)
        db = self._deadband[i]
        # Saturated only if the feedback made headway toward the setpoint within the window;
        # movement away from it (still settling toward an earlier setpoint when it stuck)
        # is no sign of a working actuator.
        toward = math.copysign(1.0, sp - fb)
        progress = max(((fb - f) * toward for _, f in t.recent), default=0.0)
        alive = progress > db
        at_upper = alive and miss < 0  # asked higher than it goes
        at_lower = alive and miss > 0
        span = f"{t.bad} samples ({t.bad * self._dt:g} s)"
        base = (
            f"{name}: actuator feedback {fb:.6g} does not follow setpoint {sp:.6g} "
            f"(expected {fb - miss:.6g}, deadband {db:.3g}) for {span}"
        )
        if at_upper or at_lower:
            t.health = MvHealth.SATURATED
            lo, hi = (sig.lower, fb) if at_upper else (fb, sig.upper)
            t.bound = (lo, hi) if check.take_out_of_service else None
            action = (
                f"; bound restricted to [{lo:.6g}, {hi:.6g}]"
                if t.bound
                else "; left in service (take_out_of_service = false)"
            )
            text = f"{base}: SATURATED{action}"
        else:
            t.health = MvHealth.STUCK
            t.bound = (fb, fb) if check.take_out_of_service else None
            action = (
                "; taken out of service, held at its position, re-planning without it"
                if t.bound
                else "; left in service (take_out_of_service = false)"
            )
            text = f"{base}: STUCK{action}"
        t.since_s = time_s
        t.retry_s = check.retry_after_s if not t.retry_s else 2 * t.retry_s
        t.bad = 0
        logger.warning("t=%g s %s", time_s, text)
        events.append(text)
        if not check.take_out_of_service:
            t.bound = None
            return False
        return True

    def _maybe_retry(self, i: int, name: str, time_s: float, events: list[str]) -> bool:
        t = self._tracks[i]
        if t.retry_s <= 0 or time_s - t.since_s < t.retry_s:
            return False
        text = (
            f"{name}: {t.health.value} for {time_s - t.since_s:g} s: back in service on trial "
            f"(next trial after {2 * t.retry_s:g} s if it fails again)"
        )
        retry = t.retry_s
        self._tracks[i] = _Track(expected=math.nan, retry_s=retry)
        logger.warning("t=%g s %s", time_s, text)
        events.append(text)
        return True
