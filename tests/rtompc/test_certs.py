"""``rtompc certs create``: a client certificate a secured OPC UA server accepts.

The layout and the certificate's fields are read back with ``cryptography``; the
certificate is then used for real: the engine's OPC UA client connects over
loopback to ``rtompc hil serve --security sign-encrypt`` that trusts it, and is
refused by one that does not. The node-opcua client (an independent stack)
uses the PEM files of the same layout.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from hil.security import SERVER_CERT, TRUSTED_DIR, ensure_server_certificate, hash_password
from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import OpcUaSecurity, OpcUaSettings, SecurityMode, SecurityPolicy
from plant_models.errors import PlantIOError
from plant_models.library import load
from rtompc.cli import main

URI = "urn:test-site:unit7:rtompc"
SERVER_URI = "urn:rtompc:hil:server"
NODE_DIR = Path(__file__).parents[1] / "interop" / "node"


def _create(tmp: Path, *extra: str) -> dict[str, str]:
    argv = ["certs", "create", "--dir", str(tmp / "pki"), "--uri", URI, "--json", *extra]
    return dict(json.loads(_run_main(argv)))


def _run_main(argv: list[str]) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    assert code == 0, out.getvalue()
    return out.getvalue()


def test_create_writes_certificate_key_and_trust_list_layout(tmp_path: Path) -> None:
    ensure_server_certificate(tmp_path / "server", SERVER_URI)
    files = _create(
        tmp_path,
        "--trust",
        str(tmp_path / "server" / SERVER_CERT),
        "--host",
        "plc-gw.local",
        "--host",
        "10.0.0.7",
    )
    pki = tmp_path / "pki"
    for d in (
        "own/certs",
        "own/private",
        "trusted/certs",
        "trusted/crl",
        "issuers/certs",
        "rejected",
    ):
        assert (pki / d).is_dir(), d
    der = Path(files["certificate_der"]).read_bytes()
    cert = x509.load_der_x509_certificate(der)
    pem_cert = x509.load_pem_x509_certificate(Path(files["certificate_pem"]).read_bytes())
    assert pem_cert == cert
    key = serialization.load_pem_private_key(Path(files["private_key"]).read_bytes(), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    assert stat.S_IMODE(Path(files["private_key"]).stat().st_mode) == 0o600
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [URI]
    assert "plc-gw.local" in san.get_values_for_type(x509.DNSName)
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} >= {"10.0.0.7", "127.0.0.1"}
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert (
        ku.value.digital_signature,
        ku.value.content_commitment,
        ku.value.key_encipherment,
        ku.value.data_encipherment,
        ku.value.key_cert_sign,
    ) == (True, True, True, True, False)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert (
        cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    )
    assert cert.public_key().key_size == 2048  # type: ignore[union-attr]
    trusted = list((pki / "trusted" / "certs").iterdir())
    assert [p.read_bytes() for p in trusted] == [(tmp_path / "server" / SERVER_CERT).read_bytes()]
    assert files["application_uri"] == URI


def test_create_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _create(tmp_path)
    before = Path(first["certificate_der"]).read_bytes()
    assert main(["certs", "create", "--dir", str(tmp_path / "pki"), "--uri", URI]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--force" in err
    assert Path(first["certificate_der"]).read_bytes() == before
    again = _create(tmp_path, "--force", "--client-auth-only")
    cert = x509.load_der_x509_certificate(Path(again["certificate_der"]).read_bytes())
    assert Path(again["certificate_der"]).read_bytes() != before
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not [p for p in (tmp_path / "pki").rglob(".*")]  # no temporary files left


def test_create_rejects_a_bad_uri_and_a_non_certificate_to_trust(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "create", "--dir", str(tmp_path / "pki"), "--uri", "client"]) == 2
    assert "application URI" in capsys.readouterr().err
    junk = tmp_path / "server.der"
    junk.write_bytes(b"not a certificate")
    assert main(["certs", "create", "--dir", str(tmp_path / "p2"), "--trust", str(junk)]) == 2
    assert f"{junk}: not a DER or PEM X.509 certificate" in capsys.readouterr().err
    assert not (tmp_path / "p2").exists()  # nothing written


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _hil_serve(cert_dir: Path, users: Path) -> AsyncIterator[str]:
    """``rtompc hil serve williams_otto --security sign-encrypt`` in a child process."""
    endpoint = f"opc.tcp://127.0.0.1:{_free_port()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtompc",
        "hil",
        "serve",
        "williams_otto",
        "--endpoint",
        endpoint,
        "--lockstep",
        "--sample-time",
        "60",
        "--security",
        "sign-encrypt",
        "--cert-dir",
        str(cert_dir),
        "--users",
        str(users),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        # a fresh interpreter starting `rtompc hil serve`: 59 s measured on a loaded 2-core
        # machine (load 9-11); generous, the test's own timeout is 180 s
        line = await asyncio.wait_for(proc.stdout.readline(), 150)
        assert line.decode().startswith("READY "), line
        yield endpoint
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)


def _users(tmp: Path) -> Path:
    path = tmp / "users.toml"
    path.write_text(
        f'[users.engine]\nrole = "controller"\n'
        f'password_hash = "{hash_password("pw-engine", iterations=1000)}"\n'
    )
    return path


def _settings(endpoint: str, files: dict[str, str]) -> OpcUaSettings:
    sec = OpcUaSecurity(
        SecurityMode.SIGN_AND_ENCRYPT,
        SecurityPolicy.BASIC256SHA256,
        certificate=Path(files["certificate_der"]),
        private_key=Path(files["private_key"]),
        trusted_server_certificates=Path(files["trusted"]),
        application_uri=files["application_uri"],
    )
    return OpcUaSettings(
        endpoint, 60.0, sec, username="engine", password="pw-engine", lockstep=True
    )


@pytest.mark.opcua
@pytest.mark.timeout(180)
async def test_created_certificate_connects_to_a_trusting_hil_and_is_refused_by_another(
    tmp_path: Path,
) -> None:
    model = load("williams_otto")
    trusting, stranger = tmp_path / "hil-a", tmp_path / "hil-b"
    for d in (trusting, stranger):
        ensure_server_certificate(d, SERVER_URI, ("127.0.0.1",))
    files = _create(
        tmp_path, "--trust", str(trusting / SERVER_CERT), "--trust", str(stranger / SERVER_CERT)
    )
    # what the server's administrator does: the client certificate into the HIL's trust list
    shutil.copy(files["certificate_der"], trusting / TRUSTED_DIR / "engine.der")
    users = _users(tmp_path)
    async with _hil_serve(trusting, users) as endpoint:
        async with OpcUaPlantIO(model, _settings(endpoint, files)) as io:
            meas = await io.read()
        assert 0.0 < meas.value("x_p") < 1.0 and meas.value("f_a") == pytest.approx(
            1.8275, rel=0.01
        )
        assert all(meas.good(n) for n in meas.names)
    async with _hil_serve(stranger, users) as endpoint:
        io = OpcUaPlantIO(model, _settings(endpoint, files))
        with pytest.raises(PlantIOError, match="refused the client certificate"):
            await io.connect()
        await io.close()


@pytest.mark.opcua
@pytest.mark.interop
@pytest.mark.timeout(180)
@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js ('node') is not on PATH")
@pytest.mark.skipif(
    not (NODE_DIR / "node_modules" / "node-opcua-client").is_dir(),
    reason="node-opcua is not installed: run `npm ci --prefix tests/interop/node`",
)
async def test_node_opcua_client_uses_the_created_pem_files(tmp_path: Path) -> None:
    cert_dir = tmp_path / "hil"
    files = _create(tmp_path)
    (cert_dir / TRUSTED_DIR).mkdir(parents=True)
    shutil.copy(files["certificate_pem"], cert_dir / TRUSTED_DIR / "engine.pem")
    async with _hil_serve(cert_dir, _users(tmp_path)) as endpoint:
        cases = {
            "endpoint": endpoint,
            "plant": "williams_otto",
            "pki": str(tmp_path / "node-pki"),
            "client_uri": URI,
            "cases": [
                {
                    "name": "created",
                    "security": "sign-encrypt",
                    "user": "engine",
                    "password": "pw-engine",
                    "cert": files["certificate_pem"],
                    "key": files["private_key"],
                    "actions": [{"do": "read", "path": "Measurements.f_a"}],
                }
            ],
        }
        (tmp_path / "cases.json").write_text(json.dumps(cases))
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(NODE_DIR / "hil_client.js"),
            str(tmp_path / "cases.json"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(NODE_DIR),
        )
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-2000:]
    [case] = json.loads(out.decode().strip().splitlines()[-1])["cases"]
    assert case["connected"], case["error"]
    assert case["results"][0]["status"] == "Good" and case["results"][0]["value"] == pytest.approx(
        1.8275, rel=0.01
    )
