"""Interop: an independent OPC UA client (node-opcua, Node.js) against the HIL server.

The client lives in tests/interop/node (package.json + package-lock.json; install with
``npm ci --prefix tests/interop/node``). It browses, reads (with EngineeringUnits and
EURange), writes (good and bad), calls ``step`` and subscribes; against secured
endpoints it must be refused when anonymous, with a wrong password or with an
untrusted certificate. Skipped with a reason when Node.js or the packages are missing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from hil.clock import ClockConfig, ClockMode
from hil.security import TRUSTED_DIR, SecurityMode, hash_password, make_self_signed, parse_users
from hil.server import HilServer, ServerConfig
from hil.simulator import PlantSimulator, SimulatorConfig
from plant_models.library import load

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")
CLIENT_URI = "urn:rtompc:test:client"

pytestmark = [
    pytest.mark.interop,
    pytest.mark.opcua,
    pytest.mark.timeout(120),
    pytest.mark.skipif(NODE is None, reason="Node.js ('node') is not on PATH"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules" / "node-opcua-client").is_dir(),
        reason="node-opcua is not installed: run `npm ci --prefix tests/interop/node`",
    ),
]


async def run_node(config: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    """Run the node-opcua client on ``config``; returns its per-case results."""
    cfg_path = tmp_path / "cases.json"
    cfg_path.write_text(
        json.dumps({"pki": str(tmp_path / "node-pki"), "client_uri": CLIENT_URI, **config})
    )
    proc = await asyncio.create_subprocess_exec(
        str(NODE),
        str(NODE_DIR / "hil_client.js"),
        str(cfg_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(NODE_DIR),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out.decode().strip().splitlines()[-1])["cases"]


async def test_node_opcua_browse_read_write_call_subscribe(endpoint: str, tmp_path: Path) -> None:
    model = load("van_de_vusse")
    server = HilServer(
        PlantSimulator(model, SimulatorConfig(sample_time_s=2.0)),
        ServerConfig(endpoint, ClockConfig(ClockMode.LOCKSTEP)),
    )
    actions = [
        {"do": "browse"},
        {"do": "read", "path": "Setpoints.f_dil", "properties": True},
        {"do": "write", "path": "Setpoints.f_dil", "type": "Double", "value": 0.005},  # LOCAL
        {"do": "write", "path": "Status.mode_request", "type": "Int32", "value": 1},
        {"do": "write", "path": "Setpoints.f_dil", "type": "Double", "value": 0.005},
        {"do": "write", "path": "Setpoints.f_dil", "type": "Float", "value": 0.004},
        {"do": "write", "path": "Setpoints.f_dil", "type": "Double", "value": "NaN"},
        {"do": "write", "path": "Setpoints.f_dil", "type": "Double", "value": 1.0},
        {"do": "write", "path": "Measurements.t_r", "type": "Double", "value": 300.0},
        {"do": "write", "path": "Status.heartbeat", "type": "UInt32", "value": 7},
        {"do": "subscribe", "path": "Status.sim_time_s"},
        {"do": "call_step", "n": 3},
        {"do": "call_step", "n": 2},
        {"do": "wait_notifications", "count": 3, "timeout_ms": 5000},
        {"do": "read", "path": "Actuators.f_dil"},
        {"do": "read", "path": "Measurements.c_b"},
    ]
    async with server:
        [res] = await run_node(
            {
                "endpoint": endpoint,
                "plant": "van_de_vusse",
                "cases": [{"name": "open", "security": "none", "actions": actions}],
            },
            tmp_path,
        )
    assert res["connected"], res["error"]
    r = res["results"]
    assert r[0]["plant"] == ["Measurements", "Actuators", "Setpoints", "Status", "step"]
    assert r[0]["Measurements"] == [*model.y.names, *model.d.names]
    assert r[0]["Setpoints"] == list(model.u.names)
    assert r[1]["eu"] == {"unitId": 0x433937, "displayName": "1/s"}
    assert r[1]["range"] == pytest.approx([3.0 / 3600, 35.0 / 3600])
    assert [x["status"] for x in r[2:10]] == [
        "BadInvalidState",
        "Good",
        "Good",
        "BadTypeMismatch",
        "BadOutOfRange",
        "BadOutOfRange",
        "BadNotWritable",
        "Good",
    ]
    assert r[11] == {"status": "Good", "output": 6.0} and r[12]["output"] == 10.0
    assert r[13]["values"][0] == 0.0 and r[13]["values"][-1] == 10.0
    assert r[14]["value"] == 0.005 and r[14]["status"] == "Good"
    assert r[15]["value"] == pytest.approx(1.09e3, rel=0.05) and r[15]["source_timestamp"]


def _client_cert(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = make_self_signed(CLIENT_URI, name, ("localhost",), server=False)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}_cert.pem", directory / f"{name}_key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize(
    "mode", [SecurityMode.SIGN_ENCRYPT, SecurityMode.SIGN], ids=["sign-encrypt", "sign"]
)
async def test_node_opcua_against_secured_server(
    endpoint: str, tmp_path: Path, mode: SecurityMode
) -> None:
    cert_dir = tmp_path / "server-pki"
    trusted_cert, trusted_key = _client_cert(tmp_path / "client", "trusted")
    stranger_cert, stranger_key = _client_cert(tmp_path / "client", "stranger")
    (cert_dir / TRUSTED_DIR).mkdir(parents=True)
    shutil.copy(trusted_cert, cert_dir / TRUSTED_DIR / "trusted.pem")
    users = parse_users(
        {
            "operator": {
                "role": "controller",
                "password_hash": hash_password("op-pw", iterations=1000),
            },
            "guest": {
                "role": "viewer",
                "password_hash": hash_password("guest-pw", iterations=1000),
            },
        }
    )
    server = HilServer(
        PlantSimulator(load("van_de_vusse"), SimulatorConfig(sample_time_s=2.0)),
        ServerConfig(endpoint, ClockConfig(ClockMode.LOCKSTEP), mode, cert_dir, users),
    )
    sec = mode.value
    good = {"cert": str(trusted_cert), "key": str(trusted_key), "security": sec}
    write = [
        {"do": "write", "path": "Status.mode_request", "type": "Int32", "value": 1},
        {"do": "call_step", "n": 1},
    ]
    cases = [
        {"name": "controller", "user": "operator", "password": "op-pw", **good, "actions": write},
        {
            "name": "viewer",
            "user": "guest",
            "password": "guest-pw",
            **good,
            "actions": [{"do": "read", "path": "Status.sim_time_s"}, *write],
        },
        {"name": "anonymous", **good, "actions": []},
        {"name": "wrong_password", "user": "operator", "password": "nope", **good, "actions": []},
        {
            "name": "untrusted",
            "user": "operator",
            "password": "op-pw",
            "security": sec,
            "cert": str(stranger_cert),
            "key": str(stranger_key),
            "actions": [],
        },
        {"name": "unsecured", "security": "none", "actions": []},
    ]
    async with server:
        res = {
            c["name"]: c
            for c in await run_node(
                {"endpoint": endpoint, "plant": "van_de_vusse", "cases": cases}, tmp_path
            )
        }
    assert res["controller"]["connected"], res["controller"]["error"]
    assert [x["status"] for x in res["controller"]["results"]] == ["Good", "Good"]
    assert res["viewer"]["connected"], res["viewer"]["error"]
    viewer = res["viewer"]["results"]
    assert viewer[0]["status"] == "Good" and viewer[1]["status"] == "BadUserAccessDenied"
    assert "BadUserAccessDenied" in (viewer[2].get("error") or viewer[2].get("status"))
    for refused in ("anonymous", "wrong_password", "untrusted", "unsecured"):
        assert not res[refused]["connected"], refused
    # node-opcua refuses anonymous and None by itself: the server advertises neither
    assert "ANONYMOUS user token policy" in res["anonymous"]["error"]
    assert "BadUserAccessDenied" in res["wrong_password"]["error"]
    assert "BadCertificateUntrusted" in res["untrusted"]["error"]
    assert "End point must exist" in res["unsecured"]["error"]
