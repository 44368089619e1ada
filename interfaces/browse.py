"""Browse an OPC UA server's address space: what ``rtompc config init --from-server`` proposes from.

:func:`browse_server` connects with the same settings as the engine (security,
user, trust list), walks the hierarchy below the Objects folder breadth-first
(skipping namespace 0, the server's own nodes), and returns every variable with
what a tag map needs: namespace URI and node id, browse path, data type,
EngineeringUnits (display name and UNECE code), EURange, and whether the
variable is writable for this user (AccessLevel and UserAccessLevel both carry
CurrentWrite); methods with the object that owns them (a lockstep plant's
``step``). Reads and browses go out in batches; continuation points are followed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from asyncua import Client, ua

from interfaces.opcua_security import configure_client, connect_error
from interfaces.opcua_settings import OpcUaSettings
from interfaces.tagmap import NodeRef
from plant_models.errors import ConfigError

_log = logging.getLogger(__name__)

_HAS_PROPERTY = ua.NodeId(ua.Int32(ua.ObjectIds.HasProperty))
_WRITE = ua.AccessLevel.CurrentWrite.mask
_ATTRS = (
    ua.AttributeIds.DataType,
    ua.AttributeIds.AccessLevel,
    ua.AttributeIds.UserAccessLevel,
    ua.AttributeIds.Value,
    ua.AttributeIds.Description,
)


@dataclass(frozen=True)
class BrowsedVariable:
    """One variable of the server's address space."""

    path: tuple[str, ...]
    """Browse names from below the Objects folder to the variable."""
    node: NodeRef
    """Namespace URI and node id (``s=...``, ``i=...``)."""
    data_type: str
    """Built-in data type name (``Double``, ``Int16``, ``Boolean``, ...) or the DataType node id."""
    writable: bool
    """AccessLevel and UserAccessLevel (for this session's user) both allow writing the value."""
    unit: str | None = None
    """EngineeringUnits display name (``degC``, ``r/min``), when the variable has one."""
    unece_code: int | None = None
    """EngineeringUnits UnitId (UNECE common code as an integer), when given."""
    eu_range: tuple[float, float] | None = None
    """EURange (low, high) in the variable's unit, when given."""
    value: Any = None
    """Value at browse time."""
    description: str = ""
    """The node's Description text."""

    @property
    def name(self) -> str:
        """The variable's browse name."""
        return self.path[-1]


@dataclass(frozen=True)
class BrowsedMethod:
    """One method (a lockstep plant's ``step``, for example) and the object that owns it."""

    path: tuple[str, ...]
    """Browse names from below the Objects folder to the method."""
    node: NodeRef
    """The method's node."""
    parent: NodeRef
    """The object to call it on."""


@dataclass(frozen=True)
class AddressSpace:
    """What :func:`browse_server` found."""

    namespaces: tuple[str, ...]
    """The server's namespace array (index -> URI)."""
    variables: tuple[BrowsedVariable, ...]
    """Every variable outside namespace 0, breadth-first."""
    methods: tuple[BrowsedMethod, ...]
    """Every method outside namespace 0."""


@asynccontextmanager
async def connected_client(settings: OpcUaSettings) -> AsyncIterator[Client]:
    """An asyncua client connected with the engine's settings; errors as :class:`PlantIOError`."""
    client = Client(settings.endpoint, timeout=settings.request_timeout_s)
    client.name = client.description = "rtompc"
    client.session_timeout = 60_000  # within what servers grant (no revision warning)
    try:
        await configure_client(client, settings)
        await asyncio.wait_for(client.connect(), timeout=settings.request_timeout_s * 2)
    except BaseException as exc:
        await _disconnect(client)
        if isinstance(exc, asyncio.CancelledError | ConfigError):
            raise
        raise connect_error(exc, settings) from None
    try:
        yield client
    finally:
        await _disconnect(client)


async def _disconnect(client: Client) -> None:
    try:
        await client.disconnect()
    except Exception as exc:  # noqa: BLE001 - closing a link that may be gone or never came up
        _log.debug("disconnect: %s", exc)


async def browse_server(
    settings: OpcUaSettings, *, max_nodes: int = 5000, max_depth: int = 10
) -> AddressSpace:
    """Every variable and method below the Objects folder outside namespace 0."""
    async with connected_client(settings) as client:
        namespaces = list(await client.get_namespace_array())
        found: list[tuple[tuple[str, ...], ua.NodeId]] = []
        methods: list[BrowsedMethod] = []
        props: dict[ua.NodeId, dict[str, ua.NodeId]] = {}
        level: list[tuple[tuple[str, ...], ua.NodeId]] = [
            ((), ua.NodeId(ua.Int32(ua.ObjectIds.ObjectsFolder)))
        ]
        seen: set[ua.NodeId] = set()
        for _ in range(max_depth):
            if not level or len(seen) >= max_nodes:
                break
            results = await _browse(client, [n for _, n in level])
            nxt: list[tuple[tuple[str, ...], ua.NodeId]] = []
            for (path, parent), refs in zip(level, results, strict=True):
                for ref in refs:
                    nid = ref.NodeId
                    if nid.NamespaceIndex == 0 or nid in seen:
                        continue
                    if ref.ReferenceTypeId == _HAS_PROPERTY:
                        props.setdefault(parent, {})[ref.BrowseName.Name] = nid
                        continue
                    seen.add(nid)
                    child = (*path, ref.BrowseName.Name)
                    if ref.NodeClass == ua.NodeClass.Method:
                        methods.append(
                            BrowsedMethod(child, _ref(namespaces, nid), _ref(namespaces, parent))
                        )
                        continue
                    if ref.NodeClass == ua.NodeClass.Variable:
                        found.append((child, nid))
                    nxt.append((child, nid))  # variables may have properties and children
            level = nxt
        if len(seen) >= max_nodes:
            _log.warning("browse stopped after %d nodes (max_nodes)", len(seen))
        variables = await _describe(client, namespaces, found, props)
        return AddressSpace(tuple(namespaces), variables, tuple(methods))


