"""Two units over secured OPC UA against two HIL "PLCs" (Van de Vusse + quadruple tank).

1. ``rtompc hil serve`` of a multi-unit bench (one process, one endpoint per unit, each with its
   own certificates, users and watchdog; lockstep) and ``rtompc run`` of a multi-unit config:
   both units controlled to their targets, one historian file with a run per unit.
2. Real time, one HIL process per unit: the reactor's PLC process is killed mid-run (SIGKILL).
   The tank unit and the coordinator carry on (cycles, target updates), the reactor is reported
   ``link_lost`` with its targets held (log line, status, historian event); when its PLC comes
   back on the same endpoint the reactor reconnects, gets REMOTE again and takes its pending
   targets.
(``rtompc run SITE.toml`` with the console and the engine namespace:
tests/rtompc/console/test_console_site_cli.py.)
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from plant_models.samples import OperatingTarget
from rtompc.cli import main
from rtompc.config.load import load_site
from rtompc.hil_process import (
    HilProcess,
    SecureBench,
    free_port,
    make_secure_bench,
    write_bench,
    write_site_bench,
)
from rtompc.historian import Historian
from rtompc.multiunit import UnitSnapshot, UnitState
from rtompc.site_run import SiteRun
from tests.rtompc.site_helpers import site_text

pytestmark = [pytest.mark.opcua, pytest.mark.slow]  # 65 s and 125 s at load 9-13 (HIL processes)

TRANSPORT = """kind = "opcua"
endpoint = "{endpoint}"
security = "sign-encrypt"
certificate = "{cert}"
private_key = "{key}"
trust_list = ["{trust}"]
application_uri = "{uri}"
user = "{user}"
password_env = "{env}"
{clock}"""


def _transport(endpoint: str, secure: SecureBench, env: str, clock: str) -> str:
    c = secure.client
    return TRANSPORT.format(
        endpoint=endpoint,
        cert=c.certificate,
        key=c.private_key,
        trust=c.trusted_server_certificates,
        uri=c.application_uri,
        user=secure.username,
        env=env,
        clock=clock,
    )


def test_rtompc_run_two_units_against_a_multi_unit_bench(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secure = {n: make_secure_bench(tmp_path / f"pki_{n}") for n in ("reactor", "tanks")}
    ends = {n: f"opc.tcp://127.0.0.1:{free_port()}" for n in secure}
    dts = {"reactor": 20.0, "tanks": 5.0}
    plants = {"reactor": "van_de_vusse", "tanks": "quadruple_tank"}
    bench = write_site_bench(
        tmp_path / "bench.toml",
        {
            n: (
                plants[n],
                {},
                dict(
                    endpoint=ends[n],
                    sample_time_s=dts[n],
                    speed=None,
                    secure=secure[n],
                    watchdog_timeout_s=120.0,
                ),
            )
            for n in secure
        },
    )
    monkeypatch.setenv("PW_REACTOR", secure["reactor"].password)
    monkeypatch.setenv("PW_TANKS", secure["tanks"].password)
    clock = "lockstep = true"
    cfg = tmp_path / "site.toml"
    cfg.write_text(
        site_text(
            str(tmp_path / "site.sqlite"),
            _transport(ends["reactor"], secure["reactor"], "PW_REACTOR", clock),
            _transport(ends["tanks"], secure["tanks"], "PW_TANKS", clock),
        )
    )
    log = (tmp_path / "hil.log").open("wb")
    hil = subprocess.Popen(
        [sys.executable, "-m", "rtompc", "hil", "serve", str(bench)],
        stdout=subprocess.PIPE, stderr=log,
    )  # fmt: skip
    try:
        assert hil.stdout is not None
        seen: dict[str, str] = {}
        for raw in hil.stdout:  # UNIT <name> <endpoint> per unit, then READY
            line = raw.decode().strip()
            if line.startswith("UNIT "):
                _, name, url = line.split()
                seen[name] = url
            if line.startswith("READY"):
                break
        assert seen == ends
        code = main(["run", str(cfg), "--mode", "on", "--steps", "40", "--print-every", "0"])
    finally:
        hil.terminate()
        hil.wait(30)
        log.close()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "summary reactor: " in out and "summary tanks: " in out
    assert re.search(r"exit 0 \(ok\): reactor: ok .*; tanks: ok", out), out
    with Historian(tmp_path / "site.sqlite") as h:
        runs = {r.unit: r for r in h.runs()}
        assert runs["reactor"].cycles == 40 and runs["tanks"].cycles == 40
        last = {u: list(h.rows(r.run_id))[-1] for u, r in runs.items()}
    # 40 cycles: the tank (5 s) has 200 s, the reactor (20 s) 800 s to reach its target
    assert last["tanks"]["meas__h1"] == pytest.approx(0.13, abs=3e-3)
    assert last["reactor"]["meas__c_b"] == pytest.approx(1000.0, abs=15.0)
    assert last["reactor"]["write_status"] == "verified"
    assert last["tanks"]["plant_mode"] == "REMOTE"


class _Targets:
    """A plant-wide target source handing both units their configured targets; records the
    unit states it saw."""

    def __init__(self) -> None:
        self.calls: list[dict[str, UnitState]] = []

    def update(
        self, time_s: float, units: Mapping[str, UnitSnapshot]
    ) -> Mapping[str, OperatingTarget]:
        self.calls.append({n: u.state for n, u in units.items()})
        return {
            "reactor": OperatingTarget(time_s, y={"c_b": 1000.0}),
            "tanks": OperatingTarget(time_s, y={"h1": 0.13, "h2": 0.12783158}),
        }


async def _until(cond: Any, timeout_s: float, what: str, status: Any = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}" + (f": {status()}" if status else "")
            )
        await asyncio.sleep(0.05)


async def test_killing_one_units_plc_leaves_the_other_and_the_coordinator_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    speed = 20.0
    secure = {n: make_secure_bench(tmp_path / f"pki_{n}") for n in ("reactor", "tanks")}
    ends = {n: f"opc.tcp://127.0.0.1:{free_port()}" for n in secure}
    benches = {
        n: write_bench(
            tmp_path / f"{n}.toml",
            plant,
            {},
            endpoint=ends[n],
            sample_time_s=dt,
            speed=speed,
            secure=secure[n],
            watchdog_timeout_s=120.0,
        )
        for n, plant, dt in (("reactor", "van_de_vusse", 20.0), ("tanks", "quadruple_tank", 5.0))
    }
    monkeypatch.setenv("PW_REACTOR", secure["reactor"].password)
    monkeypatch.setenv("PW_TANKS", secure["tanks"].password)
    clock = f"speed = {speed}\nreconnect_max_delay_s = 0.5"
    cfg = tmp_path / "site.toml"
    cfg.write_text(
        site_text(
            str(tmp_path / "site.sqlite"),
            _transport(ends["reactor"], secure["reactor"], "PW_REACTOR", clock),
            _transport(ends["tanks"], secure["tanks"], "PW_TANKS", clock),
            extra="[plantwide]\nevery_s = 50.0\n",
        )
    )
    site = load_site(cfg)
    source = _Targets()
    lines: list[str] = []
    reactor_hil = HilProcess(benches["reactor"], log_path=tmp_path / "reactor.log")
    tanks_hil = HilProcess(benches["tanks"], log_path=tmp_path / "tanks.log")
    await asyncio.gather(reactor_hil.start(), tanks_hil.start())
    run = SiteRun(site, source=source, print_every=0, out=lines.append)
    coord = run.coordinator
    tanks, reactor = run.units["tanks"].loop, run.units["reactor"].loop
    try:
        await run.start()
        task = asyncio.create_task(run.run())
        await _until(lambda: reactor.stats.writes >= 3 and tanks.stats.writes >= 10, 90, "writes")
        await reactor_hil.kill()  # the reactor's PLC dies: SIGKILL, no clean shutdown
        await _until(lambda: coord.units["reactor"].state is UnitState.LINK_LOST, 30, "link lost")
        tanks_at_loss, updates_at_loss = tanks.stats.writes, coord.updates
        await _until(lambda: tanks.stats.writes >= tanks_at_loss + 20, 60, "tanks carrying on")
        await _until(lambda: coord.updates >= updates_at_loss + 2, 60, "coordinator carrying on")
        assert coord.units["reactor"].state is UnitState.LINK_LOST
        assert coord.status()["reactor"]["targets_held"] is True
        assert coord.units["reactor"].pending is not None
        assert coord.units["tanks"].state is UnitState.RUNNING
        assert not task.done()
        await reactor_hil.start()  # the PLC is back on the same endpoint
        await _until(lambda: coord.units["reactor"].state is UnitState.RUNNING, 120, "recovery")
        writes_back = reactor.stats.writes
        await _until(lambda: reactor.stats.writes >= writes_back + 3, 60, "reactor writing again")
        run.stop("test end")
        await asyncio.wait_for(task, 30)
    finally:
        outcome = await run.close()
        await asyncio.gather(reactor_hil.stop(), tanks_hil.stop())
    assert outcome.code.value == 0, outcome.reason
    assert any(c.get("reactor") is UnitState.LINK_LOST for c in source.calls)
    changes = coord.units["reactor"].changes
    assert any("reactor link_lost (link lost): its targets are held" in c for c in changes)
    assert any("pending plant-wide targets applied" in c for c in changes)
    assert reactor.stats.reconnects >= 1 and tanks.stats.reconnects == 0
    assert tanks.stats.disconnected_cycles == 0
    with Historian(tmp_path / "site.sqlite") as h:
        runs = {r.unit: r for r in h.runs()}
        messages = " ".join(r["message"] or "" for r in h.rows(runs["reactor"].run_id))
    assert "targets are held" in messages and "link back" in messages
