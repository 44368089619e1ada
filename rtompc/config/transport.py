"""``[transport]``: how the engine reaches the plant (in-process simulation or OPC UA).

One security vocabulary everywhere (CLI and config): ``security = "none" |
"sign" | "sign-encrypt"``, ``policy`` (default ``Basic256Sha256``), and a
``trust_list`` of certificate files and/or directories. Secrets never sit in
the file: ``password_env`` and ``private_key_password_env`` name environment
variables, read when the transport is built.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from interfaces.opcua_settings import ReadMethod, SecurityPolicy
from rtompc.config.fields import PositiveSeconds, Section, SignalNumber, convert_signal_map
from rtompc.config.paths import FilePath


class TransportKind(Enum):
    """Which PlantIO the application uses."""

    INPROCESS = "inprocess"
    """The plant model simulated in the same process, lockstep."""
    OPCUA = "opcua"
    """OPC UA client to a PLC or a HIL server (in a scenario: the HIL on loopback)."""


class Security(Enum):
    """OPC UA message security (the same words as ``rtompc hil serve --security``)."""

    NONE = "none"
    """No signing, no encryption (loopback tests only)."""
    SIGN = "sign"
    """Messages signed."""
    SIGN_ENCRYPT = "sign-encrypt"
    """Messages signed and encrypted."""


class TagEntry(Section):
    """One tag: a node, optionally in another namespace, with its engineering unit."""

    node: str = Field(min_length=1)
    """Node id in the namespace: ``s=DB1.T_R``, ``i=1001``."""
    namespace: str | None = None
    """Namespace URI (default: ``tags.namespace``)."""
    unit: str | None = None
    """Unit of the raw value on the plant (any unit pint reads: ``degC``, ``t/h``, ``r/min``,
    ``barg``, ``%``); default: the signal's SI unit."""
    valid: tuple[float, float] | None = None
    """Validity range [low, high] in the tag's unit (default: the signal's bounds)."""


class SetpointEntry(TagEntry):
    """A setpoint tag: a tag plus how it is written (``interfaces.tagmap.Tag``)."""

    deadband: float | None = Field(default=None, ge=0)
    """Smallest change worth writing, in the tag's unit; a move closer than this to what
    the plant holds is not sent (default 0: every change is written)."""
    readback_tolerance: float | None = Field(default=None, ge=0)
    """Largest difference between the written value and its read-back, in the tag's unit,
    that still counts as held (default: relative ``readback_rel_tol``, compared with the
    value after integer rounding)."""
    integer: bool | None = None
    """Round to whole units of the tag before writing (default: when the node's DataType is
    an integer type, e.g. an Int16 speed in r/min)."""


class NodeEntry(Section):
    """A status node in another namespace."""

    node: str = Field(min_length=1)
    """Node id."""
    namespace: str | None = None
    """Namespace URI."""


TagValue = str | TagEntry
SetpointValue = str | SetpointEntry
StatusValue = str | NodeEntry


class StatusTagsConfig(Section):
    """``[transport.tags.status]``: the plant's status nodes, each a node string or
    ``{ node = ..., namespace = ... }``; leave out what the plant does not have."""

    heartbeat: StatusValue | None = None
    """UInt32 counter the engine writes every cycle (the PLC's watchdog watches it)."""
    mode: StatusValue | None = None
    """Int32 the engine reads: 0 LOCAL, 1 REMOTE (the plant accepts setpoints only in REMOTE)."""
    mode_request: StatusValue | None = None
    """Int32 the engine writes: 1 asks for REMOTE, 0 hands the plant back (LOCAL)."""
    sim_time: StatusValue | None = None
    """Double the engine reads: the plant's clock in seconds (measurement time)."""
    watchdog_tripped: StatusValue | None = None
    """Boolean the engine reads: the PLC's heartbeat watchdog has tripped."""
    status_text: StatusValue | None = None
    """String the engine reads and logs: why the plant changed mode or refused REMOTE."""
    plant_object: StatusValue | None = None
    """Lockstep plants: the object that owns the ``step`` method."""
    step_method: StatusValue | None = None
    """Lockstep plants: method ``step(n_steps: UInt32) -> sim_time_s``."""
    clock_lockstep: StatusValue | None = None
    """Boolean: the plant advances only through its step method (the HIL's
    ``Status.lockstep``); optional on the server."""
    clock_step_s: StatusValue | None = None
    """Double: plant seconds per simulation step (the HIL's ``Status.step_size_s``)."""
    clock_speed: StatusValue | None = None
    """Double: plant seconds per wall second asked of a real-time plant (the HIL's
    ``Status.speed_factor``)."""


