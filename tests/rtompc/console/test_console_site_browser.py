"""The console of a two-unit site in a real browser (Debian's headless Chromium, selenium).

The site (:mod:`tests.rtompc.site_surface_helpers`): ``reactor`` (Van de Vusse, 20 s,
in-process) and ``tanks`` (quadruple tank, 5 s, over OPC UA to a HIL server on loopback,
lockstep), each with EKF + NMPC and live parameters journaled in one historian file.
Checked against each unit's :class:`rtompc.live.view.UnitView` frames: the selector lists
both units; each unit's values, limits and status are that unit's; an operator's MV limit
change on ``tanks`` reaches the tank unit only (its journal row names the unit, the
reactor's journal stays empty) and its controller; roles hold per unit; a quick switch
between units leaves the page following the unit selected last; the tank unit's lost link
shows on its page and in the selector while the reactor keeps updating.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from console_browser import login, needs_browser, page_cycle, set_field, wait_for
from console_helpers import PASSWORDS, users_file

from rtompc.console import ConsoleSettings
from rtompc.console.server import ConsoleServer
from rtompc.historian.journal import read_journal
from rtompc.live.frame import Frame
from tests.rtompc.site_surface_helpers import SiteStack, js_number, site_stack

pytestmark = [needs_browser, pytest.mark.opcua, pytest.mark.timeout(240)]


@asynccontextmanager
async def site_console(tmp: Path) -> AsyncIterator[tuple[SiteStack, ConsoleServer]]:
    async with site_stack(tmp, tanks_over_opcua=True) as site:
        server = ConsoleServer(
            site.run.views, ConsoleSettings(port=0, users=users_file(tmp), where="test")
        )
        await asyncio.to_thread(server.start)
        try:
            yield site, server
        finally:
            await asyncio.to_thread(server.stop)


def _select(driver: Any, *names: str) -> None:
    """Choose units in the selector, one right after the other (no wait between)."""
    driver.execute_script(
        "const s = document.getElementById('unit');"
        "for (const n of arguments[0]) { s.value = n; s.dispatchEvent(new Event('change')); }",
        list(names),
    )


def _text(driver: Any, element_id: str) -> str:
    return str(driver.execute_script(f"return document.getElementById('{element_id}').textContent"))


def _shows(driver: Any, frame: Frame) -> bool:
    """The page shows this frame: its cycle, and each CV's measured value and limits."""
    if page_cycle(driver) != frame.cycle:
        return False
    for cv in frame.cvs:
        text = _text(driver, f"cv-{cv.name}-values")
        want = f"measured {js_number(cv.measured)}  target {js_number(cv.target)}"
        if want not in text or f"limits [{js_number(cv.low)}, {js_number(cv.high)}]" not in text:
            return False
    return True


async def _see(driver: Any, what: str, check: Any) -> None:
    await asyncio.to_thread(wait_for, what, check, 30.0)


