"""The engine's OPC UA namespace (urn:rtompc:engine) over a real secured socket, with an
asyncua client, against a real closed loop (Van de Vusse, in-process lockstep, EKF + NMPC).

Roles: a viewer cannot write; an operator changes a CV limit but not a weight
(BadUserAccessDenied); out of range -> BadOutOfRange; wrong type -> BadTypeMismatch;
the accepted change reaches the controller at the next cycle and every write is journaled.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography.hazmat.primitives import serialization
from live_helpers import T_R_HIGH, live_stack

from interfaces.engine_server import NAMESPACE_URI, EngineServerSettings
from plant_models.certificates import make_self_signed
from plant_models.errors import ConfigError
from plant_models.library import load
from plant_models.model import PlantModel
from plant_models.samples import Mode
from plant_models.server_auth import TRUSTED_DIR, hash_password, parse_user_table
from rtompc.engine_namespace import EngineNamespace
from rtompc.historian.journal import read_journal
from rtompc.live.view import EngineViews, UnitView

pytestmark = [pytest.mark.opcua, pytest.mark.timeout(120)]

CLIENT_URI = "urn:rtompc:test:engine-client"
PASSWORDS = {"view1": "pw-viewer", "op1": "pw-operator", "eng1": "pw-engineer"}
ROLES = {"view1": "viewer", "op1": "operator", "eng1": "engineer"}


@pytest.fixture(scope="module")
def cstr() -> PlantModel:
    return load("van_de_vusse", parameters="do_mpc")


def _free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"opc.tcp://127.0.0.1:{s.getsockname()[1]}"


def secure_settings(tmp: Path) -> tuple[EngineServerSettings, Path, Path]:
    """Server settings trusting one client certificate; the client's cert and key."""
    key, cert = make_self_signed(CLIENT_URI, "engine-test-client", ("localhost",), server=False)
    cert_path, key_path = tmp / "client.der", tmp / "client.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp / "server" / TRUSTED_DIR).mkdir(parents=True)
    (tmp / "server" / TRUSTED_DIR / "client.der").write_bytes(cert_path.read_bytes())
    users = parse_user_table(
        {
            n: {"role": ROLES[n], "password_hash": hash_password(p, iterations=1000)}
            for n, p in PASSWORDS.items()
        },
        ("viewer", "operator", "engineer"),
    )
    settings = EngineServerSettings(_free_endpoint(), cert_dir=tmp / "server", users=users)
    return settings, cert_path, key_path


async def _client(endpoint: str, cert: Path, key: Path, user: str) -> Client:
    client = Client(endpoint, timeout=5)
    client.application_uri = CLIENT_URI
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(cert),
        str(key),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    client.set_user(user)
    client.set_password(PASSWORDS[user])
    return client


async def _write(client: Client, ns: int, key: str, variant: ua.Variant) -> str:
    node = client.get_node(ua.NodeId(f"Units.vdv.{key}", ns))
    [res] = await client.write_values([node], [ua.DataValue(variant)], raise_on_partial_error=False)
    return ua.StatusCode(res.value).name


