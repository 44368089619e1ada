"""Quality of a value read from a plant: OPC UA status, NaN, validity limits, staleness.

One function, :func:`assess`, decides the :class:`~plant_models.samples.Quality`
of a raw value and says why, so no value enters the engine silently:

- the OPC UA status code's severity (bits 31-30: Good / Uncertain / Bad);
- a missing, non-numeric or non-finite value is ``BAD``;
- a value outside the tag's validity limits is ``BAD``;
- a value whose source timestamp is older than ``stale_after_s`` (measured on
  the server's own clock when it sends one, so clock skew between client and
  server does not matter) is at best ``UNCERTAIN``.

The worst of these wins.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from plant_models.samples import Quality

_RANK = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}


class Issue(Enum):
    """Why a value is not GOOD."""

    STATUS_BAD = "status_bad"
    STATUS_UNCERTAIN = "status_uncertain"
    NO_VALUE = "no_value"
    NOT_FINITE = "not_finite"
    OUT_OF_VALIDITY = "out_of_validity"
    STALE = "stale"
    NOT_CONNECTED = "not_connected"


@dataclass(frozen=True)
class Assessment:
    """Quality of one value and the reasons for it."""

    quality: Quality
    """Worst quality found."""
    value: float
    """The value in SI (NaN when missing or not numeric)."""
    issues: tuple[Issue, ...] = ()
    """Every reason the value is not GOOD (empty when GOOD)."""


def severity(status_code: int) -> Quality:
    """Quality class of an OPC UA status code (Part 4, 7.34.1: bits 31-30)."""
    sev = (int(status_code) >> 30) & 0b11
    if sev == 0:
        return Quality.GOOD
    if sev == 1:
        return Quality.UNCERTAIN
    return Quality.BAD


def worst(*qualities: Quality) -> Quality:
    """The worst of several qualities."""
    return max(qualities, key=_RANK.__getitem__, default=Quality.GOOD)


def assess(
    raw: object,
    status_code: int,
    *,
    to_model: Callable[[float], float] = float,
    lower: float = -math.inf,
    upper: float = math.inf,
    age_s: float | None = None,
    stale_after_s: float | None = None,
) -> Assessment:
    """Quality of one raw value; ``to_model`` converts the raw number to SI."""
    issues: list[Issue] = []
    quality = severity(status_code)
    if quality is Quality.BAD:
        issues.append(Issue.STATUS_BAD)
    elif quality is Quality.UNCERTAIN:
        issues.append(Issue.STATUS_UNCERTAIN)
    value = math.nan
    if raw is None or isinstance(raw, bool | str | bytes):
        issues.append(Issue.NO_VALUE)
        quality = Quality.BAD
    else:
        try:
            value = float(to_model(float(raw)))  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            issues.append(Issue.NO_VALUE)
            quality = Quality.BAD
        else:
            if not math.isfinite(value):
                issues.append(Issue.NOT_FINITE)
                quality = Quality.BAD
            elif not lower <= value <= upper:
                issues.append(Issue.OUT_OF_VALIDITY)
                quality = Quality.BAD
    if stale_after_s is not None and age_s is not None and age_s > stale_after_s:
        issues.append(Issue.STALE)
        quality = worst(quality, Quality.UNCERTAIN)
    return Assessment(quality, value, tuple(issues))
