"""The console's HTTP routes (Starlette): login, the page, its assets, the JSON API, the stream.

Every route but ``/login`` needs a session (:mod:`rtompc.console.auth`): the page
redirects to the login form (303), the API answers 401. Writes go only through
:meth:`rtompc.live.LiveParameters.submit` with the session's role and
``Source.WEB``; a refusal comes back with its reason and message (HTTP 403 role,
404 unknown, 409 read-only, 400 type, 422 range) and is journaled like any other.

==========================  ===================================================
``GET  /login``             login form (the only public route)
``POST /login``             user + password -> session cookie, redirect to ``/``
``POST /logout``            end the session
``GET  /``                  the console page
``GET  /static/NAME``       uPlot and the console's script and style
``GET  /api/units``         units (CVs/MVs, latest mode and link), the user and role
``GET  /api/events``        Server-Sent Events: ``unit`` (each unit's mode and link)
``GET  /api/units/U/frames``  recent frames of unit U (``?last=N``, default 600)
``GET  /api/units/U/journal`` the change journal of unit U
``GET  /api/units/U/events``  Server-Sent Events: ``history`` (``?last=N`` frames) and the
                            kept ``journal``, then each new ``frame`` and ``journal``
``POST /api/units/U/submit``  ``{"key": ..., "value": ...}`` -> a live change
==========================  ===================================================
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from rtompc.console.auth import COOKIE, LOGIN_COOKIE, Session, Sessions, cookie_options
from rtompc.console.stream import Client, UnitFeed, sse, unit_state
from rtompc.live.params import LiveParameters
from rtompc.live.types import LiveChangeRefused, Refusal, Role, Source
from rtompc.live.view import EngineViews
from rtompc.webassets import read_asset

logger = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
"""An SSE comment this often keeps proxies from closing an idle stream."""
STATUS = {
    Refusal.ROLE: 403,
    Refusal.UNKNOWN: 404,
    Refusal.READ_ONLY: 409,
    Refusal.TYPE: 400,
    Refusal.RANGE: 422,
}
"""HTTP status of each kind of refusal."""
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""Security headers on every response."""
STATIC = {
    "uPlot.iife.min.js": ("webassets", "application/javascript"),
    "uPlot.min.css": ("webassets", "text/css"),
    "console.js": ("console", "application/javascript"),
    "console.css": ("console", "text/css"),
}


def _static(name: str) -> str:
    where, _ = STATIC[name]
    if where == "webassets":
        return read_asset(name)
    return resources.files("rtompc.console").joinpath("static", name).read_text("utf-8")


def _template(name: str, **values: str) -> str:
    text = resources.files("rtompc.console").joinpath("static", name).read_text("utf-8")
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", html.escape(v, quote=True))
    return text


def _value(raw: object) -> object:
    """JSON value -> live value (``"inf"``/``"-inf"`` for no limit)."""
    if isinstance(raw, str) and raw.strip().lower() in ("inf", "+inf", "-inf"):
        return math.inf if not raw.strip().startswith("-") else -math.inf
    if isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    return raw


