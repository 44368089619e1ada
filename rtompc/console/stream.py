"""Frames and journal changes pushed to browsers (Server-Sent Events), never polled.

One :class:`UnitFeed` per unit runs in the console's event loop: it subscribes to the
unit's :class:`rtompc.live.view.UnitView`, turns each new frame into JSON **once** and
hands the text to every connected browser's queue. A slow browser never slows the
loop or the other browsers: its queue is bounded and drops its oldest message.
Every feed also pushes a small ``unit`` event (:func:`unit_state`: mode, link, cycle) to
the site-wide stream (``site_clients``, shared by all feeds), so a page showing one unit
sees another unit's lost link in its unit selector.

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
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

from plant_models.samples import Mode
from rtompc.live.frame import Frame, Prediction
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


def change_json(change: LiveChange, unit: str) -> dict[str, Any]:
    """A journal entry of ``unit`` as the page shows it."""
    return {
        "wall_time_s": change.wall_time_s,
        "unit": unit,
        "user": change.user,
        "role": change.role.value,
        "source": change.source.value,
        "key": change.key,
        "old": _plain(change.old),
        "new": _plain(change.new),
        "outcome": change.outcome,
    }


def _n(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _pred(p: Prediction) -> dict[str, list[float | None]]:
    return {"times_s": [_n(t) for t in p.times_s], "values": [_n(v) for v in p.values]}


def frame_dict(f: Frame) -> dict[str, Any]:
    """``Frame.to_json()`` built field by field (about 4x faster than its generic walk; a test
    checks they agree): the console encodes every frame it pushes."""
    st, rto = f.status, f.rto
    return {
        "unit": f.unit,
        "cycle": f.cycle,
        "time_s": _n(f.time_s),
        "wall_time_s": _n(f.wall_time_s),
        "mode": f.mode.value,
        "mode_request": f.mode_request.value,
        "plant_mode": f.plant_mode,
        "connected": f.connected,
        "cvs": [
            {
                "name": c.name,
                "unit": c.unit,
                "measured": _n(c.measured),
                "estimate": _n(c.estimate),
                "target": _n(c.target),
                "setpoint": _n(c.setpoint),
                "low": _n(c.low),
                "high": _n(c.high),
                "validity_low": _n(c.validity_low),
                "validity_high": _n(c.validity_high),
                "zone_low": _n(c.zone_low),
                "zone_high": _n(c.zone_high),
                "weight": _n(c.weight),
                "in_service": c.in_service,
                "quality": c.quality,
                "prediction": _pred(c.prediction),
                "prediction_end": _n(c.prediction.end),
            }
            for c in f.cvs
        ],
        "mvs": [
            {
                "name": m.name,
                "unit": m.unit,
                "value": _n(m.value),
                "written": _n(m.written),
                "computed": _n(m.computed),
                "low": _n(m.low),
                "high": _n(m.high),
                "rate": _n(m.rate),
                "in_service": m.in_service,
                "health": m.health,
                "write_status": m.write_status,
                "planned": _pred(m.planned),
            }
            for m in f.mvs
        ],
        "status": {
            "solver": st.solver,
            "solver_status": st.solver_status,
            "solve_time_s": _n(st.solve_time_s),
            "cycle_time_s": _n(st.cycle_time_s),
            "fallback": st.fallback,
            "fallbacks": st.fallbacks,
            "overruns": st.overruns,
            "service_factor": _n(st.service_factor),
            "write_status": st.write_status,
            "flags": list(st.flags),
            "events": list(st.events),
        },
        "rto": {
            "enabled": rto.enabled,
            "status": rto.status,
            "last_profit": _n(rto.last_profit),
            "active_constraints": list(rto.active_constraints),
        },
    }


def unit_state(f: Frame) -> dict[str, Any]:
    """What the unit selector shows of a unit: its mode and link, and the cycle."""
    return {
        "unit": f.unit,
        "cycle": f.cycle,
        "mode": f.mode.value,
        "connected": f.connected,
        "plant_mode": f.plant_mode,
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

    def __init__(
        self,
        view: UnitView,
        journal: list[dict[str, Any]] | None = None,
        site_clients: set[Client] | None = None,
    ) -> None:
        self.view = view
        self.clients: set[Client] = set()
        self.site_clients: set[Client] = site_clients if site_clients is not None else set()
        """Browsers following every unit's state (shared by the application's feeds)."""
        self.journal: deque[dict[str, Any]] = deque(journal or (), maxlen=JOURNAL_KEPT)
        self.frames_sent = 0
        self._encoded: OrderedDict[int, str] = OrderedDict()
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

    def encoded(self, frame: Frame) -> str:
        """A frame's JSON, encoded once and kept as long as the view keeps the frame."""
        text = self._encoded.get(frame.cycle)
        if text is None:
            text = json.dumps(frame_dict(frame), separators=(",", ":"))
            self._encoded[frame.cycle] = text
            while len(self._encoded) > self.view.capacity:
                self._encoded.popitem(last=False)
        return text

    def history(self, frames: Iterable[Frame]) -> str:
        """A JSON array of frames (each encoded at most once while it is kept)."""
        return "[" + ",".join(self.encoded(f) for f in frames) + "]"

    def backlog(self, last: int) -> list[str]:
        """What a browser gets when it (re)connects, before the live messages: the last
        ``last`` frames as one ``history`` event (none when 0) and every kept journal entry,
        oldest first. Called in the console's event loop right after the browser joins
        :attr:`clients`, so it and the live messages leave no gap."""
        out = []
        if last > 0:
            out.append(sse("history", self.history(self.view.frames()[-last:])))
        out.extend(sse("journal", json.dumps(e, default=str)) for e in self.journal)
        return out

    async def _forward(self) -> None:
        assert self._sub is not None  # noqa: S101 - set by start()
        while True:
            frame = await self._sub.get()
            if self.site_clients:
                state = sse("unit", json.dumps(unit_state(frame)))
                for client in list(self.site_clients):
                    client.put(state)
            if not self.clients:
                continue  # nobody watching this unit: no frame JSON work at all
            try:
                text = sse("frame", self.encoded(frame))
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
        entry = change_json(change, self.view.name)
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
