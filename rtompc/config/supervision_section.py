"""``[supervision]``: sensor and actuator supervision, every check on by default.

Sensor checks run on each measured output of the estimator before it may correct
the estimate (validity range, Bad status, frozen, stale, rate of change) and the
innovation monitor (CUSUM and windowed NIS on measurement minus prediction, in
units of the declared ``estimator.measurement_std``). Actuator checks compare each
MV's feedback (position / PV, where the tag map has an ``Actuators`` entry) with
the setpoint's expected first-order response. A flagged measurement is left out
of the estimator's update; a stuck MV is taken out of service and the controller
re-plans without it. Entries per measurement (``[[supervision.measurements]]``)
and per MV (``[[supervision.mvs]]``) replace the defaults for that signal::

    [supervision]
    frozen_samples = 10

    [[supervision.measurements]]
    name = "t_r"
    max_rate_per_s = "2 K/min"
    bias_limit = "5 K"

    [[supervision.mvs]]
    name = "q_k"
    time_constant_s = 30.0
    deadband = "50 W"
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationInfo, model_validator

from rtompc.config.fields import (
    Name,
    PositiveSeconds,
    Seconds,
    Section,
    SignalDifference,
    SignalNumber,
    convert_fields,
)


class MeasurementSupervision(Section):
    """Checks of one measured output (every switch on by default)."""

    name: Name
    """Measured output (one of ``estimator.measured``)."""
    range: bool = True
    """Reject values outside ``[lower, upper]``."""
    lower: SignalNumber | None = None
    """Lower validity limit (default: the signal's lower bound)."""
    upper: SignalNumber | None = None
    """Upper validity limit (default: the signal's upper bound)."""
    bad_status: bool = True
    """Reject values whose OPC UA status is Bad (or Uncertain unless accepted)."""
    frozen: bool = True
    """Reject a value unchanged (within ``frozen_tolerance``) over more than
    ``supervision.frozen_samples`` samples."""
    frozen_tolerance: Annotated[SignalDifference, Field(ge=0)] = 0.0
    """Change at or below which the value counts as unchanged (0: bit-identical)."""
    stale: bool = True
    """Reject a value whose source timestamp is older than ``max_age_s``."""
    max_age_s: PositiveSeconds | None = None
    """Staleness limit, seconds (default: 10 sample times)."""
    rate: bool = True
    """Reject a value further from its last good value than ``max_rate_per_s`` allows."""
    max_rate_per_s: Annotated[SignalNumber, Field(gt=0)] | None = None
    """Rate-of-change limit (``"2 K/min"``; default: the signal's span in 2 sample times, a
    gross-error check)."""
    innovation: bool | None = None
    """Innovation monitor on this output (default: on when ``estimator.measurement_std``
    names it; the built-in noise guess would make any model mismatch look like a fault)."""
    bias_limit: Annotated[SignalDifference, Field(gt=0)] | None = None
    """Largest credible estimated output disturbance on this output (catches a drift that an
    offset-free disturbance model absorbs); default: unbounded."""

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict):
            return convert_fields(
                data,
                data.get("name"),
                info,
                {
                    "lower": "value",
                    "upper": "value",
                    "frozen_tolerance": "difference",
                    "max_rate_per_s": "rate",
                    "bias_limit": "difference",
                },
            )
        return data


class MvSupervision(Section):
    """Expected response of one MV's actuator, and what a disagreement does."""

    name: Name
    """MV name."""
    enabled: bool = True
    """Supervise this MV when the plant I/O has actuator feedback for it."""
    time_constant_s: Annotated[Seconds, Field(ge=0)] = 0.0
    """First-order lag of the actuator (position follows setpoint), seconds."""
    deadband: Annotated[SignalDifference, Field(gt=0)] | None = None
    """Largest |position - expected position| that still agrees (default: 1 % of the MV's
    span)."""
    detect_samples: int = Field(default=3, ge=1)
    """Consecutive samples of disagreement before the MV is declared stuck or saturated."""
    take_out_of_service: bool = True
    """Take a stuck MV out of service (held at its position, re-planned without it); move a
    saturated MV's bound to where it tops out."""
    retry_after_s: Annotated[Seconds, Field(ge=0)] = 0.0
    """Return a faulty MV to service on trial after this long, doubling after each relapse;
    0: only the operator returns it."""

    @model_validator(mode="before")
    @classmethod
    def _units(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict):
            return convert_fields(data, data.get("name"), info, {"deadband": "difference"})
        return data


class SupervisionSection(Section):
    """``[supervision]``: sensor and actuator supervision (see :mod:`this module
    <rtompc.config.supervision_section>`); every check is on without the section."""

    sensors: bool = True
    """Master switch of the sensor checks (false: only Bad values are rejected)."""
    accept_uncertain: bool = False
    """Use values of Uncertain OPC UA quality."""
    frozen_samples: int = Field(default=10, ge=1)
    """A value unchanged over more than this many consecutive samples is frozen."""
    cusum_k: float = Field(default=0.5, gt=0)
    """Innovation CUSUM allowance, standard deviations (shifts below it are ignored)."""
    cusum_h: float = Field(default=10.0, gt=0)
    """Innovation CUSUM threshold, standard deviations (in-control run length about 1.4e5
    samples with ``cusum_k`` 0.5; a 2-sigma bias is flagged in about 7 samples)."""
    nis_window: int = Field(default=20, ge=1)
    """Samples in the windowed normalised-innovation-squared test."""
    nis_alpha: float = Field(default=1e-6, gt=0, lt=1)
    """False-alarm probability of the NIS test per full window (chi-square quantile)."""
    clear_samples: int = Field(default=10, ge=1)
    """Consecutive healthy samples (``|innovation| <= clear_band`` std) that clear a flag."""
    clear_band: float = Field(default=2.0, gt=0)
    """Healthy band of the normalised innovation, standard deviations."""
    measurements: list[MeasurementSupervision] = []
    """Per-measurement checks (replace the defaults for that output)."""
    actuators: bool = True
    """Master switch of the actuator checks."""
    mvs: list[MvSupervision] = []
    """Per-MV actuator checks (replace the defaults for that MV)."""
