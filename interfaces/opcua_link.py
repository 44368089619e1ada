"""The OPC UA link policy: one live session at a time, loss detection, reconnect with backoff.

asyncua's own auto-reconnect is not used (requests during an outage fail at
once there, and its backoff starts at 1 s). :class:`OpcUaLink` owns the current
:class:`~interfaces.opcua_session.OpcUaSession` and a supervisor task:

- loss is detected by asyncua's keep-alive probe (``connection_lost_callback``),
  by a check of the client state every ``watchdog_interval_s``, and by any
  request that fails with a link error (:meth:`OpcUaLink.call`); a killed server
  is seen at once, a hung one within about twice ``max(watchdog_interval_s, request_timeout_s)``;
- from the moment of loss :attr:`OpcUaLink.session` is None, so nothing is
  written until a new session is open;
- reconnect attempts start after ``reconnect_initial_delay_s`` and double up
  to ``reconnect_max_delay_s``; each new session is handed to the owner's
  ``on_open(session, reconnect)`` hook (subscriptions, bumpless
  re-initialisation) before it is published, all or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from asyncua.client.ua_client import UaClientState
from asyncua.ua.uaerrors import UaError

from interfaces.opcua_session import OpcUaSession, is_link_error
from interfaces.opcua_settings import OpcUaSettings
from interfaces.tagmap import TagMap
from plant_models.errors import PlantIOError

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

OnOpen = Callable[[OpcUaSession, bool], Awaitable[None]]
"""Hook run on every new session before it is published: ``on_open(session, reconnect)``."""


class OpcUaLink:
    """The current session to one endpoint and the supervisor that keeps it alive."""

    def __init__(self, settings: OpcUaSettings, tags: TagMap, on_open: OnOpen) -> None:
        self.settings = settings
        self.tags = tags
        self._on_open = on_open
        self.session: OpcUaSession | None = None
        """The live session, None while the link is down."""
        self._stale: OpcUaSession | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._closing = False
        self.reconnects = 0
        """Successful reconnects since :meth:`start`."""
        self.last_error = ""
        """Last link error (no secrets)."""
        self.down_since: float | None = None
        """Monotonic time of the last loss, None while up."""

    async def start(self) -> None:
        """Open the first session (raises :class:`PlantIOError`) and start the supervisor."""
        if self.session is not None:
            return
        self._closing = False
        await self._open(reconnect=False)
        self._supervisor = asyncio.create_task(self._supervise(), name="rtompc-opcua-link")

    async def close(self) -> None:
        """Stop the supervisor and close every session (idempotent)."""
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        for session in (self.session, self._stale):
            if session is not None:
                await session.close()
        self.session = self._stale = None
        self._up.clear()
        self._down.set()

    async def wait_up(self, timeout_s: float) -> bool:
        """Wait until a session is live; False on timeout."""
        try:
            await asyncio.wait_for(self._up.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def wait_down(self, timeout_s: float) -> bool:
        """Wait until a loss has been detected; False on timeout."""
        try:
            await asyncio.wait_for(self._down.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def call(self, what: str, session: OpcUaSession, coro: Awaitable[_T]) -> _T:
        """Run one request on ``session``; a link error marks it lost. Raises PlantIOError."""
        try:
            return await asyncio.wait_for(coro, self.settings.request_timeout_s)
        except (UaError, ConnectionError, OSError, TimeoutError) as exc:
            if is_link_error(exc):
                self.lost(exc, session)
            raise PlantIOError(
                f"{self.settings.endpoint}: {what} failed ({type(exc).__name__}: {exc})"
            ) from None

    def lost(self, exc: BaseException | str, session: OpcUaSession | None) -> None:
        """Mark ``session`` lost (a late report about an older session is ignored)."""
        if session is None or session is not self.session:
            return
        self.session = None
        self._stale = session
        self.last_error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.down_since = time.monotonic()
        self._up.clear()
        self._down.set()
        self._lost.set()
        _log.warning("link to %s lost: %s; reconnecting", self.settings.endpoint, self.last_error)

    async def _on_lost(self, session: OpcUaSession, exc: Exception) -> None:
        self.lost(exc, session)

    async def _open(self, reconnect: bool) -> None:
        self._lost.clear()
        session = await OpcUaSession.open(self.settings, self.tags, self._on_lost)
        try:
            await self._on_open(session, reconnect)
        except BaseException as exc:
            await session.close()
            if isinstance(exc, PlantIOError | asyncio.CancelledError):
                raise
            raise PlantIOError(
                f"{self.settings.endpoint}: set-up after connect failed ({exc!r})"
            ) from None
        if reconnect:
            self.reconnects += 1
            outage = time.monotonic() - self.down_since if self.down_since is not None else 0.0
            _log.info(
                "link to %s back after %.1f s (reconnect %d)",
                self.settings.endpoint,
                outage,
                self.reconnects,
            )
        else:
            _log.info("connected to %s", self.settings.endpoint)
        self.session = session
        self.down_since = None
        self._down.clear()
        self._up.set()

    async def _supervise(self) -> None:
        settings = self.settings
        while not self._closing:
            session = self.session
            if session is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), settings.watchdog_interval_s)
                if self.session is session and session.client.state is not UaClientState.CONNECTED:
                    self.lost(f"client state {session.client.state.value}", session)
                continue
            stale, self._stale = self._stale, None
            if stale is not None:
                await stale.close()
            delay = settings.reconnect_initial_delay_s
            while not self._closing and self.session is None:
                try:
                    await self._open(reconnect=True)
                except PlantIOError as exc:
                    # one line per state change: the loss was logged, the return will be
                    _log.debug("reconnect to %s failed: %s", settings.endpoint, exc)
                    self.last_error = str(exc)
                    await asyncio.sleep(delay)
                    delay = min(2.0 * delay, settings.reconnect_max_delay_s)
