"""LiveParameters: the one model of what may change while the loop runs.

Controller: ``mode_request`` (off/shadow/on, operator), ``mode`` (actual,
read-only, set by the loop), ``rto_enable`` (operator).

Each CV (``cv.<name>.<field>``): ``low``/``high`` (operator limits, soft, must lie
inside ``validity_low``/``validity_high``), ``setpoint`` (operator, inside the
validity limits), ``zone_low``/``zone_high`` (operator, only for a CV configured
with a zone), ``weight`` (engineer), ``validity_low``/``validity_high`` (engineer,
must contain the operator limits), ``in_service`` (operator).

Each MV (``mv.<name>.<field>``): ``low``/``high`` (operator, inside the
configured MV bounds), ``rate`` (max rate of change per second, > 0, operator),
``in_service`` (operator).

:meth:`LiveParameters.submit` validates a change (key, type, role, range and the
controller configuration it would give) and either refuses it
(:class:`~rtompc.live.types.LiveChangeRefused`) or records it as the requested
value and queues it. The control loop takes the queue at the start of its next
cycle (:meth:`take_pending`); nothing changes in the middle of a cycle. Every
submission, accepted or refused, goes to the journal callback (the historian's
``journal`` table, :mod:`rtompc.historian.journal`).

Thread-safe: OPC UA handlers, a web server and the loop may call it from
different threads.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mpc.config import MpcConfig
from plant_models.errors import ConfigError
from plant_models.model import PlantModel
from plant_models.samples import Mode
from rtompc.live.config import controller_config
from rtompc.live.types import LiveChange, LiveChangeRefused, Refusal, Role, Source, check_key

logger = logging.getLogger(__name__)

Value = float | bool | Mode | None
Journal = Callable[[LiveChange], None]


@dataclass(frozen=True)
class FieldSpec:
    """What one field accepts."""

    kind: type
    """float, bool or Mode."""
    role: Role | None
    """Lowest role that may write it (None: read-only)."""
    nullable: bool = False
    """Whether None (no setpoint) is accepted."""


CONTROLLER_FIELDS: dict[str, FieldSpec] = {
    "mode_request": FieldSpec(Mode, Role.OPERATOR),
    "mode": FieldSpec(Mode, None),
    "rto_enable": FieldSpec(bool, Role.OPERATOR),
}
CV_FIELDS: dict[str, FieldSpec] = {
    "low": FieldSpec(float, Role.OPERATOR),
    "high": FieldSpec(float, Role.OPERATOR),
    "setpoint": FieldSpec(float, Role.OPERATOR, nullable=True),
    "zone_low": FieldSpec(float, Role.OPERATOR),
    "zone_high": FieldSpec(float, Role.OPERATOR),
    "weight": FieldSpec(float, Role.ENGINEER),
    "validity_low": FieldSpec(float, Role.ENGINEER),
    "validity_high": FieldSpec(float, Role.ENGINEER),
    "in_service": FieldSpec(bool, Role.OPERATOR),
}
MV_FIELDS: dict[str, FieldSpec] = {
    "low": FieldSpec(float, Role.OPERATOR),
    "high": FieldSpec(float, Role.OPERATOR),
    "rate": FieldSpec(float, Role.OPERATOR, nullable=True),
    "in_service": FieldSpec(bool, Role.OPERATOR),
}


def _initial(model: PlantModel, config: MpcConfig, mode: Mode, rto: bool) -> dict[str, Value]:
    values: dict[str, Value] = {
        "controller.mode_request": mode,
        "controller.mode": mode,
        "controller.rto_enable": rto,
    }
    for c in config.cvs:
        sig = model.y[c.name]
        k = f"cv.{c.name}."
        values[k + "validity_low"] = float(sig.lower)
        values[k + "validity_high"] = float(sig.upper)
        values[k + "low"] = c.lower
        values[k + "high"] = c.upper
        values[k + "setpoint"] = c.target
        if c.zone is not None:
            values[k + "zone_low"], values[k + "zone_high"] = c.zone
        values[k + "weight"] = c.weight
        values[k + "in_service"] = True
    for name in model.u.names:
        m = config.mv(name)
        k = f"mv.{name}."
        lo = m.lower if m is not None and m.lower is not None else model.u[name].lower
        hi = m.upper if m is not None and m.upper is not None else model.u[name].upper
        values[k + "low"], values[k + "high"] = float(lo), float(hi)
        values[k + "rate"] = m.max_rate_per_s if m is not None else None
        values[k + "in_service"] = True
    return values


class LiveParameters:
    """Requested values of every live parameter, a queue of accepted changes, a journal."""

    def __init__(
        self,
        model: PlantModel,
        config: MpcConfig,
        *,
        mode: Mode = Mode.ON,
        rto_enable: bool = True,
        journal: Journal | None = None,
    ) -> None:
        self.model = model
        self.base_config = config
        """The controller configuration at start (live changes are applied on top of it)."""
        self.journal = journal
        """Called with every submission (accepted or refused); never lets an error out."""
        self._values = _initial(model, config, mode, rto_enable)
        self._mv_bounds = {
            n: (_f(self._values, f"mv.{n}.low", 0.0), _f(self._values, f"mv.{n}.high", 0.0))
            for n in model.u.names
        }
        self._pending: list[LiveChange] = []
        self._lock = threading.Lock()

    # reading ---------------------------------------------------------------------------
    def value(self, key: str) -> Value:
        """The requested (latest accepted) value of ``key``."""
        with self._lock:
            if key not in self._values:
                raise LiveChangeRefused(key, Refusal.UNKNOWN, "no such live parameter")
            return self._values[key]

    def snapshot(self) -> dict[str, Value]:
        """All parameters and their requested values."""
        with self._lock:
            return dict(self._values)

    def keys(self) -> list[str]:
        """Every parameter key."""
        return list(self._values)

    @staticmethod
    def field_spec(key: str) -> FieldSpec:
        """What ``key``'s field accepts (LiveChangeRefused when unknown)."""
        group, _, fld = check_key(key)
        table = {"controller": CONTROLLER_FIELDS, "cv": CV_FIELDS, "mv": MV_FIELDS}[group]
        if fld not in table:
            raise LiveChangeRefused(key, Refusal.UNKNOWN, f"unknown field; known {sorted(table)}")
        return table[fld]

    def mv_validity(self, name: str) -> tuple[float, float]:
        """The configured bounds an MV's operator limits must lie in."""
        return self._mv_bounds[name]

    # writing ---------------------------------------------------------------------------
    def submit(
        self,
        key: str,
        value: object,
        *,
        role: Role,
        user: str = "",
        source: Source = Source.API,
    ) -> LiveChange:
        """Validate and queue one change; raises LiveChangeRefused (journaled) when refused."""
        now = time.time()
        with self._lock:
            old = self._values.get(key)
            try:
                new = self._validate(key, value, role)
            except LiveChangeRefused as exc:
                change = LiveChange(
                    key,
                    old,
                    value,
                    user or source.value,
                    role,
                    source,
                    now,
                    f"refused: {exc.reason.value}: {exc}",
                )
                self._journal(change)
                logger.info("live change refused (%s, %s): %s", user, source.value, exc)
                raise
            self._values[key] = new
            change = LiveChange(key, old, new, user or source.value, role, source, now)
            self._pending.append(change)
        self._journal(change)
        logger.info(
            "live change %s: %r -> %r (%s as %s, %s)",
            key,
            old,
            new,
            change.user,
            role.value,
            source.value,
        )
        return change

    def set_actual(self, key: str, value: Value) -> None:
        """The loop reports an actual (read-only) value, e.g. ``controller.mode``."""
        with self._lock:
            self._values[key] = value

    def take_pending(self) -> list[LiveChange]:
        """The accepted changes since the last call (the loop, at the start of a cycle)."""
        with self._lock:
            out, self._pending = self._pending, []
        return out

    def _journal(self, change: LiveChange) -> None:
        if self.journal is None:
            return
        try:
            self.journal(change)
        except Exception as exc:  # noqa: BLE001 - the journal must not stop a change or the loop
            logger.error("journal write failed for %s: %s", change.key, exc)

    # validation ------------------------------------------------------------------------
    def _validate(self, key: str, value: object, role: Role) -> Value:
        if key not in self._values:
            self.field_spec(key)  # names an unknown field precisely
            raise LiveChangeRefused(key, Refusal.UNKNOWN, "no such signal configured")
        spec = self.field_spec(key)
        if spec.role is None:
            raise LiveChangeRefused(key, Refusal.READ_ONLY, "reported by the loop, not settable")
        if role.rank < spec.role.rank:
            raise LiveChangeRefused(
                key, Refusal.ROLE, f"needs role {spec.role.value}, user has {role.value}"
            )
        new = _coerce(key, value, spec)
        candidate = {**self._values, key: new}
        _check_ranges(key, candidate, self._mv_bounds)
        try:
            controller_config(self.base_config, candidate)
        except ConfigError as exc:
            raise LiveChangeRefused(
                key, Refusal.RANGE, f"the controller cannot take it: {exc}"
            ) from None
        return new


