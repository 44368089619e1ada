"""``rtompc config init --from-server`` and ``config check --connect`` over real loopback OPC UA.

A HIL server (williams_otto, lockstep) is browsed; the proposed tag map must name
the HIL's namespace URI and nodes with their units, and the written file must pass
``check --connect``. Against a secured HIL (sign-encrypt, users) the whole
commissioning path runs: ``certs create`` -> ``init --from-server`` with that
certificate -> ``check --connect``; a config whose setpoint is a read-only node, or
whose application URI is not the certificate's, is caught before anything runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import socket
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from hil.clock import ClockConfig, ClockMode
from hil.security import SERVER_CERT, TRUSTED_DIR, SecurityMode, hash_password, parse_users
from hil.server import HilServer, ServerConfig
from hil.simulator import PlantSimulator, SimulatorConfig
from plant_models.library import load
from rtompc.cli import main

pytestmark = [pytest.mark.opcua, pytest.mark.timeout(180)]

PASSWORD_ENV = "RTOMPC_TEST_HIL_PASSWORD"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _cli(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in a worker thread (it starts its own event loop)."""

    def run() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        return code, out.getvalue(), err.getvalue()

    return await asyncio.to_thread(run)


@pytest_asyncio.fixture
async def hil() -> AsyncIterator[str]:
    endpoint = f"opc.tcp://127.0.0.1:{_free_port()}"
    sim = PlantSimulator(load("williams_otto"), SimulatorConfig(sample_time_s=60.0))
    async with HilServer(sim, ServerConfig(endpoint, ClockConfig(ClockMode.LOCKSTEP))):
        yield endpoint


async def test_init_from_server_proposes_the_hil_tag_map_and_passes_check_connect(
    hil: str, tmp_path: Path
) -> None:
    out_file = tmp_path / "wo.toml"
    code, out, err = await _cli(["config", "init", "--from-server", hil, "--out", str(out_file)])
    assert code == 0, out + err
    data = tomllib.loads(out_file.read_text())
    tr = data["transport"]
    assert tr["kind"] == "opcua" and tr["endpoint"] == hil and tr["lockstep"] is True
    tags = tr["tags"]
    assert tags["namespace"] == "urn:rtompc:hil"
    assert tags["setpoints"]["f_b"] == {"node": "s=williams_otto.Setpoints.f_b", "unit": "kg/s"}
    assert tags["setpoints"]["t_r"]["unit"] == "K"
    assert tags["actuators"]["t_r"]["node"] == "s=williams_otto.Actuators.t_r"
    assert set(tags["measurements"]) == {
        "x_a",
        "x_b",
        "x_c",
        "x_e",
        "x_g",
        "x_p",
        "f_out",
        "f_p",
        "f_e",
        "f_a",
    }
    assert tags["status"]["step_method"] == {"node": "s=williams_otto.step"}
    assert tags["status"]["mode_request"] == {"node": "s=williams_otto.Status.mode_request"}
    assert data["plant"]["name"] == "williams_otto"  # found from the HIL's plant object
    # the HIL publishes its clock: the control period is a whole number of its 60 s steps
    assert tags["status"]["clock_step_s"] == {"node": "s=williams_otto.Status.step_size_s"}
    assert data["loop"]["sample_time_s"] == 60.0
    assert "Double, SI kg/s" in out_file.read_text()  # data types and units annotated
    code, out, err = await _cli(["config", "check", str(out_file)])
    assert code == 0 and "tag map fits the model" in out, out + err
    code, out, err = await _cli(["config", "check", str(out_file), "--connect"])
    assert code == 0, out + err
    assert "tags found" in out


async def test_check_connect_finds_a_read_only_setpoint_before_anything_runs(
    hil: str, tmp_path: Path
) -> None:
    out_file = tmp_path / "wo.toml"
    assert (await _cli(["config", "init", "--from-server", hil, "--out", str(out_file)]))[0] == 0
    text = out_file.read_text().replace(
        'f_b = { node = "s=williams_otto.Setpoints.f_b"',
        'f_b = { node = "s=williams_otto.Actuators.f_b"',
        1,
    )
    text = text.replace(
        'x_g = { node = "s=williams_otto.Measurements.x_g"',
        'x_g = { node = "s=williams_otto.Measurements.no_such_node"',
    )
    out_file.write_text(text)
    code, out, err = await _cli(["config", "check", str(out_file), "--connect"])
    assert code == 2, out + err
    problems = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert any("setpoints.f_b" in p and "CurrentWrite" in p for p in problems), out
    assert any("measurements.x_g" in p and "no_such_node" in p for p in problems), out
    assert len(problems) == 2, out


