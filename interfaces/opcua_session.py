"""One live OPC UA session to a plant: connect, resolve the tag map, batched reads and writes.

An :class:`OpcUaSession` wraps one asyncua ``Client`` for the lifetime of one
connection. On open it applies security, resolves every namespace URI of the
tag map to the server's current index (never assumed), checks that every node
exists and reads each written node's declared DataType once, so writes go out
as value-only ``DataValue(Variant(x, vtype))`` (no timestamps, no status: the
form open62541 servers and PLCs accept) in the declared variant type. Reads are
one batched Read with source and server timestamps. The reconnect policy lives
in :mod:`interfaces.opcua_client`; a session is never reused after a loss.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from asyncua import Client, Node, ua
from asyncua.common.subscription import DataChangeNotif, Subscription

from interfaces.opcua_security import configure_client, connect_error
from interfaces.opcua_settings import OpcUaSettings
from interfaces.tagmap import OPTIONAL_STATUS, NodeRef, StatusTags, TagMap
from interfaces.units import server_unit_matches
from plant_models.errors import PlantIOError

_log = logging.getLogger(__name__)

LINK_CODES = frozenset(
    {
        ua.StatusCodes.BadSessionIdInvalid,
        ua.StatusCodes.BadSessionClosed,
        ua.StatusCodes.BadSessionNotActivated,
        ua.StatusCodes.BadSecureChannelClosed,
        ua.StatusCodes.BadSecureChannelIdInvalid,
        ua.StatusCodes.BadConnectionClosed,
        ua.StatusCodes.BadServerNotConnected,
        ua.StatusCodes.BadCommunicationError,
        ua.StatusCodes.BadShutdown,
        ua.StatusCodes.BadTimeout,
    }
)
"""Service results that mean the link (not one request) is gone."""

INT_TYPES = {
    ua.VariantType.SByte,
    ua.VariantType.Byte,
    ua.VariantType.Int16,
    ua.VariantType.UInt16,
    ua.VariantType.Int32,
    ua.VariantType.UInt32,
    ua.VariantType.Int64,
    ua.VariantType.UInt64,
}
"""Variant types of integer nodes (setpoints on them are rounded before the write)."""
_FLOAT_TYPES = {ua.VariantType.Float, ua.VariantType.Double}


async def read_property(client: Client, nodes: Sequence[ua.NodeId], name: str) -> list[Any]:
    """The value of property ``name`` (e.g. ``EURange``, ``EngineeringUnits``) of each node,
    in two batched requests; None where a node has no such property or it is unreadable."""
    paths = []
    for node in nodes:
        element = ua.RelativePathElement(
            ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasProperty),  # type: ignore[arg-type]
            IsInverse=False,  # type: ignore[arg-type]
            IncludeSubtypes=True,  # type: ignore[arg-type]
            TargetName=ua.QualifiedName(name, 0),
        )
        path = ua.BrowsePath()
        path.StartingNode = node
        path.RelativePath = ua.RelativePath(Elements=[element])
        paths.append(path)
    out: list[Any] = [None] * len(paths)
    if not paths:
        return out
    results = await client.uaclient.translate_browsepaths_to_nodeids(paths)
    found = {
        i: ua.NodeId(r.Targets[0].TargetId.Identifier, r.Targets[0].TargetId.NamespaceIndex)
        for i, r in enumerate(results)
        if r.StatusCode.is_good() and r.Targets
    }
    if found:
        values = await client.uaclient.read_attributes(list(found.values()), ua.AttributeIds.Value)
        for i, dv in zip(found, values, strict=True):
            good = dv.StatusCode is None or dv.StatusCode.is_good()
            out[i] = dv.Value.Value if good and dv.Value is not None else None
    return out


def is_link_error(exc: BaseException) -> bool:
    """True when ``exc`` means the connection is lost (not a single failed request)."""
    if isinstance(exc, ua.UaStatusCodeError):
        return exc.code in LINK_CODES
    return isinstance(exc, ConnectionError | OSError | asyncio.TimeoutError | TimeoutError)


def value_only(value: float | int | bool, vtype: ua.VariantType) -> ua.DataValue:
    """A DataValue with only a value in ``vtype``: no source/server timestamp, no status."""
    if vtype in INT_TYPES:
        payload: Any = int(round(float(value)))
    elif vtype in _FLOAT_TYPES:
        payload = float(value)
    elif vtype is ua.VariantType.Boolean:
        payload = bool(value)
    else:
        raise PlantIOError(f"cannot write a number to a node of type {vtype.name}")
    return ua.DataValue(ua.Variant(payload, vtype), StatusCode=None)


def variant_type_of(datatype: ua.NodeId) -> ua.VariantType | None:
    """The builtin variant type for a DataType NodeId in namespace 0 (ids 1..25), else None."""
    if (
        datatype.NamespaceIndex == 0
        and isinstance(datatype.Identifier, int)
        and 1 <= datatype.Identifier <= 25
    ):
        return ua.VariantType(datatype.Identifier)
    return None


class _LatestValues:
    """Subscription handler keeping only the newest DataValue per node (queue size 1)."""

    def __init__(self) -> None:
        self.latest: dict[ua.NodeId, ua.DataValue] = {}

    def datachange_notification(self, node: Node, val: Any, data: DataChangeNotif) -> None:
        self.latest[node.nodeid] = data.monitored_item.Value

    def status_change_notification(self, status: Any) -> None:
        _log.info("subscription status change: %s", status)


class OpcUaSession:
    """One connected client with the tag map resolved."""

    def __init__(self, client: Client, settings: OpcUaSettings, tags: TagMap) -> None:
        self.client = client
        self.settings = settings
        self.tags = tags
        self.namespaces: dict[str, int] = {}
        self.measurements: list[ua.NodeId] = []
        self.actuators: list[ua.NodeId] = []
        self.setpoints: list[ua.NodeId] = []
        self.setpoint_types: list[ua.VariantType] = []
        self.status: dict[str, ua.NodeId] = {}
        self.status_types: dict[str, ua.VariantType] = {}
        self._subscription: Subscription | None = None
        self._handler = _LatestValues()

    @classmethod
    async def open(
        cls,
        settings: OpcUaSettings,
        tags: TagMap,
        on_lost: Callable[[OpcUaSession, Exception], Awaitable[None]] | None = None,
    ) -> OpcUaSession:
        """Connect, secure, resolve and check every node; raises :class:`PlantIOError`.

        ``on_lost(session, exc)`` is called when asyncua's keep-alive sees the link die.
        """
        client = Client(
            settings.endpoint,
            timeout=settings.request_timeout_s,
            # asyncua's keep-alive probe times out after its own interval: at 0.5 s a busy
            # host (load 10+ on 2 cores) or a busy PLC lost sessions that were alive. The
            # probe gets the request timeout instead; our supervisor still checks the client
            # state every watchdog_interval_s, and every request has request_timeout_s.
            watchdog_intervall=max(settings.watchdog_interval_s, settings.request_timeout_s),
        )
        client.name = client.description = "rtompc"
        client.session_timeout = 60_000
        session = cls(client, settings, tags)
        try:
            await configure_client(client, settings)
            await asyncio.wait_for(client.connect(), timeout=settings.request_timeout_s * 2)
        except BaseException as exc:
            await session.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise connect_error(exc, settings) from None
        if on_lost is not None:

            async def lost(exc: Exception) -> None:
                await on_lost(session, exc)

            client.connection_lost_callback = lost
        try:
            await session._resolve()
        except BaseException as exc:
            await session.close()
            if isinstance(exc, PlantIOError | asyncio.CancelledError):
                raise
            raise connect_error(exc, settings) from None
        return session

    async def close(self) -> None:
        """Disconnect quietly (the server may already be gone)."""
        self.client.connection_lost_callback = None
        try:
            await asyncio.wait_for(self.client.disconnect(), timeout=1.0)
        except BaseException as exc:  # noqa: BLE001 - closing a dead link must not raise
            if isinstance(exc, asyncio.CancelledError):
                raise
            _log.debug("disconnect of %s: %r", self.settings.endpoint, exc)
            try:
                self.client.disconnect_socket()
            except Exception:  # noqa: BLE001
                pass

    # Resolution ---------------------------------------------------------
    def _nodeid(self, ref: NodeRef) -> ua.NodeId:
        try:
            index = self.namespaces[ref.namespace_uri]
        except KeyError:
            raise PlantIOError(
                f"{self.settings.endpoint}: namespace {ref.namespace_uri!r} of node {ref} is not on "
                f"the server; it has: {', '.join(self.namespaces)}"
            ) from None
        return ua.NodeId.from_string(ref.nodeid_string(index))

    async def _resolve(self) -> None:
        ns_array = await self.client.get_namespace_array()
        self.namespaces = {uri: i for i, uri in enumerate(ns_array)}
        self.measurements = [self._nodeid(t.node) for t in self.tags.measurements]
        self.actuators = [self._nodeid(t.node) for t in self.tags.actuators]
        self.setpoints = [self._nodeid(t.node) for t in self.tags.setpoints]
        for name in StatusTags.__dataclass_fields__:
            ref = getattr(self.tags.status, name)
            if ref is not None:
                self.status[name] = self._nodeid(ref)
        variables: list[tuple[str, ua.NodeId]] = (
            [
                (f"measurements.{t.signal}", n)
                for t, n in zip(self.tags.measurements, self.measurements, strict=True)
            ]
            + [
                (f"actuators.{t.signal}", n)
                for t, n in zip(self.tags.actuators, self.actuators, strict=True)
            ]
            + [
                (f"setpoints.{t.signal}", n)
                for t, n in zip(self.tags.setpoints, self.setpoints, strict=True)
            ]
            + [
                (f"status.{k}", n)
                for k, n in self.status.items()
                if k not in ("plant_object", "step_method")
            ]
        )
        dts = await self.client.uaclient.read_attributes(
            [n for _, n in variables], ua.AttributeIds.DataType
        )
        types: dict[str, ua.VariantType] = {}
        for (label, node), dv in zip(variables, dts, strict=True):
            code = dv.StatusCode.value if dv.StatusCode is not None else 0
            missing = code != 0 or dv.Value is None or dv.Value.Value is None
            if missing and label.removeprefix("status.") in OPTIONAL_STATUS:
                _log.debug("optional status node %s (%s) not on the server", label, node)
                del self.status[label.removeprefix("status.")]
                continue
            if missing or dv.Value is None:
                raise PlantIOError(
                    f"{self.settings.endpoint}: tag {label} ({node.to_string()}) is not a readable "
                    f"variable: {ua.StatusCode(ua.UInt32(code)).name}"
                )
            vtype = variant_type_of(dv.Value.Value)
            if vtype is None:
                current = (await self.client.get_node(node).read_data_value()).Value
                if current is None:
                    raise PlantIOError(
                        f"tag {label} ({node.to_string()}): no value to infer its type from"
                    )
                vtype = current.VariantType
            types[label] = vtype
        self.setpoint_types = [types[f"setpoints.{t.signal}"] for t in self.tags.setpoints]
        for label, vtype in types.items():
            if label.startswith("setpoints.") and vtype not in INT_TYPES | _FLOAT_TYPES:
                raise PlantIOError(f"tag {label}: declared type {vtype.name} is not numeric")
        self.status_types = {
            k[len("status.") :]: v for k, v in types.items() if k.startswith("status.")
        }
        if self.settings.check_units:
            await self._check_units()

    async def _check_units(self) -> None:
        """Compare each tag's unit with the node's EngineeringUnits property, where it has one."""
        pairs = (
            [(t, n) for t, n in zip(self.tags.measurements, self.measurements, strict=True)]
            + [(t, n) for t, n in zip(self.tags.actuators, self.actuators, strict=True)]
            + [(t, n) for t, n in zip(self.tags.setpoints, self.setpoints, strict=True)]
        )
        infos = await read_property(self.client, [n for _, n in pairs], "EngineeringUnits")
        found = [(tag, info) for (tag, _), info in zip(pairs, infos, strict=True) if info]
        if not found:
            _log.debug("%s: no EngineeringUnits properties to check", self.settings.endpoint)
            return
        for tag, info in found:
            text = getattr(getattr(info, "DisplayName", None), "Text", None)
            unit_id = getattr(info, "UnitId", None)
            if isinstance(text, str) and text and not server_unit_matches(text, unit_id, tag.unit):
                raise PlantIOError(
                    f"tag {tag.group.value}.{tag.signal}: the server says the node is in {text!r} "
                    f"(UNECE UnitId {unit_id}), the tag map says {tag.unit!r}; set the tag's "
                    f"unit to the node's (any unit pint reads, e.g. 'r/min', 't/h', 'degC')"
                )

    # Services -----------------------------------------------------------
    async def read(self, nodes: Sequence[ua.NodeId]) -> list[ua.DataValue]:
        """One batched Read of the nodes' values with source and server timestamps."""
        params = ua.ReadParameters()
        params.TimestampsToReturn = ua.TimestampsToReturn.Both
        for node in nodes:
            rv = ua.ReadValueId()
            rv.NodeId = node
            rv.AttributeId = ua.AttributeIds.Value
            params.NodesToRead.append(rv)
        return list(await self.client.uaclient.read(params))

    async def write(
        self, nodes: Sequence[ua.NodeId], values: Sequence[float], types: Sequence[ua.VariantType]
    ) -> list[ua.StatusCode]:
        """One batched Write of value-only DataValues in the given variant types."""
        dvs = [value_only(v, t) for v, t in zip(values, types, strict=True)]
        return list(
            await self.client.uaclient.write_attributes(list(nodes), dvs, ua.AttributeIds.Value)
        )

    async def write_status(self, name: str, value: float | int | bool) -> ua.StatusCode:
        """Write one status node (heartbeat, mode_request) in its declared type."""
        node = self.status[name]
        (code,) = await self.write([node], [value], [self.status_types[name]])
        return code

    async def call_step(self, n_steps: int) -> float:
        """Call the lockstep method ``step(n_steps: UInt32) -> sim_time_s``."""
        obj = self.client.get_node(self.status["plant_object"])
        result = await obj.call_method(
            self.status["step_method"], ua.Variant(int(n_steps), ua.VariantType.UInt32)
        )
        return float(result)

    async def subscribe(self, nodes: Sequence[ua.NodeId], period_s: float) -> None:
        """Subscribe to the nodes' values with queue size 1 (latest value only)."""
        self._subscription = await self.client.create_subscription(period_s * 1000.0, self._handler)
        await self._subscription.subscribe_data_change(
            [self.client.get_node(n) for n in nodes],
            queuesize=1,
            sampling_interval=ua.Double(period_s * 1000.0),
        )

    def latest(self, nodes: Sequence[ua.NodeId]) -> list[ua.DataValue | None]:
        """Newest value per node from the subscription (None before the first notification)."""
        return [self._handler.latest.get(n) for n in nodes]