class TagsConfig(Section):
    """``[transport.tags]``: the tag map (default: the rtompc HIL layout for the plant)."""

    namespace: str | None = None
    """Default namespace URI of the nodes (``urn:my-plc``)."""
    measurements: dict[str, TagValue] = {}
    """Measured outputs and disturbances: signal = node string or a tag table."""
    setpoints: dict[str, SetpointValue] = {}
    """MV setpoints written by the engine (a table may add ``deadband``,
    ``readback_tolerance`` and ``integer``)."""
    actuators: dict[str, TagValue] = {}
    """MV values held by the plant (read back)."""
    status: StatusTagsConfig = StatusTagsConfig()
    """Status nodes: heartbeat, REMOTE/LOCAL handshake, plant clock, lockstep method."""

    def as_mapping(self) -> dict[str, Any]:
        """The plain table :meth:`interfaces.tagmap.TagMap.from_mapping` reads."""
        return self.model_dump(exclude_none=True, exclude_defaults=False)


class TransportConfig(Section):
    """``[transport]``: in-process simulation or OPC UA."""

    kind: TransportKind = TransportKind.INPROCESS
    """``inprocess`` or ``opcua``."""
    endpoint: str | None = Field(default=None, pattern=r"^opc\.tcp://")
    """Server URL ``opc.tcp://host:port[/path]`` (``opcua``; in a scenario the local HIL)."""
    security: Security = Security.NONE
    """``none``, ``sign`` or ``sign-encrypt``."""
    policy: SecurityPolicy = SecurityPolicy.BASIC256SHA256
    """Security policy when ``security`` is not ``none``."""
    certificate: FilePath | None = None
    """Client certificate (DER/PEM; ``rtompc certs create`` makes one)."""
    private_key: FilePath | None = None
    """Private key of the client certificate (PEM)."""
    private_key_password_env: str | None = None
    """Environment variable holding the private key's password, if encrypted."""
    trust_list: list[FilePath] = []
    """Trusted server (or CA) certificates: files and/or directories of .der/.pem."""
    application_uri: str = "urn:rtompc:client"
    """Client application URI (must equal the URI in the client certificate)."""
    user: str | None = None
    """User name (anonymous when unset)."""
    password_env: str | None = None
    """Environment variable holding the user's password (never written in the file)."""
    lockstep: bool = False
    """The plant advances only through its step method (HIL lockstep)."""
    speed: float = Field(default=1.0, gt=0)
    """Plant seconds per wall second (a HIL running faster than real time)."""
    read_method: ReadMethod = ReadMethod.BATCH
    """``batch`` (one Read per cycle) or ``subscription`` (queue size 1)."""
    stale_after_s: PositiveSeconds | None = None
    """A value older than this is UNCERTAIN (real-time plants; default off)."""
    request_timeout_s: PositiveSeconds = 2.0
    """Timeout of each OPC UA request."""
    watchdog_interval_s: PositiveSeconds = 0.5
    """Period of the link probe."""
    reconnect_initial_delay_s: PositiveSeconds = 0.1
    """First wait before reconnecting (doubles up to the maximum)."""
    reconnect_max_delay_s: PositiveSeconds = 2.0
    """Largest wait between reconnect attempts."""
    readback_rel_tol: float = Field(default=1e-6, gt=0)
    """Relative tolerance of the write read-back check."""
    readback_abs_tol: float = Field(default=1e-9, gt=0)
    """Absolute tolerance of the write read-back check (SI)."""
    mode_timeout_s: PositiveSeconds = 2.0
    """How long ``rtompc run`` waits at its end for the plant to confirm the LOCAL hand-back
    (``loop.on_stop = "local"``). In the loop a mode request never waits: the loop asks again
    on later cycles."""
    check_units: bool = True
    """At connect, compare each tag's unit with the node's EngineeringUnits."""
    max_rate_per_s: dict[str, Annotated[SignalNumber, Field(gt=0)]] = {}
    """Client-side MV rate limits by name (SI per second, or ``"5 kW/min"``)."""
    tags: TagsConfig | None = None
    """Tag map (default: the rtompc HIL layout)."""
    hil_plant: str | None = None
    """Object name of the plant on a HIL server when it differs from the model name."""
    start_remote: bool = True
    """In-process: the simulated plant starts in REMOTE (accepts writes at once)."""

    @field_validator("max_rate_per_s", mode="before")
    @classmethod
    def _rates(cls, v: Any, info: ValidationInfo) -> Any:
        return convert_signal_map(v, info, rate=True)

    @model_validator(mode="after")
    def _check(self) -> TransportConfig:
        if self.security is not Security.NONE:
            missing = [k for k in ("certificate", "private_key") if getattr(self, k) is None]
            if not self.trust_list:
                missing.append("trust_list")
            if missing:
                raise ValueError(f"security {self.security.value!r} needs {', '.join(missing)}")
        if self.security is not Security.NONE and self.policy is SecurityPolicy.NONE:
            raise ValueError(f"security {self.security.value!r} needs a policy other than None")
        return self
