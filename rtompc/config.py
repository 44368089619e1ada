"""Application config: a TOML file read with tomllib into typed, frozen, validated sections.

Sections: ``[plant]`` (registry name or ``path.py:function`` plus builder
parameters), ``[transport]`` (``inprocess`` or ``opcua`` with endpoint, security,
credentials, tag map, rate limits), ``[loop]`` (sample time, mode OFF/SHADOW/ON,
RTO period), ``[mpc]``, ``[estimator]`` and ``[rto]`` (passed through read-only
to those packages' own config loaders) and ``[historian]``. Every error is a
:class:`~plant_models.errors.ConfigError` naming the file, the key path and what
was expected. Relative paths are resolved against the config file's directory.
Passwords may be given inline or, better, through ``password_env`` (the name of
an environment variable); they are never part of any ``repr``.

Example::

    [plant]
    name = "van_de_vusse"

    [transport]
    kind = "opcua"
    endpoint = "opc.tcp://127.0.0.1:4840/rtompc/"
    lockstep = true

    [loop]
    sample_time_s = 10.0
    mode = "shadow"
    rto_every_n = 30

    [historian]
    path = "run.sqlite"
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from interfaces.limits import MoveLimits
from interfaces.opcua_settings import (
    OpcUaSecurity,
    OpcUaSettings,
    ReadMethod,
    SecurityMode,
    SecurityPolicy,
)
from interfaces.plantio import PlantIO
from interfaces.tagmap import HIL_NAMESPACE_URI, TagMap
from plant_models.errors import ConfigError, EngineError
from plant_models.model import PlantModel
from plant_models.samples import Mode
from plant_models.simulation import Integrator

if TYPE_CHECKING:  # pragma: no cover
    from rtompc.historian import Historian


class TransportKind(Enum):
    """Which PlantIO the application uses."""

    INPROCESS = "inprocess"
    """Lockstep simulation of the plant model in the same process."""
    OPCUA = "opcua"
    """OPC UA client to a HIL server or a PLC."""


@dataclass(frozen=True)
class PlantSection:
    """Which plant model to load."""

    name: str
    """Registry name (``van_de_vusse``) or ``path/to/module.py:function``."""
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Keyword arguments of the plant builder."""

    def load(self) -> PlantModel:
        """Build the model through the registry."""
        from plant_models.library import load

        return load(self.name, **dict(self.params))


@dataclass(frozen=True)
class InProcessSection:
    """Settings of the in-process simulation transport."""

    integrator: Integrator = Integrator.CVODES
    """Integrator of the simulated plant."""
    x0: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """Initial state by name (SI); missing states start at the model's nominal point."""
    d: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """Measured disturbances by name (SI); missing ones at nominal."""
    start_remote: bool = True
    """Start in REMOTE mode (the simulated plant accepts writes at once)."""


@dataclass(frozen=True)
class TransportSection:
    """How the engine talks to the plant."""

    kind: TransportKind
    """In-process simulation or OPC UA."""
    max_rate_per_s: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """Client-side MV rate limits by name, SI units per second."""
    opcua: OpcUaSettings | None = None
    """OPC UA client settings (kind = opcua)."""
    tags: Mapping[str, Any] | None = None
    """Tag-map table (kind = opcua); None: the HIL layout for the plant."""
    hil_plant: str | None = None
    """Object name of the plant on a HIL server when it differs from the model name."""
    inprocess: InProcessSection = field(default_factory=InProcessSection)
    """In-process settings (kind = inprocess)."""


@dataclass(frozen=True)
class LoopSection:
    """The closed-loop schedule."""

    sample_time_s: float
    """Control interval, s."""
    mode: Mode = Mode.SHADOW
    """OFF, SHADOW (compute, do not write) or ON (closed loop)."""
    rto_every_n: int = 0
    """Run RTO every n control intervals (0: no RTO)."""
    steps: int | None = None
    """Number of control intervals to run (None: until stopped)."""
    heartbeat: bool = True
    """Write the heartbeat counter each cycle."""


