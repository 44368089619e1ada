"""Typed settings of the OPC UA client: endpoint, security, credentials, timing, reads.

Frozen dataclasses, validated on construction. Secrets (password, private-key
password) are excluded from ``repr`` so they never reach a log line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from plant_models.errors import ConfigError


class SecurityMode(Enum):
    """OPC UA message security mode."""

    NONE = "None"
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class SecurityPolicy(Enum):
    """Supported OPC UA security policies (asyncua class name suffixes)."""

    NONE = "None"
    BASIC256SHA256 = "Basic256Sha256"
    AES128_SHA256_RSAOAEP = "Aes128Sha256RsaOaep"
    AES256_SHA256_RSAPSS = "Aes256Sha256RsaPss"


class ReadMethod(Enum):
    """How measurements are obtained each cycle."""

    BATCH = "batch"
    """One Read service call for every tag per cycle (default; also what lockstep needs)."""
    SUBSCRIPTION = "subscription"
    """A subscription with queue size 1 keeps the latest value of each tag; read() takes it."""


@dataclass(frozen=True)
class OpcUaSecurity:
    """Client-side security: certificate, key, trust list of server certificates."""

    mode: SecurityMode = SecurityMode.NONE
    """Message security mode."""
    policy: SecurityPolicy = SecurityPolicy.NONE
    """Security policy (must be NONE exactly when ``mode`` is NONE)."""
    certificate: Path | None = None
    """Client application instance certificate (DER or PEM)."""
    private_key: Path | None = None
    """Private key of the client certificate (PEM)."""
    private_key_password: str | None = field(default=None, repr=False)
    """Password of the private key, if encrypted (never logged)."""
    trusted_server_certificates: Path | tuple[Path, ...] | None = None
    """Trusted server (or CA) certificates: .der/.pem files and/or directories of them.
    Required with security: without a trust list any server certificate would be accepted."""
    application_uri: str = "urn:rtompc:client"
    """Client application URI; must equal the URI in the client certificate's SubjectAltName."""

    def __post_init__(self) -> None:
        if (self.mode is SecurityMode.NONE) != (self.policy is SecurityPolicy.NONE):
            raise ConfigError(
                f"security: mode {self.mode.value!r} and policy {self.policy.value!r} do not fit; "
                "use both None, or a policy with Sign/SignAndEncrypt"
            )
        if self.enabled:
            missing = [
                name
                for name in ("certificate", "private_key", "trusted_server_certificates")
                if getattr(self, name) is None
            ]
            if missing:
                raise ConfigError(f"security: {self.policy.value} needs {', '.join(missing)}")

    @property
    def trust_locations(self) -> tuple[Path, ...]:
        """The trust list as a tuple of files/directories."""
        t = self.trusted_server_certificates
        if t is None:
            return ()
        return (t,) if isinstance(t, Path) else tuple(t)

    @property
    def enabled(self) -> bool:
        """True when the channel is signed (and possibly encrypted)."""
        return self.mode is not SecurityMode.NONE


@dataclass(frozen=True)
class OpcUaSettings:
    """Everything the OPC UA PlantIO needs besides the tag map and the model."""

    endpoint: str
    """Server URL, e.g. ``opc.tcp://127.0.0.1:4840``."""
    sample_time_s: float
    """Control interval; rate limits are applied per this interval."""
    security: OpcUaSecurity = field(default_factory=OpcUaSecurity)
    """Channel security."""
    username: str | None = None
    """User name for a UserName identity token (anonymous when None)."""
    password: str | None = field(default=None, repr=False)
    """Password (never logged)."""
    lockstep: bool = False
    """True when the plant advances only through its ``step`` method (HIL lockstep)."""
    read_method: ReadMethod = ReadMethod.BATCH
    """Batched Read per cycle, or a subscription with queue size 1."""
    request_timeout_s: float = 2.0
    """Timeout of each OPC UA request."""
    watchdog_interval_s: float = 0.5
    """Period of the client-state check. asyncua's keep-alive probe runs every
    ``max(watchdog_interval_s, request_timeout_s)`` with that timeout, so a server slower
    than this interval is not taken for lost; a hung server is detected within about twice
    the larger of the two (a killed one at once)."""
    reconnect_initial_delay_s: float = 0.1
    """First wait before a reconnect attempt; doubles up to the maximum."""
    reconnect_max_delay_s: float = 2.0
    """Largest wait between reconnect attempts."""
    stale_after_s: float | None = None
    """A value whose source timestamp is older than this (measured against the server timestamp
    of the same read) is at best UNCERTAIN; None: off. For real-time plants; a lockstep plant's
    values legitimately age while it waits for the next step."""
    readback_rel_tol: float = 1e-6
    """Relative tolerance of the write read-back check (engineering-unit round trip)."""
    readback_abs_tol: float = 1e-9
    """Absolute tolerance of the write read-back check (SI)."""
    mode_timeout_s: float = 2.0
    """Not used by the transport: :meth:`~interfaces.plantio.PlantIO.request_mode` writes the
    request and returns the mode reported now, without waiting. The application uses it as the
    time to wait for the plant to confirm a LOCAL hand-back at the end of a run."""
    check_units: bool = True
    """At connect, compare each tag's unit with the node's EngineeringUnits property (when the
    server has one) and refuse a mismatch."""

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint, str) or not self.endpoint.startswith("opc.tcp://"):
            raise ConfigError(
                f"endpoint: expected 'opc.tcp://host:port[/path]', got {self.endpoint!r}"
            )
        for name in (
            "sample_time_s",
            "request_timeout_s",
            "watchdog_interval_s",
            "reconnect_initial_delay_s",
            "reconnect_max_delay_s",
            "mode_timeout_s",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name}: expected a positive number of seconds, got {value!r}")
        if self.reconnect_initial_delay_s > self.reconnect_max_delay_s:
            raise ConfigError(
                "reconnect_initial_delay_s must not exceed reconnect_max_delay_s "
                f"({self.reconnect_initial_delay_s} > {self.reconnect_max_delay_s})"
            )
        if self.stale_after_s is not None and not self.stale_after_s > 0:
            raise ConfigError(f"stale_after_s: expected > 0 or None, got {self.stale_after_s!r}")
        if (self.username is None) != (self.password is None):
            raise ConfigError("username and password must be given together")
