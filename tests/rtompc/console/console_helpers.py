"""Shared by the console tests: a real loop (Van de Vusse, in-process lockstep, EKF + NMPC,
live parameters journaled in a historian) with its EngineView, a users file, a console."""

from __future__ import annotations

import asyncio
import http.client
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # live_helpers

from live_helpers import LiveStack, live_stack  # noqa: E402

from plant_models.model import PlantModel  # noqa: E402
from plant_models.samples import Mode  # noqa: E402
from rtompc.console import ConsoleSettings  # noqa: E402
from rtompc.console.auth import write_users_file  # noqa: E402
from rtompc.console.server import ConsoleServer  # noqa: E402
from rtompc.live.view import EngineViews, UnitView  # noqa: E402

PASSWORDS = {"viewer1": "view-pw", "op1": "op-pw", "eng1": "eng-pw"}
ROLES = {"viewer1": "viewer", "op1": "operator", "eng1": "engineer"}


def users_file(tmp: Path) -> Path:
    """viewer1, op1 and eng1 with their passwords (PBKDF2 hashes only, few iterations: the
    tests log in often)."""
    path = tmp / "console_users.toml"
    write_users_file(path, {u: (ROLES[u], PASSWORDS[u]) for u in PASSWORDS}, iterations=1000)
    return path


@dataclass
class ConsoleStack:
    """A running console over a live loop."""

    stack: LiveStack
    view: UnitView
    server: ConsoleServer

    @property
    def url(self) -> str:
        return self.server.url


@asynccontextmanager
async def console_stack(
    model: PlantModel, tmp: Path, *, mode: Mode = Mode.ON
) -> AsyncIterator[ConsoleStack]:
    """The live loop, its view (unit ``vdv``) and the console serving it on loopback."""
    s = live_stack(model, tmp, mode=mode)
    view = UnitView.for_loop("vdv", s.loop)
    server = ConsoleServer(
        EngineViews([view]), ConsoleSettings(port=0, users=users_file(tmp), where="test")
    )
    await asyncio.to_thread(server.start)
    try:
        async with s.io:
            yield ConsoleStack(s, view, server)
    finally:
        await asyncio.to_thread(server.stop)
        s.hist.close()


class Http:
    """A plain HTTP client with a cookie jar (stdlib only)."""

    def __init__(self, url: str) -> None:
        host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        body: str | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], str]:
        con = http.client.HTTPConnection(self.host, self.port, timeout=30)
        hdrs = dict(headers or {})
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        con.request(method, path, body=body, headers=hdrs)
        r = con.getresponse()
        text = r.read().decode()
        for raw in r.headers.get_all("set-cookie") or []:
            name, _, rest = raw.partition("=")
            value = rest.split(";")[0].strip('"')
            if "Max-Age=0" in raw or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        con.close()
        return r.status, {k.lower(): v for k, v in r.headers.items()}, text

    def login(self, user: str, password: str) -> tuple[int, str]:
        _, _, form = self.request("GET", "/login")
        token = form.split('name="csrf" value="')[1].split('"')[0]
        from urllib.parse import urlencode

        status, headers, text = self.request(
            "POST",
            "/login",
            urlencode({"csrf": token, "user": user, "password": password}),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        return status, headers.get("location", "")

    def csrf(self) -> str:
        _, _, page = self.request("GET", "/")
        return page.split('data-csrf="')[1].split('"')[0]

    def submit(self, key: str, value: Any, csrf: str | None) -> tuple[int, dict[str, Any]]:
        hdrs = {"Content-Type": "application/json"}
        if csrf is not None:
            hdrs["X-CSRF-Token"] = csrf
        status, _, text = self.request(
            "POST", "/api/units/vdv/submit", json.dumps({"key": key, "value": value}), hdrs
        )
        return status, json.loads(text)
