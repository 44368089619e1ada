"""The console's server: uvicorn in its own thread and event loop, beside the control loop.

Why a thread: the control loop's cycle time is measured across its awaits (the
controller step runs in a worker thread while the loop's event loop waits). Serving
HTTP in the same event loop would put request parsing, JSON encoding of frames and TLS
on that event loop, between the loop's resumptions. In its own thread the console
shares only the GIL with the loop; frames cross over through
:meth:`rtompc.live.view.UnitView.subscribe` (non-blocking, drop-oldest), writes through
:meth:`rtompc.live.LiveParameters.submit` (thread-safe, applied at the next cycle).
``benchmarks/bench_console.py`` measures what it costs the loop.

:func:`console_surface` gives the operator-surface factory ``rtompc run`` and
``rtompc demo`` enter beside the loop (an async context manager per run).
The socket is bound in the caller's thread before the server starts, so a port in use
or a refused bind is an error at start-up, not a log line in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import uvicorn

from plant_models.errors import ConfigError
from rtompc.console.app import ConsoleApp
from rtompc.console.auth import Sessions, load_console_users
from rtompc.console.settings import ConsoleSettings
from rtompc.console.stream import UnitFeed, tee_journal
from rtompc.historian.journal import HistorianJournal, read_journal
from rtompc.live.view import EngineViews

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"console: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    sock.listen(64)
    sock.setblocking(False)
    return sock


def _initial_journal(live: Any, unit: str) -> list[dict[str, Any]]:
    """The journal of the current run from the historian (when the live parameters write to
    one), so a page opened later shows the changes made before the console started."""
    journal = getattr(live, "journal", None)
    if not isinstance(journal, HistorianJournal) or journal.hist.run_id is None:
        return []
    return [
        {
            "wall_time_s": r.wall_time_s,
            "unit": unit,
            "user": r.user,
            "role": r.role,
            "source": r.source,
            "key": r.key,
            "old": r.old,
            "new": r.new,
            "outcome": r.outcome,
        }
        for r in read_journal(journal.hist, journal.hist.run_id)
    ]


class ConsoleServer:
    """The web console of an application's units, served from a thread."""

    def __init__(self, views: EngineViews, settings: ConsoleSettings) -> None:
        settings.check()
        self.settings = settings
        self.views = views
        users = load_console_users(settings.users) if settings.users is not None else {}
        self.sessions = Sessions(users, settings.session_timeout_s)
        self.console = ConsoleApp(views, self.sessions, tls=settings.tls)
        self.port = settings.port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._undo: list[Callable[[], None]] = []

    @property
    def url(self) -> str:
        """The console's address (with the port actually bound)."""
        host = f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host
        return f"{'https' if self.settings.tls else 'http'}://{host}:{self.port}/"

    def start(self) -> None:
        """Bind, start the thread and wait until the server accepts connections."""
        sock = _bind(self.settings.host, self.settings.port)
        self.port = int(sock.getsockname()[1])
        for name, view in self.views.items():
            feed = UnitFeed(
                view,
                _initial_journal(view.live, name) if view.live is not None else [],
                self.console.site_clients,
            )
            self.console.feeds[name] = feed
            if view.live is not None:
                self._undo.append(tee_journal(view.live, feed.on_change))
        config = uvicorn.Config(
            self.console.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=str(self.settings.certificate) if self.settings.tls else None,
            ssl_keyfile=str(self.settings.private_key) if self.settings.tls else None,
            timeout_graceful_shutdown=2,
        )
        try:
            config.load()  # TLS files are read here: errors in the caller's thread
        except (OSError, ValueError) as exc:
            sock.close()
            raise ConfigError(f"{self.settings.where}: TLS certificate/key: {exc}") from None
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, args=(sock,), daemon=True, name="rtompc-console"
        )
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S) or self._error is not None:
            self.stop()
            raise ConfigError(f"console: server did not start: {self._error}")
        logger.info("console serving at %s", self.url)

    def _run(self, sock: socket.socket) -> None:
        async def main() -> None:
            assert self._server is not None  # noqa: S101
            for feed in self.console.feeds.values():
                feed.start()
            task = asyncio.create_task(self._server.serve(sockets=[sock]))
            while not self._server.started and not task.done():
                await asyncio.sleep(0.01)
            self._started.set()
            try:
                await task
            finally:
                for feed in self.console.feeds.values():
                    await feed.stop()

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            logger.error("console server stopped: %s", exc)
        finally:
            self._started.set()
            sock.close()

    def stop(self) -> None:
        """Stop serving (open streams are closed) and join the thread."""
        for undo in self._undo:
            undo()
        self._undo.clear()
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None


def console_surface(
    settings: ConsoleSettings, on_start: Callable[[ConsoleServer], None] | None = None
) -> Callable[[EngineViews], AbstractAsyncContextManager[ConsoleServer]]:
    """An operator surface for ``run_app``/``run_demo``: serves the console while entered;
    ``on_start`` is told the running server (e.g. to print its address)."""

    @contextlib.asynccontextmanager
    async def surface(views: EngineViews) -> AsyncIterator[ConsoleServer]:
        server = ConsoleServer(views, settings)
        await asyncio.to_thread(server.start)
        if on_start is not None:
            on_start(server)
        try:
            yield server
        finally:
            await asyncio.to_thread(server.stop)

    return surface
