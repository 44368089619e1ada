"""The HIL address space (contract with the interfaces client) and its write guard.

Layout, namespace ``urn:rtompc:hil`` (index resolved by URI)::

    Objects/<plant>                       ns=i;s=<plant>
      Measurements/<y and d signals>      Double, read-only
      Actuators/<u signals>               Double, read-only (positions the plant holds)
      Setpoints/<u signals>               Double, writable by controllers in REMOTE
      Status/sim_time_s, heartbeat (UInt32, writable), mode (Int32), mode_request
             (Int32, writable), watchdog_tripped, status_text, realtime_factor,
             pacing_jitter_p99_s, lockstep (Boolean), step_size_s (simulation step),
             speed_factor (speed asked for; 0 in lockstep): a client checks its own
             sample time and pacing against these three
      step(n_steps: UInt32) -> sim_time_s: Double     ns=i;s=<plant>.step

Every variable has EngineeringUnits (EUInformation) and EURange properties.

:class:`GuardedAttributeService` replaces asyncua's attribute service so that
client writes to these nodes get per-node OPC UA status codes before anything
reaches the plant: BadNotWritable (read-only node or attribute),
BadUserAccessDenied (viewer), BadTypeMismatch (wrong variant type or array),
then the node's own check (BadOutOfRange, BadInvalidState, GoodClamped).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AddressSpace, AttributeService

from hil.security import Role
from hil.units import engineering_unit
from plant_models.model import PlantModel
from plant_models.signals import Signal

NAMESPACE_URI = "urn:rtompc:hil"
"""Namespace of every HIL node."""
INFINITE_RANGE = 1e300
"""EURange stand-in for an infinite bound."""

STATUS_VARIABLES: dict[str, tuple[ua.VariantType, bool, str, float, float]] = {
    # name: (type, writable by controller, unit, EURange low, high)
    "sim_time_s": (ua.VariantType.Double, False, "s", 0.0, INFINITE_RANGE),
    "heartbeat": (ua.VariantType.UInt32, True, "1", 0.0, 4294967295.0),
    "mode": (ua.VariantType.Int32, False, "1", 0.0, 1.0),
    "mode_request": (ua.VariantType.Int32, True, "1", 0.0, 1.0),
    "watchdog_tripped": (ua.VariantType.Boolean, False, "1", 0.0, 1.0),
    "status_text": (ua.VariantType.String, False, "1", 0.0, 0.0),
    "realtime_factor": (ua.VariantType.Double, False, "1", 0.0, INFINITE_RANGE),
    "pacing_jitter_p99_s": (ua.VariantType.Double, False, "s", 0.0, INFINITE_RANGE),
    "lockstep": (ua.VariantType.Boolean, False, "1", 0.0, 1.0),
    "step_size_s": (ua.VariantType.Double, False, "s", 0.0, INFINITE_RANGE),
    "speed_factor": (ua.VariantType.Double, False, "1", 0.0, INFINITE_RANGE),
}
"""The Status folder: variable name -> (type, writable, unit, EURange)."""

_INITIAL = {
    ua.VariantType.Double: 0.0, ua.VariantType.UInt32: 0, ua.VariantType.Int32: 0,
    ua.VariantType.Boolean: False, ua.VariantType.String: "",
}

WriteCheck = Callable[[Any], Awaitable[tuple[ua.StatusCode, Any]]]
"""Checks a client value; returns the status and the value to store (e.g. clamped)."""


@dataclass(frozen=True)
class NodeRule:
    """How the write guard treats client writes to one node."""

    vtype: ua.VariantType
    """Declared variant type; anything else is BadTypeMismatch."""
    check: WriteCheck | None = None
    """None: read-only (BadNotWritable)."""


@dataclass(frozen=True)
class PlantNodes:
    """NodeIds of one plant's variables, by folder and name."""

    namespace_index: int
    """Index of :data:`NAMESPACE_URI` on this server."""
    plant: ua.NodeId
    """The plant object."""
    measurements: dict[str, ua.NodeId]
    """y and d signals."""
    actuators: dict[str, ua.NodeId]
    """u signals (positions)."""
    setpoints: dict[str, ua.NodeId]
    """u signals (setpoints)."""
    status: dict[str, ua.NodeId]
    """Status variables."""
    step: ua.NodeId
    """The lockstep method."""


def node_id(ns: int, *parts: str) -> ua.NodeId:
    """The string NodeId ``ns=<ns>;s=<part1>.<part2>...`` of the contract."""
    return ua.NodeId(cast(ua.String, ".".join(parts)), cast(ua.Int16, ns))


def standard_id(identifier: int) -> ua.NodeId:
    """A NodeId of namespace 0 (``ua.ObjectIds.*``)."""
    return ua.NodeId(cast(ua.Int32, identifier))


def status(code: int) -> ua.StatusCode:
    """An OPC UA status code from its integer value (``ua.StatusCodes.*``)."""
    return ua.StatusCode(cast(ua.UInt32, code))


def timestamp(value: dt.datetime) -> ua.DateTime:
    """A datetime as asyncua's DateTime type (for DataValue timestamps)."""
    return cast(ua.DateTime, value)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.copysign(INFINITE_RANGE, value)


