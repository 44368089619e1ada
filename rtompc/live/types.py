"""Vocabulary of live parameters: roles, sources, a change, a refusal.

A live parameter is addressed by a key: ``controller.mode_request``,
``controller.mode`` (read-only), ``controller.rto_enable``,
``cv.<name>.<field>`` and ``mv.<name>.<field>`` (fields in
:mod:`rtompc.live.params`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from plant_models.errors import ConfigError


class Role(Enum):
    """Who may change what (ordered: a higher role may do what a lower one may)."""

    VIEWER = "viewer"
    """Reads only."""
    OPERATOR = "operator"
    """Modes, operator limits, setpoints and zones, in service."""
    ENGINEER = "engineer"
    """Everything an operator may, plus weights and CV validity limits."""

    @property
    def rank(self) -> int:
        """0 viewer, 1 operator, 2 engineer."""
        return [Role.VIEWER, Role.OPERATOR, Role.ENGINEER].index(self)


class Source(Enum):
    """Where a change came from (journaled)."""

    OPCUA = "opcua"
    """The engine's OPC UA namespace."""
    WEB = "web"
    """The web console."""
    CONFIG = "config"
    """The configuration file at start-up."""
    API = "api"
    """Python code (tests, scripts)."""
    REPLAY = "replay"
    """Replayed at start-up from the journal of the previous run (restart policy)."""


class Refusal(Enum):
    """Why a change was refused (mapped to OPC UA status codes at the edge)."""

    UNKNOWN = "unknown parameter"
    """No such key (BadNodeIdUnknown)."""
    READ_ONLY = "read-only"
    """The parameter is reported, not set (BadNotWritable)."""
    ROLE = "role"
    """The user's role may not change it (BadUserAccessDenied)."""
    TYPE = "type"
    """Wrong value type (BadTypeMismatch)."""
    RANGE = "range"
    """Out of range or inconsistent with another limit (BadOutOfRange)."""


class LiveChangeRefused(ConfigError):
    """A live change was refused; ``reason`` says which kind, the message says why."""

    def __init__(self, key: str, reason: Refusal, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class LiveChange:
    """One accepted (or refused) change, as journaled."""

    key: str
    """Parameter key, e.g. ``cv.t_r.high``."""
    old: object
    """Value before the change."""
    new: object
    """Value requested."""
    user: str
    """Who (user name, or a description such as ``api``)."""
    role: Role
    """The role the change was made with."""
    source: Source
    """Where it came from."""
    wall_time_s: float
    """When it was accepted (Unix time)."""
    outcome: str = "accepted"
    """``accepted`` or ``refused: <reason>: <message>``."""

    @property
    def accepted(self) -> bool:
        """True when the change was accepted."""
        return self.outcome == "accepted"


def check_key(key: str) -> tuple[str, str, str]:
    """Split a key into (group, name, field); ``controller.x`` gives ("controller", "", "x")."""
    parts = key.split(".")
    if len(parts) == 2 and parts[0] == "controller":
        return "controller", "", parts[1]
    if len(parts) == 3 and parts[0] in ("cv", "mv"):
        return parts[0], parts[1], parts[2]
    raise LiveChangeRefused(
        key, Refusal.UNKNOWN, "expected controller.<field>, cv.<name>.<field> or mv.<name>.<field>"
    )
