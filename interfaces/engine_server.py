"""A secured OPC UA server of named variables with guarded writes: the engine's own namespace.

The engine (``rtompc``) describes what to serve as :class:`ServedVariable` rows (a
path under the ``Units`` folder, a type, an engineering unit and EURange, whether
clients may write it) and handles writes in a callback; this module knows nothing
about controllers. Layout, namespace :data:`NAMESPACE_URI` (index resolved by URI)::

    Objects/Units                               folder        ns=i;s=Units
      <path[0]>/<path[1]>/.../<name>            objects / folders / variables
                                                ns=i;s=Units.<path joined by '.'>

Containers named in ``folders`` are FolderType, the others BaseObjectType. Every
variable has EngineeringUnits (EUInformation, UNECE code when known) and EURange
properties, like the HIL's (:mod:`hil.address_space`).

Client writes are answered per node before the callback sees them: BadNotWritable
(read-only variable or not the Value attribute), BadTypeMismatch (another variant
type, an array, a null), BadIndexRangeInvalid; then the callback's
:class:`WriteOutcome` (BadUserAccessDenied, BadOutOfRange, BadTypeMismatch, ...).
A good write stores the value the callback returns.

Security as on the HIL (credentials in :mod:`plant_models.server_auth`): Basic256Sha256
Sign or SignAndEncrypt, the server certificate generated on first start, a trust list of
client certificates, user name + password with a role name passed to the callback.
Without security the endpoint must be a loopback address (tests) unless
``allow_insecure_remote`` says otherwise; anonymous clients then get ``anonymous_role``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

from asyncua import Server, ua
from asyncua.crypto.permission_rules import SimpleRoleRuleset, User, UserRole
from asyncua.server.address_space import AddressSpace, AttributeService
from asyncua.server.internal_server import InternalServer
from asyncua.server.user_managers import UserManager

from interfaces.server_security import PasswordUserManager, TrustListValidator
from plant_models.errors import ConfigError
from plant_models.server_auth import TRUSTED_DIR, UserRecord, ensure_server_certificate
from plant_models.units import unece_code

_log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:rtompc:engine"
"""Namespace of every engine node."""
ROOT = "Units"
"""The folder under Objects holding one object per unit."""
INFINITE_RANGE = 1e300
"""EURange stand-in for an infinite bound."""
UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
"""NamespaceUri of EUInformation for UNECE codes."""


class ValueKind(Enum):
    """The OPC UA type of a served variable."""

    DOUBLE = "Double"
    BOOLEAN = "Boolean"
    STRING = "String"
    UINT32 = "UInt32"
    DOUBLE_ARRAY = "Double[]"
    STRING_ARRAY = "String[]"

    @property
    def variant(self) -> ua.VariantType:
        """The scalar variant type."""
        return getattr(ua.VariantType, self.value.removesuffix("[]"))  # type: ignore[no-any-return]

    @property
    def is_array(self) -> bool:
        """One-dimensional array (ValueRank 1)."""
        return self.value.endswith("[]")


_INITIAL: dict[ValueKind, Any] = {
    ValueKind.DOUBLE: math.nan,
    ValueKind.BOOLEAN: False,
    ValueKind.STRING: "",
    ValueKind.UINT32: 0,
    ValueKind.DOUBLE_ARRAY: [],
    ValueKind.STRING_ARRAY: [],
}


class WriteOutcome(Enum):
    """The answer to one client write (an OPC UA status code)."""

    GOOD = "Good"
    BAD_NOT_WRITABLE = "BadNotWritable"
    BAD_USER_ACCESS_DENIED = "BadUserAccessDenied"
    BAD_TYPE_MISMATCH = "BadTypeMismatch"
    BAD_OUT_OF_RANGE = "BadOutOfRange"
    BAD_NODE_ID_UNKNOWN = "BadNodeIdUnknown"
    BAD_INVALID_STATE = "BadInvalidState"

    @property
    def code(self) -> ua.StatusCode:
        """The asyncua status code."""
        return ua.StatusCode(cast(ua.UInt32, getattr(ua.StatusCodes, self.value)))


@dataclass(frozen=True)
class ServedVariable:
    """One variable of the namespace."""

    path: tuple[str, ...]
    """Containers below ``Units`` and the variable's browse name last."""
    kind: ValueKind
    """OPC UA type."""
    unit: str = ""
    """Engineering unit (SI text; empty: dimensionless)."""
    low: float = -math.inf
    """EURange low."""
    high: float = math.inf
    """EURange high."""
    writable: bool = False
    """Clients may write it (the callback decides who and what)."""
    description: str = ""
    """Description attribute."""

    @property
    def key(self) -> str:
        """The path joined by dots (also the string NodeId after ``Units.``)."""
        return ".".join(self.path)


