"""Makes docs/img/console.png: the web console on the demo, taken with headless Chromium.

Runs ``rtompc demo`` (Williams-Otto on the HIL over secured OPC UA, EKF + NMPC + RTO) with the
console, logs in as an operator, lets the trends fill, tightens the X_G high limit on the
page (so a limit change shows in the trends and the journal), and saves the page.

    .venv/bin/python docs/img/console_screenshot.py [--out docs/img/console.png]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import threading
from pathlib import Path

from rtompc.console import ConsoleSettings
from rtompc.console.auth import write_users_file
from rtompc.console.headless import chromium, login, page_cycle, wait_for
from rtompc.console.server import ConsoleServer, console_surface
from rtompc.demo import DemoOptions, run_demo


def main(out: Path, warmup: int, after: int) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with tempfile.TemporaryDirectory(prefix="rtompc-console-png-") as tmp:
        users = Path(tmp) / "users.toml"
        write_users_file(users, {"operator": ("operator", "shot")}, iterations=1000)
        started: list[ConsoleServer] = []
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def on_start(server: ConsoleServer) -> None:
            started.append(server)
            ready.set()

        surface = console_surface(ConsoleSettings(port=0, users=users), on_start)
        task = loop.create_task(
            run_demo(
                DemoOptions(
                    out_dir=Path(tmp) / "demo", cycles=100_000, progress=False, plots=False
                ),
                None,
                surfaces=[surface],
            )
        )

        def run() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        if not ready.wait(300):
            raise SystemExit("the demo did not start")
        url = started[0].url
        try:
            with chromium(1500, 1900) as driver:
                login(driver, url, "operator", "shot")
                wait_for(f"cycle {warmup}", lambda: page_cycle(driver) >= warmup, 600)
                x_g = started[0].views["williams_otto"].latest.cv("x_g").measured  # type: ignore[union-attr]
                box = driver.find_element(By.ID, "cv-x_g-high")
                box.click()
                box.send_keys(Keys.CONTROL, "a")
                box.send_keys(f"{round(x_g - 0.006, 4)}")
                driver.find_element(By.ID, "cv-x_g-high-set").click()
                now = page_cycle(driver)
                wait_for(f"cycle {now + after}", lambda: page_cycle(driver) >= now + after, 600)
                out.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(out))
                print(f"wrote {out} (cycle {page_cycle(driver)})")
        finally:
            started[0].views["williams_otto"].request_stop()
            thread.join(60)
            if thread.is_alive():
                loop.call_soon_threadsafe(task.cancel)
                thread.join(30)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("console.png"))
    p.add_argument("--warmup", type=int, default=60, help="cycles before the limit change")
    p.add_argument("--after", type=int, default=40, help="cycles after it")
    a = p.parse_args()
    main(a.out, a.warmup, a.after)
