"""Tag maps: model signal <-> OPC UA node, engineering units, direction, validity limits.

A :class:`TagMap` says where each model signal lives on the plant: nodes are
named by namespace URI plus identifier (the index is resolved at connect, never
assumed), each tag carries the unit of the raw value and its affine conversion
to the model's SI unit, and read tags carry validity limits (SI) outside which a
value is flagged ``BAD``. Three groups of tags exist: ``measurements`` (read:
outputs y and measured disturbances d), ``actuators`` (read: the MV values the
plant holds) and ``setpoints`` (write: one per MV), plus optional status nodes
(heartbeat, mode handshake, plant clock, lockstep method).

:meth:`TagMap.for_hil` derives the map of the rtompc HIL address space
(namespace ``urn:rtompc:hil``); :meth:`TagMap.from_mapping` reads one from the
``[transport.tags]`` table of an application config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from interfaces.units import Conversion, conversion
from plant_models.errors import ConfigError
from plant_models.model import PlantModel
from plant_models.signals import Signal

HIL_NAMESPACE_URI = "urn:rtompc:hil"
"""Namespace URI of the rtompc HIL server's address space."""


class IdType(Enum):
    """OPC UA NodeId identifier types, by their string prefix."""

    STRING = "s"
    NUMERIC = "i"
    GUID = "g"
    OPAQUE = "b"


class Direction(Enum):
    """Whether the engine reads or writes a tag."""

    READ = "read"
    WRITE = "write"


class TagGroup(Enum):
    """What a tag is for."""

    MEASUREMENT = "measurements"
    """Read: a measured output (y) or measured disturbance (d)."""
    ACTUATOR = "actuators"
    """Read: the value an MV actually has on the plant (bumpless re-initialisation)."""
    SETPOINT = "setpoints"
    """Write: the MV setpoint sent by the controller."""

    @property
    def direction(self) -> Direction:
        """Read for measurements and actuators, write for setpoints."""
        return Direction.WRITE if self is TagGroup.SETPOINT else Direction.READ


@dataclass(frozen=True)
class NodeRef:
    """A node named by namespace URI and identifier (index resolved at connect)."""

    namespace_uri: str
    """Namespace URI, e.g. ``urn:rtompc:hil`` or ``http://opcfoundation.org/UA/``."""
    identifier: str
    """Identifier text without the type prefix, e.g. ``van_de_vusse.Measurements.c_a``."""
    id_type: IdType = IdType.STRING
    """Identifier type (string, numeric, guid, opaque)."""

    def __post_init__(self) -> None:
        if not self.namespace_uri:
            raise ConfigError(f"node {self.identifier!r}: namespace URI must not be empty")
        if self.id_type is IdType.NUMERIC and not self.identifier.isdigit():
            raise ConfigError(f"node 'i={self.identifier}': a numeric identifier must be digits")

    @classmethod
    def parse(cls, text: str, namespace_uri: str, *, where: str = "node") -> NodeRef:
        """Parse ``"s=..."``, ``"i=123"``, ``"g=..."``, ``"b=..."`` (bare text: string id).

        A leading ``ns=<index>;`` is refused: namespaces are named by URI.
        """
        if not isinstance(text, str) or not text:
            raise ConfigError(
                f"{where}: expected a node identifier like 's=Tank.Level', got {text!r}"
            )
        if text.startswith(("ns=", "nsu=")):
            raise ConfigError(
                f"{where}: {text!r} names a namespace index; give the identifier only "
                "(e.g. 's=Tank.Level') and the namespace URI in 'namespace'"
            )
        prefix, sep, rest = text.partition("=")
        if sep and prefix in {t.value for t in IdType}:
            return cls(namespace_uri, rest, IdType(prefix))
        return cls(namespace_uri, text, IdType.STRING)

    def nodeid_string(self, ns_index: int) -> str:
        """The NodeId string for a resolved namespace index, e.g. ``ns=2;s=plant.x``."""
        return f"ns={ns_index};{self.id_type.value}={self.identifier}"

    def __str__(self) -> str:
        return f"nsu={self.namespace_uri};{self.id_type.value}={self.identifier}"


