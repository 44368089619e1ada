"""Secured HIL server: Basic256Sha256 Sign / SignAndEncrypt, trust list, users and roles.

Over real loopback sockets with asyncua's client. Untrusted certificates,
anonymous users and wrong passwords must be refused; viewers may read but not
write or step; passwords never appear in the logs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography.hazmat.primitives import serialization

from hil.address_space import NAMESPACE_URI
from hil.clock import ClockConfig, ClockMode
from hil.security import (
    TRUSTED_DIR,
    SecurityMode,
    hash_password,
    make_self_signed,
    parse_users,
)
from hil.server import HilServer, ServerConfig
from hil.simulator import PlantSimulator, SimulatorConfig

pytestmark = [pytest.mark.opcua, pytest.mark.timeout(90), pytest.mark.asyncio(loop_scope="module")]

PASSWORDS = {"operator": "s3cret-operator", "guest": "s3cret-guest"}
CLIENT_URI = "urn:rtompc:test:client"


@dataclass(frozen=True)
class ClientCert:
    cert: Path
    key: Path


def _write_cert(directory: Path, name: str) -> ClientCert:
    key, cert = make_self_signed(CLIENT_URI, name, ("localhost",), server=False)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.der", directory / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ClientCert(cert_path, key_path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ClientCert, ClientCert]:
    """A server cert dir trusting one client certificate; a second client certificate is unknown."""
    root = tmp_path_factory.mktemp("pki")
    cert_dir = root / "server"
    trusted = _write_cert(root / "client", "trusted_client")
    (cert_dir / TRUSTED_DIR).mkdir(parents=True)
    (cert_dir / TRUSTED_DIR / "trusted_client.der").write_bytes(trusted.cert.read_bytes())
    stranger = _write_cert(root / "client", "stranger")
    return cert_dir, trusted, stranger


USERS = parse_users({
    "operator": {"role": "controller", "password_hash": hash_password(PASSWORDS["operator"], iterations=1000)},
    "guest": {"role": "viewer", "password_hash": hash_password(PASSWORDS["guest"], iterations=1000)},
})


@pytest_asyncio.fixture(params=[SecurityMode.SIGN_ENCRYPT, SecurityMode.SIGN], ids=["sign-encrypt", "sign"],
                        scope="module", loop_scope="module")
async def secured(request, vdv, port_factory, pki) -> AsyncIterator[tuple[str, SecurityMode]]:
    """One secured lockstep server per security mode (tests must not rely on its initial state)."""
    endpoint = f"opc.tcp://127.0.0.1:{port_factory()}"
    cert_dir = pki[0]
    cfg = ServerConfig(endpoint, ClockConfig(ClockMode.LOCKSTEP), request.param, cert_dir, USERS)
    async with HilServer(PlantSimulator(vdv, SimulatorConfig(sample_time_s=2.0)), cfg):
        yield endpoint, request.param


async def _client(endpoint: str, mode: SecurityMode, cert: ClientCert, user: str | None,
                  password: str | None) -> Client:
    client = Client(endpoint, timeout=3)
    client.application_uri = CLIENT_URI
    msg_mode = (ua.MessageSecurityMode.SignAndEncrypt if mode is SecurityMode.SIGN_ENCRYPT
                else ua.MessageSecurityMode.Sign)
    await client.set_security(SecurityPolicyBasic256Sha256, str(cert.cert), str(cert.key), mode=msg_mode)
    if user is not None:
        client.set_user(user)
    if password is not None:
        client.set_password(password)
    return client


def _node(client: Client, ns: int, path: str):  # noqa: ANN202
    return client.get_node(ua.NodeId(f"van_de_vusse.{path}", ns))


async def test_controller_with_trusted_certificate_writes_and_steps(secured, pki) -> None:
    endpoint, mode = secured
    async with await _client(endpoint, mode, pki[1], "operator", PASSWORDS["operator"]) as client:
        ns = await client.get_namespace_index(NAMESPACE_URI)
        req = ua.DataValue(ua.Variant(1, ua.VariantType.Int32))
        await client.write_values([_node(client, ns, "Status.mode_request")], [req])
        sp = ua.DataValue(ua.Variant(0.005, ua.VariantType.Double))
        await client.write_values([_node(client, ns, "Setpoints.f_dil")], [sp])
        out = await client.get_node(ua.NodeId("van_de_vusse", ns)).call_method(
            ua.NodeId("van_de_vusse.step", ns), ua.Variant(2, ua.VariantType.UInt32))
        assert out > 0.0
        assert await _node(client, ns, "Actuators.f_dil").read_value() == 0.005


async def test_viewer_reads_but_cannot_write_or_step(secured, pki) -> None:
    endpoint, mode = secured
    async with await _client(endpoint, mode, pki[1], "guest", PASSWORDS["guest"]) as client:
        ns = await client.get_namespace_index(NAMESPACE_URI)
        assert await _node(client, ns, "Measurements.t_r").read_value() > 300.0
        mode0 = await _node(client, ns, "Status.mode").read_value()
        t0 = await _node(client, ns, "Status.sim_time_s").read_value()
        dv = ua.DataValue(ua.Variant(1 - mode0, ua.VariantType.Int32))
        res = await client.write_values([_node(client, ns, "Status.mode_request")], [dv],
                                        raise_on_partial_error=False)
        assert res[0].value == ua.StatusCodes.BadUserAccessDenied
        with pytest.raises(ua.UaStatusCodeError) as err:
            await client.get_node(ua.NodeId("van_de_vusse", ns)).call_method(
                ua.NodeId("van_de_vusse.step", ns), ua.Variant(1, ua.VariantType.UInt32))
        assert err.value.code == ua.StatusCodes.BadUserAccessDenied
        assert await _node(client, ns, "Status.mode").read_value() == mode0
        assert await _node(client, ns, "Status.sim_time_s").read_value() == t0


@pytest.mark.parametrize("who", ["anonymous", "wrong-password", "unknown-user", "untrusted-cert"])
async def test_refused_clients(secured, pki, who: str, caplog: pytest.LogCaptureFixture) -> None:
    endpoint, mode = secured
    cert = pki[2] if who == "untrusted-cert" else pki[1]
    user, password = {
        "anonymous": (None, None), "wrong-password": ("operator", "not-the-password"),
        "unknown-user": ("mallory", "whatever-pw"), "untrusted-cert": ("operator", PASSWORDS["operator"]),
    }[who]
    caplog.set_level(logging.DEBUG)
    client = await _client(endpoint, mode, cert, user, password)
    with pytest.raises(ua.UaStatusCodeError) as err:  # refused by the server, with the reason
        await client.connect()
    expected = {
        "anonymous": ua.StatusCodes.BadIdentityTokenRejected,
        "wrong-password": ua.StatusCodes.BadUserAccessDenied,
        "unknown-user": ua.StatusCodes.BadUserAccessDenied,
        "untrusted-cert": ua.StatusCodes.BadCertificateUntrusted,
    }[who]
    assert err.value.code == expected, err.value
    try:
        await client.disconnect()
    except Exception:  # noqa: BLE001 - half-open session after the refusal
        pass
    # the server side: our hil loggers and asyncua's server/crypto loggers (asyncua's *client* logs its
    # own ActivateSessionRequest, password included, at DEBUG: that is the client's business)
    server_side = [r for r in caplog.records if r.name.startswith(("hil", "asyncua.server", "asyncua.crypto"))]
    text = "\n".join(r.getMessage() for r in server_side)
    for pw in (*PASSWORDS.values(), "not-the-password", "whatever-pw"):
        assert pw not in text
    if who == "untrusted-cert":
        assert "not in trust list" in text


async def test_no_unsecured_endpoint_when_security_is_on(secured) -> None:
    endpoint, _ = secured
    with pytest.raises(ua.UaError, match="No matching endpoints"):
        async with Client(endpoint, timeout=3):
            pass
    endpoints = await Client(endpoint, timeout=3).connect_and_get_server_endpoints()
    assert endpoints and all(e.SecurityMode != ua.MessageSecurityMode.None_ for e in endpoints)
    assert all(t.TokenType == ua.UserTokenType.UserName for e in endpoints for t in e.UserIdentityTokens)
