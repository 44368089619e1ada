"""The console over HTTP against a real loop (Van de Vusse, in-process, EKF + NMPC, live
parameters journaled in a historian): login and sessions, refusals with their reasons,
CSRF, the non-loopback rule, TLS. The browser tests drive the same routes from a page."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from pathlib import Path

import pytest
from console_helpers import PASSWORDS, Http, console_stack, users_file

from plant_models.certificates import create_client_pki
from plant_models.errors import ConfigError
from plant_models.library import load
from plant_models.model import PlantModel
from rtompc.config.console_section import ConsoleSection, console_settings
from rtompc.console import ConsoleSettings
from rtompc.console.server import ConsoleServer
from rtompc.historian.journal import read_journal
from rtompc.live.view import EngineViews


@pytest.fixture(scope="module")
def cstr() -> PlantModel:
    return load("van_de_vusse", parameters="do_mpc")


async def test_unauthenticated_requests_are_refused(cstr: PlantModel, tmp_path: Path) -> None:
    async with console_stack(cstr, tmp_path) as c:
        await c.stack.loop.run(2)
        h = Http(c.url)
        status, headers, _ = await asyncio.to_thread(h.request, "GET", "/")
        assert (status, headers["location"]) == (303, "/login")
        for path in (
            "/api/units",
            "/api/units/vdv/frames",
            "/api/units/vdv/journal",
            "/api/units/vdv/events",
            "/static/console.js",
            "/static/uPlot.iife.min.js",
        ):
            status, _, text = await asyncio.to_thread(h.request, "GET", path)
            assert status == 401 and "login required" in text, path
        status, _ = await asyncio.to_thread(h.submit, "cv.t_r.high", 400.0, "x")
        assert status == 401
        # a forged session cookie is no session
        h.cookies["rtompc_session"] = "abc.def"
        assert (await asyncio.to_thread(h.request, "GET", "/api/units"))[0] == 401
        # the login page is public and carries the security headers
        status, headers, form = await asyncio.to_thread(h.request, "GET", "/login")
        assert status == 200 and 'name="password"' in form
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        # a wrong password: refused, no session
        status, location = await asyncio.to_thread(h.login, "op1", "wrong")
        assert status == 401 and location == ""
        assert (await asyncio.to_thread(h.request, "GET", "/api/units"))[0] == 401
        assert c.stack.live.value("cv.t_r.high") == 140.0 + 273.15
        assert read_journal(c.stack.hist, c.stack.hist.run_id) == []  # nothing reached it


async def test_roles_refusals_and_csrf_through_the_live_parameters(
    cstr: PlantModel, tmp_path: Path
) -> None:
    async with console_stack(cstr, tmp_path) as c:
        await c.stack.loop.run(2)
        op, eng, viewer = Http(c.url), Http(c.url), Http(c.url)
        for h, user in ((op, "op1"), (eng, "eng1"), (viewer, "viewer1")):
            status, location = await asyncio.to_thread(h.login, user, PASSWORDS[user])
            assert (status, location) == (303, "/")
        _, headers, _ = await asyncio.to_thread(Http(c.url).request, "GET", "/login")
        raw = headers["set-cookie"]
        assert "HttpOnly" in raw and "SameSite=strict" in raw
        op_csrf, eng_csrf, viewer_csrf = [
            await asyncio.to_thread(h.csrf) for h in (op, eng, viewer)
        ]
        status, answer = await asyncio.to_thread(op.submit, "cv.c_b.weight", 2.0, op_csrf)
        assert status == 403 and answer["reason"] == "role" and "engineer" in answer["message"]
        assert c.stack.live.value("cv.c_b.weight") == 1.0
        status, answer = await asyncio.to_thread(eng.submit, "cv.c_b.weight", 2.0, eng_csrf)
        assert status == 200 and answer["ok"] and c.stack.live.value("cv.c_b.weight") == 2.0
        status, answer = await asyncio.to_thread(viewer.submit, "cv.t_r.high", 400.0, viewer_csrf)
        assert status == 403 and answer["reason"] == "role"
        status, answer = await asyncio.to_thread(op.submit, "cv.t_r.high", 1e6, op_csrf)
        assert status == 422 and answer["reason"] == "range" and "validity" in answer["message"]
        status, answer = await asyncio.to_thread(op.submit, "mv.q_k.in_service", "yes", op_csrf)
        assert status == 400 and answer["reason"] == "type"
        status, answer = await asyncio.to_thread(op.submit, "cv.nope.high", 1.0, op_csrf)
        assert status == 404 and answer["reason"] == "unknown parameter"
        # no CSRF token, or another session's: refused before the live parameters see it
        for token in (None, eng_csrf):
            status, answer = await asyncio.to_thread(op.submit, "cv.t_r.high", 400.0, token)
            assert status == 403 and answer["reason"] == "csrf"
        status, answer = await asyncio.to_thread(op.submit, "cv.t_r.high", "inf", op_csrf)
        assert status == 200 and c.stack.live.value("cv.t_r.high") == float("inf")
        rows = read_journal(c.stack.hist, c.stack.hist.run_id)
        got = [(r.user, r.role, r.source, r.key, r.outcome.split(":")[0:2]) for r in rows]
        assert got == [
            ("op1", "operator", "web", "cv.c_b.weight", ["refused", " role"]),
            ("eng1", "engineer", "web", "cv.c_b.weight", ["accepted"]),
            ("viewer1", "viewer", "web", "cv.t_r.high", ["refused", " role"]),
            ("op1", "operator", "web", "cv.t_r.high", ["refused", " range"]),
            ("op1", "operator", "web", "mv.q_k.in_service", ["refused", " type"]),
            ("op1", "operator", "web", "cv.nope.high", ["refused", " unknown parameter"]),
            ("op1", "operator", "web", "cv.t_r.high", ["accepted"]),
        ]
        # the page's journal (pushed, not read from the historian) has the same entries
        status, _, text = await asyncio.to_thread(op.request, "GET", "/api/units/vdv/journal")
        assert status == 200 and [e["key"] for e in json.loads(text)] == [r.key for r in rows]
        # logging out ends the session on the server, not only in the browser
        cookie = op.cookies["rtompc_session"]
        await asyncio.to_thread(
            op.request,
            "POST",
            "/logout",
            f"csrf={op_csrf}",
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        op.cookies["rtompc_session"] = cookie
        assert (await asyncio.to_thread(op.request, "GET", "/api/units"))[0] == 401


def test_non_loopback_needs_tls_and_a_login(tmp_path: Path) -> None:
    users = users_file(tmp_path)
    with pytest.raises(ConfigError, match="without TLS"):
        ConsoleSettings(host="0.0.0.0", users=users).check()
    with pytest.raises(ConfigError, match="without TLS"):
        console_settings(
            ConsoleSection(bind="192.0.2.10:8443", users=users), None, "app.toml"
        ).check()
    with pytest.raises(ConfigError, match="users file"):
        ConsoleSettings(host="127.0.0.1").check()
    with pytest.raises(ConfigError, match="both certificate and private_key"):
        ConsoleSettings(host="0.0.0.0", users=users, certificate=users).check()
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        console_settings(None, "8080", "app.toml")
    ConsoleSettings(host="127.0.0.1", users=users).check()  # loopback: login only
    ConsoleSettings(host="::1", users=users).check()
    s = console_settings(ConsoleSection(bind="0.0.0.0:1", users=users), "127.0.0.1:9000", "a")
    assert (s.host, s.port) == ("127.0.0.1", 9000)  # --console wins over console.bind


async def test_tls_console_serves_https_with_secure_cookies(
    cstr: PlantModel, tmp_path: Path
) -> None:
    pki = create_client_pki(
        tmp_path / "pki", "urn:test:console", hostnames=("127.0.0.1", "localhost")
    )
    settings = ConsoleSettings(
        host="127.0.0.1",
        port=0,
        users=users_file(tmp_path),
        certificate=pki.certificate_pem,
        private_key=pki.private_key,
    )
    server = ConsoleServer(EngineViews(), settings)
    await asyncio.to_thread(server.start)
    try:
        assert server.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(pki.certificate_pem))

        def get() -> tuple[int, str]:
            with urllib.request.urlopen(server.url + "login", context=ctx, timeout=30) as r:
                return r.status, r.headers.get("set-cookie", "")

        status, cookie = await asyncio.to_thread(get)
        assert status == 200 and "Secure" in cookie and "HttpOnly" in cookie
    finally:
        await asyncio.to_thread(server.stop)


async def test_the_console_encodes_frames_as_frame_to_json(
    cstr: PlantModel, tmp_path: Path
) -> None:
    """The console's field-by-field encoder gives what Frame.to_json gives (every field, NaN
    and infinities as null), on frames of a real loop with a limit removed and an MV out."""
    from rtompc.console.stream import frame_dict
    from rtompc.live import Role

    async with console_stack(cstr, tmp_path) as c:
        await c.stack.loop.run(2)
        c.stack.live.submit("cv.t_r.high", float("inf"), role=Role.OPERATOR)
        c.stack.live.submit("mv.q_k.in_service", False, role=Role.OPERATOR)
        await c.stack.loop.run(2)
        frames = c.view.frames()
        assert len(frames) == 4
        for f in frames:
            assert json.dumps(frame_dict(f), sort_keys=True) == json.dumps(
                f.to_json(), sort_keys=True
            )
        h = Http(c.url)
        await asyncio.to_thread(h.login, "viewer1", PASSWORDS["viewer1"])
        status, _, text = await asyncio.to_thread(h.request, "GET", "/api/units/vdv/frames?last=3")
        got = json.loads(text)
        assert status == 200 and [g["cycle"] for g in got] == [1, 2, 3]
        assert got[-1]["cvs"][1]["high"] is None and got[-1]["mvs"][1]["in_service"] is False


class _Sse:
    """A Server-Sent Events reader over one HTTP connection (stdlib only, blocking)."""

    def __init__(self, h: Http, path: str) -> None:
        import http.client

        self.con = http.client.HTTPConnection(h.host, h.port, timeout=30)
        cookie = "; ".join(f"{k}={v}" for k, v in h.cookies.items())
        self.con.request("GET", path, headers={"Cookie": cookie})
        self.r = self.con.getresponse()
        assert self.r.status == 200, self.r.status

    def next(self, timeout_s: float = 20.0) -> tuple[str, str]:
        """The next event's name and data (keep-alive comments skipped)."""
        import time

        event, data = "", []
        end = time.monotonic() + timeout_s
        while True:
            if time.monotonic() > end:
                raise AssertionError(f"no event within {timeout_s} s")
            line = self.r.fp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and event:
                return event, "\n".join(data)

    def close(self) -> None:
        self.con.close()