@dataclass(frozen=True)
class Tag:
    """One model signal on the plant."""

    signal: str
    """Model signal name."""
    node: NodeRef
    """Where it lives."""
    group: TagGroup
    """Measurement, actuator or setpoint."""
    unit: str
    """Unit of the raw value on the plant (engineering unit)."""
    model_unit: str
    """Unit of the model signal (SI)."""
    lower: float = -math.inf
    """Validity limit (SI): a read value below it is flagged BAD."""
    upper: float = math.inf
    """Validity limit (SI): a read value above it is flagged BAD."""
    deadband: float = 0.0
    """Setpoints: smallest change worth writing, in the tag's unit. A move closer than this to
    what the plant holds is not sent (per-MV status ``deadband``); 0 writes every change."""
    readback_tolerance: float | None = None
    """Setpoints: largest difference between the written value and its read-back, in the tag's
    unit, that still counts as held. None: the client's default (relative 1e-6, compared
    with the value after integer rounding)."""
    integer: bool | None = None
    """Setpoints: round to whole units of the tag before writing (and compare the read-back
    with the rounded value). None: round exactly when the node's declared DataType is an
    integer type (Int16, UInt16, Int32, ...), as found at connect."""
    conversion: Conversion = field(init=False, repr=False, compare=False)
    """Affine map raw -> SI, derived from the units."""

    def __post_init__(self) -> None:
        where = f"tag {self.group.value}.{self.signal}"
        object.__setattr__(self, "conversion", conversion(self.unit, self.model_unit, where=where))
        if math.isnan(self.lower) or math.isnan(self.upper) or self.lower > self.upper:
            raise ConfigError(
                f"{where}: validity limits [{self.lower}, {self.upper}] are not a range"
            )
        if not (math.isfinite(self.deadband) and self.deadband >= 0):
            raise ConfigError(
                f"{where}.deadband: expected a number >= 0 in {self.unit}, got {self.deadband!r}"
            )
        tol = self.readback_tolerance
        if tol is not None and not (math.isfinite(tol) and tol >= 0):
            raise ConfigError(
                f"{where}.readback_tolerance: expected a number >= 0 in {self.unit}, got {tol!r}"
            )
        write_only = self.deadband != 0.0 or tol is not None or self.integer is not None
        if write_only and self.group is not TagGroup.SETPOINT:
            raise ConfigError(
                f"{where}: deadband, readback_tolerance and integer apply to setpoints only"
            )

    @property
    def direction(self) -> Direction:
        """Read or write."""
        return self.group.direction

    def to_model(self, raw: float) -> float:
        """Raw plant value -> SI."""
        return self.conversion.to_model(raw)

    def to_raw(self, value: float) -> float:
        """SI -> raw plant value."""
        return self.conversion.to_raw(value)

    def valid(self, value: float) -> bool:
        """True when the SI value is finite and inside the validity limits."""
        return math.isfinite(value) and self.lower <= value <= self.upper


@dataclass(frozen=True)
class StatusTags:
    """Optional status nodes; None where the plant has no such node."""

    heartbeat: NodeRef | None = None
    """UInt32 counter written by the controller."""
    mode: NodeRef | None = None
    """Int32 read: 0 LOCAL, 1 REMOTE."""
    mode_request: NodeRef | None = None
    """Int32 written: 1 asks for REMOTE, 0 for LOCAL."""
    sim_time: NodeRef | None = None
    """Double read: plant clock in seconds (used as the measurement time)."""
    watchdog_tripped: NodeRef | None = None
    """Boolean read: the plant's watchdog on the heartbeat has tripped."""
    status_text: NodeRef | None = None
    """String read: why the mode changed."""
    plant_object: NodeRef | None = None
    """Object that owns the lockstep method."""
    step_method: NodeRef | None = None
    """Method ``step(n_steps: UInt32) -> sim_time_s`` of a lockstep plant."""
    clock_lockstep: NodeRef | None = None
    """Boolean read: the plant advances only through its step method (optional on the server:
    dropped at connect when the node does not exist)."""
    clock_step_s: NodeRef | None = None
    """Double read: plant seconds per simulation step (optional on the server)."""
    clock_speed: NodeRef | None = None
    """Double read: plant seconds per wall second asked of a real-time plant (optional)."""


OPTIONAL_STATUS = ("clock_lockstep", "clock_step_s", "clock_speed")
"""Status nodes a server may lack (older HIL servers, PLCs): left out at connect, not an error."""


