"""Security files without sockets: server certificate generation, users file, password hashes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from hil.security import (
    SERVER_CERT,
    Role,
    certificate_uris,
    ensure_server_certificate,
    hash_password,
    load_users,
    verify_password,
)
from plant_models.errors import ConfigError


def test_server_certificate_is_generated_once_with_application_uri(tmp_path: Path) -> None:
    cert_path, key_path = ensure_server_certificate(tmp_path, "urn:rtompc:hil:test", ("127.0.0.1",))
    cert = x509.load_der_x509_certificate(cert_path.read_bytes())
    assert certificate_uris(cert) == ["urn:rtompc:hil:test"]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert (key_path.stat().st_mode & 0o777) == 0o600
    first = cert_path.read_bytes()
    ensure_server_certificate(tmp_path, "urn:rtompc:hil:test")
    assert (tmp_path / SERVER_CERT).read_bytes() == first  # reused
    ensure_server_certificate(tmp_path, "urn:rtompc:hil:other")
    assert certificate_uris(x509.load_der_x509_certificate(cert_path.read_bytes())) == ["urn:rtompc:hil:other"]


def test_password_hash_round_trip_and_salt() -> None:
    h1 = hash_password("pw", iterations=1000)
    h2 = hash_password("pw", iterations=1000)
    assert h1 != h2  # random salt
    assert verify_password("pw", h1) and verify_password("pw", h2)
    assert not verify_password("pW", h1)
    assert not verify_password("pw", "pbkdf2_sha256$x$y$z")
    assert "pw" not in h1.split("$")


def test_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    path.write_text(
        f'[users.op]\nrole = "controller"\npassword_hash = "{hash_password("a", iterations=1000)}"\n'
        f'[users.view]\nrole = "viewer"\npassword_hash = "{hash_password("b", iterations=1000)}"\n'
    )
    users = load_users(path)
    assert users["op"].role is Role.CONTROLLER and users["view"].role is Role.VIEWER
    path.write_text('[users.op]\nrole = "admin"\npassword_hash = "x"\n')
    with pytest.raises(ConfigError, match=r"users.op.role: expected 'viewer' or 'controller'"):
        load_users(path)
    path.write_text('[users.op]\nrole = "viewer"\npassword = "plain"\n')
    with pytest.raises(ConfigError, match=r"users.op: unknown key\(s\) password"):
        load_users(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_users(tmp_path / "missing.toml")


def test_users_without_security_are_refused() -> None:
    from hil.security import SecurityMode, parse_users
    from hil.server import ServerConfig

    users = parse_users({"op": {"role": "controller", "password_hash": hash_password("a", iterations=1000)}})
    with pytest.raises(ConfigError, match="passwords would cross the wire in clear"):
        ServerConfig(security=SecurityMode.NONE, users=users)
    with pytest.raises(ConfigError, match="users file is required"):
        ServerConfig(security=SecurityMode.SIGN, cert_dir=Path("x"))