WriteHandler = Callable[[ServedVariable, Any, str, str], tuple[WriteOutcome, Any]]
"""``(variable, value, user name, role name) -> (outcome, value to store)``; called in the
server's event loop, must not block."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class EngineServerSettings:
    """Endpoint and security of the engine's OPC UA server."""

    endpoint: str = "opc.tcp://127.0.0.1:4841"
    """URL to listen on (``opc.tcp://host:port``)."""
    secure: bool = True
    """Basic256Sha256 with user name + password (False: no security, loopback only)."""
    encrypt: bool = True
    """SignAndEncrypt (False: Sign only)."""
    cert_dir: Path | None = None
    """Server certificate + key (generated when absent) and ``trusted/`` client certificates."""
    users: Mapping[str, UserRecord] = field(default_factory=dict)
    """Users with their role names (required when secure)."""
    application_uri: str = "urn:rtompc:engine:server"
    """ApplicationUri of the server (also in its certificate)."""
    allow_insecure_remote: bool = False
    """Allow an unsecured endpoint on a non-loopback address (never in production)."""
    anonymous_role: str = "viewer"
    """Role of anonymous clients on an unsecured endpoint."""

    def __post_init__(self) -> None:
        url = urlparse(self.endpoint)
        if url.scheme != "opc.tcp" or not url.hostname or url.port is None:
            raise ConfigError(f"endpoint {self.endpoint!r}: expected opc.tcp://host:port")
        if not self.secure:
            if self.users:
                raise ConfigError(
                    "users need security: without it passwords would cross the wire in clear"
                )
            if not is_loopback(url.hostname) and not self.allow_insecure_remote:
                raise ConfigError(
                    f"endpoint {self.endpoint}: refusing to serve without security on a "
                    "non-loopback address (use security 'sign-encrypt' with certificates and "
                    "users, or set allow_insecure_remote = true on an isolated network)"
                )
            return
        if self.cert_dir is None:
            raise ConfigError("security on: cert_dir is required")
        if not self.users:
            raise ConfigError("security on: a users file is required (no anonymous access)")


@dataclass
class EngineUser(User):
    """An asyncua user carrying the engine role name."""

    engine_role: str = "viewer"
    """Role name given to the write handler."""


class _OpenUsers(UserManager):
    def __init__(self, role: str) -> None:
        self._role = role

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        return EngineUser(role=UserRole.User, name=username or "anonymous", engine_role=self._role)


class _NoMethodCalls(SimpleRoleRuleset):
    """asyncua's role rules without method calls (the namespace has none)."""

    _CALL = ua.NodeId(cast(ua.Int32, ua.ObjectIds.CallRequest_Encoding_DefaultBinary))

    def check_validity(self, user: User, action_type_id: ua.NodeId, body: Any) -> bool:
        if action_type_id == self._CALL and user.role != UserRole.Admin:
            return False
        return bool(super().check_validity(user, action_type_id, body))