@dataclass(frozen=True)
class TagMap:
    """All tags of one plant."""

    measurements: tuple[Tag, ...]
    """Read tags of y and d signals, in the order :meth:`PlantIO.read` reports them."""
    setpoints: tuple[Tag, ...]
    """Write tags, one per MV in the model's ``u`` order."""
    actuators: tuple[Tag, ...] = ()
    """Read tags of the MVs' actual values (model ``u`` order); may be empty."""
    status: StatusTags = field(default_factory=StatusTags)
    """Heartbeat, mode handshake, clock and lockstep nodes."""

    def __post_init__(self) -> None:
        for group, tags in (
            (TagGroup.MEASUREMENT, self.measurements),
            (TagGroup.SETPOINT, self.setpoints),
            (TagGroup.ACTUATOR, self.actuators),
        ):
            object.__setattr__(self, group.value, tuple(tags))
            seen: set[str] = set()
            for tag in tags:
                if tag.group is not group:
                    raise ConfigError(
                        f"tag {tag.signal!r} of group {tag.group.value} listed in {group.value}"
                    )
                if tag.signal in seen:
                    raise ConfigError(f"tag map: {group.value} lists {tag.signal!r} twice")
                seen.add(tag.signal)

    def check_model(self, model: PlantModel) -> None:
        """Raise :class:`ConfigError` unless the map fits ``model``.

        Measurements must be y or d signals; setpoints exactly the MVs in model
        order; actuators, if given, the MVs in model order; units convertible.
        """
        measurable = {s.name: s for s in (*model.y, *model.d)}
        for tag in self.measurements:
            if tag.signal not in measurable:
                raise ConfigError(
                    f"tag map: measurement {tag.signal!r} is not a y or d signal of "
                    f"{model.name!r}; known: {', '.join(measurable)}"
                )
            _check_unit(tag, measurable[tag.signal])
        for group, tags, required in (
            (TagGroup.SETPOINT, self.setpoints, True),
            (TagGroup.ACTUATOR, self.actuators, False),
        ):
            names = tuple(t.signal for t in tags)
            if (required or names) and names != model.u.names:
                raise ConfigError(
                    f"tag map: {group.value} must list the MVs of {model.name!r} in order "
                    f"({', '.join(model.u.names)}), got ({', '.join(names)})"
                )
            for tag in tags:
                _check_unit(tag, model.u[tag.signal])

    @classmethod
    def for_hil(
        cls, model: PlantModel, plant: str | None = None, namespace_uri: str = HIL_NAMESPACE_URI
    ) -> TagMap:
        """The map of the rtompc HIL address space for ``model`` (values in the model's SI units)."""
        name = plant or model.name

        def ref(path: str) -> NodeRef:
            return NodeRef(namespace_uri, f"{name}.{path}")

        def tag(sig: Signal, folder: str, group: TagGroup) -> Tag:
            return Tag(
                sig.name,
                ref(f"{folder}.{sig.name}"),
                group,
                sig.unit,
                sig.unit,
                sig.lower,
                sig.upper,
            )

        return cls(
            measurements=tuple(
                tag(s, "Measurements", TagGroup.MEASUREMENT) for s in (*model.y, *model.d)
            ),
            setpoints=tuple(tag(s, "Setpoints", TagGroup.SETPOINT) for s in model.u),
            actuators=tuple(tag(s, "Actuators", TagGroup.ACTUATOR) for s in model.u),
            status=StatusTags(
                heartbeat=ref("Status.heartbeat"),
                mode=ref("Status.mode"),
                mode_request=ref("Status.mode_request"),
                sim_time=ref("Status.sim_time_s"),
                watchdog_tripped=ref("Status.watchdog_tripped"),
                status_text=ref("Status.status_text"),
                plant_object=NodeRef(namespace_uri, name),
                step_method=ref("step"),
                clock_lockstep=ref("Status.lockstep"),
                clock_step_s=ref("Status.step_size_s"),
                clock_speed=ref("Status.speed_factor"),
            ),
        )

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], model: PlantModel, *, where: str = "tags"
    ) -> TagMap:
        """Read a tag map from a config table and check it against ``model``.

        Layout (TOML)::

            [transport.tags]
            namespace = "urn:my-plc"            # default namespace URI
            [transport.tags.measurements]
            t_r = { node = "s=DB1.T_R", unit = "degC", valid = [0.0, 250.0] }
            [transport.tags.setpoints]
            f_dil = { node = "s=DB2.F_SP", unit = "1/h" }
            n_pump = { node = "s=DB2.N_SP", unit = "r/min", deadband = 2, readback_tolerance = 1 }
            [transport.tags.status]
            heartbeat = "s=DB3.HB"

        ``valid`` is in the tag's unit; without it the model signal's bounds apply.
        Setpoints may also set ``deadband`` and ``readback_tolerance`` (in the tag's unit) and
        ``integer`` (true/false; default: from the node's DataType at connect), see
        :class:`Tag`.
        """
        known = {"namespace", "measurements", "setpoints", "actuators", "status"}
        _no_unknown(data, known, where)
        default_ns = data.get("namespace")
        if default_ns is not None and not isinstance(default_ns, str):
            raise ConfigError(
                f"{where}.namespace: expected a namespace URI string, got {default_ns!r}"
            )
        signals = {s.name: s for s in (*model.y, *model.d, *model.u)}
        groups: dict[TagGroup, list[Tag]] = {g: [] for g in TagGroup}
        for group in TagGroup:
            table = data.get(group.value, {})
            if not isinstance(table, Mapping):
                raise ConfigError(
                    f"{where}.{group.value}: expected a table of signal = tag entries"
                )
            for signal, entry in table.items():
                key = f"{where}.{group.value}.{signal}"
                if signal not in signals:
                    raise ConfigError(
                        f"{key}: unknown signal {signal!r}; known: {', '.join(signals)}"
                    )
                groups[group].append(_tag(signals[signal], group, entry, default_ns, key))
        status_data = data.get("status", {})
        if not isinstance(status_data, Mapping):
            raise ConfigError(f"{where}.status: expected a table of status nodes")
        fields = set(StatusTags.__dataclass_fields__)
        _no_unknown(status_data, fields, f"{where}.status")
        status = StatusTags(
            **{k: _node(v, default_ns, f"{where}.status.{k}") for k, v in status_data.items()}
        )
        tmap = cls(
            measurements=tuple(groups[TagGroup.MEASUREMENT]),
            setpoints=tuple(groups[TagGroup.SETPOINT]),
            actuators=tuple(groups[TagGroup.ACTUATOR]),
            status=status,
        )
        try:
            tmap.check_model(model)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        return tmap