async def _add_variable(
    folder: Any, ns: int, nid: ua.NodeId, name: str, vtype: ua.VariantType, unit: str,
    low: float, high: float, description: str, writable: bool,
) -> None:
    var = await folder.add_variable(nid, ua.QualifiedName(name, ns), ua.Variant(_INITIAL[vtype], vtype),
                                    varianttype=vtype)
    if writable:
        await var.set_writable(True)
    if description:
        await var.write_attribute(ua.AttributeIds.Description,
                                  ua.DataValue(ua.Variant(ua.LocalizedText(description))))
    eu = engineering_unit(unit)
    info = ua.EUInformation(NamespaceUri=eu.namespace_uri, UnitId=eu.unit_id,
                            DisplayName=ua.LocalizedText(eu.display_name),
                            Description=ua.LocalizedText(eu.description))
    await var.add_property(node_id(ns, f"{nid.Identifier!s}.EngineeringUnits"),
                           ua.QualifiedName("EngineeringUnits", 0), ua.Variant(info, ua.VariantType.ExtensionObject),
                           datatype=standard_id(ua.ObjectIds.EUInformation))
    rng = ua.Range(Low=_finite(low), High=_finite(high))
    await var.add_property(node_id(ns, f"{nid.Identifier!s}.EURange"), ua.QualifiedName("EURange", 0),
                           ua.Variant(rng, ua.VariantType.ExtensionObject), datatype=standard_id(ua.ObjectIds.Range))


async def build_address_space(
    server: Server, model: PlantModel, step_callback: Callable[..., Awaitable[Any]]
) -> PlantNodes:
    """Create the plant object, folders, variables (with units and ranges) and the step method."""
    ns = await server.register_namespace(NAMESPACE_URI)
    name = model.name
    plant = await server.nodes.objects.add_object(node_id(ns, name), ua.QualifiedName(name, ns))
    out: dict[str, dict[str, ua.NodeId]] = {}
    groups: dict[str, list[Signal]] = {
        "Measurements": [*model.y, *model.d],
        "Actuators": list(model.u),
        "Setpoints": list(model.u),
    }
    for folder_name, signals in groups.items():
        folder = await plant.add_folder(node_id(ns, name, folder_name), ua.QualifiedName(folder_name, ns))
        ids = {}
        for sig in signals:
            nid = node_id(ns, name, folder_name, sig.name)
            await _add_variable(folder, ns, nid, sig.name, ua.VariantType.Double, sig.unit, sig.lower, sig.upper,
                                sig.description, folder_name == "Setpoints")
            ids[sig.name] = nid
        out[folder_name] = ids
    folder = await plant.add_folder(node_id(ns, name, "Status"), ua.QualifiedName("Status", ns))
    status = {}
    for var_name, (vtype, writable, unit, low, high) in STATUS_VARIABLES.items():
        nid = node_id(ns, name, "Status", var_name)
        await _add_variable(folder, ns, nid, var_name, vtype, unit, low, high, "", writable)
        status[var_name] = nid
    step_id = node_id(ns, name, "step")
    arg_in = ua.Argument(Name="n_steps", DataType=standard_id(ua.ObjectIds.UInt32), ValueRank=-1,
                         Description=ua.LocalizedText("number of sample times to advance"))
    arg_out = ua.Argument(Name="sim_time_s", DataType=standard_id(ua.ObjectIds.Double), ValueRank=-1,
                          Description=ua.LocalizedText("simulation time after the steps, s"))
    await plant.add_method(step_id, ua.QualifiedName("step", ns), step_callback, [arg_in], [arg_out])
    return PlantNodes(ns, plant.nodeid, out["Measurements"], out["Actuators"], out["Setpoints"], status, step_id)


_SERVER_USER = User(role=UserRole.Admin)


class GuardedAttributeService(AttributeService):
    """asyncua's attribute service with per-node write rules for the HIL nodes."""

    def __init__(self, aspace: AddressSpace, rules: dict[ua.NodeId, NodeRule]) -> None:
        super().__init__(aspace)
        self._rules = rules

    async def write(self, params: ua.WriteParameters, user: User = _SERVER_USER) -> list[ua.StatusCode]:
        if user.role == UserRole.Admin:  # the server itself
            return await super().write(params, user)
        results: list[ua.StatusCode] = []
        for wv in params.NodesToWrite:
            rule = self._rules.get(wv.NodeId)
            if rule is None:
                results.extend(await super().write(ua.WriteParameters(NodesToWrite=[wv]), user))
            else:
                results.append(await self._guarded(wv, rule, user))
        return results

    async def _guarded(self, wv: ua.WriteValue, rule: NodeRule, user: User) -> ua.StatusCode:
        if rule.check is None or wv.AttributeId != ua.AttributeIds.Value:
            return status(ua.StatusCodes.BadNotWritable)
        if getattr(user, "hil_role", None) is not Role.CONTROLLER:
            return status(ua.StatusCodes.BadUserAccessDenied)
        if wv.IndexRange:
            return status(ua.StatusCodes.BadIndexRangeInvalid)
        variant = wv.Value.Value if wv.Value is not None else None
        if variant is None or variant.VariantType != rule.vtype or variant.is_array or variant.Value is None:
            return status(ua.StatusCodes.BadTypeMismatch)
        result, stored = await rule.check(variant.Value)
        if result.is_good():
            now = dt.datetime.now(dt.UTC)
            await self._aspace.write_attribute_value(
                wv.NodeId, ua.AttributeIds.Value,
                ua.DataValue(ua.Variant(stored, rule.vtype), SourceTimestamp=timestamp(now),
                             ServerTimestamp=timestamp(now)),
            )
        return result