async def test_check_connect_reports_an_unreachable_server(tmp_path: Path) -> None:
    out_file = tmp_path / "app.toml"
    assert (await _cli(["config", "init", "williams_otto", "--out", str(out_file)]))[0] == 0
    text = out_file.read_text().replace(
        'kind = "inprocess"', f'kind = "opcua"\nendpoint = "opc.tcp://127.0.0.1:{_free_port()}"'
    )
    out_file.write_text(text)
    code, out, _ = await _cli(["config", "check", str(out_file), "--connect", "--timeout", "5"])
    assert code == 2 and "cannot reach the server" in out, out


@pytest_asyncio.fixture
async def secured_hil(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Path]]:
    """A sign-encrypt HIL; the client PKI is made with ``rtompc certs create``."""
    cert_dir = tmp_path / "hil-pki"
    pki = tmp_path / "pki"
    code, out, err = await _cli(
        ["certs", "create", "--dir", str(pki), "--uri", "urn:test:unit7:rtompc"]
    )
    assert code == 0, out + err
    (cert_dir / TRUSTED_DIR).mkdir(parents=True)
    shutil.copy(pki / "own" / "certs" / "rtompc_client.der", cert_dir / TRUSTED_DIR)
    users = parse_users(
        {"engine": {"role": "controller", "password_hash": hash_password("pw-7", iterations=1000)}}
    )
    monkeypatch.setenv(PASSWORD_ENV, "pw-7")
    endpoint = f"opc.tcp://127.0.0.1:{_free_port()}"
    sim = PlantSimulator(load("williams_otto"), SimulatorConfig(sample_time_s=60.0))
    cfg = ServerConfig(
        endpoint, ClockConfig(ClockMode.LOCKSTEP), SecurityMode.SIGN_ENCRYPT, cert_dir, users
    )
    async with HilServer(sim, cfg):
        shutil.copy(cert_dir / SERVER_CERT, pki / "trusted" / "certs" / SERVER_CERT)
        yield endpoint, pki


async def test_commissioning_path_on_a_secured_hil(
    secured_hil: tuple[str, Path], tmp_path: Path
) -> None:
    endpoint, pki = secured_hil
    out_file = tmp_path / "configs" / "unit7.toml"
    code, out, err = await _cli(
        [
            "config",
            "init",
            "--from-server",
            endpoint,
            "--out",
            str(out_file),
            "--security",
            "sign-encrypt",
            "--certificate",
            str(pki / "own/certs/rtompc_client.der"),
            "--private-key",
            str(pki / "own/private/rtompc_client.pem"),
            "--trust",
            str(pki / "trusted/certs"),
            "--application-uri",
            "urn:test:unit7:rtompc",
            "--user",
            "engine",
            "--password-env",
            PASSWORD_ENV,
        ]
    )
    assert code == 0, out + err
    text = out_file.read_text()
    tr = tomllib.loads(text)["transport"]
    assert tr["security"] == "sign-encrypt" and tr["password_env"] == PASSWORD_ENV
    assert tr["certificate"] == "../pki/own/certs/rtompc_client.der"  # relative to the file
    assert "pw-7" not in text  # secrets stay in the environment
    code, out, err = await _cli(["config", "check", str(out_file), "--connect"])
    assert code == 0, out + err
    assert "application URI matches the certificate" in out
    # a URI that is not the certificate's is refused by servers: caught offline
    out_file.write_text(text.replace('"urn:test:unit7:rtompc"', '"urn:test:unit8:rtompc"'))
    code, out, _ = await _cli(["config", "check", str(out_file)])
    assert code == 2 and "is not the URI in the certificate" in out, out
