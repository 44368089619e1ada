"""The demo stack driven through the web page in headless Chromium: Williams-Otto on the HIL
(a child process, secured OPC UA), EKF + NMPC + RTO, the console beside the loop. An operator
switches SHADOW -> ON, tightens the X_G high limit, takes T_R out of service and back; the
test checks what the controller did (writes stop and resume, X_G driven under the new limit,
T_R held while out of service and moved again within its rate limit after) and the journal
(the historian's and the page's)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from console_browser import login, needs_browser, page_cycle, set_field, wait_for
from console_helpers import PASSWORDS, users_file

from rtompc.console import ConsoleSettings
from rtompc.console.server import ConsoleServer, console_surface
from rtompc.demo import UNIT, DemoOptions, run_demo
from rtompc.live.frame import Frame

pytestmark = [needs_browser, pytest.mark.opcua]
T_R_RATE = 1.2 / 60.0  # K/s, the demo's [mpc.mvs] t_r max_rate_per_s
DT = 60.0


class DemoThread:
    """``run_demo`` with the console, in its own thread and event loop (stopped at the end)."""

    def __init__(self, out: Path, settings: ConsoleSettings) -> None:
        self.opts = DemoOptions(
            out_dir=out, cycles=100_000, speed=600.0, progress=False, plots=False
        )
        self.settings = settings
        self.server: ConsoleServer | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[Any] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _started(self, server: ConsoleServer) -> None:
        self.server = server
        self.ready.set()

    def _run(self) -> None:
        surface = console_surface(self.settings, self._started)
        self._task = self._loop.create_task(run_demo(self.opts, None, surfaces=[surface]))
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc
        finally:
            self.ready.set()
            self._loop.close()

    def start(self) -> ConsoleServer:
        self._thread.start()
        assert self.ready.wait(240), "the demo did not start within 240 s"
        assert self.error is None and self.server is not None, self.error
        return self.server

    def stop(self) -> None:
        """End the loop after its cycle (the demo hands back and closes); cancel if stuck."""
        if self.server is not None and self.server.views[UNIT].request_stop():
            self._thread.join(60)
        if self._task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(60)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[ConsoleServer]:
    settings = ConsoleSettings(port=0, users=users_file(tmp_path), where="test")
    thread = DemoThread(tmp_path / "demo", settings)
    try:
        yield thread.start()
    finally:
        thread.stop()


def _frames(server: ConsoleServer, since: int) -> list[Frame]:
    return server.views[UNIT].frames(since)


def _latest(server: ConsoleServer) -> Frame:
    frame = server.views[UNIT].latest
    assert frame is not None
    return frame


def _cycles_after(
    server: ConsoleServer, since: int, n: int, timeout_s: float = 90.0
) -> list[Frame]:
    return wait_for(
        f"{n} cycles after cycle {since}",
        lambda: (f := _frames(server, since)) and len(f) >= n and f,
        timeout_s,
    )


def _written_after(
    server: ConsoleServer, since: int, n: int, timeout_s: float = 180.0
) -> list[Frame]:
    """Frames from ``since`` until ``n`` of them carry a verified write. Under load a slow
    cycle (the controller re-planned after an operator change) can outlast the HIL's
    watchdog at 600x (1 s wall): the plant falls back to LOCAL and holds its MVs, the
    loop asks for REMOTE again every 5 cycles (backing off); cycles held by the plant say
    nothing about the controller, so the test counts cycles in which the controller wrote."""
    return wait_for(
        f"{n} cycles with a verified write after cycle {since}",
        lambda: (
            (f := _frames(server, since))
            and sum(g.status.write_status == "verified" for g in f) >= n
            and f
        ),
        timeout_s,
    )


def _until_under(
    server: ConsoleServer, since: int, high: float, timeout_s: float = 120.0
) -> list[Frame]:
    """Frames from ``since`` until X_G has been under ``high`` (+ 1e-3) for 3 cycles."""
    try:
        return wait_for(
            f"X_G under {high}",
            lambda: (
                (f := _frames(server, since))
                and len(f) >= 3
                and all(g.cv("x_g").measured <= high + 1e-3 for g in f[-3:])
                and f
            ),
            timeout_s,
        )
    except AssertionError:
        trail = [
            (
                g.cycle,
                round(g.cv("x_g").measured, 4),
                g.cv("x_g").high,
                round(g.mv("t_r").value - 273.15, 2),
                g.status.write_status,
            )
            for g in _frames(server, since)[-12:]
        ]
        raise AssertionError(
            f"X_G not under {high}: (cycle, x_g, high, t_r degC, write) {trail}"
        ) from None


def test_demo_operated_through_the_page(demo: ConsoleServer, tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    server = demo
    driver = browser  # the shared Chromium (conftest.py)
    login(driver, server.url, "op1", PASSWORDS["op1"])
    wait_for("the loop writing", lambda: _latest(server).status.write_status == "verified")
    # SHADOW: the controller computes, nothing is written
    driver.find_element(By.CSS_SELECTOR, "button.mode[data-mode=shadow]").click()
    wait_for("SHADOW on the page", lambda: driver.find_element(By.ID, "mode").text == "SHADOW")
    c0 = _latest(server).cycle
    shadow = _cycles_after(server, c0, 3)
    assert all(f.mode.value == "shadow" and f.status.write_status == "shadow" for f in shadow)
    assert all(np.isnan(m.written) for f in shadow for m in f.mvs)
    # ON again: writes resume (the plant grants REMOTE again)
    driver.find_element(By.CSS_SELECTOR, "button.mode[data-mode=on]").click()
    wait_for(
        "writes verified again",
        lambda: (
            _latest(server).mode.value == "on" and _latest(server).status.write_status == "verified"
        ),
        60,
    )
    wait_for("ON on the page", lambda: driver.find_element(By.ID, "mode").text == "ON")
    # the operator tightens the by-product limit below where X_G runs
    x_g = _latest(server).cv("x_g").measured
    new_high = round(x_g - 0.008, 4)
    assert "accepted" in set_field(driver, "cv-x_g-high", new_high)
    c1 = _latest(server).cycle
    frames = _until_under(server, c1, new_high)
    assert all(f.cv("x_g").high == new_high for f in frames[1:])
    t_r = [f.mv("t_r").value for f in frames]
    assert t_r[-1] < t_r[0] - 0.5  # the controller cooled the reactor to get there
    # T_R out of service: held where it is while the controller re-plans with F_B
    box = driver.find_element(By.ID, "mv-t_r-in_service")
    box.click()
    wait_for("T_R out of service", lambda: not _latest(server).mv("t_r").in_service)
    c2 = _latest(server).cycle
    assert "accepted" in set_field(driver, "cv-x_g-high", round(new_high - 0.003, 4))
    held = _written_after(server, c2, 6)  # F_B alone written: T_R must stay
    values = [f.mv("t_r").value for f in held[1:]]
    assert np.ptp(values) < 1e-6, values  # T_R did not move while out of service
    assert all(not f.mv("t_r").in_service for f in held)
    # back in service: T_R moves again, bumpless (within its rate limit per cycle)
    driver.find_element(By.ID, "mv-t_r-in_service").click()
    wait_for("T_R in service", lambda: _latest(server).mv("t_r").in_service)
    c3 = _latest(server).cycle
    back = _written_after(server, c3, 6)
    moved = np.array([values[-1]] + [f.mv("t_r").value for f in back])
    # cycles pass between the last held frame and c3 (the page's click, the wait): the
    # rate limit holds per cycle, over however many cycles lie between two frames
    spans = np.diff([held[-1].cycle] + [f.cycle for f in back])
    assert np.ptp(moved) > 0.05, moved
    steps = np.abs(np.diff(moved))
    assert np.all(steps <= T_R_RATE * DT * spans * 1.01 + 1e-9), (steps, spans)
    # the page's journal lists every change, newest first
    wait_for(
        "six journal rows on the page",
        lambda: len(driver.find_elements(By.CSS_SELECTOR, "#journal tbody tr")) == 6,
    )
    shown = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#journal tbody tr")]
    assert "mv.t_r.in_service" in shown[0] and "controller.mode_request" in shown[-1]
    # the page follows the loop: frames reach it by push, so it may trail the server by a
    # frame or two under load; it must catch up to the cycle the re-enable was seen at
    wait_for("the page at or past the re-enable cycle", lambda: page_cycle(driver) >= c3)
    db = sqlite3.connect(f"file:{tmp_path / 'demo' / 'historian.sqlite'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT key, new, user, source, outcome FROM journal ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    assert [(k, json.loads(n), u, s, o) for k, n, u, s, o in rows] == [
        ("controller.mode_request", "shadow", "op1", "web", "accepted"),
        ("controller.mode_request", "on", "op1", "web", "accepted"),
        ("cv.x_g.high", new_high, "op1", "web", "accepted"),
        ("mv.t_r.in_service", False, "op1", "web", "accepted"),
        ("cv.x_g.high", round(new_high - 0.003, 4), "op1", "web", "accepted"),
        ("mv.t_r.in_service", True, "op1", "web", "accepted"),
    ]