async def test_a_page_opened_late_gets_the_frames_and_journal_in_its_stream_then_each_new_frame(
    cstr: PlantModel, tmp_path: Path
) -> None:
    """The unit stream starts with the kept frames (``history``, ``?last=N``) and the kept
    journal, then carries each new frame: a page subscribes and reads what it missed in one
    step, so a frame published between a separate fetch and the subscription is not lost
    (CI saw a page wait 30 s for a tank cycle published in that gap). Reconnecting gets the
    backlog again. The site stream starts with each unit's latest state."""
    from rtompc.live import Role

    async with console_stack(cstr, tmp_path) as c:
        await c.stack.loop.run(3)
        c.stack.live.submit("cv.c_b.weight", 2.0, role=Role.ENGINEER, user="eng1")
        h = Http(c.url)
        await asyncio.to_thread(h.login, "viewer1", PASSWORDS["viewer1"])
        for last in (600, 2):
            n = len(c.view.frames())
            cycles = list(range(max(0, n - last), n))
            sse = await asyncio.to_thread(_Sse, h, f"/api/units/vdv/events?last={last}")
            try:
                first = [await asyncio.to_thread(sse.next) for _ in range(3)]
                assert [e for e, _ in first] == ["hello", "history", "journal"]
                assert [f["cycle"] for f in json.loads(first[1][1])] == cycles
                change = json.loads(first[2][1])
                assert (change["key"], change["new"], change["user"]) == (
                    "cv.c_b.weight",
                    2.0,
                    "eng1",
                )
                await c.stack.loop.run(1)
                event, data = await asyncio.to_thread(sse.next)
                assert event == "frame" and json.loads(data)["cycle"] == n
            finally:
                sse.close()
        # without ?last: no history (scripts that only follow), the journal still comes
        sse = await asyncio.to_thread(_Sse, h, "/api/units/vdv/events")
        try:
            got = [await asyncio.to_thread(sse.next) for _ in range(2)]
            assert [e for e, _ in got] == ["hello", "journal"]
        finally:
            sse.close()
        site = await asyncio.to_thread(_Sse, h, "/api/events")
        try:
            hello, state = [await asyncio.to_thread(site.next) for _ in range(2)]
            assert hello[0] == "hello" and state[0] == "unit"
            s = json.loads(state[1])
            assert (s["unit"], s["cycle"], s["mode"]) == ("vdv", len(c.view.frames()) - 1, "on")
        finally:
            site.close()
