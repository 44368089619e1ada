"""``rtompc run SITE.toml`` with ``[console]`` and ``[engine_server]`` at the site level, plus
``--console`` and ``--engine-server`` on the command line: both operator surfaces serve every
unit while the units run (two units in-process, lockstep).

A probe thread logs in to the console and reads each unit's frames, browses the engine
namespace with an asyncua client and reads each unit's cycle, then stops the run with SIGINT
(the command's own handler): no race against the run's length. Exit 0, a summary per unit.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua
from console_helpers import Http, users_file

from interfaces.engine_server import NAMESPACE_URI
from rtompc.cli import main
from tests.rtompc.site_helpers import site_text

pytestmark = [pytest.mark.opcua, pytest.mark.timeout(240)]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _browse(endpoint: str) -> dict[str, int]:
    """Unit name -> its Controller.cycle, read through the engine namespace."""
    async with Client(endpoint, timeout=10) as client:
        ns = await client.get_namespace_index(NAMESPACE_URI)
        out = {}
        for unit in await client.get_node(ua.NodeId("Units", ns)).get_children():
            name = (await unit.read_browse_name()).Name
            cycle = client.get_node(ua.NodeId(f"Units.{name}.Controller.cycle", ns))
            out[name] = int(await cycle.read_value())
        return out


def _probe(console: int, engine: str, seen: dict[str, Any], ended: threading.Event) -> None:
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and not ended.is_set():
            try:
                if "frames" not in seen:
                    http = Http(f"http://127.0.0.1:{console}")
                    http.login("viewer1", "view-pw")
                    _, _, text = http.request("GET", "/api/units")
                    seen["units"] = [u["name"] for u in json.loads(text)["units"]]
                    frames = {}
                    for name in seen["units"]:
                        _, _, text = http.request("GET", f"/api/units/{name}/frames?last=1")
                        frames[name] = json.loads(text)
                    if all(frames.values()):
                        seen["frames"] = frames
                        continue
                else:
                    seen["engine"] = asyncio.run(_browse(engine))
                    break
            except (OSError, KeyError, ValueError, TimeoutError) as exc:
                seen["error"] = repr(exc)
            time.sleep(0.3)
    finally:
        if not ended.is_set():
            os.kill(os.getpid(), signal.SIGINT)  # the run's own handler stops it


def test_run_serves_every_unit_on_the_console_and_the_engine_namespace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = users_file(tmp_path)
    console, engine = _port(), f"opc.tcp://127.0.0.1:{_port()}"
    cfg = tmp_path / "site.toml"
    cfg.write_text(
        f'[console]\nusers = "{users.name}"\nbind = "127.0.0.1:1"\n'
        '[engine_server]\nsecurity = "none"\n' + site_text()
    )
    seen: dict[str, Any] = {}
    ended = threading.Event()
    probe = threading.Thread(target=_probe, args=(console, engine, seen, ended), daemon=True)
    argv = ["run", str(cfg), "--steps", "1000000", "--print-every", "0"]
    argv += ["--console", f"127.0.0.1:{console}", "--engine-server", engine]
    probe.start()
    try:
        code = main(argv)
    finally:
        ended.set()
    probe.join(10)
    assert code == 0, seen
    out = capsys.readouterr().out
    assert f"console: http://127.0.0.1:{console}/" in out  # the option wins over [console] bind
    assert f"engine OPC UA server: {engine} (one object per unit)" in out
    assert seen["units"] == ["reactor", "tanks"]
    assert {n: f[-1]["unit"] for n, f in seen["frames"].items()} == {
        "reactor": "reactor",
        "tanks": "tanks",
    }
    assert sorted(seen["engine"]) == ["reactor", "tanks"]
    assert all(c >= 0 for c in seen["engine"].values())
    assert "summary reactor:" in out and "summary tanks:" in out
    assert "exit 0 (ok): reactor: ok (stopped by SIGINT); tanks: ok (stopped by SIGINT)" in out