class ConsoleApp:
    """The routes, bound to an application's views, its sessions and its feeds."""

    def __init__(self, views: EngineViews, sessions: Sessions, *, tls: bool) -> None:
        self.views = views
        self.sessions = sessions
        self.tls = tls
        self.feeds: dict[str, UnitFeed] = {}
        """Unit name -> feed (filled by the server inside its event loop)."""
        self.site_clients: set[Client] = set()
        """Browsers following every unit's state (``/api/events``)."""
        self.app = Starlette(
            routes=[
                Route("/login", self.login_form, methods=["GET"]),
                Route("/login", self.login, methods=["POST"]),
                Route("/logout", self.logout, methods=["POST"]),
                Route("/", self.page, methods=["GET"]),
                Route("/static/{name}", self.static, methods=["GET"]),
                Route("/api/units", self.units, methods=["GET"]),
                Route("/api/events", self.site_events, methods=["GET"]),
                Route("/api/units/{unit}/frames", self.frames, methods=["GET"]),
                Route("/api/units/{unit}/journal", self.journal, methods=["GET"]),
                Route("/api/units/{unit}/events", self.events, methods=["GET"]),
                Route("/api/units/{unit}/submit", self.submit, methods=["POST"]),
            ],
        )
        self.app.add_middleware(_Headers)  # type: ignore[arg-type]

    # sessions --------------------------------------------------------------------------
    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def _unit(self, request: Request) -> tuple[str, LiveParameters | None] | None:
        name = request.path_params["unit"]
        if name not in self.views:
            return None
        return name, self.views[name].live

    # login -----------------------------------------------------------------------------
    async def login_form(self, request: Request, message: str = "", status: int = 200) -> Response:
        token = secrets.token_urlsafe(16)
        body = _template("login.html", token=token, message=message)
        response = HTMLResponse(body, status_code=status)
        response.set_cookie(
            LOGIN_COOKIE, self.sessions.sign(token), **cookie_options(self.tls, 600)
        )
        return response

    async def login(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("csrf") or [""])[0]
        if not token or self.sessions.unsign(request.cookies.get(LOGIN_COOKIE)) != token:
            return await self.login_form(request, "The login form expired; please try again.", 403)
        user = (form.get("user") or [""])[0]
        password = (form.get("password") or [""])[0]
        found = await asyncio.to_thread(self.sessions.authenticate, user, password)
        if found is None:
            await asyncio.sleep(0.5)  # slows down guessing
            return await self.login_form(request, "Unknown user or wrong password.", 401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE, self.sessions.open(found), **cookie_options(self.tls, self.sessions.timeout_s)
        )
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    async def logout(self, request: Request) -> Response:
        session = self.session(request)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if session is not None and (form.get("csrf") or [""])[0] == session.csrf:
            self.sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # page and assets -------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        return HTMLResponse(
            _template("console.html", user=session.user, role=session.role.value, csrf=session.csrf)
        )

    async def static(self, request: Request) -> Response:
        if self.session(request) is None:
            return _refused()
        name = request.path_params["name"]
        if name not in STATIC:
            return JSONResponse({"error": "not found"}, status_code=404)
        return Response(_static(name), media_type=STATIC[name][1])

    # API -------------------------------------------------------------------------------
    async def units(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return _refused()
        out = []
        for name, view in self.views.items():
            model = view.model
            out.append(
                {
                    "name": name,
                    "cvs": [{"name": n, "unit": model.y[n].unit} for n in view.cv_names],
                    "mvs": [{"name": n, "unit": model.u[n].unit} for n in view.mv_names],
                    "sample_time_s": view.config.sample_time_s,
                    "live": view.live is not None,
                    "state": unit_state(view.latest) if view.latest is not None else None,
                }
            )
        return JSONResponse({"user": session.user, "role": session.role.value, "units": out})

    async def frames(self, request: Request) -> Response:
        if self.session(request) is None:
            return _refused()
        unit = self._unit(request)
        if unit is None:
            return JSONResponse({"error": "no such unit"}, status_code=404)
        try:
            last = max(1, min(int(request.query_params.get("last", "600")), 3600))
        except ValueError:
            last = 600
        feed = self.feeds.get(unit[0])
        if feed is None:
            return JSONResponse({"error": "no such unit"}, status_code=404)
        return Response(
            feed.history(self.views[unit[0]].frames()[-last:]), media_type="application/json"
        )

    async def journal(self, request: Request) -> Response:
        if self.session(request) is None:
            return _refused()
        unit = self._unit(request)
        if unit is None:
            return JSONResponse({"error": "no such unit"}, status_code=404)
        feed = self.feeds.get(unit[0])
        return JSONResponse(list(feed.journal) if feed is not None else [])

    async def events(self, request: Request) -> Response:
        if self.session(request) is None:
            return _refused()
        unit = self._unit(request)
        feed = self.feeds.get(unit[0]) if unit is not None else None
        if feed is None:
            return JSONResponse({"error": "no such unit"}, status_code=404)
        try:
            last = max(0, min(int(request.query_params.get("last", "0")), 3600))
        except ValueError:
            last = 0
        return self._stream(
            feed.clients,
            sse("hello", json.dumps({"unit": feed.view.name})),
            lambda: feed.backlog(last),
        )

    async def site_events(self, request: Request) -> Response:
        if self.session(request) is None:
            return _refused()

        def states() -> list[str]:
            latest = (v.latest for v in self.views.values())
            return [sse("unit", json.dumps(unit_state(f))) for f in latest if f is not None]

        return self._stream(
            self.site_clients, sse("hello", json.dumps({"units": list(self.views)})), states
        )

    def _stream(
        self, clients: set[Client], hello: str, backlog: Callable[[], list[str]]
    ) -> Response:
        """An SSE response: ``hello``, then ``backlog()``, then every message put to the
        client. The client joins ``clients`` and the backlog is read in one step of the
        event loop (no await between), so nothing published meanwhile falls in a gap: a
        frame may come twice (in the backlog and live), and the page drops a cycle it has."""
        client = Client()

        async def stream() -> AsyncIterator[str]:
            clients.add(client)
            first = [hello, *backlog()]
            try:
                for text in first:
                    yield text
                while True:
                    message = await client.next(KEEPALIVE_S)
                    yield message if message is not None else ": keep-alive\n\n"
            finally:
                clients.discard(client)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )

    async def submit(self, request: Request) -> Response:
        session = self.session(request)
        if session is None:
            return _refused()
        if not secrets.compare_digest(request.headers.get("x-csrf-token", ""), session.csrf):
            return JSONResponse(
                {
                    "ok": False,
                    "reason": "csrf",
                    "message": "missing or wrong CSRF token; reload the page",
                },
                status_code=403,
            )
        unit = self._unit(request)
        if unit is None:
            return JSONResponse(
                {"ok": False, "reason": "unknown", "message": "no such unit"}, status_code=404
            )
        live = unit[1]
        if live is None:
            return JSONResponse(
                {
                    "ok": False,
                    "reason": "read-only",
                    "message": "this unit runs without live parameters",
                },
                status_code=409,
            )
        try:
            body = json.loads(await request.body())
            key, value = str(body["key"]), _value(body.get("value"))
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {
                    "ok": False,
                    "reason": "type",
                    "message": 'expected JSON {"key": ..., "value": ...}',
                },
                status_code=400,
            )
        try:
            change = live.submit(
                key, value, role=session.role, user=session.user, source=Source.WEB
            )
        except LiveChangeRefused as exc:
            return JSONResponse(
                {"ok": False, "reason": exc.reason.value, "message": str(exc)},
                status_code=STATUS[exc.reason],
            )
        return JSONResponse(
            {
                "ok": True,
                "key": change.key,
                "message": f"{key} accepted; takes effect at the next cycle",
            }
        )


def _refused() -> Response:
    return JSONResponse({"error": "login required"}, status_code=401)


class _Headers:
    """ASGI middleware adding the security headers to every HTTP response."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def role_may(role: Role, needed: Role) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return role.rank >= needed.rank