class EngineServer:
    """The engine's namespace on a running asyncua server."""

    def __init__(
        self,
        settings: EngineServerSettings,
        variables: Sequence[ServedVariable],
        on_write: WriteHandler,
        *,
        folders: frozenset[tuple[str, ...]] = frozenset(),
        name: str = "rtompc engine",
    ) -> None:
        keys = [v.key for v in variables]
        if len(set(keys)) != len(keys):
            raise ConfigError("engine namespace: two variables with the same path")
        self.settings = settings
        self.variables = {v.key: v for v in variables}
        self.on_write = on_write
        self.folders = folders
        self.name = name
        self._server: Server | None = None
        self._ids: dict[str, ua.NodeId] = {}
        self._last: dict[str, Any] = {}
        self._ns = 0

    @property
    def endpoint(self) -> str:
        """The URL clients connect to."""
        return self.settings.endpoint

    @property
    def namespace_index(self) -> int:
        """Index of :data:`NAMESPACE_URI` (after start)."""
        return self._ns

    async def start(self) -> None:
        """Build the namespace and listen (ConfigError when the endpoint cannot be used)."""
        cfg = self.settings
        manager: UserManager = (
            PasswordUserManager(cfg.users, self._user)
            if cfg.secure
            else _OpenUsers(cfg.anonymous_role)
        )
        server = Server(user_manager=manager)
        await server.init()
        server.allow_remote_admin(False)
        server.set_endpoint(cfg.endpoint)
        server.set_server_name(self.name)
        await server.set_application_uri(cfg.application_uri)
        policy = (
            ua.SecurityPolicyType.NoSecurity
            if not cfg.secure
            else ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt
            if cfg.encrypt
            else ua.SecurityPolicyType.Basic256Sha256_Sign
        )
        server.set_security_policy([policy], permission_ruleset=_NoMethodCalls())
        if cfg.secure:
            host = urlparse(cfg.endpoint).hostname or ""
            cert_dir = Path(str(cfg.cert_dir))
            cert, key = ensure_server_certificate(
                cert_dir, cfg.application_uri, (host,), common_name="rtompc engine server"
            )
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
            validator = TrustListValidator(cert_dir / TRUSTED_DIR)
            await validator.load()
            server.set_certificate_validator(validator)  # type: ignore[arg-type]
            server.set_identity_tokens([ua.UserNameIdentityToken])
        else:
            server.set_identity_tokens([ua.AnonymousIdentityToken])
        self._ns = await server.register_namespace(NAMESPACE_URI)
        await self._build(server)
        server.iserver.attribute_service = _GuardedWrites(server.iserver.aspace, self)
        try:
            await server.start()
        except OSError as exc:
            raise ConfigError(f"endpoint {cfg.endpoint}: cannot listen there: {exc}") from None
        self._server = server
        _log.info(
            "engine OPC UA server ready at %s (%d variables, security %s)",
            cfg.endpoint,
            len(self.variables),
            "none" if not cfg.secure else "sign-encrypt" if cfg.encrypt else "sign",
        )

    async def stop(self) -> None:
        """Stop listening (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        iserver = server.iserver
        task = getattr(iserver, "time_task", None)
        if task is not None:  # asyncua's 1 s clock task would delay stop() by up to 1 s
            iserver._time_task_stop = True
            task.cancel()
            iserver.time_task = None
        await server.stop()

    async def __aenter__(self) -> EngineServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def node_id(self, key: str) -> ua.NodeId:
        """The NodeId of a variable or container path (``a.b.c``)."""
        return ua.NodeId(
            cast(ua.String, f"{ROOT}.{key}" if key else ROOT), cast(ua.Int16, self._ns)
        )

    async def update(self, values: Mapping[str, Any], wall_time_s: float | None = None) -> int:
        """Publish new values (key -> value) that differ from the last published ones (the
        SourceTimestamp says when a value last changed); unknown keys are ignored. Returns
        how many were written."""
        if self._server is None:
            return 0
        src = dt.datetime.fromtimestamp(wall_time_s, dt.UTC) if wall_time_s else None
        aspace = self._server.iserver.aspace
        written = 0
        for key, value in values.items():
            var = self.variables.get(key)
            if var is None or _same(self._last.get(key, _UNSET), value):
                continue
            self._last[key] = value
            await aspace.write_attribute_value(
                self._ids[key], ua.AttributeIds.Value, _data_value(var, value, src)
            )
            written += 1
            if written % 8 == 0:  # let other tasks (the control loop) in between
                await asyncio.sleep(0)
        return written

    # building -------------------------------------------------------------------------
    def _user(self, name: str, entry: Any) -> User:
        return EngineUser(role=UserRole.User, name=name, engine_role=str(entry.role))

    async def _build(self, server: Server) -> None:
        ns = self._ns
        root = await server.nodes.objects.add_folder(self.node_id(""), ua.QualifiedName(ROOT, ns))
        containers: dict[tuple[str, ...], Any] = {(): root}
        for var in self.variables.values():
            parent = root
            for depth in range(1, len(var.path)):
                sub = var.path[:depth]
                if sub not in containers:
                    nid, qn = self.node_id(".".join(sub)), ua.QualifiedName(sub[-1], ns)
                    containers[sub] = await (
                        parent.add_folder(nid, qn)
                        if sub in self.folders
                        else parent.add_object(nid, qn)
                    )
                parent = containers[sub]
            self._ids[var.key] = await _add_variable(parent, ns, self.node_id(var.key), var)


async def _add_variable(parent: Any, ns: int, nid: ua.NodeId, var: ServedVariable) -> ua.NodeId:
    vtype = var.kind.variant
    node = await parent.add_variable(
        nid,
        ua.QualifiedName(var.path[-1], ns),
        ua.Variant(_INITIAL[var.kind], vtype, is_array=var.kind.is_array),
        varianttype=vtype,
    )
    if var.kind.is_array:
        await node.write_attribute(
            ua.AttributeIds.ValueRank, ua.DataValue(ua.Variant(1, ua.VariantType.Int32))
        )
    if var.writable:
        await node.set_writable(True)
    if var.description:
        await node.write_attribute(
            ua.AttributeIds.Description,
            ua.DataValue(ua.Variant(ua.LocalizedText(var.description))),
        )
    unit_id = _unit_id(var.unit)
    info = ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE,
        UnitId=unit_id,
        DisplayName=ua.LocalizedText(var.unit or "1"),
        Description=ua.LocalizedText(var.unit or "dimensionless"),
    )
    key = str(nid.Identifier)
    await node.add_property(
        ua.NodeId(cast(ua.String, f"{key}.EngineeringUnits"), cast(ua.Int16, ns)),
        ua.QualifiedName("EngineeringUnits", 0),
        ua.Variant(info, ua.VariantType.ExtensionObject),
        datatype=ua.NodeId(cast(ua.Int32, ua.ObjectIds.EUInformation)),
    )
    rng = ua.Range(Low=_finite(var.low), High=_finite(var.high))
    await node.add_property(
        ua.NodeId(cast(ua.String, f"{key}.EURange"), cast(ua.Int16, ns)),
        ua.QualifiedName("EURange", 0),
        ua.Variant(rng, ua.VariantType.ExtensionObject),
        datatype=ua.NodeId(cast(ua.Int32, ua.ObjectIds.Range)),
    )
    return node.nodeid  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=256)
def _unit_id(unit: str) -> int:
    """OPC UA UnitId: the UNECE common code packed into an Int32 (-1: no code)."""
    code = unece_code(unit) if unit else None
    return -1 if code is None else int.from_bytes(code.upper().encode(), "big")


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.copysign(INFINITE_RANGE, value)


_UNSET = object()


def _same(old: Any, new: Any) -> bool:
    """Equal values (NaN equals NaN; sequences element-wise)."""
    if old is _UNSET:
        return False
    if isinstance(new, float) and isinstance(old, float):
        return old == new or (math.isnan(old) and math.isnan(new))
    if isinstance(new, list | tuple) and isinstance(old, list | tuple):
        return len(old) == len(new) and all(_same(a, b) for a, b in zip(old, new, strict=True))
    return type(old) is type(new) and bool(old == new)


class PublishedValue(ua.DataValue):
    """A DataValue the server never mutates once published, so a deep copy may be itself
    (asyncua deep-copies the value for every monitored item on every write)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> PublishedValue:
        return self


