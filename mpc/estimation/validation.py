"""Measurement validation before each estimator update.

Owns the checks that decide which measured signals an estimator may use in one
update, and why the others are rejected: non-finite values, values outside
per-signal validity limits, frozen values (unchanged, within a tolerance, for
longer than a time and/or a number of samples), stale values (source timestamp
too old), changes faster than a per-signal rate of change, and Bad/Uncertain
OPC UA quality. Every check can be switched off per signal. The result is a frozen
:class:`ValidationReport` a runtime can log; the :class:`MeasurementValidator`
keeps the per-signal history the frozen check needs (one instance per loop).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from plant_models.errors import ConfigError, ModelError
from plant_models.samples import Measurement, Quality
from plant_models.signals import SignalSet

logger = logging.getLogger(__name__)


class RejectReason(Enum):
    """Why a measured signal was not used in an update."""

    MISSING = "missing"
    """The signal was expected but is not in the measurement."""
    NOT_FINITE = "not_finite"
    """The value is NaN or infinite."""
    BELOW_LIMIT = "below_limit"
    """The value is below the signal's lower validity limit."""
    ABOVE_LIMIT = "above_limit"
    """The value is above the signal's upper validity limit."""
    FROZEN = "frozen"
    """The value has not changed (within tolerance) for too long."""
    STALE = "stale"
    """The source timestamp is older than the allowed age."""
    BAD_QUALITY = "bad_quality"
    """The OPC UA quality is Bad."""
    UNCERTAIN_QUALITY = "uncertain_quality"
    """The OPC UA quality is Uncertain and Uncertain values are not accepted."""
    RATE_OF_CHANGE = "rate_of_change"
    """The value moved faster than the signal's rate-of-change limit since its last good value."""
    INNOVATION = "innovation"
    """Measurement minus prediction is statistically wrong (bias or drift; see
    :mod:`mpc.estimation.innovation`)."""
    BIAS_LIMIT = "bias_limit"
    """The estimated output disturbance of the signal is beyond its configured bound."""