def _no_unknown(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}"
        )


def _node(entry: Any, default_ns: str | None, where: str) -> NodeRef:
    node: Any
    ns: Any
    if isinstance(entry, str):
        node, ns = entry, default_ns
    elif isinstance(entry, Mapping):
        _no_unknown(entry, {"node", "namespace"}, where)
        node, ns = entry.get("node"), entry.get("namespace", default_ns)
    else:
        raise ConfigError(
            f"{where}: expected a node string or {{node=..., namespace=...}}, got {entry!r}"
        )
    if not isinstance(ns, str) or not ns:
        raise ConfigError(f"{where}: no namespace URI (set 'namespace' here or in the tags table)")
    return NodeRef.parse(node, ns, where=where)  # type: ignore[arg-type]


def _tag(sig: Signal, group: TagGroup, entry: Any, default_ns: str | None, where: str) -> Tag:
    if isinstance(entry, str):
        entry = {"node": entry}
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a node string or a table with 'node', got {entry!r}")
    keys = {"node", "namespace", "unit", "valid"}
    if group is TagGroup.SETPOINT:
        keys |= {"deadband", "readback_tolerance", "integer"}
    _no_unknown(entry, keys, where)
    node = _node({k: entry[k] for k in ("node", "namespace") if k in entry}, default_ns, where)
    unit = entry.get("unit", sig.unit)
    if not isinstance(unit, str):
        raise ConfigError(f"{where}.unit: expected a unit string, got {unit!r}")
    lower, upper = sig.lower, sig.upper
    conv = conversion(unit, sig.unit, where=where)
    if "valid" in entry:
        valid = entry["valid"]
        if (
            not isinstance(valid, list | tuple)
            or len(valid) != 2
            or not all(isinstance(v, int | float) for v in valid)
        ):
            raise ConfigError(f"{where}.valid: expected [low, high] in {unit}, got {valid!r}")
        lo, hi = sorted(conv.to_model(float(v)) for v in valid)
        lower, upper = lo, hi
    write: dict[str, Any] = {}
    for key in ("deadband", "readback_tolerance"):
        if key in entry:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}.{key}: expected a number in {unit}, got {value!r}")
            write[key] = float(value)
    if "integer" in entry:
        if not isinstance(entry["integer"], bool):
            raise ConfigError(f"{where}.integer: expected true or false, got {entry['integer']!r}")
        write["integer"] = entry["integer"]
    return Tag(sig.name, node, group, unit, sig.unit, lower, upper, **write)


def _check_unit(tag: Tag, sig: Signal) -> None:
    if tag.model_unit != sig.unit:
        raise ConfigError(
            f"tag {tag.group.value}.{tag.signal}: model unit {tag.model_unit!r} differs from the "
            f"signal's unit {sig.unit!r}"
        )