def _data_value(var: ServedVariable, value: Any, src: dt.datetime | None) -> ua.DataValue:
    now = dt.datetime.now(dt.UTC)
    if var.kind.is_array:
        value = list(value)
    elif var.kind is ValueKind.DOUBLE:
        value = math.nan if value is None else float(value)
    elif var.kind is ValueKind.UINT32:
        value = int(value)
    elif var.kind is ValueKind.STRING:
        value = str(value)
    return PublishedValue(
        ua.Variant(value, var.kind.variant, is_array=var.kind.is_array),
        SourceTimestamp=cast(ua.DateTime, src or now),
        ServerTimestamp=cast(ua.DateTime, now),
    )


_SERVER_USER = User(role=UserRole.Admin)


class _GuardedWrites(AttributeService):
    """asyncua's attribute service with the engine's write rules on its variables."""

    def __init__(self, aspace: AddressSpace, server: EngineServer) -> None:
        super().__init__(aspace)
        self._server = server
        self._by_id: dict[ua.NodeId, ServedVariable] = {}

    async def write(
        self, params: ua.WriteParameters, user: User = _SERVER_USER
    ) -> list[ua.StatusCode]:
        if user.role == UserRole.Admin:  # the server itself
            return await super().write(params, user)
        if not self._by_id:
            srv = self._server
            self._by_id = {srv._ids[k]: v for k, v in srv.variables.items()}
        results: list[ua.StatusCode] = []
        for wv in params.NodesToWrite:
            var = self._by_id.get(wv.NodeId)
            if var is None:
                results.extend(await super().write(ua.WriteParameters(NodesToWrite=[wv]), user))
            else:
                results.append(await self._guarded(wv, var, user))
        return results

    async def _guarded(self, wv: ua.WriteValue, var: ServedVariable, user: User) -> ua.StatusCode:
        if not var.writable or wv.AttributeId != ua.AttributeIds.Value:
            return WriteOutcome.BAD_NOT_WRITABLE.code
        if wv.IndexRange:
            return ua.StatusCode(cast(ua.UInt32, ua.StatusCodes.BadIndexRangeInvalid))
        variant = wv.Value.Value if wv.Value is not None else None
        if (
            variant is None
            or variant.VariantType != var.kind.variant
            or variant.is_array != var.kind.is_array
            or variant.Value is None
        ):
            return WriteOutcome.BAD_TYPE_MISMATCH.code
        name = str(user.name or "anonymous")
        role = str(getattr(user, "engine_role", "viewer"))
        try:
            outcome, stored = self._server.on_write(var, variant.Value, name, role)
        except Exception:  # noqa: BLE001 - a handler bug must not take the server down
            _log.exception("write to %s by %s failed in the handler", var.key, name)
            return WriteOutcome.BAD_INVALID_STATE.code
        if outcome is WriteOutcome.GOOD:
            self._server._last[var.key] = stored
            await self._aspace.write_attribute_value(
                wv.NodeId, ua.AttributeIds.Value, _data_value(var, stored, None)
            )
        return outcome.code