@dataclass(frozen=True)
class AppConfig:
    """A whole application config."""

    plant: PlantSection
    """Plant model."""
    transport: TransportSection
    """Plant I/O."""
    loop: LoopSection
    """Schedule and mode."""
    mpc: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """``[mpc]`` table, read-only, for the mpc package's own config loader."""
    estimator: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """``[estimator]`` table, read-only."""
    rto: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """``[rto]`` table, read-only."""
    historian: Path | None = None
    """SQLite file of the historian (None: no historian)."""
    source: Path | None = None
    """File the config was read from."""

    def section(self, name: str) -> dict[str, Any]:
        """A plain, mutable deep copy (dicts and lists) of ``mpc``, ``estimator`` or ``rto``,
        for those packages' own config loaders."""
        if name not in ("mpc", "estimator", "rto"):
            raise ConfigError(f"section {name!r}: expected 'mpc', 'estimator' or 'rto'")
        return _thaw(getattr(self, name))

    def load_plant(self) -> PlantModel:
        """The plant model; errors name the config file and ``plant.name``."""
        try:
            return self.plant.load()
        except EngineError as exc:
            raise ConfigError(f"{self.source or '<config>'}: plant.name: {exc}") from None

    def tag_map(self, model: PlantModel) -> TagMap:
        """The tag map for ``model`` (the HIL layout unless ``[transport.tags]`` is given)."""
        where = f"{self.source or '<config>'}: transport.tags"
        if self.transport.tags is None:
            return TagMap.for_hil(model, self.transport.hil_plant, HIL_NAMESPACE_URI)
        return TagMap.from_mapping(self.transport.tags, model, where=where)

    def open_historian(
        self, model: PlantModel, measured: tuple[str, ...] | None = None
    ) -> Historian | None:
        """The configured historian (created with the model's layout), or None when not configured.

        ``measured`` are the PlantIO's measurement names (default: the model's y then d).
        """
        if self.historian is None:
            return None
        from rtompc.historian import Historian, HistorianLayout

        self.historian.parent.mkdir(parents=True, exist_ok=True)
        try:
            return Historian(self.historian, HistorianLayout.for_model(model, measured))
        except ConfigError as exc:
            raise ConfigError(f"{self.source or '<config>'}: historian.path: {exc}") from None

    def build_plantio(self, model: PlantModel) -> PlantIO:
        """A not-yet-connected PlantIO for ``model`` as configured."""
        where = f"{self.source or '<config>'}: transport.max_rate_per_s"
        try:
            limits = MoveLimits.from_model(model, dict(self.transport.max_rate_per_s))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if self.transport.kind is TransportKind.INPROCESS:
            from interfaces.inprocess import InProcessPlantIO

            sec = self.transport.inprocess
            return InProcessPlantIO(
                model,
                self.loop.sample_time_s,
                x0=dict(sec.x0) or None,
                d=dict(sec.d) or None,
                limits=limits,
                method=sec.integrator,
                start_remote=sec.start_remote,
            )
        from interfaces.opcua_client import OpcUaPlantIO

        if self.transport.opcua is None:  # pragma: no cover - guaranteed by the loader
            raise ConfigError(f"{self.source or '<config>'}: transport: opcua settings missing")
        return OpcUaPlantIO(model, self.transport.opcua, self.tag_map(model), limits=limits)


# Loading -------------------------------------------------------------------


