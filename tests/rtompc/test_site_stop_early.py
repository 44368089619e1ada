"""``rtompc run`` stopped by SIGINT before the first cycle - while the operator surfaces start
(the console and the engine server took 30 s at load 8): the run ends ``ok`` ("stopped by
SIGINT, before its first cycle"), not ``link_lost`` (exit 5) or ``not_in_control`` as a loop
that never read its plant looked before. The signal goes through the command's own handler:
a surface sends it to this process while it is being entered. One unit and a two-unit site,
in-process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from rtompc.commands.run import run_app
from rtompc.commands.run_site import run_site
from rtompc.historian import Historian
from rtompc.lifecycle import ExitCode
from tests.rtompc.site_helpers import site_text


@contextlib.asynccontextmanager
async def _interrupting(_views: Any) -> AsyncIterator[None]:
    """An operator surface during whose start the operator presses Ctrl-C."""
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.sleep(0.2)  # the loop's signal handler runs
    yield


async def test_a_site_stopped_before_its_first_cycle_ends_ok(tmp_path: Path) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text(site_text(str(tmp_path / "site.sqlite")))
    outcome, stats = await run_site(cfg, None, 5, 0, [_interrupting])
    assert {n: s["cycles"] for n, s in stats.items()} == {"reactor": 0, "tanks": 0}
    assert outcome.code is ExitCode.OK, outcome.reason
    assert outcome.reason.count("stopped by SIGINT, before its first cycle") == 2


async def test_a_unit_stopped_before_its_first_cycle_ends_ok(
    tmp_path: Path, app_config: Callable[[Path | str], str]
) -> None:
    cfg = tmp_path / "app.toml"
    cfg.write_text(app_config(tmp_path / "hist.sqlite"))
    outcome, stats = await run_app(cfg, None, 5, 0, surfaces=[_interrupting])
    assert stats["cycles"] == 0
    assert outcome.code is ExitCode.OK, outcome.reason
    assert outcome.reason == "stopped by SIGINT, before its first cycle"
    with Historian(tmp_path / "hist.sqlite") as h:
        [run] = h.runs()
    assert run.exit_code == 0