async def test_each_unit_on_its_page_a_change_reaches_only_its_unit_and_a_lost_link_shows(
    tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    async with site_console(tmp_path) as (site, console):
        reactor, tanks = site.loop("reactor"), site.loop("tanks")
        views = site.run.views
        await reactor.run(3)
        await tanks.run(6)
        r_live = views["reactor"].live
        assert r_live is not None
        r_before = {k: r_live.value(k) for k in r_live.keys()}
        driver = browser
        driver.delete_all_cookies()
        await asyncio.to_thread(login, driver, console.url, "op1", PASSWORDS["op1"])
        options = driver.find_elements(By.CSS_SELECTOR, "#unit option")
        assert [o.get_attribute("value") for o in options] == ["reactor", "tanks"]
        assert [o.text for o in options] == ["reactor (ON)", "tanks (ON)"]
        # the first unit: the reactor's frames, the reactor's signals
        r_frame = views["reactor"].latest
        assert r_frame is not None and r_frame.cycle == 2
        await _see(driver, "the reactor's frame", lambda: _shows(driver, r_frame))
        assert driver.find_elements(By.ID, "cv-t_r") and not driver.find_elements(By.ID, "cv-h1")
        # the tank unit: its own frames and status
        _select(driver, "tanks")
        t_frame = views["tanks"].latest
        assert t_frame is not None and t_frame.cycle == 5
        await _see(driver, "the tank unit's frame", lambda: _shows(driver, t_frame))
        assert not driver.find_elements(By.ID, "cv-t_r")
        assert _text(driver, "status-link").endswith("connected")
        # live: a tank cycle arrives on the tank page
        await tanks.run(1)
        await _see(driver, "tank cycle 6", lambda: _shows(driver, views["tanks"].latest))
        # the operator lowers the tank unit's v1 high limit below where it runs
        v1 = views["tanks"].latest.mv("v1").value  # type: ignore[union-attr]
        new_high = round(0.9 * v1, 3)
        answer = await asyncio.to_thread(set_field, driver, "mv-v1-high", new_high)
        assert "accepted" in answer, answer
        assert site.run.views["tanks"].live.value("mv.v1.high") == new_high  # type: ignore[union-attr]
        await _see(
            driver,
            "the journal row naming the unit",
            lambda: [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#journal tbody tr")],
        )
        [row] = driver.find_elements(By.CSS_SELECTOR, "#journal tbody tr")
        cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        assert cells[1:6] == ["tanks", "op1", "operator", "web", "mv.v1.high"], cells
        await tanks.run(3)
        assert tanks.controller.config.mv("v1").upper == new_high
        assert all(r.mv("v1").value <= new_high + 1e-9 for r in views["tanks"].frames()[-2:])
        # ... and only the tank unit: the reactor's journal is empty, its limits as configured
        hist = site.run.units["tanks"].historian
        t_rows = read_journal(hist, hist.run_id)
        assert [(r.key, r.user, r.new, r.outcome) for r in t_rows] == [
            ("mv.v1.high", "op1", new_high, "accepted")
        ]
        r_hist = site.run.units["reactor"].historian
        assert read_journal(r_hist, r_hist.run_id) == []
        assert {k: r_live.value(k) for k in r_live.keys()} == r_before
        # a quick switch tanks -> reactor -> tanks -> reactor: the page follows the reactor only
        _select(driver, "reactor", "tanks", "reactor")
        await _see(driver, "the reactor page", lambda: _shows(driver, views["reactor"].latest))
        await tanks.run(4)  # tank frames (cycles 10..13) must not reach the reactor page
        await reactor.run(1)
        await _see(driver, "reactor cycle 3", lambda: _shows(driver, views["reactor"].latest))
        await asyncio.sleep(1.0)
        assert _shows(driver, views["reactor"].latest)
        journal_rows = driver.find_elements(By.CSS_SELECTOR, "#journal tbody tr")
        assert journal_rows == [], [r.text for r in journal_rows]  # no tank rows either
        # the tank unit's PLC goes away: its page says so, the reactor keeps updating
        assert site.hil is not None
        await site.hil.stop()
        await tanks.run(2)
        await reactor.run(1)
        await _see(driver, "reactor cycle 4", lambda: _shows(driver, views["reactor"].latest))
        await _see(
            driver,
            "the tank unit's lost link in the selector",
            lambda: (
                "link lost"
                in driver.find_element(By.CSS_SELECTOR, "#unit option[value=tanks]").text
            ),
        )
        assert (
            "link lost"
            not in driver.find_element(By.CSS_SELECTOR, "#unit option[value=reactor]").text
        )
        _select(driver, "tanks")
        lost = views["tanks"].latest
        assert lost is not None and not lost.connected
        await _see(driver, "the tank page", lambda: page_cycle(driver) == lost.cycle)
        assert _text(driver, "status-link").endswith("DISCONNECTED")
        # a viewer sees both units and can change neither
        driver.delete_all_cookies()
        await asyncio.to_thread(login, driver, console.url, "viewer1", PASSWORDS["viewer1"])
        for name, field in (("reactor", "cv-t_r-high"), ("tanks", "mv-v1-high")):
            _select(driver, name)
            await _see(
                driver, f"{name} for the viewer", lambda f=field: driver.find_elements(By.ID, f)
            )
            assert not driver.find_element(By.ID, field).is_enabled()
        driver.delete_all_cookies()