def _coerce(key: str, value: object, spec: FieldSpec) -> Value:
    if value is None and spec.nullable:
        return None
    if spec.kind is Mode:
        if isinstance(value, Mode):
            return value
        if isinstance(value, str) and value.lower() in {m.value for m in Mode}:
            return Mode(value.lower())
        raise LiveChangeRefused(key, Refusal.TYPE, f"expected off/shadow/on, got {value!r}")
    if spec.kind is bool:
        if isinstance(value, bool):
            return value
        raise LiveChangeRefused(key, Refusal.TYPE, f"expected a boolean, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LiveChangeRefused(key, Refusal.TYPE, f"expected a number, got {value!r}")
    out = float(value)
    if math.isnan(out):
        raise LiveChangeRefused(key, Refusal.RANGE, "is NaN")
    return out


def _f(values: Mapping[str, Value], key: str, default: float) -> float:
    v = values.get(key)
    return default if v is None or isinstance(v, Mode) else float(v)


def _check_ranges(
    key: str, values: Mapping[str, Value], mv_bounds: Mapping[str, tuple[float, float]]
) -> None:
    """Range rules of the group ``key`` belongs to, on the candidate ``values``."""
    group, name, fld = check_key(key)
    if group == "cv":
        k = f"cv.{name}."
        vlo, vhi = (
            _f(values, k + "validity_low", -math.inf),
            _f(values, k + "validity_high", math.inf),
        )
        lo, hi = _f(values, k + "low", -math.inf), _f(values, k + "high", math.inf)
        if vlo > vhi:
            raise LiveChangeRefused(key, Refusal.RANGE, f"validity low {vlo} above high {vhi}")
        if lo > hi:
            raise LiveChangeRefused(key, Refusal.RANGE, f"low limit {lo} above high limit {hi}")
        # a finite operator limit lies inside the validity limits (infinite: no operator limit)
        if (math.isfinite(lo) and not vlo <= lo <= vhi) or (
            math.isfinite(hi) and not vlo <= hi <= vhi
        ):
            raise LiveChangeRefused(
                key,
                Refusal.RANGE,
                f"operator limits [{lo}, {hi}] outside the validity limits [{vlo}, {vhi}]",
            )
        sp = values.get(k + "setpoint")
        if fld == "setpoint" and isinstance(sp, float) and not vlo <= sp <= vhi:
            raise LiveChangeRefused(
                key, Refusal.RANGE, f"setpoint {sp} outside the validity limits [{vlo}, {vhi}]"
            )
        if fld == "weight" and _f(values, key, 0.0) < 0:
            raise LiveChangeRefused(key, Refusal.RANGE, "weight must be >= 0")
    elif group == "mv":
        k = f"mv.{name}."
        blo, bhi = mv_bounds[name]
        lo, hi = _f(values, k + "low", blo), _f(values, k + "high", bhi)
        if lo > hi:
            raise LiveChangeRefused(key, Refusal.RANGE, f"low limit {lo} above high limit {hi}")
        if lo < blo or hi > bhi:
            raise LiveChangeRefused(
                key, Refusal.RANGE, f"limits [{lo}, {hi}] outside the MV bounds [{blo}, {bhi}]"
            )
        rate = values.get(k + "rate")
        if fld == "rate" and rate is not None and not (isinstance(rate, float) and rate > 0):
            raise LiveChangeRefused(key, Refusal.RANGE, f"rate must be > 0, got {rate}")