async def _browse(client: Client, nodes: list[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    out: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(nodes), 200):
        params = ua.BrowseParameters()
        params.View = ua.ViewDescription()
        params.RequestedMaxReferencesPerNode = 0
        for nid in nodes[start : start + 200]:
            desc = ua.BrowseDescription()
            desc.NodeId = nid
            desc.BrowseDirection = ua.BrowseDirection.Forward
            desc.ReferenceTypeId = ua.NodeId(ua.Int32(ua.ObjectIds.HierarchicalReferences))
            desc.IncludeSubtypes = True
            desc.NodeClassMask = ua.NodeClass.Object | ua.NodeClass.Variable | ua.NodeClass.Method
            desc.ResultMask = ua.BrowseResultMask.All
            params.NodesToBrowse.append(desc)
        for res in await client.uaclient.browse(params):
            refs = list(res.References or [])
            cont = res.ContinuationPoint
            while cont:
                nparams = ua.BrowseNextParameters()
                nparams.ContinuationPoints = [cont]
                [more] = await client.uaclient.browse_next(nparams)
                refs.extend(more.References or [])
                cont = more.ContinuationPoint
            out.append(refs)
    return out


async def _read(
    client: Client, items: list[tuple[ua.NodeId, ua.AttributeIds]]
) -> list[ua.DataValue]:
    out: list[ua.DataValue] = []
    for start in range(0, len(items), 500):
        params = ua.ReadParameters()
        for nid, attr in items[start : start + 500]:
            rv = ua.ReadValueId()
            rv.NodeId = nid
            rv.AttributeId = attr
            params.NodesToRead.append(rv)
        out.extend(await client.uaclient.read(params))
    return out


async def _describe(
    client: Client,
    namespaces: list[str],
    found: list[tuple[tuple[str, ...], ua.NodeId]],
    props: dict[ua.NodeId, dict[str, ua.NodeId]],
) -> tuple[BrowsedVariable, ...]:
    items = [(nid, attr) for _, nid in found for attr in _ATTRS]
    extra: list[tuple[ua.NodeId, str]] = []
    for _, nid in found:
        for pname in ("EngineeringUnits", "EURange"):
            if pname in props.get(nid, {}):
                extra.append((nid, pname))
                items.append((props[nid][pname], ua.AttributeIds.Value))
    values = await _read(client, items)
    prop_values = {
        key: dv for key, dv in zip(extra, values[len(found) * len(_ATTRS) :], strict=True)
    }
    out = []
    for i, (path, nid) in enumerate(found):
        dtype, access, user_access, value, desc = values[i * len(_ATTRS) : (i + 1) * len(_ATTRS)]
        eu = _value(prop_values.get((nid, "EngineeringUnits")))
        rng = _value(prop_values.get((nid, "EURange")))
        out.append(
            BrowsedVariable(
                path=path,
                node=_ref(namespaces, nid),
                data_type=_type_name(_value(dtype)),
                writable=bool(
                    (_value(access) or 0) & _WRITE and (_value(user_access) or 0) & _WRITE
                ),
                unit=eu.DisplayName.Text if isinstance(eu, ua.EUInformation) else None,
                unece_code=int(eu.UnitId) if isinstance(eu, ua.EUInformation) else None,
                eu_range=(float(rng.Low), float(rng.High)) if isinstance(rng, ua.Range) else None,
                value=_value(value),
                description=(_value(desc).Text or "")
                if isinstance(_value(desc), ua.LocalizedText)
                else "",
            )
        )
    return tuple(out)


def _value(dv: ua.DataValue | None) -> Any:
    if dv is None or dv.StatusCode is not None and not dv.StatusCode.is_good():
        return None
    return dv.Value.Value if dv.Value is not None else None


def _ref(namespaces: list[str], nid: ua.NodeId) -> NodeRef:
    """Namespace URI + the node id without its index (``s=...``, ``i=...``, ``g=...``, ``b=...``)."""
    text: str = nid.to_string()
    return NodeRef(
        namespaces[nid.NamespaceIndex], text.split(";", 1)[1] if text.startswith("ns=") else text
    )


def _type_name(dtype: Any) -> str:
    if isinstance(dtype, ua.NodeId):
        if (
            dtype.NamespaceIndex == 0
            and isinstance(dtype.Identifier, int)
            and 1 <= dtype.Identifier <= 25
        ):
            return ua.VariantType(dtype.Identifier).name
        return str(dtype.to_string())
    return "unknown"
