"""The console in a real browser (Debian's headless Chromium, selenium) against a real loop
(Van de Vusse, in-process lockstep, EKF + NMPC, live parameters journaled in a historian):
the page loads and its trends advance; a limit changed on the page reaches the controller,
shows in the journal and moves the CV; an operator cannot change a weight; a browser
without a login gets the login page. The demo stack over OPC UA: test_console_demo.py."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from console_browser import login, needs_browser, page_cycle, set_field, wait_for
from console_helpers import PASSWORDS, console_stack

from plant_models.library import load
from plant_models.model import PlantModel
from rtompc.historian.journal import read_journal

pytestmark = needs_browser
T_R_HIGH = 140.0 + 273.15


@pytest.fixture(scope="module")
def cstr() -> PlantModel:
    return load("van_de_vusse", parameters="do_mpc")


@contextmanager
def fresh_session(driver: Any) -> Iterator[Any]:
    """The module's browser without any session (its cookies cleared before and after)."""
    driver.delete_all_cookies()
    driver.get("about:blank")
    try:
        yield driver
    finally:
        driver.delete_all_cookies()


async def _run(c, n: int, pause_s: float = 0.02) -> None:  # type: ignore[no-untyped-def]
    """n cycles, pausing so the page sees them one by one."""
    for _ in range(n):
        await c.stack.loop.run(1)
        await asyncio.sleep(pause_s)


async def test_limit_changed_on_the_page_reaches_the_controller_and_moves_the_cv(
    cstr: PlantModel, tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    async with console_stack(cstr, tmp_path) as c:
        await c.stack.loop.run(20)
        t_r = [r.measurement.value("t_r") for r in c.stack.probe.records]
        new_high = 126.0 + 273.15
        assert t_r[-1] > new_high + 2.0  # the limit binds: t_r runs at ~130 degC
        with fresh_session(browser) as driver:
            await asyncio.to_thread(login, driver, c.url, "op1", PASSWORDS["op1"])
            first = await asyncio.to_thread(page_cycle, driver)
            assert first == 19
            # the trends advance as the loop runs (pushed, the page never reloads)
            await _run(c, 3)
            await asyncio.to_thread(
                wait_for, "cycle 22 on the page", lambda: page_cycle(driver) == 22
            )
            n_points = driver.execute_script(
                "return document.querySelector('#cv-t_r .u-over') !== null"
            )
            assert n_points
            # the operator tightens the t_r high limit on the page
            answer = await asyncio.to_thread(set_field, driver, "cv-t_r-high", new_high)
            assert "accepted" in answer
            assert c.stack.live.value("cv.t_r.high") == new_high
            assert c.stack.loop.controller.config.cv("t_r").upper == T_R_HIGH  # next cycle
            await _run(c, 40, 0.0)
            assert c.stack.loop.controller.config.cv("t_r").upper == new_high
            after = np.array([r.measurement.value("t_r") for r in c.stack.probe.records[-15:]])
            assert np.all(after <= new_high + 0.05), after - 273.15
            # the page shows the new limit, the change in its journal, and the latest cycle
            await asyncio.to_thread(
                wait_for, "cycle 62 on the page", lambda: page_cycle(driver) == 62
            )
            values = driver.find_element(By.ID, "cv-t_r-values").text
            assert f"{new_high:.4f}" in values
            rows = driver.find_elements(By.CSS_SELECTOR, "#journal tbody tr")
            assert len(rows) == 1 and "cv.t_r.high" in rows[0].text and "op1" in rows[0].text
            assert "accepted" in rows[0].text and "web" in rows[0].text
        journal = read_journal(c.stack.hist, c.stack.hist.run_id)
        assert [(r.key, r.user, r.role, r.source, r.new, r.outcome) for r in journal] == [
            ("cv.t_r.high", "op1", "operator", "web", new_high, "accepted")
        ]


async def test_an_operator_cannot_change_a_weight_an_engineer_can(
    cstr: PlantModel, tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    async with console_stack(cstr, tmp_path) as c:
        await c.stack.loop.run(2)
        with fresh_session(browser) as driver:
            await asyncio.to_thread(login, driver, c.url, "op1", PASSWORDS["op1"])
            weight = driver.find_element(By.ID, "cv-c_b-weight")
            assert not weight.is_displayed() and not weight.is_enabled()
            # the server refuses it too, whatever the page shows: a request forged in the page
            answer = driver.execute_async_script(
                """const done = arguments[0];
                fetch('/api/units/vdv/submit', {method: 'POST', headers: {
                  'Content-Type': 'application/json', 'X-CSRF-Token': document.body.dataset.csrf},
                  body: JSON.stringify({key: 'cv.c_b.weight', value: 5})})
                .then(r => r.json().then(j => done([r.status, j])));"""
            )
            assert answer[0] == 403 and answer[1]["reason"] == "role"
            assert c.stack.live.value("cv.c_b.weight") == 1.0
            await asyncio.to_thread(
                wait_for,
                "the refusal in the page's journal",
                lambda: any(
                    "refused: role" in r.text
                    for r in driver.find_elements(By.CSS_SELECTOR, "#journal tbody tr")
                ),
            )
            # an operator may change a limit; the page says so
            mode_buttons = driver.find_elements(By.CSS_SELECTOR, "button.mode")
            assert all(b.is_enabled() for b in mode_buttons)
        with fresh_session(browser) as driver:
            await asyncio.to_thread(login, driver, c.url, "eng1", PASSWORDS["eng1"])
            assert driver.find_element(By.ID, "cv-c_b-weight").is_displayed()
            answer = await asyncio.to_thread(set_field, driver, "cv-c_b-weight", 3.0)
            assert "accepted" in answer and c.stack.live.value("cv.c_b.weight") == 3.0
        with fresh_session(browser) as driver:  # a viewer sees, and can change nothing
            await asyncio.to_thread(login, driver, c.url, "viewer1", PASSWORDS["viewer1"])
            assert not driver.find_element(By.ID, "cv-t_r-high").is_enabled()
            assert not any(
                b.is_enabled() for b in driver.find_elements(By.CSS_SELECTOR, "button.mode")
            )
        await c.stack.loop.run(1)
        assert c.stack.loop.controller.config.cv("c_b").weight == 3.0
        rows = read_journal(c.stack.hist, c.stack.hist.run_id)
        assert [(r.user, r.key, r.outcome.split(":")[0]) for r in rows] == [
            ("op1", "cv.c_b.weight", "refused"),
            ("eng1", "cv.c_b.weight", "accepted"),
        ]


async def test_a_browser_without_login_gets_the_login_page(
    cstr: PlantModel, tmp_path: Path, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    async with console_stack(cstr, tmp_path) as c:
        await c.stack.loop.run(1)
        with fresh_session(browser) as driver:
            driver.get(c.url)
            assert driver.current_url == c.url + "login"
            driver.get(c.url + "api/units")
            assert "login required" in driver.page_source
            driver.get(c.url + "login")
            driver.find_element(By.ID, "user").send_keys("op1")
            driver.find_element(By.ID, "password").send_keys("not the password")
            driver.find_element(By.ID, "login-button").click()
            msg = wait_for(
                "the login refusal",
                lambda: (
                    (t := driver.find_element(By.ID, "message").text)
                    and "wrong password" in t
                    and t
                ),
            )
            assert "wrong password" in msg and driver.current_url == c.url + "login"
            assert not driver.get_cookie("rtompc_session")
        assert math.isfinite(c.view.latest.cv("t_r").measured)  # type: ignore[union-attr]
