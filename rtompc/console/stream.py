"""Frames and journal changes pushed to browsers (Server-Sent Events), never polled.

One :class:`UnitFeed` per unit runs in the console's event loop: it subscribes to the
unit's :class:`rtompc.live.view.UnitView`, turns each new frame into JSON **once** and
hands the text to every connected browser's queue. A slow browser never slows the
loop or the other browsers: its queue is bounded and drops its oldest message.

Journal changes arrive from :class:`rtompc.live.LiveParameters` (its ``journal``
callback, chained by :func:`tee_journal`) in whatever thread submitted them and are
pushed the same way, so every browser sees a change, accepted or refused, the moment
it is journaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any

from plant_models.samples import Mode
from rtompc.live.types import LiveChange
from rtompc.live.view import Subscription, UnitView

logger = logging.getLogger(__name__)

CLIENT_QUEUE = 32
"""Messages buffered per browser before the oldest is dropped."""
JOURNAL_KEPT = 500
"""Journal entries kept in memory per unit (for pages opened later)."""


def _plain(value: object) -> object:
    if isinstance(value, Mode):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def change_json(change: LiveChange) -> dict[str, Any]:
    """A journal entry as the page shows it."""
    return {
        "wall_time_s": change.wall_time_s,
        "user": change.user,
        "role": change.role.value,
        "source": change.source.value,
        "key": change.key,
        "old": _plain(change.old),
        "new": _plain(change.new),
        "outcome": change.outcome,
    }


def sse(event: str, data: str) -> str:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {data}\n\n"


class Client:
    """One connected browser: a bounded queue of SSE messages."""

    def __init__(self) -> None:
        self.queue: deque[str] = deque(maxlen=CLIENT_QUEUE)
        self.event = asyncio.Event()
        self.dropped = 0

    def put(self, message: str) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(message)
        self.event.set()

    async def next(self, timeout_s: float) -> str | None:
        """The next message, or None after ``timeout_s`` (the caller sends a keep-alive)."""
        if not self.queue:
            self.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), timeout_s)
        return self.queue.popleft() if self.queue else None


class UnitFeed:
    """Fans one unit's frames and journal out to its browsers (console event loop only)."""

    def __init__(self, view: UnitView, journal: list[dict[str, Any]] | None = None) -> None:
        self.view = view
        self.clients: set[Client] = set()
        self.journal: deque[dict[str, Any]] = deque(journal or (), maxlen=JOURNAL_KEPT)
        self.frames_sent = 0
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Subscribe and start forwarding (inside the console's event loop)."""
        self._loop = asyncio.get_running_loop()
        self._sub = self.view.subscribe(maxsize=8)
        self._task = asyncio.create_task(self._forward(), name=f"console feed {self.view.name}")

    async def stop(self) -> None:
        """Unsubscribe and stop."""
        if self._sub is not None:
            self._sub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _forward(self) -> None:
        assert self._sub is not None  # noqa: S101 - set by start()
        while True:
            frame = await self._sub.get()
            if not self.clients:
                continue  # nobody watching: no JSON work at all
            try:
                text = sse("frame", json.dumps(frame.to_json(), separators=(",", ":")))
            except (TypeError, ValueError) as exc:
                logger.error(
                    "unit %s: frame %d not serialisable: %s", self.view.name, frame.cycle, exc
                )
                continue
            for client in list(self.clients):
                client.put(text)
            self.frames_sent += 1

    def on_change(self, change: LiveChange) -> None:
        """Journal callback (any thread): keep the entry and push it to the browsers."""
        entry = change_json(change)
        loop = self._loop
        if loop is None or loop.is_closed():
            self.journal.append(entry)
            return
        with contextlib.suppress(RuntimeError):  # the console's loop closed meanwhile
            loop.call_soon_threadsafe(self._push_change, entry)

    def _push_change(self, entry: dict[str, Any]) -> None:
        self.journal.append(entry)
        text = sse("journal", json.dumps(entry, default=str))
        for client in list(self.clients):
            client.put(text)


def tee_journal(live: Any, also: Callable[[LiveChange], None]) -> Callable[[], None]:
    """Chain ``also`` after the live parameters' journal callback; returns an undo."""
    original = live.journal

    def both(change: LiveChange) -> None:
        if original is not None:
            original(change)
        try:
            also(change)
        except Exception as exc:  # noqa: BLE001 - the console must not break a submission
            logger.error("console journal push failed: %s", exc)

    live.journal = both

    def undo() -> None:
        if live.journal is both:
            live.journal = original

    return undo
