"""Connect-time checks of a tag map against the plant's nodes, before anything is written.

:func:`check_nodes` reads, in a few batched requests, what the server says about
every node the tag map names and returns the problems found, each naming the tag,
the node, what was found and what was expected:

- the node exists and is a variable whose DataType fits its use (numbers for
  measurements, actuators and setpoints; integers for heartbeat and mode; Boolean
  for ``watchdog_tripped``; String for ``status_text``);
- nodes the engine writes (setpoints, heartbeat, mode request) have the CurrentWrite
  bit in both AccessLevel and UserAccessLevel (the latter is what *this* session may
  do), nodes it reads the CurrentRead bit;
- a setpoint's EURange property, where the server has one, holds the MV's limits
  (converted to the tag's unit): a limit outside the PLC's range would only be found
  by ``BadOutOfRange`` at run time.

:func:`check_endpoint` connects, checks and disconnects (for ``rtompc config check
--connect``); :class:`~interfaces.opcua_client.OpcUaPlantIO` runs the same checks on
every new session and keeps the result in ``node_problems``. Whether a problem is an
error (before ON) or a warning (SHADOW) is the caller's decision.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from asyncua import Client, ua

from interfaces.limits import MoveLimits
from interfaces.opcua_security import configure_client, connect_error
from interfaces.opcua_session import INT_TYPES, read_property, variant_type_of
from interfaces.opcua_settings import OpcUaSettings
from interfaces.tagmap import OPTIONAL_STATUS, NodeRef, Tag, TagMap

_NUMERIC = INT_TYPES | {ua.VariantType.Float, ua.VariantType.Double}
_READ, _WRITE = 0x01, 0x02  # AccessLevel bits CurrentRead, CurrentWrite


class ProblemKind(Enum):
    """What is wrong with a node."""

    MISSING = "missing"
    """No such node (or not a variable), or its namespace is not on the server."""
    DATA_TYPE = "data_type"
    """The node's DataType does not fit the tag's use."""
    NOT_READABLE = "not_readable"
    """AccessLevel or UserAccessLevel lacks CurrentRead."""
    NOT_WRITABLE = "not_writable"
    """AccessLevel lacks CurrentWrite: nobody may write the node."""
    USER_NOT_WRITABLE = "user_not_writable"
    """UserAccessLevel lacks CurrentWrite: this session's user may not write the node."""
    RANGE = "range"
    """The MV limits reach outside the node's EURange."""


@dataclass(frozen=True)
class NodeProblem:
    """One mismatch between the tag map and the plant."""

    tag: str
    """Tag path, e.g. ``setpoints.heater`` or ``status.mode_request``."""
    node: str
    """The node, by namespace URI and identifier."""
    kind: ProblemKind
    """What is wrong."""
    found: str
    """What the server says."""
    expected: str
    """What the engine needs."""

    def __str__(self) -> str:
        return f"{self.tag} ({self.node}): {self.found}; expected {self.expected}"


@dataclass(frozen=True)
class _Item:
    label: str
    ref: NodeRef
    types: frozenset[ua.VariantType]
    type_text: str
    write: bool
    tag: Tag | None = None


_STATUS_USE: dict[str, tuple[frozenset[ua.VariantType], str, bool]] = {
    "heartbeat": (frozenset(INT_TYPES), "an integer type (UInt32)", True),
    "mode": (frozenset(INT_TYPES), "an integer type (Int32: 0 LOCAL, 1 REMOTE)", False),
    "mode_request": (frozenset(INT_TYPES), "an integer type (Int32)", True),
    "sim_time": (frozenset(_NUMERIC), "a numeric type (seconds)", False),
    "watchdog_tripped": (frozenset({ua.VariantType.Boolean}), "Boolean", False),
    "status_text": (frozenset({ua.VariantType.String}), "String", False),
    "clock_lockstep": (frozenset({ua.VariantType.Boolean}), "Boolean", False),
    "clock_step_s": (frozenset(_NUMERIC), "a numeric type (seconds)", False),
    "clock_speed": (frozenset(_NUMERIC), "a numeric type", False),
}


def _items(tags: TagMap) -> list[_Item]:
    numeric = frozenset(_NUMERIC)
    items = [
        _Item(f"{t.group.value}.{t.signal}", t.node, numeric, "a numeric type", False, t)
        for t in (*tags.measurements, *tags.actuators)
    ]
    items += [
        _Item(f"setpoints.{t.signal}", t.node, numeric, "a numeric type", True, t)
        for t in tags.setpoints
    ]
    for name, (types, text, write) in _STATUS_USE.items():
        ref = getattr(tags.status, name)
        if ref is not None:
            items.append(_Item(f"status.{name}", ref, types, text, write))
    return items


def _value(dv: ua.DataValue) -> Any:
    ok = dv.StatusCode is None or dv.StatusCode.is_good()
    return dv.Value.Value if ok and dv.Value is not None else None


