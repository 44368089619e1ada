"""plant_models.server_auth: the trust list shared by the HIL and the engine OPC UA servers
(direct trust, CA-issued trust with the signature checked, validity periods), and users."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from plant_models.certificates import make_self_signed
from plant_models.errors import ConfigError
from plant_models.server_auth import TrustList, check_login, hash_password, parse_user_table

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issued(ca_key: rsa.RSAPrivateKey, issuer: str, *, days: int = 30) -> x509.Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        x509.CertificateBuilder()
        .subject_name(_name("client"))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=2))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .sign(ca_key, hashes.SHA256())
    )


def test_trust_list_direct_ca_issued_forged_and_expired(tmp_path: Path) -> None:
    ca_key, ca = _ca("site CA")
    _, direct = make_self_signed("urn:x:client", "direct", ("localhost",), server=False)
    _, stranger = make_self_signed("urn:x:other", "stranger", ("localhost",), server=False)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "direct.der").write_bytes(direct.public_bytes(serialization.Encoding.DER))
    (tmp_path / "notes.txt").write_text("not a certificate")
    trust = TrustList(tmp_path)
    trust.load()
    assert len(trust.fingerprints) == 2 and len(trust.cas) == 1
    assert trust.verdict(direct) == "trusted"
    assert trust.verdict(_issued(ca_key, "site CA")) == "trusted"
    assert trust.verdict(stranger) == "untrusted"
    forger_key, _ = _ca("site CA")  # same issuer name, another key: the signature fails
    assert trust.verdict(_issued(forger_key, "site CA")) == "untrusted"
    assert trust.verdict(_issued(ca_key, "site CA", days=-1)) == "expired"


def test_users_table_and_login() -> None:
    users = parse_user_table(
        {"op": {"role": "operator", "password_hash": hash_password("pw", iterations=1000)}},
        ("viewer", "operator", "engineer"),
    )
    assert check_login(users, "op", "pw") is users["op"]
    assert check_login(users, "op", "wrong") is None
    assert check_login(users, None, None) is None
    with pytest.raises(ConfigError, match="users.x.role: expected 'viewer' or 'operator'"):
        parse_user_table(
            {"x": {"role": "admin", "password_hash": "pbkdf2_sha256$1$a$b"}}, ("viewer", "operator")
        )
