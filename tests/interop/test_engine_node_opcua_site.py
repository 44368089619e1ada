"""Interop: an independent OPC UA client (node-opcua) on the engine namespace of a two-unit site.

The site (:func:`tests.rtompc.site_surface_helpers.two_tanks_text`): two quadruple-tank units
with the same signal names (``tanks_a``: h1 target 13 cm, ``tanks_b``: 12 cm), in-process
lockstep, EKF + NMPC, live parameters journaled in one historian file; the namespace served
SignAndEncrypt with users. The node-opcua client (tests/interop/node/engine_client.js) logs in
as an operator, browses ``Units`` (both unit objects), reads each unit's h1 with its
EngineeringUnits and EURange, and writes ``tanks_b``'s v1 (MV) and h1 (CV) high limits. Checked against the
units' frames, live parameters, controllers and journals: the write changes ``tanks_b`` only.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_engine_node_opcua import CLIENT_URI, NODE, NODE_DIR, PASSWORDS, _pki

from interfaces.engine_server import EngineServerSettings
from plant_models.server_auth import hash_password, parse_user_table
from rtompc.engine_namespace import EngineNamespace
from rtompc.historian.journal import read_journal
from tests.rtompc.site_surface_helpers import site_stack, two_tanks_text

pytestmark = [
    pytest.mark.interop,
    pytest.mark.opcua,
    pytest.mark.slow,  # ~45 s at load 8: node-opcua's start and key checks, two NMPC builds
    pytest.mark.timeout(240),
    pytest.mark.skipif(NODE is None, reason="Node.js ('node') is not on PATH"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / "node-opcua-client").is_dir(),
        reason="node-opcua is not installed: run `npm ci --prefix tests/interop/node`",
    ),
]


async def _node(config: dict[str, Any], tmp: Path) -> dict[str, Any]:
    path = tmp / "engine_steps.json"
    path.write_text(json.dumps(config))
    proc = await asyncio.create_subprocess_exec(
        str(NODE or shutil.which("node")),
        str(NODE_DIR / "engine_client.js"),
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(NODE_DIR),
    )
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


async def test_node_opcua_browses_both_units_and_writes_one(endpoint: str, tmp_path: Path) -> None:
    cert_dir, cert_pem, key_pem = _pki(tmp_path)
    users = parse_user_table(
        {
            "op": {
                "role": "operator",
                "password_hash": hash_password(PASSWORDS["op"], iterations=1000),
            }
        },
        ("viewer", "operator", "engineer"),
    )
    settings = EngineServerSettings(endpoint, cert_dir=cert_dir, users=users)
    async with site_stack(tmp_path, text=two_tanks_text(str(tmp_path / "site.sqlite"))) as site:
        views = site.run.views
        a, b = site.loop("tanks_a"), site.loop("tanks_b")
        a_live, b_live = views["tanks_a"].live, views["tanks_b"].live
        assert a_live is not None and b_live is not None
        a_before = {k: a_live.value(k) for k in a_live.keys()}
        async with EngineNamespace(views, settings, max_rate_hz=100.0):
            await a.run(2)
            await b.run(4)
            held = views["tanks_b"].latest.mv("v1").value  # type: ignore[union-attr]
            new_high = round(0.9 * held, 3)
            steps = [
                {"do": "browse", "path": ""},
                {"do": "browse", "path": "tanks_b"},
                {"do": "read", "path": "tanks_a.CVs.h1.measured", "properties": True},
                {"do": "read", "path": "tanks_b.CVs.h1.measured", "properties": True},
                {"do": "read", "path": "tanks_a.CVs.h1.target"},
                {"do": "read", "path": "tanks_b.CVs.h1.target"},
                {"do": "write", "path": "tanks_b.MVs.v1.high", "type": "Double", "value": new_high},
                {"do": "read", "path": "tanks_a.MVs.v1.high"},
                {"do": "read", "path": "tanks_b.MVs.v1.high"},
                {"do": "write", "path": "tanks_b.CVs.h1.high", "type": "Double", "value": 0.125},
                {"do": "read", "path": "tanks_a.CVs.h1.high"},
            ]
            result = await _node(
                {
                    "endpoint": endpoint,
                    "pki": str(tmp_path / "node-pki"),
                    "client_uri": CLIENT_URI,
                    "cert": str(cert_pem),
                    "key": str(key_pem),
                    "sessions": [{"user": "op", "password": PASSWORDS["op"], "steps": steps}],
                },
                tmp_path,
            )
            [session] = result["sessions"]
            assert session["connected"] and session["error"] is None, session
            r = session["results"]
            assert sorted(r[0]["names"]) == ["tanks_a", "tanks_b"]
            assert sorted(r[1]["names"]) == ["CVs", "Controller", "MVs"]
            for got, unit, cycle in ((r[2], "tanks_a", 1), (r[3], "tanks_b", 3)):
                frame = views[unit].latest
                assert frame is not None and frame.cycle == cycle
                assert got["value"] == frame.cv("h1").measured
                assert got["eu"]["displayName"] == "m" and got["range"] == [0.0, 0.2]
            assert abs(r[4]["value"] - 0.13) < 1e-9 and abs(r[5]["value"] - 0.12) < 1e-9
            assert r[6]["status"] == "Good", r[6]
            assert r[7]["value"] == 10.0 and r[8]["value"] == new_high
            assert r[9]["status"] == "Good", r[9]
            assert r[10]["value"] is None  # +inf (no limit) in node's JSON
            await a.run(1)
            await b.run(1)
        assert b.controller.config.mv("v1").upper == new_high
        assert views["tanks_b"].latest.mv("v1").written <= new_high + 1e-9  # type: ignore[union-attr]
        assert a.controller.config.mv("v1").upper != new_high
        assert b.controller.config.cv("h1").upper == 0.125
        assert a.controller.config.cv("h1").upper == math.inf
        assert {k: a_live.value(k) for k in a_live.keys()} == a_before
        hist_a, hist_b = site.run.units["tanks_a"].historian, site.run.units["tanks_b"].historian
        rows = [(r.user, r.source, r.key, r.new) for r in read_journal(hist_b, hist_b.run_id)]
        assert rows == [
            ("op", "opcua", "mv.v1.high", new_high),
            ("op", "opcua", "cv.h1.high", 0.125),
        ]
        assert read_journal(hist_a, hist_a.run_id) == []