@dataclass(frozen=True)
class ValidationConfig:
    """Settings of the measurement checks (all times in seconds, values in SI)."""

    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Validity limits ``{name: (lower, upper)}``; signals not listed are not range-checked
    (see :func:`limits_from_signals` to take them from signal bounds)."""
    accept_uncertain: bool = False
    """Use values of Uncertain quality (True) or reject them (False). Bad is always rejected."""
    max_age_s: float | None = None
    """Reject a value whose source timestamp is older than this (None: no staleness check)."""
    frozen_time_s: float | None = None
    """Reject a value unchanged for longer than this many seconds (None: no time criterion)."""
    frozen_samples: int | None = None
    """Reject a value unchanged over more than this many consecutive samples (None: no
    sample-count criterion)."""
    frozen_tolerance: float = 0.0
    """Absolute change (SI) at or below which a value counts as unchanged, for every signal
    without an entry in ``frozen_tolerances``."""
    frozen_tolerances: Mapping[str, float] = field(default_factory=dict)
    """Per-signal absolute frozen tolerance overriding ``frozen_tolerance``."""
    frozen_exempt: tuple[str, ...] = ()
    """Signals never checked for freezing (e.g. values that are legitimately constant)."""
    max_ages_s: Mapping[str, float] = field(default_factory=dict)
    """Per-signal maximum source-timestamp age (seconds) overriding ``max_age_s``."""
    stale_exempt: tuple[str, ...] = ()
    """Signals never checked for staleness (e.g. a server that stamps values only on change)."""
    max_rate_per_s: Mapping[str, float] = field(default_factory=dict)
    """Rate-of-change limits ``{name: SI unit per second}``: a value further from the signal's
    last good value than ``rate * elapsed time`` is rejected; signals not listed are not
    checked."""
    quality_exempt: tuple[str, ...] = ()
    """Signals whose OPC UA quality is not checked (their values are still range-checked)."""

    def __post_init__(self) -> None:
        limits: dict[str, tuple[float, float]] = {}
        for name, pair in dict(self.limits).items():
            try:
                lo, hi = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"ValidationConfig.limits[{name!r}]: expected (lower, upper) numbers, "
                    f"got {pair!r}"
                ) from None
            if math.isnan(lo) or math.isnan(hi) or lo > hi:
                raise ConfigError(
                    f"ValidationConfig.limits[{name!r}]: expected lower <= upper, got ({lo}, {hi})"
                )
            limits[name] = (lo, hi)
        object.__setattr__(self, "limits", limits)
        for fname in ("max_age_s", "frozen_time_s"):
            value = getattr(self, fname)
            if value is not None and not (
                isinstance(value, int | float) and value > 0 and math.isfinite(value)
            ):
                raise ConfigError(
                    f"ValidationConfig.{fname}: expected a positive finite number of seconds "
                    f"or None, got {value!r}"
                )
        if self.frozen_samples is not None and (
            isinstance(self.frozen_samples, bool)
            or not isinstance(self.frozen_samples, int)
            or self.frozen_samples < 1
        ):
            raise ConfigError(
                f"ValidationConfig.frozen_samples: expected an integer >= 1 or None, "
                f"got {self.frozen_samples!r}"
            )
        if not (
            isinstance(self.frozen_tolerance, int | float)
            and math.isfinite(self.frozen_tolerance)
            and self.frozen_tolerance >= 0
        ):
            raise ConfigError(
                f"ValidationConfig.frozen_tolerance: expected a finite number >= 0, "
                f"got {self.frozen_tolerance!r}"
            )
        tols = {}
        for name, tol in dict(self.frozen_tolerances).items():
            if not (isinstance(tol, int | float) and math.isfinite(tol) and tol >= 0):
                raise ConfigError(
                    f"ValidationConfig.frozen_tolerances[{name!r}]: expected a finite number "
                    f">= 0, got {tol!r}"
                )
            tols[name] = float(tol)
        object.__setattr__(self, "frozen_tolerances", tols)
        object.__setattr__(self, "frozen_exempt", tuple(self.frozen_exempt))
        for fname in ("max_ages_s", "max_rate_per_s"):
            checked = {}
            for name, val in dict(getattr(self, fname)).items():
                if not (
                    isinstance(val, int | float)
                    and not isinstance(val, bool)
                    and math.isfinite(val)
                    and val > 0
                ):
                    raise ConfigError(
                        f"ValidationConfig.{fname}[{name!r}]: expected a positive finite "
                        f"number, got {val!r}"
                    )
                checked[str(name)] = float(val)
            object.__setattr__(self, fname, checked)
        object.__setattr__(self, "stale_exempt", tuple(self.stale_exempt))
        object.__setattr__(self, "quality_exempt", tuple(self.quality_exempt))
        if not isinstance(self.accept_uncertain, bool):
            raise ConfigError(
                f"ValidationConfig.accept_uncertain: expected True or False, "
                f"got {self.accept_uncertain!r}"
            )

    @property
    def checks_frozen(self) -> bool:
        """True when a frozen criterion (time or samples) is configured."""
        return self.frozen_time_s is not None or self.frozen_samples is not None


def limits_from_signals(*sets: SignalSet) -> dict[str, tuple[float, float]]:
    """Validity limits taken from the bounds of the given signal sets (first set wins)."""
    out: dict[str, tuple[float, float]] = {}
    for sset in sets:
        for s in sset:
            out.setdefault(s.name, (s.lower, s.upper))
    return out


@dataclass(frozen=True)
class Rejection:
    """One rejected signal of one update."""

    name: str
    """Signal name."""
    reasons: tuple[RejectReason, ...]
    """Every check that failed, in check order."""
    value: float
    """The value that was rejected (NaN when missing)."""
    detail: str
    """Human-readable explanation for logs (limits, ages, durations)."""


@dataclass(frozen=True)
class ValidationReport:
    """Outcome of validating one measurement."""

    time_s: float
    """Time of the measurement."""
    accepted: tuple[str, ...]
    """Signals that passed every check, in the order they were requested."""
    rejected: tuple[Rejection, ...]
    """Signals that failed at least one check."""

    @property
    def rejected_names(self) -> tuple[str, ...]:
        """Names of the rejected signals."""
        return tuple(r.name for r in self.rejected)

    def reasons(self, name: str) -> tuple[RejectReason, ...]:
        """Reasons a signal was rejected (empty when accepted or not checked)."""
        for r in self.rejected:
            if r.name == name:
                return r.reasons
        return ()

    def describe(self) -> str:
        """One line for a log: accepted and rejected signals with reasons."""
        rej = "; ".join(f"{r.name}: {r.detail}" for r in self.rejected) or "none"
        return f"t={self.time_s:g} s accepted [{', '.join(self.accepted)}] rejected [{rej}]"


@dataclass
class _FrozenTrack:
    value: float
    since_s: float
    count: int


@dataclass
class _GoodValue:
    value: float
    time_s: float


class MeasurementValidator:
    """Stateful validator: call :meth:`validate` once per measurement, in time order."""

    def __init__(self, config: ValidationConfig | None = None) -> None:
        self.config = config if config is not None else ValidationConfig()
        self._tracks: dict[str, _FrozenTrack] = {}
        self._good: dict[str, _GoodValue] = {}

    def reset(self) -> None:
        """Forget the frozen-value and last-good-value history (e.g. after a reconnect)."""
        self._tracks.clear()
        self._good.clear()

    def validate(
        self, measurement: Measurement, names: Iterable[str] | None = None
    ) -> ValidationReport:
        """Check the named signals (default: all in the measurement) and return the report.

        Raises :class:`ModelError` only for a malformed measurement (lengths that do not
        match its names); bad values are reported, never raised.
        """
        m = measurement
        n = len(m.names)
        values = np.asarray(m.values, dtype=float).reshape(-1)
        if values.shape != (n,) or len(m.quality) != n:
            raise ModelError(
                f"measurement at t={m.time_s}: {n} names but {values.size} values and "
                f"{len(m.quality)} qualities"
            )
        src = np.asarray(m.source_time_s, dtype=float).reshape(-1)
        if src.size not in (0, n):
            raise ModelError(
                f"measurement at t={m.time_s}: {n} names but {src.size} source timestamps"
            )
        wanted = tuple(m.names) if names is None else tuple(names)
        index = {name: i for i, name in enumerate(m.names)}
        cfg = self.config
        accepted: list[str] = []
        rejected: list[Rejection] = []
        for name in wanted:
            i = index.get(name)
            if i is None:
                rejected.append(
                    Rejection(
                        name, (RejectReason.MISSING,), math.nan, "missing from the measurement"
                    )
                )
                continue
            value = float(values[i])
            reasons: list[RejectReason] = []
            details: list[str] = []
            quality = m.quality[i] if name not in cfg.quality_exempt else Quality.GOOD
            if quality is Quality.BAD:
                reasons.append(RejectReason.BAD_QUALITY)
                details.append("quality Bad")
            elif quality is Quality.UNCERTAIN and not cfg.accept_uncertain:
                reasons.append(RejectReason.UNCERTAIN_QUALITY)
                details.append("quality Uncertain")
            if not math.isfinite(value):
                reasons.append(RejectReason.NOT_FINITE)
                details.append(f"value {value}")
            else:
                lim = cfg.limits.get(name)
                if lim is not None and value < lim[0]:
                    reasons.append(RejectReason.BELOW_LIMIT)
                    details.append(f"value {value:g} below limit {lim[0]:g}")
                elif lim is not None and value > lim[1]:
                    reasons.append(RejectReason.ABOVE_LIMIT)
                    details.append(f"value {value:g} above limit {lim[1]:g}")
                frozen = self._frozen(name, value, m.time_s)
                if frozen:
                    reasons.append(RejectReason.FROZEN)
                    details.append(frozen)
                jump = self._rate(name, value, float(m.time_s))
                if jump:
                    reasons.append(RejectReason.RATE_OF_CHANGE)
                    details.append(jump)
            max_age = cfg.max_ages_s.get(name, cfg.max_age_s)
            if max_age is not None and src.size and name not in cfg.stale_exempt:
                age = float(m.time_s - src[i])
                if not math.isfinite(age) or age > max_age:
                    reasons.append(RejectReason.STALE)
                    details.append(f"source timestamp {age:g} s old (max {max_age:g} s)")
            if reasons:
                rejected.append(Rejection(name, tuple(reasons), value, ", ".join(details)))
            else:
                accepted.append(name)
                self._good[name] = _GoodValue(value, float(m.time_s))
        report = ValidationReport(
            time_s=float(m.time_s), accepted=tuple(accepted), rejected=tuple(rejected)
        )
        if rejected:  # the runtime logs flag changes; every cycle's detail is for debugging
            logger.debug("measurement validation: %s", report.describe())
        return report

    def _rate(self, name: str, value: float, time_s: float) -> str:
        """A reason text when ``value`` is further from the last good value than the rate allows."""
        rate = self.config.max_rate_per_s.get(name)
        last = self._good.get(name)
        if rate is None or last is None:
            return ""
        elapsed = time_s - last.time_s
        if elapsed <= 0:
            return ""
        change = abs(value - last.value)
        if change > rate * elapsed:
            return (
                f"changed {change:g} in {elapsed:g} s since its last good value "
                f"(max {rate:g} per s)"
            )
        return ""

    def _frozen(self, name: str, value: float, time_s: float) -> str:
        """Update the history of ``name``; return a reason text when it is frozen."""
        cfg = self.config
        if not cfg.checks_frozen or name in cfg.frozen_exempt:
            return ""
        tol = cfg.frozen_tolerances.get(name, cfg.frozen_tolerance)
        track = self._tracks.get(name)
        if track is None or abs(value - track.value) > tol:
            self._tracks[name] = _FrozenTrack(value=value, since_s=float(time_s), count=1)
            return ""
        track.count += 1
        duration = float(time_s) - track.since_s
        if cfg.frozen_time_s is not None and duration > cfg.frozen_time_s:
            return f"unchanged for {duration:g} s (max {cfg.frozen_time_s:g} s)"
        if cfg.frozen_samples is not None and track.count > cfg.frozen_samples:
            return f"unchanged over {track.count} samples (max {cfg.frozen_samples})"
        return ""