def _range_problem(item: _Item, rng: Any, limits: MoveLimits) -> NodeProblem | None:
    tag = item.tag
    low, high = getattr(rng, "Low", None), getattr(rng, "High", None)
    if tag is None or not isinstance(low, int | float) or not isinstance(high, int | float):
        return None
    i = limits.names.index(tag.signal) if tag.signal in limits.names else -1
    if i < 0:
        return None
    lo_raw, hi_raw = sorted((tag.to_raw(limits.lower[i]), tag.to_raw(limits.upper[i])))
    slack = 1e-9 * max(1.0, abs(low), abs(high))
    if lo_raw >= low - slack and hi_raw <= high + slack:
        return None
    return NodeProblem(
        item.label,
        str(item.ref),
        ProblemKind.RANGE,
        f"EURange {low:g}..{high:g} {tag.unit}",
        f"the MV limits {_fmt(lo_raw)}..{_fmt(hi_raw)} {tag.unit} inside it "
        "(narrow the MV limits or fix the tag's unit)",
    )


def _fmt(x: float) -> str:
    return f"{x:g}" if math.isfinite(x) else ("-inf" if x < 0 else "inf")


async def check_nodes(
    client: Client, tags: TagMap, limits: MoveLimits | None = None
) -> list[NodeProblem]:
    """Every problem of ``tags`` on the server ``client`` is connected to (see module doc)."""
    ns_array = await client.get_namespace_array()
    namespaces = {uri: i for i, uri in enumerate(ns_array)}
    problems: list[NodeProblem] = []
    resolved: list[tuple[_Item, ua.NodeId]] = []
    for item in _items(tags):
        index = namespaces.get(item.ref.namespace_uri)
        if index is None:
            problems.append(
                NodeProblem(
                    item.label,
                    str(item.ref),
                    ProblemKind.MISSING,
                    f"namespace {item.ref.namespace_uri!r} is not on the server",
                    f"one of {', '.join(ns_array)}",
                )
            )
            continue
        resolved.append((item, ua.NodeId.from_string(item.ref.nodeid_string(index))))
    nodes = [n for _, n in resolved]
    read = client.uaclient.read_attributes
    dtypes = await read(nodes, ua.AttributeIds.DataType) if nodes else []
    access = await read(nodes, ua.AttributeIds.AccessLevel) if nodes else []
    user = await read(nodes, ua.AttributeIds.UserAccessLevel) if nodes else []
    ranged: list[tuple[_Item, ua.NodeId]] = []
    for (item, _node), dt, al, ul in zip(resolved, dtypes, access, user, strict=True):
        where = (item.label, str(item.ref))
        dtype = _value(dt)
        if not isinstance(dtype, ua.NodeId):
            if item.label.removeprefix("status.") not in OPTIONAL_STATUS:
                code = dt.StatusCode.name if dt.StatusCode is not None else "no value"
                problems.append(
                    NodeProblem(*where, ProblemKind.MISSING, f"no variable ({code})", "a variable")
                )
            continue
        vtype = variant_type_of(dtype)
        if vtype is not None and vtype not in item.types:
            problems.append(
                NodeProblem(*where, ProblemKind.DATA_TYPE, f"DataType {vtype.name}", item.type_text)
            )
        levels = (_value(al), _value(ul))
        level, user_level = (int(v) if isinstance(v, int) else 0 for v in levels)
        if item.write and not level & _WRITE:
            problems.append(
                NodeProblem(
                    *where,
                    ProblemKind.NOT_WRITABLE,
                    f"AccessLevel {_bits(level)} (read-only node)",
                    "CurrentWrite: the engine writes this node",
                )
            )
        elif item.write and not user_level & _WRITE:
            problems.append(
                NodeProblem(
                    *where,
                    ProblemKind.USER_NOT_WRITABLE,
                    f"UserAccessLevel {_bits(user_level)} for this session's user",
                    "CurrentWrite for the user the engine connects as",
                )
            )
        if not (level & _READ and user_level & _READ):
            problems.append(
                NodeProblem(
                    *where,
                    ProblemKind.NOT_READABLE,
                    f"AccessLevel {_bits(level)}, UserAccessLevel {_bits(user_level)}",
                    "CurrentRead in both",
                )
            )
        if item.tag is not None and item.label.startswith("setpoints."):
            ranged.append((item, _node))
    if limits is not None and ranged:
        ranges = await read_property(client, [n for _, n in ranged], "EURange")
        for (item, _), rng in zip(ranged, ranges, strict=True):
            problem = _range_problem(item, rng, limits)
            if problem is not None:
                problems.append(problem)
    return problems


def _bits(level: int) -> str:
    names = [
        name for bit, name in ((_READ, "CurrentRead"), (_WRITE, "CurrentWrite")) if level & bit
    ]
    return " | ".join(names) or "none"


async def check_endpoint(
    settings: OpcUaSettings, tags: TagMap, limits: MoveLimits | None = None
) -> list[NodeProblem]:
    """Connect to ``settings.endpoint`` (with its security and identity), check, disconnect.

    Raises :class:`~plant_models.errors.PlantIOError` when the server cannot be reached.
    """
    client = Client(settings.endpoint, timeout=settings.request_timeout_s)
    client.name = client.description = "rtompc config check"
    try:
        await configure_client(client, settings)
        await asyncio.wait_for(client.connect(), timeout=settings.request_timeout_s * 2)
    except Exception as exc:
        raise connect_error(exc, settings) from None
    try:
        return await check_nodes(client, tags, limits)
    finally:
        try:
            await asyncio.wait_for(client.disconnect(), timeout=1.0)
        except Exception:  # noqa: BLE001 - the checks are done; a dead link must not hide them
            client.disconnect_socket()
