"""Faults of the HIL plant, scheduled by simulation time.

A :class:`Fault` is a frozen description (kind, signal, start, duration,
magnitude); a :class:`FaultInjector` owns the mutable bookkeeping: which
faults are active, the value a frozen sensor holds, and the log of every
start and end with its simulation time. Faults come from a TOML scenario file
(:func:`load_faults`) or from Python (:meth:`FaultInjector.add`).

Sensor faults act on Measurements (y and d signals): ``freeze`` holds the value
at onset, ``bias`` adds ``magnitude``, ``drift`` adds ``magnitude`` per second
since onset, ``spike`` adds ``magnitude`` while active (one sample when
``duration_s`` is 0), ``bad_status`` keeps the value but reports ``status``
(e.g. ``BadSensorFailure``). ``actuator_stuck`` freezes an Actuator. Server
faults are carried out by the server: ``server_pause`` stops answering clients
for ``duration_s`` wall-clock seconds, ``drop_connections`` closes every client
connection.

TOML scenario file::

    [[fault]]
    kind = "bias"            # freeze|bias|drift|spike|bad_status|actuator_stuck|
    signal = "t_r"           #   server_pause|drop_connections
    start_s = 600.0          # simulation time
    duration_s = 300.0       # omit for a permanent fault
    magnitude = 2.0          # bias/spike: SI units; drift: SI units per second
    status = "BadSensorFailure"   # bad_status only
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import ConfigError

_log = logging.getLogger(__name__)

STATUS_CODES: dict[str, int] = {
    "Good": 0x00000000,
    "UncertainLastUsableValue": 0x40900000,
    "UncertainSensorNotAccurate": 0x40930000,
    "UncertainEngineeringUnitsExceeded": 0x40940000,
    "UncertainSubNormal": 0x40950000,
    "BadConfigurationError": 0x80890000,
    "BadNotConnected": 0x808A0000,
    "BadDeviceFailure": 0x808B0000,
    "BadSensorFailure": 0x808C0000,
    "BadOutOfService": 0x808D0000,
    "BadCommunicationError": 0x80050000,
    "BadNoCommunication": 0x80310000,
    "BadWaitingForInitialData": 0x80320000,
}
"""OPC UA status codes (Part 4, 7.34 / Part 8) a ``bad_status`` fault may report, by name."""


class FaultKind(Enum):
    """What a fault does."""

    FREEZE = "freeze"
    BIAS = "bias"
    DRIFT = "drift"
    SPIKE = "spike"
    BAD_STATUS = "bad_status"
    ACTUATOR_STUCK = "actuator_stuck"
    SERVER_PAUSE = "server_pause"
    DROP_CONNECTIONS = "drop_connections"

    @property
    def is_sensor(self) -> bool:
        """True for faults that act on a Measurement."""
        return self in _SENSOR

    @property
    def is_server(self) -> bool:
        """True for faults the OPC UA server carries out."""
        return self in (FaultKind.SERVER_PAUSE, FaultKind.DROP_CONNECTIONS)


_SENSOR = {FaultKind.FREEZE, FaultKind.BIAS, FaultKind.DRIFT, FaultKind.SPIKE, FaultKind.BAD_STATUS}


@dataclass(frozen=True)
class Fault:
    """One scheduled fault."""

    kind: FaultKind
    """What the fault does."""
    start_s: float
    """Simulation time at which it starts, seconds (acts from the first sample at or after it)."""
    signal: str | None = None
    """Measurement (sensor faults) or MV (actuator_stuck) it acts on; None for server faults."""
    duration_s: float | None = None
    """How long it lasts: simulation seconds, except ``server_pause`` (wall-clock seconds);
    None: permanent (required for ``server_pause``); 0: one sample."""
    magnitude: float = 0.0
    """Bias or spike height (SI unit of the signal), or drift rate (SI unit per second)."""
    status: str = "BadSensorFailure"
    """Status code name reported by ``bad_status`` (a key of :data:`STATUS_CODES`)."""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", FaultKind(self.kind))
        except ValueError:
            raise ConfigError(
                f"fault kind {self.kind!r}: expected one of {[k.value for k in FaultKind]}"
            ) from None
        label = f"fault {self.kind.value} on {self.signal or 'server'}"
        start = float(self.start_s)
        if not (math.isfinite(start) and start >= 0):
            raise ConfigError(f"{label}: start_s must be finite and >= 0, got {self.start_s}")
        object.__setattr__(self, "start_s", start)
        if self.duration_s is not None:
            dur = float(self.duration_s)
            if not (math.isfinite(dur) and dur >= 0):
                raise ConfigError(f"{label}: duration_s must be finite and >= 0, got {dur}")
            object.__setattr__(self, "duration_s", dur)
        mag = float(self.magnitude)
        if not math.isfinite(mag):
            raise ConfigError(f"{label}: magnitude must be finite, got {self.magnitude}")
        object.__setattr__(self, "magnitude", mag)
        if self.kind.is_server:
            if self.signal is not None:
                raise ConfigError(f"{label}: server faults take no signal")
            if self.kind is FaultKind.SERVER_PAUSE and self.duration_s is None:
                raise ConfigError(f"{label}: server_pause needs duration_s (wall-clock seconds)")
        elif not self.signal:
            raise ConfigError(f"fault {self.kind.value}: needs a signal")
        if self.status not in STATUS_CODES:
            raise ConfigError(
                f"{label}: unknown status {self.status!r}; known: {', '.join(STATUS_CODES)}"
            )

    def active(self, t: float) -> bool:
        """True when the fault acts at simulation time ``t`` (server_pause: at onset only)."""
        if t < self.start_s:
            return False
        if self.duration_s is None or self.duration_s == 0 or self.kind.is_server:
            return True  # a zero duration lasts one sample: the injector ends it
        return t < self.start_s + self.duration_s

    def describe(self) -> str:
        """One-line description for logs."""
        parts = [self.kind.value]
        if self.signal:
            parts.append(f"on {self.signal}")
        if self.kind in (FaultKind.BIAS, FaultKind.DRIFT, FaultKind.SPIKE):
            parts.append(f"magnitude {self.magnitude:g}")
        if self.kind is FaultKind.BAD_STATUS:
            parts.append(f"status {self.status}")
        if self.duration_s is not None:
            unit = "s wall" if self.kind is FaultKind.SERVER_PAUSE else "s"
            parts.append(f"for {self.duration_s:g} {unit}")
        return " ".join(parts)


@dataclass(frozen=True)
class FaultEvent:
    """A fault starting or ending, with its simulation time (the fault log)."""

    time_s: float
    """Simulation time of the event, seconds."""
    fault: Fault
    """The fault."""
    started: bool
    """True at onset, False at the end."""


def load_faults(path: str | Path) -> tuple[Fault, ...]:
    """Read faults from a TOML scenario file (``[[fault]]`` tables, see module docstring)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: fault scenario file does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_faults(data.get("fault", []), f"{path}: fault")


