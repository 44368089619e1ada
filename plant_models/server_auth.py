"""Server-side credentials of rtompc's OPC UA servers, without an OPC UA stack.

Shared by the HIL server (:mod:`hil.security`, roles viewer/controller) and the engine's
own server (:mod:`interfaces.engine_server`, roles viewer/operator/engineer). It lives in
the base layer because both use it and neither may import the other (like
:mod:`plant_models.certificates`); the asyncua glue stays in each server's package.

- Server certificate: ``<cert_dir>/server_cert.der`` + ``server_key.pem``,
  generated on first start when absent (RSA 2048, SHA-256, one year) with the
  server's ApplicationUri and the host names in the SubjectAltName, as OPC UA
  Part 6, 6.2.2 requires. Regenerated when the ApplicationUri no longer matches.
- Trust list: ``<cert_dir>/trusted/`` holds client certificates (DER or PEM);
  :class:`TrustList` says whether a client certificate is in it (or issued by a CA in
  it) and inside its validity period.
- Users: a TOML file of ``[users.<name>]`` tables with ``role`` and
  ``password_hash``; passwords stored as PBKDF2-HMAC-SHA256 hashes
  (``pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>``, see :func:`hash_password`;
  ``rtompc hil hash-password`` prints one). Passwords are never logged.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from plant_models.certificates import certificate_uris, make_self_signed
from plant_models.errors import ConfigError

_log = logging.getLogger(__name__)

SERVER_CERT = "server_cert.der"
"""File name of the server certificate in the certificate directory."""
SERVER_KEY = "server_key.pem"
"""File name of the server private key in the certificate directory."""
TRUSTED_DIR = "trusted"
"""Sub-directory of trusted client certificates."""
DEFAULT_ITERATIONS = 200_000
"""PBKDF2 iterations of new password hashes."""


# Passwords --------------------------------------------------------------------
def hash_password(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """A PBKDF2-HMAC-SHA256 hash string for the users file."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"pbkdf2_sha256${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches the hash string (constant-time comparison)."""
    try:
        algo, iters, salt_b64, hash_b64 = encoded.split("$")
        if algo != "pbkdf2_sha256":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
        digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, int(iters))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True)
class UserRecord:
    """One user of a users file, the role as written (each server maps it to its roles)."""

    name: str
    """User name."""
    role: str
    """Role name, one of the server's roles."""
    password_hash: str
    """PBKDF2 hash string (never the password)."""


def read_users_file(path: str | Path) -> Mapping[str, Any]:
    """The ``[users]`` table of a users file; errors name the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: users file does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    table = data.get("users", {})
    return table if isinstance(table, Mapping) else {}


def parse_user_table(
    table: Mapping[str, Any], roles: tuple[str, ...], where: str = "users"
) -> dict[str, UserRecord]:
    """Users from the ``[users.<name>]`` tables; ``roles``: the role names allowed."""
    if not isinstance(table, Mapping) or not table:
        raise ConfigError(f"{where}: expected at least one [users.<name>] table")
    out = {}
    for name, entry in table.items():
        key = f"{where}: users.{name}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{key}: expected a table")
        unknown = sorted(set(entry) - {"role", "password_hash"})
        if unknown:
            raise ConfigError(
                f"{key}: unknown key(s) {', '.join(unknown)}; allowed: role, password_hash"
            )
        role = entry.get("role")
        if role not in roles:
            allowed = " or ".join(repr(r) for r in roles)
            raise ConfigError(f"{key}.role: expected {allowed}, got {role!r}")
        pw = entry.get("password_hash")
        if not isinstance(pw, str) or not pw.startswith("pbkdf2_sha256$") or pw.count("$") != 3:
            raise ConfigError(
                f"{key}.password_hash: expected 'pbkdf2_sha256$<iterations>$<salt>$<hash>' "
                "(make one with `rtompc hil hash-password`)"
            )
        out[name] = UserRecord(name, str(role), pw)
    return out


def check_login(users: Mapping[str, Any], username: str | None, password: str | None) -> Any | None:
    """The users-table entry (with ``password_hash``) of a valid login, else None (logged
    without the password; anonymous logins are refused)."""
    if not username:
        _log.warning("login refused: anonymous access is disabled")
        return None
    entry = users.get(username)
    if entry is None or password is None or not verify_password(password, entry.password_hash):
        _log.warning("login refused for user %r: unknown user or wrong password", username)
        return None
    _log.info("user %r logged in as %s", username, getattr(entry.role, "value", entry.role))
    return entry


# Certificates -------------------------------------------------------------------
def ensure_server_certificate(
    cert_dir: str | Path,
    application_uri: str,
    hostnames: tuple[str, ...] = (),
    common_name: str = "rtompc HIL server",
) -> tuple[Path, Path]:
    """Paths of the server certificate and key, generated when absent or for another URI."""
    cert_dir = Path(cert_dir)
    cert_dir.mkdir(parents=True, exist_ok=True)
    (cert_dir / TRUSTED_DIR).mkdir(exist_ok=True)
    cert_path, key_path = cert_dir / SERVER_CERT, cert_dir / SERVER_KEY
    if cert_path.is_file() and key_path.is_file():
        cert = x509.load_der_x509_certificate(cert_path.read_bytes())
        if application_uri in certificate_uris(cert) and cert.not_valid_after_utc > now_utc():
            return cert_path, key_path
        _log.warning(
            "server certificate %s does not match %s or expired: regenerating",
            cert_path,
            application_uri,
        )
    names = ("localhost", socket.gethostname(), *hostnames)
    key, cert = make_self_signed(application_uri, common_name, names, server=True)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    _log.info("generated server certificate %s for %s", cert_path, application_uri)
    return cert_path, key_path


def now_utc() -> dt.datetime:
    """The current time, UTC (certificate validity checks)."""
    return dt.datetime.now(dt.UTC)


class TrustList:
    """The client certificates a server trusts: a directory of DER/PEM files.

    A certificate is trusted when it is in the directory, or directly issued (signature
    checked) by a CA certificate in it; either way only inside its validity period."""

    def __init__(self, trusted_dir: str | Path, log: logging.Logger | None = None) -> None:
        self.dir = Path(trusted_dir)
        self.log = log or _log
        """Where refusals are logged (the server's own logger)."""
        self.fingerprints: set[bytes] = set()
        """SHA-256 fingerprints of the certificates in the directory."""
        self.cas: list[x509.Certificate] = []
        """The CA certificates among them."""

    def load(self) -> None:
        """(Re)read the directory."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fps, cas = set(), []
        for path in sorted(self.dir.iterdir()):
            if path.suffix.lower() not in (".der", ".pem", ".crt", ".cer"):
                continue
            data = path.read_bytes()
            try:
                cert = (
                    x509.load_pem_x509_certificate(data)
                    if b"-----BEGIN" in data
                    else x509.load_der_x509_certificate(data)
                )
            except ValueError:
                self.log.warning("trust list: %s is not a certificate, ignored", path)
                continue
            fps.add(cert.fingerprint(hashes.SHA256()))
            if _is_ca(cert):
                cas.append(cert)
        self.fingerprints, self.cas = fps, cas
        self.log.info("trust list %s: %d certificate(s)", self.dir, len(fps))

    def verdict(self, cert: x509.Certificate) -> str:
        """``trusted``, ``expired`` (outside its validity period) or ``untrusted``; a refusal
        is logged with the certificate's subject."""
        now = now_utc()
        subject = cert.subject.rfc4514_string()
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            self.log.warning("client certificate %s refused: outside its validity period", subject)
            return "expired"
        if cert.fingerprint(hashes.SHA256()) in self.fingerprints:
            return "trusted"
        for ca in self.cas:
            if (
                ca.subject != cert.issuer
                or not ca.not_valid_before_utc <= now <= ca.not_valid_after_utc
            ):
                continue
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return "trusted"
        self.log.warning("client certificate %s refused: not in trust list %s", subject, self.dir)
        return "untrusted"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
