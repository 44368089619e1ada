"""``rtompc run SITE.toml`` stopped (SIGINT/SIGTERM) before its units' first cycle, e.g. while
the operator surfaces start (tens of seconds on a loaded machine): every unit ends ``ok``
("stopped before its first cycle"), not ``link_lost`` (exit 5) or ``not_in_control`` as a loop
that never read the plant looked before. Two units in-process."""

from __future__ import annotations

from pathlib import Path

from rtompc.lifecycle import ExitCode
from rtompc.site_run import SiteRun
from tests.rtompc.site_surface_helpers import site_stack


async def test_a_site_stopped_before_its_first_cycle_ends_ok(tmp_path: Path) -> None:
    async with site_stack(tmp_path) as site:
        run: SiteRun = site.run
        run.stop("stopped by SIGINT")
        stats = await run.run(5)
        assert {n: s["cycles"] for n, s in stats.items()} == {"reactor": 0, "tanks": 0}
        outcome = await site.close()
    assert outcome.code is ExitCode.OK, outcome.reason
    assert "before its first cycle" in outcome.reason