async def test_roles_ranges_types_and_the_next_cycle(cstr: PlantModel, tmp_path: Path) -> None:
    s = live_stack(cstr, tmp_path)
    views = EngineViews([UnitView.for_loop("vdv", s.loop)])
    settings, cert, key = secure_settings(tmp_path)
    D = ua.VariantType.Double
    new_high = T_R_HIGH - 3.0
    async with s.io, EngineNamespace(views, settings, max_rate_hz=100.0):  # publish each frame
        await s.loop.run(3)
        async with await _client(settings.endpoint, cert, key, "view1") as viewer:
            ns = await viewer.get_namespace_index(NAMESPACE_URI)
            units = viewer.get_node(ua.NodeId("Units", ns))
            [unit] = await units.get_children()
            assert (await unit.read_browse_name()).Name == "vdv"
            names = sorted([(await c.read_browse_name()).Name for c in await unit.get_children()])
            assert names == ["CVs", "Controller", "MVs"]
            # values follow the view's frames
            frame = views["vdv"].latest
            assert frame is not None and frame.cycle == 2
            t_r = viewer.get_node(ua.NodeId("Units.vdv.CVs.t_r.measured", ns))
            assert await t_r.read_value() == frame.cv("t_r").measured
            pred = await viewer.get_node(ua.NodeId("Units.vdv.CVs.c_b.prediction", ns)).read_value()
            assert len(pred) == 21 and pred[-1] == frame.cv("c_b").prediction_end
            mode = viewer.get_node(ua.NodeId("Units.vdv.Controller.mode", ns))
            assert await mode.read_value() == "on"
            high_id = "Units.vdv.CVs.t_r.high"
            eu = await viewer.get_node(ua.NodeId(f"{high_id}.EngineeringUnits", ns)).read_value()
            rng = await viewer.get_node(ua.NodeId(f"{high_id}.EURange", ns)).read_value()
            assert eu.DisplayName.Text == "K" and eu.UnitId == int.from_bytes(b"KEL", "big")
            assert (rng.Low, rng.High) == (cstr.y["t_r"].lower, cstr.y["t_r"].upper)
            assert await _write(viewer, ns, "CVs.t_r.high", ua.Variant(new_high, D)) == (
                "BadUserAccessDenied"
            )
        async with await _client(settings.endpoint, cert, key, "op1") as op:
            results = [
                await _write(op, ns, "CVs.t_r.high", ua.Variant(new_high, D)),
                await _write(op, ns, "CVs.c_b.weight", ua.Variant(2.0, D)),
                await _write(op, ns, "CVs.t_r.high", ua.Variant(cstr.y["t_r"].upper + 1, D)),
                await _write(op, ns, "CVs.t_r.high", ua.Variant(new_high, ua.VariantType.Float)),
                await _write(op, ns, "CVs.t_r.in_service", ua.Variant(1.0, D)),
                await _write(op, ns, "Controller.mode_request", ua.Variant("banana")),
                await _write(op, ns, "Controller.mode", ua.Variant("off")),
                await _write(op, ns, "CVs.t_r.measured", ua.Variant(400.0, D)),
            ]
            assert results == [
                "Good",
                "BadUserAccessDenied",
                "BadOutOfRange",
                "BadTypeMismatch",
                "BadTypeMismatch",
                "BadOutOfRange",
                "BadNotWritable",
                "BadNotWritable",
            ]
            # accepted, not applied mid-cycle: the controller still has the old limit
            assert s.loop.controller.config.cv("t_r").upper == T_R_HIGH
            high = op.get_node(ua.NodeId("Units.vdv.CVs.t_r.high", ns))
            assert await high.read_value() == new_high
            assert await _write(op, ns, "Controller.mode_request", ua.Variant("shadow")) == "Good"
        async with await _client(settings.endpoint, cert, key, "eng1") as eng:
            assert await _write(eng, ns, "CVs.c_b.weight", ua.Variant(2.0, D)) == "Good"
        await s.loop.run(1)
        assert s.loop.controller.config.cv("t_r").upper == new_high
        assert s.loop.controller.config.cv("c_b").weight == 2.0
        assert s.loop.settings.mode is Mode.SHADOW
        async with await _client(settings.endpoint, cert, key, "view1") as viewer:
            mode = viewer.get_node(ua.NodeId("Units.vdv.Controller.mode", ns))
            assert await mode.read_value() == "shadow"
        # a wrong password and an anonymous session are refused
        wrong = await _client(settings.endpoint, cert, key, "op1")
        wrong.set_password("not-the-password")
        with pytest.raises(ua.UaStatusCodeError, match="BadUserAccessDenied"):
            async with wrong:
                pass
        anonymous = Client(settings.endpoint, timeout=5)
        anonymous.application_uri = CLIENT_URI
        await anonymous.set_security(
            SecurityPolicyBasic256Sha256,
            str(cert),
            str(key),
            mode=ua.MessageSecurityMode.SignAndEncrypt,
        )
        with pytest.raises(ua.UaStatusCodeError):
            async with anonymous:
                pass
    journal = read_journal(s.hist, s.hist.run_id)
    rows = [(r.user, r.source, r.key, r.outcome.split(":")[0:2]) for r in journal]
    assert rows == [
        ("view1", "opcua", "cv.t_r.high", ["refused", " role"]),
        ("op1", "opcua", "cv.t_r.high", ["accepted"]),
        ("op1", "opcua", "cv.c_b.weight", ["refused", " role"]),
        ("op1", "opcua", "cv.t_r.high", ["refused", " range"]),
        ("op1", "opcua", "controller.mode_request", ["accepted"]),
        ("eng1", "opcua", "cv.c_b.weight", ["accepted"]),
    ]
    s.hist.close()


def test_unsecured_only_on_loopback(tmp_path: Path) -> None:
    EngineServerSettings("opc.tcp://127.0.0.1:4841", secure=False)
    with pytest.raises(ConfigError, match="non-loopback"):
        EngineServerSettings("opc.tcp://0.0.0.0:4841", secure=False)
    EngineServerSettings("opc.tcp://10.1.2.3:4841", secure=False, allow_insecure_remote=True)
    with pytest.raises(ConfigError, match="users file is required"):
        EngineServerSettings("opc.tcp://127.0.0.1:4841", cert_dir=tmp_path)


def test_engine_server_section(tmp_path: Path) -> None:
    from rtompc.config.engine_server_section import EngineServerSection, engine_server_settings

    with pytest.raises(ConfigError, match="app.toml: engine_server: security sign-encrypt needs"):
        engine_server_settings(None, "opc.tcp://127.0.0.1:4841", "app.toml")
    users = tmp_path / "users.toml"
    users.write_text('[users.op]\nrole = "controller"\npassword_hash = "pbkdf2_sha256$1$a$b"\n')
    sec = EngineServerSection(cert_dir=str(tmp_path), users=str(users))
    with pytest.raises(ConfigError, match="users.op.role: expected 'viewer' or 'operator'"):
        engine_server_settings(sec, None, "app.toml")
    open_sec = EngineServerSection(security="none", endpoint="opc.tcp://0.0.0.0:4841")
    with pytest.raises(ConfigError, match="app.toml: engine_server: .*non-loopback"):
        engine_server_settings(open_sec, None, "app.toml")
    assert engine_server_settings(open_sec, "opc.tcp://127.0.0.1:5000", "app.toml").secure is False
