"""The steel site (gas network + reheating furnace, plant-wide RTO from ``[plantwide]``) over
secured OPC UA, each unit on a PLC process of its own (lockstep): the furnace's PLC is killed
(SIGKILL) mid-run. The network unit keeps cycling and writing, the coordinator keeps running
the plant-wide RTO and issuing the network's targets, and it holds the furnace's targets
(``link_lost``, targets held, its new targets pending) and says so in the historian.

The two PLCs run in separate processes here (one can die alone), so the bench's fuel link is
not in this test: the network's furnace demand stays at its schedule value.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rtompc.config.load import load_site
from rtompc.hil_process import HilProcess, free_port, make_secure_bench
from rtompc.historian import Historian
from rtompc.multiunit import UnitState
from rtompc.plantwide_source import PlantwideSource
from rtompc.site_run import SiteRun
from rtompc.steel_site_config import (
    FURNACE,
    NETWORK,
    Endpoint,
    bench_text,
    secure_transport,
    site_config_text,
)

pytestmark = [pytest.mark.opcua, pytest.mark.slow]


async def _until(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _issued(source: PlantwideSource, unit: str, after: float = -1.0) -> int:
    return sum(1 for t, d in source.history if t > after and d[unit].status.value == "issued")


async def test_killing_the_furnace_plc_leaves_network_and_coordinator_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secure = make_secure_bench(tmp_path / "pki")
    urls = {u: f"opc.tcp://127.0.0.1:{free_port()}" for u in (NETWORK, FURNACE)}
    benches = {}
    for unit, url in urls.items():
        benches[unit] = tmp_path / f"{unit}.toml"
        benches[unit].write_text(bench_text({unit: url}, secure=secure))
    transport = secure_transport(secure, "PW_STEEL_SITE", reconnect_max_delay_s=0.5)
    monkeypatch.setenv("PW_STEEL_SITE", secure.password)
    cfg = tmp_path / "site.toml"
    cfg.write_text(
        site_config_text(
            {u: Endpoint(url, transport) for u, url in urls.items()},
            historian=str(tmp_path / "site.sqlite"),
        )
    )
    site = load_site(cfg)
    hils = {u: HilProcess(b, log_path=tmp_path / f"{u}.log") for u, b in benches.items()}
    await asyncio.gather(*(h.start() for h in hils.values()))
    lines: list[str] = []
    run = SiteRun(site, print_every=0, out=lines.append)
    source = run.source
    assert isinstance(source, PlantwideSource)
    coord = run.coordinator
    net = run.units[NETWORK].loop
    try:
        await run.start()
        task = asyncio.create_task(run.run(duration_s=8 * 3600.0))
        # both units have taken plant-wide targets (the furnace's gate needs 11 samples)
        await _until(lambda: _issued(source, FURNACE) >= 1, 240, "furnace targets issued")
        await hils[FURNACE].kill()  # the furnace's PLC dies: SIGKILL, no clean shutdown
        await _until(lambda: coord.units[FURNACE].state is UnitState.LINK_LOST, 60, "link lost")
        t_loss = source.history[-1][0]  # plant time of the last RTO run before the loss
        writes_at_loss, updates_at_loss = net.stats.writes, coord.updates
        await _until(lambda: net.stats.writes >= writes_at_loss + 40, 120, "network carrying on")
        await _until(lambda: coord.updates >= updates_at_loss + 2, 120, "coordinator carrying on")
        assert coord.units[FURNACE].state is UnitState.LINK_LOST
        assert coord.status()[FURNACE]["targets_held"] is True
        assert coord.units[NETWORK].state is UnitState.RUNNING
        assert not task.done()
        run.stop("test end")
        await asyncio.wait_for(task, 60)
    finally:
        await run.close()
        await asyncio.gather(*(h.stop() for h in hils.values()))
    # the plant-wide RTO kept running and kept issuing the network's targets after the loss
    assert _issued(source, NETWORK, after=t_loss) >= 1
    assert coord.units[FURNACE].pending is not None  # new furnace targets held back
    assert net.stats.write_failures == 0 and net.stats.disconnected_cycles == 0
    assert any(
        "furnace link_lost" in c and "targets are held" in c for c in coord.units[FURNACE].changes
    )
    with Historian(tmp_path / "site.sqlite") as h:
        runs = {r.unit: r for r in h.runs()}
        messages = " ".join(r["message"] or "" for r in h.rows(runs[FURNACE].run_id))
    assert "targets are held" in messages
