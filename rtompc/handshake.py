"""REMOTE/LOCAL handshake with the plant, without blocking the loop, and watchdog recovery.

Each ON cycle with the link up, :meth:`RemoteHandshake.poll` reads the plant's
mode and status text (one read each) and decides whether the engine is *in
control* this cycle: only then does the loop write setpoints and the heartbeat.
The engine never looks alive while it is not in control.

- The plant in REMOTE: in control.
- The plant in LOCAL after having been REMOTE (a watchdog trip, the operator's
  key switch, a PLC restart): the drop is logged once with what the PLC says,
  the heartbeat and the writes stop, the loop follows the MV values the plant
  holds (so the estimator and the controller's move reference stay right), and
  REMOTE is asked for again under the :class:`RemotePolicy`.
- Asking: :meth:`interfaces.plantio.PlantIO.request_mode` writes the request and
  returns the mode read back at once; a refusal (a bad status code, or the
  plant still LOCAL) is logged when its reason changes and asked again after
  ``retry_cycles``, doubling up to ``retry_max_cycles`` (policy ``auto``), or
  only after :meth:`RemoteHandshake.operator_request` (policy ``operator``;
  ``rtompc run`` maps SIGUSR1 to it). The start of an ON run (and a switch to
  ON) is an operator's request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from interfaces.plantio import PlantIO, PlantMode
from plant_models.errors import ConfigError, PlantIOError

logger = logging.getLogger(__name__)


class RemotePolicy(Enum):
    """When the engine asks for REMOTE again after the plant dropped to LOCAL."""

    AUTO = "auto"
    """Automatically, every ``retry_cycles`` cycles, backing off to ``retry_max_cycles``."""
    OPERATOR = "operator"
    """Only when an operator asks (``ControlLoop.request_remote``, SIGUSR1 to ``rtompc run``)."""


@dataclass(frozen=True)
class HandshakeSettings:
    """How the loop asks the plant for REMOTE."""

    policy: RemotePolicy = RemotePolicy.AUTO
    """Re-ask automatically with backoff, or only on an operator's request."""
    retry_cycles: int = 5
    """Cycles between two REMOTE requests the plant refused (first interval)."""
    retry_max_cycles: int = 60
    """Longest interval between requests after backing off (doubling), cycles."""

    def __post_init__(self) -> None:
        if not isinstance(self.policy, RemotePolicy):
            raise ConfigError(
                f"loop.remote_policy: expected 'auto' or 'operator', got {self.policy!r}"
            )
        if self.retry_cycles < 1:
            raise ConfigError(f"loop.remote_retry_cycles: expected >= 1, got {self.retry_cycles}")
        if self.retry_max_cycles < self.retry_cycles:
            raise ConfigError(
                f"loop.remote_retry_max_cycles: expected >= remote_retry_cycles "
                f"({self.retry_cycles}), got {self.retry_max_cycles}"
            )


@dataclass(frozen=True)
class PlantSide:
    """What the handshake found this cycle."""

    mode: PlantMode | None
    """Plant mode as read (None: unreadable)."""
    status_text: str
    """The PLC's status text ("" when the tag map has none)."""
    in_control: bool
    """True when the engine may write setpoints and the heartbeat this cycle."""
    requested: bool
    """True when REMOTE was asked for this cycle."""


async def read_status_text(io: PlantIO) -> str:
    """The PLC's status text, "" when unmapped or unreadable."""
    reader = getattr(io, "status_text", None)
    if reader is None:
        return ""
    try:
        return str(await reader())
    except PlantIOError:
        return ""


class RemoteHandshake:
    """Tracks whether the engine is in control and asks for REMOTE when it should."""

    def __init__(self, settings: HandshakeSettings) -> None:
        self.settings = settings
        self.in_control = False
        """The plant was REMOTE at the last poll."""
        self.requests = 0
        """REMOTE requests sent."""
        self.drops = 0
        """Times the plant went from REMOTE to LOCAL with the link up."""
        self.watchdog_trips = 0
        """Of those, the drops whose PLC status text named its watchdog."""
        self.last_drop = ""
        """What the PLC said at the last drop ("" before any)."""
        self._may_ask = True
        self._wait = 0
        self._interval = settings.retry_cycles
        self._refusal = ""
        self._text = ""

    def operator_request(self) -> None:
        """An operator asks for REMOTE: ask at the next ON cycle, whatever the policy."""
        self._may_ask = True
        self._wait = 0
        self._interval = self.settings.retry_cycles

    def link_lost(self) -> None:
        """The link went down: not in control; after the reconnect a REMOTE plant is taken
        as it is, a LOCAL one is treated as a drop (policy applies)."""
        self.in_control = False

    def reset(self) -> None:
        """A new start (switch to ON): ask at once."""
        self.in_control = False
        self.operator_request()

    async def poll(self, io: PlantIO, want_remote: bool, events: list[str]) -> PlantSide:
        """Read the plant's mode and status text; ask for REMOTE when due. Never raises."""
        text = await read_status_text(io)
        if text != self._text and text:
            events.append(f"PLC status: {text}")
        self._text = text
        try:
            mode: PlantMode | None = await io.mode()
        except PlantIOError as exc:
            mode = None
            self._note_refusal(f"plant mode unreadable: {exc}", events)
        requested = False
        if not want_remote:
            self.in_control = False
            return PlantSide(mode, text, False, False)
        if mode is PlantMode.REMOTE:
            self._granted(events, text)
        elif mode is PlantMode.LOCAL:
            if self.in_control:
                self.drops += 1
                watchdog = "watchdog" in text.lower()
                self.watchdog_trips += watchdog
                self.last_drop = text or "no status text"
                kind = "watchdog trip" if watchdog else "plant dropped to LOCAL"
                events.append(
                    f"{kind} with the link up (PLC: {text or 'no status text'}): "
                    "heartbeat and writes stopped, following the plant's MVs"
                )
                self.in_control = False
                self._may_ask = self.settings.policy is RemotePolicy.AUTO
                self._wait = self.settings.retry_cycles
                self._interval = self.settings.retry_cycles
            else:
                self._wait -= 1
            if self._may_ask and self._wait <= 0:
                requested = True
                mode = await self._ask(io, events) or mode
                if mode is PlantMode.REMOTE:
                    self._granted(events, text)
        return PlantSide(mode, text, self.in_control, requested)

    def _granted(self, events: list[str], text: str) -> None:
        if not self.in_control:
            events.append(f"plant granted REMOTE{f' (PLC: {text})' if text else ''}")
        self.in_control = True
        self._refusal = ""
        self._interval = self.settings.retry_cycles
        self._wait = 0
        self._may_ask = True

    async def _ask(self, io: PlantIO, events: list[str]) -> PlantMode | None:
        self.requests += 1
        if self.settings.policy is RemotePolicy.OPERATOR:
            self._may_ask = False  # one request per operator request (or start)
        self._wait = self._interval
        self._interval = min(2 * self._interval, self.settings.retry_max_cycles)
        try:
            mode = await io.request_mode(remote=True)
        except PlantIOError as exc:
            self._note_refusal(f"REMOTE refused: {exc}", events)
            return None
        if mode is not PlantMode.REMOTE:
            text = await read_status_text(io)
            self._text = text or self._text
            why = f"REMOTE requested, plant still {mode.name}"
            self._note_refusal(f"{why} (PLC: {text})" if text else why, events)
        return mode

    def _note_refusal(self, why: str, events: list[str]) -> None:
        if why != self._refusal:
            events.append(why)
        self._refusal = why

    @property
    def refusal(self) -> str:
        """The reason of the last refusal ("" after a grant)."""
        return self._refusal
