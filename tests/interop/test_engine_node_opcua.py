"""Interop: an independent OPC UA client (node-opcua) operates the demo stack through the
engine's own namespace (urn:rtompc:engine).

The demo stack runs in this process (Williams-Otto on the HIL server in a child process,
secured OPC UA link, EKF + NMPC + modifier-adaptation RTO, lockstep), started in SHADOW,
with the engine namespace served SignAndEncrypt with users. The node-opcua client
(tests/interop/node/engine_client.js) logs in as an operator and a viewer, browses the
namespace, is refused what its role may not do, switches SHADOW -> ON, tightens the
by-product limit (x_g high 0.11 -> 0.06, below where the plant runs), takes the
reactor temperature MV out of service, tightens the limit again (f_b alone must act)
and puts t_r back. The checks are on the loop's frames
(every cycle) and the historian's journal: writes start after ON, x_g ends below the new
limit, t_r is held while out of service and comes back within its rate limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization

from interfaces.engine_server import EngineServerSettings
from plant_models.certificates import make_self_signed
from plant_models.samples import Mode
from plant_models.server_auth import TRUSTED_DIR, hash_password, parse_user_table
from rtompc.demo import UNIT, DemoOptions, run_demo
from rtompc.engine_namespace import engine_surface
from rtompc.historian import Historian
from rtompc.historian.journal import read_journal
from rtompc.live.frame import Frame
from rtompc.live.view import EngineViews

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")
CLIENT_URI = "urn:rtompc:test:engine-node-client"
PASSWORDS = {"op": "pw-op-7", "guest": "pw-guest-7"}
NEW_HIGH = 0.06
LOWER_HIGH = 0.055
T_R_STEP_K = 1.2  # demo max_rate_per_s t_r = 1.2 degC/min, one 60 s cycle

pytestmark = [
    pytest.mark.interop,
    pytest.mark.opcua,
    pytest.mark.slow,  # ~45 s CPU: the demo stack's start-up is most of it
    pytest.mark.timeout(300),
    pytest.mark.skipif(NODE is None, reason="Node.js ('node') is not on PATH"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / "node-opcua-client").is_dir(),
        reason="node-opcua is not installed: run `npm ci --prefix tests/interop/node`",
    ),
]


def _pki(tmp: Path) -> tuple[Path, Path, Path]:
    """Client certificate + key (PEM) and a server cert dir trusting the certificate."""
    key, cert = make_self_signed(CLIENT_URI, "engine-node-client", ("localhost",), server=False)
    cert_pem, key_pem = tmp / "client_cert.pem", tmp / "client_key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_dir = tmp / "engine-pki"
    (cert_dir / TRUSTED_DIR).mkdir(parents=True)
    (cert_dir / TRUSTED_DIR / "client.der").write_bytes(
        cert.public_bytes(serialization.Encoding.DER)
    )
    return cert_dir, cert_pem, key_pem


def _steps() -> list[dict[str, Any]]:
    u = UNIT
    wait = {"do": "wait_cycles", "path": f"{u}.Controller.cycle", "timeout_ms": 90000}
    return [
        {"do": "browse", "path": u},
        {"do": "browse", "path": f"{u}.CVs"},
        {"do": "read", "path": f"{u}.CVs.x_g.high", "properties": True},
        {"do": "read", "path": f"{u}.Controller.mode"},
        {**wait, "n": 3},
        {"do": "write", "path": f"{u}.CVs.x_g.weight", "type": "Double", "value": 2.0},
        {"do": "write", "path": f"{u}.CVs.x_g.high", "type": "Float", "value": NEW_HIGH},
        {"do": "write", "path": f"{u}.CVs.x_g.high", "type": "Double", "value": 5.0},
        {"do": "write", "path": f"{u}.Controller.mode_request", "type": "String", "value": "on"},
        {**wait, "n": 5},
        {"do": "write", "path": f"{u}.CVs.x_g.high", "type": "Double", "value": NEW_HIGH},
        {**wait, "n": 20},
        {"do": "write", "path": f"{u}.MVs.t_r.in_service", "type": "Boolean", "value": False},
        {**wait, "n": 2},
        {"do": "write", "path": f"{u}.CVs.x_g.high", "type": "Double", "value": LOWER_HIGH},
        {**wait, "n": 12},
        {"do": "write", "path": f"{u}.MVs.t_r.in_service", "type": "Boolean", "value": True},
        {**wait, "n": 8},
        {"do": "read", "path": f"{u}.Controller.mode"},
    ]


async def _node(config: dict[str, Any], tmp: Path, ready: asyncio.Event) -> dict[str, Any]:
    """Run the node-opcua client; ``ready`` is set once its first session is open."""
    path = tmp / "engine_steps.json"
    path.write_text(json.dumps(config))
    proc = await asyncio.create_subprocess_exec(
        str(NODE),
        str(NODE_DIR / "engine_client.js"),
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(NODE_DIR),
    )
    assert proc.stdout is not None and proc.stderr is not None
    last = b""
    async with asyncio.timeout(240):
        while line := await proc.stdout.readline():
            if line.startswith(b'{"ready"'):
                ready.set()
            elif line.strip():
                last = line
        err = await proc.stderr.read()
        await proc.wait()
    ready.set()
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(last.decode())  # type: ignore[no-any-return]


async def test_node_opcua_operates_the_demo_stack(endpoint: str, tmp_path: Path) -> None:
    cert_dir, cert_pem, key_pem = _pki(tmp_path)
    roles = {"op": "operator", "guest": "viewer"}
    users = parse_user_table(
        {
            n: {"role": roles[n], "password_hash": hash_password(pw, iterations=1000)}
            for n, pw in PASSWORDS.items()
        },
        ("viewer", "operator", "engineer"),
    )
    settings = EngineServerSettings(endpoint, cert_dir=cert_dir, users=users)
    frames: list[Frame] = []
    node: dict[str, Any] = {}
    config = {
        "endpoint": endpoint,
        "pki": str(tmp_path / "node-pki"),
        "client_uri": CLIENT_URI,
        "cert": str(cert_pem),
        "key": str(key_pem),
        "sessions": [
            {
                "user": "guest",
                "password": PASSWORDS["guest"],
                "steps": [
                    {
                        "do": "write",
                        "path": f"{UNIT}.Controller.mode_request",
                        "type": "String",
                        "value": "on",
                    }
                ],
            },
            {"user": "op", "password": PASSWORDS["op"], "steps": _steps()},
        ],
    }

    @contextlib.asynccontextmanager
    async def driver(views: EngineViews) -> AsyncIterator[None]:
        view = views[UNIT]
        sub = view.subscribe(maxsize=10_000)

        async def collect() -> None:
            async for f in sub:
                frames.append(f)

        async def drive() -> None:
            try:
                node.update(await _node(config, tmp_path, ready))
            finally:
                view.request_stop()

        ready = asyncio.Event()
        collector = asyncio.create_task(collect())
        client = asyncio.create_task(drive())
        await asyncio.wait_for(ready.wait(), 120)  # the loop starts once the client is in
        try:
            yield
        finally:
            await asyncio.wait_for(client, 30)
            await asyncio.sleep(0)
            collector.cancel()
            while (f := sub.get_nowait()) is not None:
                frames.append(f)

    opts = DemoOptions(
        tmp_path / "demo", cycles=400, lockstep=True, progress=False, mode=Mode.SHADOW, plots=False
    )
    summary = await run_demo(opts, None, surfaces=[engine_surface(settings), driver])

    guest, op = node["sessions"]
    assert guest["connected"] and op["connected"], (guest["error"], op["error"])
    assert guest["results"][0]["status"] == "BadUserAccessDenied"
    r = op["results"]
    assert sorted(r[0]["names"]) == ["CVs", "Controller", "MVs"]
    assert sorted(r[1]["names"]) == ["x_g", "x_p"]
    assert r[2]["value"] == pytest.approx(0.11) and r[2]["range"][0] == 0.0
    assert r[3]["value"] == "shadow"
    statuses = [r[i]["status"] for i in (5, 6, 7, 8, 10, 12, 14, 16)]
    assert statuses == [
        "BadUserAccessDenied",  # an operator may not change a weight
        "BadTypeMismatch",  # Float to a Double node
        "BadOutOfRange",  # outside the validity limits
        "Good",  # mode_request on
        "Good",  # x_g high 0.06
        "Good",  # t_r out of service
        "Good",  # x_g high 0.055 while t_r is out
        "Good",  # t_r back in service
    ], r
    assert all(x.get("reached", True) for x in r), r
    assert r[-1]["value"] == "on"
    by_cycle = {f.cycle: f for f in frames}
    assert sorted(by_cycle) == list(range(len(by_cycle))) and len(by_cycle) == summary["cycles"]
    hist = Historian(opts.out_dir / "historian.sqlite")
    journal = read_journal(hist)
    hist.close()
    rows = [(j.user, j.source, j.key, j.new, j.outcome.split(":")[0]) for j in journal]
    assert rows == [
        ("guest", "opcua", "controller.mode_request", "on", "refused"),
        ("op", "opcua", "cv.x_g.weight", 2.0, "refused"),
        ("op", "opcua", "cv.x_g.high", 5.0, "refused"),
        ("op", "opcua", "controller.mode_request", "on", "accepted"),
        ("op", "opcua", "cv.x_g.high", NEW_HIGH, "accepted"),
        ("op", "opcua", "mv.t_r.in_service", False, "accepted"),
        ("op", "opcua", "cv.x_g.high", LOWER_HIGH, "accepted"),
        ("op", "opcua", "mv.t_r.in_service", True, "accepted"),
    ]
    # the first cycle that started after each accepted change (it applies there, or one later
    # when the change landed between the cycle's clock read and its start)
    starts = np.array([f.wall_time_s for f in frames])
    c_on, c_lim, c_out, c_low, c_in = (
        int(np.searchsorted(starts, j.wall_time_s)) for j in journal[3:]
    )

    # SHADOW -> ON: nothing written before, verified writes after
    assert all(f.mode is Mode.SHADOW and f.status.write_status == "shadow" for f in frames[:c_on])
    assert all(f.mode is Mode.ON for f in frames[c_on + 1 :])
    assert all(f.status.write_status == "verified" for f in frames[c_on + 3 :])
    assert summary["fallbacks"] == 0 and summary["write_failures"] == 0

    # the tightened limit: in the controller from the next cycle, x_g below it at the end
    x_g = np.array([f.cv("x_g").measured for f in frames])
    assert x_g[c_lim - 1] > NEW_HIGH + 0.004  # the plant ran above the new limit
    # (a frame shows the latest accepted limit: the one of the cycle running at the change
    # may already show the next)
    assert all(f.cv("x_g").high == NEW_HIGH for f in frames[c_lim + 1 : c_low - 1])
    assert all(f.cv("x_g").high == LOWER_HIGH for f in frames[c_low + 1 :])
    assert np.all(x_g[c_out - 5 : c_out] <= NEW_HIGH + 5e-4), x_g[c_lim:c_out]

    # t_r out of service: held where it was while the lower limit makes f_b alone move;
    # back in: within one rate step of the held value
    out = frames[c_out + 1 : c_in]
    t_r_out = np.array([f.mv("t_r").written for f in out])
    f_b_out = np.array([f.mv("f_b").written for f in out])
    assert not any(f.mv("t_r").in_service for f in out[:-1])  # the last may show the request
    assert np.ptp(t_r_out) == 0.0 and np.all(np.isfinite(t_r_out))
    assert np.ptp(f_b_out) > 0.01, f_b_out
    assert x_g[c_in] < x_g[c_low] - 8e-4, x_g[c_low:c_in]  # f_b alone takes x_g down
    back = np.array([f.mv("t_r").written for f in frames[c_in - 1 : c_in + 8]])
    assert np.all(np.abs(np.diff(back)) <= T_R_STEP_K + 1e-6), back
    assert frames[-1].mv("t_r").in_service