def load_config(path: str | Path) -> AppConfig:
    """Read and validate a TOML application config."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return config_from_mapping(data, source=p)


def config_from_mapping(data: Mapping[str, Any], *, source: Path | None = None) -> AppConfig:
    """Validate an already-parsed config table (``source`` for messages and relative paths)."""
    r = _Reader(str(source) if source else "<config>", source.parent if source else Path("."))
    r.keys(data, "", {"plant", "transport", "loop", "mpc", "estimator", "rto", "historian"})
    plant = _plant(r, r.table(data, "plant", required=True))
    loop = _loop(r, r.table(data, "loop", required=True))
    transport = _transport(r, r.table(data, "transport", required=True), loop.sample_time_s)
    hist = r.table(data, "historian")
    r.keys(hist, "historian", {"path"})
    historian = r.path(hist, "historian.path") if "path" in hist else None
    return AppConfig(
        plant=plant,
        transport=transport,
        loop=loop,
        mpc=_freeze(r.table(data, "mpc")),
        estimator=_freeze(r.table(data, "estimator")),
        rto=_freeze(r.table(data, "rto")),
        historian=historian,
        source=source,
    )


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


class _Reader:
    """Typed access to a parsed TOML table with errors naming file and key path."""

    def __init__(self, file: str, base: Path) -> None:
        self.file = file
        self.base = base

    def error(self, key: str, expected: str, got: Any = ...) -> ConfigError:
        suffix = "" if got is ... else f", got {got!r}"
        return ConfigError(f"{self.file}: {key}: expected {expected}{suffix}")

    def keys(self, table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            prefix = f"{where}." if where else ""
            raise ConfigError(
                f"{self.file}: unknown key(s) {', '.join(prefix + k for k in unknown)}; "
                f"expected one of {', '.join(sorted(allowed))}"
            )

    def table(
        self, data: Mapping[str, Any], key: str, *, required: bool = False
    ) -> Mapping[str, Any]:
        node: Any = data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if required:
                    raise ConfigError(f"{self.file}: [{key}]: missing section")
                return {}
            node = node[part]
        if not isinstance(node, Mapping):
            raise self.error(key, "a table", node)
        return node

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        path: str,
        *,
        positive: bool = False,
        default: float | None = None,
    ) -> float:
        if key not in table:
            if default is None:
                raise ConfigError(f"{self.file}: {path}: missing (expected a number)")
            return default
        value = table[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.error(path, "a finite number", value)
        if positive and not value > 0:
            raise self.error(path, "a positive number", value)
        return float(value)

    def integer(
        self, table: Mapping[str, Any], key: str, path: str, default: int | None
    ) -> int | None:
        value = table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(path, "a non-negative integer", value)
        return value

    def string(
        self, table: Mapping[str, Any], key: str, path: str, default: str | None = None
    ) -> str | None:
        value = table.get(key, default)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.error(path, "a non-empty string", value)
        return value

    def boolean(self, table: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.error(path, "true or false", value)
        return value

    def choice(
        self, table: Mapping[str, Any], key: str, path: str, enum: type[Enum], default: Any
    ) -> Any:
        value = table.get(key, default)
        if isinstance(value, enum):
            return value
        for member in enum:  # type: ignore[attr-defined]
            if isinstance(value, str) and value.lower() in (
                str(member.value).lower(),
                member.name.lower(),
            ):
                return member
        options = ", ".join(repr(m.value) for m in enum)  # type: ignore[attr-defined]
        raise self.error(path, f"one of {options}", value)

    def path(self, table: Mapping[str, Any], path: str) -> Path:
        key = path.rsplit(".", 1)[-1]
        value = self.string(table, key, path)
        p = Path(value)  # type: ignore[arg-type]
        return p if p.is_absolute() else self.base / p

    def numbers_by_name(self, table: Mapping[str, Any], path: str) -> Mapping[str, float]:
        out = {}
        for name in table:
            out[name] = self.number(table, name, f"{path}.{name}")
        return MappingProxyType(out)


def _plant(r: _Reader, t: Mapping[str, Any]) -> PlantSection:
    r.keys(t, "plant", {"name", "params"})
    name = r.string(t, "name", "plant.name")
    if name is None:
        raise ConfigError(
            f"{r.file}: plant.name: missing (expected a registry name or path.py:function)"
        )
    if (
        ":" in name
        and name.split(":")[0].endswith(".py")
        and not Path(name.split(":")[0]).is_absolute()
    ):
        name = str(r.base / name)
    return PlantSection(name, MappingProxyType(dict(r.table(t, "params"))))


def _loop(r: _Reader, t: Mapping[str, Any]) -> LoopSection:
    r.keys(t, "loop", {"sample_time_s", "mode", "rto_every_n", "steps", "heartbeat"})
    return LoopSection(
        sample_time_s=r.number(t, "sample_time_s", "loop.sample_time_s", positive=True),
        mode=r.choice(t, "mode", "loop.mode", Mode, Mode.SHADOW),
        rto_every_n=r.integer(t, "rto_every_n", "loop.rto_every_n", 0) or 0,
        steps=r.integer(t, "steps", "loop.steps", None),
        heartbeat=r.boolean(t, "heartbeat", "loop.heartbeat", True),
    )


_OPCUA_KEYS = {
    "endpoint",
    "lockstep",
    "username",
    "password",
    "password_env",
    "read_method",
    "stale_after_s",
    "request_timeout_s",
    "watchdog_interval_s",
    "reconnect_initial_delay_s",
    "reconnect_max_delay_s",
    "readback_rel_tol",
    "readback_abs_tol",
    "mode_timeout_s",
    "security",
    "tags",
    "hil_plant",
    "check_units",
}


def _transport(r: _Reader, t: Mapping[str, Any], sample_time_s: float) -> TransportSection:
    kind = r.choice(t, "kind", "transport.kind", TransportKind, None) if "kind" in t else None
    if kind is None:
        raise ConfigError(f"{r.file}: transport.kind: missing (expected 'inprocess' or 'opcua')")
    rates = r.numbers_by_name(r.table(t, "max_rate_per_s"), "transport.max_rate_per_s")
    if kind is TransportKind.INPROCESS:
        r.keys(t, "transport", {"kind", "max_rate_per_s", "integrator", "x0", "d", "start_remote"})
        sec = InProcessSection(
            integrator=r.choice(
                t, "integrator", "transport.integrator", Integrator, Integrator.CVODES
            ),
            x0=r.numbers_by_name(r.table(t, "x0"), "transport.x0"),
            d=r.numbers_by_name(r.table(t, "d"), "transport.d"),
            start_remote=r.boolean(t, "start_remote", "transport.start_remote", True),
        )
        return TransportSection(kind, rates, inprocess=sec)
    r.keys(t, "transport", {"kind", "max_rate_per_s"} | _OPCUA_KEYS)
    password = r.string(t, "password", "transport.password")
    env = r.string(t, "password_env", "transport.password_env")
    if env is not None:
        if password is not None:
            raise ConfigError(f"{r.file}: transport: give password or password_env, not both")
        password = os.environ.get(env)
        if password is None:
            raise ConfigError(
                f"{r.file}: transport.password_env: environment variable {env} is not set"
            )
    sec_t = r.table(t, "security")
    r.keys(
        sec_t,
        "transport.security",
        {
            "mode",
            "policy",
            "certificate",
            "private_key",
            "private_key_password_env",
            "trusted_server_certificates",
            "application_uri",
        },
    )
    key_pw = None
    if "private_key_password_env" in sec_t:
        var = r.string(
            sec_t, "private_key_password_env", "transport.security.private_key_password_env"
        )
        key_pw = os.environ.get(var or "")
        if key_pw is None:
            raise ConfigError(
                f"{r.file}: transport.security.private_key_password_env: environment variable {var} is not set"
            )
    try:
        security = OpcUaSecurity(
            mode=r.choice(
                sec_t, "mode", "transport.security.mode", SecurityMode, SecurityMode.NONE
            ),
            policy=r.choice(
                sec_t, "policy", "transport.security.policy", SecurityPolicy, SecurityPolicy.NONE
            ),
            certificate=r.path(sec_t, "transport.security.certificate")
            if "certificate" in sec_t
            else None,
            private_key=r.path(sec_t, "transport.security.private_key")
            if "private_key" in sec_t
            else None,
            private_key_password=key_pw,
            trusted_server_certificates=(
                r.path(sec_t, "transport.security.trusted_server_certificates")
                if "trusted_server_certificates" in sec_t
                else None
            ),
            application_uri=r.string(
                sec_t, "application_uri", "transport.security.application_uri", "urn:rtompc:client"
            )
            or "urn:rtompc:client",
        )
        stale = (
            r.number(t, "stale_after_s", "transport.stale_after_s", positive=True)
            if "stale_after_s" in t
            else None
        )
        settings = OpcUaSettings(
            endpoint=r.string(t, "endpoint", "transport.endpoint") or "",
            sample_time_s=sample_time_s,
            security=security,
            username=r.string(t, "username", "transport.username"),
            password=password,
            lockstep=r.boolean(t, "lockstep", "transport.lockstep", False),
            read_method=r.choice(
                t, "read_method", "transport.read_method", ReadMethod, ReadMethod.BATCH
            ),
            stale_after_s=stale,
            check_units=r.boolean(t, "check_units", "transport.check_units", True),
            **{
                k: r.number(t, k, f"transport.{k}", positive=True, default=getattr(_DEFAULTS, k))
                for k in (
                    "request_timeout_s",
                    "watchdog_interval_s",
                    "reconnect_initial_delay_s",
                    "reconnect_max_delay_s",
                    "readback_rel_tol",
                    "readback_abs_tol",
                    "mode_timeout_s",
                )
            },
        )
    except ConfigError as exc:
        if str(exc).startswith(r.file):
            raise
        raise ConfigError(f"{r.file}: transport: {exc}") from None
    tags = r.table(t, "tags") if "tags" in t else None
    return TransportSection(
        kind,
        rates,
        opcua=settings,
        tags=_freeze(tags) if tags is not None else None,
        hil_plant=r.string(t, "hil_plant", "transport.hil_plant"),
    )


_DEFAULTS = OpcUaSettings("opc.tcp://defaults", 1.0)