def parse_faults(tables: Sequence[Mapping[str, Any]], where: str = "fault") -> tuple[Fault, ...]:
    """Faults from a list of TOML tables; errors name ``where[i].key``."""
    if not isinstance(tables, Sequence):
        raise ConfigError(f"{where}: expected an array of tables ([[fault]])")
    allowed = {"kind", "signal", "start_s", "duration_s", "magnitude", "status"}
    out = []
    for i, table in enumerate(tables):
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}[{i}]: expected a table")
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise ConfigError(
                f"{where}[{i}]: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        for key in ("kind", "start_s"):
            if key not in table:
                raise ConfigError(f"{where}[{i}].{key}: required")
        try:
            out.append(Fault(**dict(table)))
        except ConfigError as exc:
            raise ConfigError(f"{where}[{i}]: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}[{i}]: {exc}") from None
    return tuple(out)


class FaultInjector:
    """Applies scheduled faults to measurements and actuators; keeps the fault log.

    Not thread-safe: the simulator calls it from its step, under its lock.
    """

    def __init__(
        self,
        measurement_names: Sequence[str],
        mv_names: Sequence[str],
        faults: Iterable[Fault] = (),
    ) -> None:
        self._meas = {n: i for i, n in enumerate(measurement_names)}
        self._mvs = {n: i for i, n in enumerate(mv_names)}
        self._faults: list[Fault] = []
        self._active: set[int] = set()
        self._ended: set[int] = set()
        self._frozen: dict[int, float] = {}
        self.log: list[FaultEvent] = []
        """Every fault start and end, in order, with its simulation time."""
        for fault in faults:
            self.add(fault)

    @property
    def faults(self) -> tuple[Fault, ...]:
        """All faults known to the injector."""
        return tuple(self._faults)

    def add(self, fault: Fault) -> None:
        """Schedule a fault (validated against the plant's signal names)."""
        if fault.kind.is_sensor and fault.signal not in self._meas:
            raise ConfigError(
                f"fault {fault.kind.value}: {fault.signal!r} is not a measurement; known: "
                f"{', '.join(self._meas)}"
            )
        if fault.kind is FaultKind.ACTUATOR_STUCK and fault.signal not in self._mvs:
            raise ConfigError(
                f"fault actuator_stuck: {fault.signal!r} is not an MV; known: {', '.join(self._mvs)}"
            )
        self._faults.append(fault)

    def update(self, t: float) -> list[Fault]:
        """Advance the schedule to simulation time ``t``; returns server faults starting now."""
        started_server = []
        for i, fault in enumerate(self._faults):
            if i in self._ended:
                continue
            on = fault.active(t) and not (i in self._active and fault.duration_s == 0)
            if on and i not in self._active:
                self._active.add(i)
                self.log.append(FaultEvent(t, fault, True))
                _log.warning("fault start at sim time %.3f s: %s", t, fault.describe())
                if fault.kind.is_server:
                    started_server.append(fault)
                    self._active.discard(i)
                    self._ended.add(i)
            elif not on and i in self._active:
                self._active.discard(i)
                self._ended.add(i)
                self._frozen.pop(i, None)
                self.log.append(FaultEvent(t, fault, False))
                _log.warning("fault end at sim time %.3f s: %s", t, fault.describe())
        return started_server

    def stuck(self) -> NDArray[np.bool_]:
        """Which MVs are stuck now."""
        out = np.zeros(len(self._mvs), dtype=bool)
        for i in self._active:
            fault = self._faults[i]
            if fault.kind is FaultKind.ACTUATOR_STUCK:
                out[self._mvs[fault.signal or ""]] = True
        return out

    def apply(
        self, t: float, values: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], tuple[int, ...]]:
        """Faulty measurements and per-signal status codes at time ``t`` (after :meth:`update`)."""
        out = np.array(values, dtype=float)
        status = [0] * len(out)
        for i in sorted(self._active):
            fault = self._faults[i]
            if not fault.kind.is_sensor:
                continue
            j = self._meas[fault.signal or ""]
            if fault.kind is FaultKind.FREEZE:
                out[j] = self._frozen.setdefault(i, float(values[j]))
            elif fault.kind in (FaultKind.BIAS, FaultKind.SPIKE):
                out[j] += fault.magnitude
            elif fault.kind is FaultKind.DRIFT:
                out[j] += fault.magnitude * (t - fault.start_s)
            elif fault.kind is FaultKind.BAD_STATUS:
                status[j] = STATUS_CODES[fault.status]
        return out, tuple(status)
