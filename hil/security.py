"""Security of the HIL server: certificates, client trust list, users and roles.

- Server certificate: ``<cert_dir>/server_cert.der`` + ``server_key.pem``,
  generated on first start when absent (RSA 2048, SHA-256, one year) with the
  server's ApplicationUri and the host names in the SubjectAltName, as OPC UA
  Part 6, 6.2.2 requires. Regenerated when the ApplicationUri no longer matches.
- Trust list: ``<cert_dir>/trusted/`` holds client certificates (DER or PEM).
  A client whose certificate is not there (or not issued by a CA there), or is
  expired, is rejected with BadCertificateUntrusted / BadCertificateTimeInvalid
  (asyncua alone accepts any certificate).
- Users: a TOML file, passwords stored as PBKDF2-HMAC-SHA256 hashes
  (``pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>``, see :func:`hash_password`;
  ``rtompc hil hash-password`` prints one)::

      [users.operator]
      role = "controller"       # controller: Setpoints, heartbeat, mode_request, step
      password_hash = "pbkdf2_sha256$200000$...$..."
      [users.guest]
      role = "viewer"           # viewer: read, browse, subscribe only

  Passwords are never logged; a failed login logs the user name only.
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
from enum import Enum
from pathlib import Path
from typing import Any, cast

from asyncua import ua
from asyncua.crypto.permission_rules import SimpleRoleRuleset, User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.server.internal_server import InternalServer
from asyncua.server.user_managers import UserManager
from asyncua.ua.uaerrors import BadCertificateTimeInvalid, BadCertificateUntrusted
from cryptography import x509
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


class SecurityMode(Enum):
    """Security of the server's one endpoint."""

    NONE = "none"
    """SecurityPolicy None, anonymous access with the controller role (test benches only)."""
    SIGN = "sign"
    """Basic256Sha256, messages signed; user name + password required."""
    SIGN_ENCRYPT = "sign-encrypt"
    """Basic256Sha256, messages signed and encrypted; user name + password required."""

    @property
    def policy(self) -> ua.SecurityPolicyType:
        """The asyncua security policy of this mode."""
        return {
            SecurityMode.NONE: ua.SecurityPolicyType.NoSecurity,
            SecurityMode.SIGN: ua.SecurityPolicyType.Basic256Sha256_Sign,
            SecurityMode.SIGN_ENCRYPT: ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        }[self]


class Role(Enum):
    """What a user may do."""

    VIEWER = "viewer"
    """Read, browse, subscribe."""
    CONTROLLER = "controller"
    """Also write Setpoints, heartbeat, mode_request and call ``step``."""


@dataclass
class HilUser(User):
    """An asyncua user carrying its HIL role."""

    hil_role: Role = Role.VIEWER
    """What the user may do on the HIL nodes (asyncua's own role stays ``User``)."""


# Passwords --------------------------------------------------------------------
def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
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
class UserEntry:
    """One user of the users file."""

    name: str
    """User name."""
    role: Role
    """Viewer or controller."""
    password_hash: str
    """PBKDF2 hash string (never the password)."""


def load_users(path: str | Path) -> dict[str, UserEntry]:
    """Read the users file (see module docstring); errors name the file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: users file does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_users(data.get("users", {}), str(path))


def parse_users(table: Mapping[str, Any], where: str = "users") -> dict[str, UserEntry]:
    """Users from the ``[users.<name>]`` tables."""
    if not isinstance(table, Mapping) or not table:
        raise ConfigError(f"{where}: expected at least one [users.<name>] table")
    out = {}
    for name, entry in table.items():
        key = f"{where}: users.{name}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{key}: expected a table")
        unknown = sorted(set(entry) - {"role", "password_hash"})
        if unknown:
            raise ConfigError(f"{key}: unknown key(s) {', '.join(unknown)}; allowed: role, password_hash")
        try:
            role = Role(entry.get("role"))
        except ValueError:
            raise ConfigError(f"{key}.role: expected 'viewer' or 'controller', got {entry.get('role')!r}") from None
        pw = entry.get("password_hash")
        if not isinstance(pw, str) or not pw.startswith("pbkdf2_sha256$") or pw.count("$") != 3:
            raise ConfigError(
                f"{key}.password_hash: expected 'pbkdf2_sha256$<iterations>$<salt>$<hash>' "
                "(make one with `rtompc hil hash-password`)"
            )
        out[name] = UserEntry(name, role, pw)
    return out


class HilUserManager(UserManager):
    """asyncua user manager: user name + password against the users file; no anonymous users."""

    def __init__(self, users: Mapping[str, UserEntry]) -> None:
        self._users = dict(users)

    def get_user(
        self, iserver: InternalServer, username: str | None = None, password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if not username:
            _log.warning("login refused: anonymous access is disabled")
            return None
        entry = self._users.get(username)
        if entry is None or password is None or not verify_password(password, entry.password_hash):
            _log.warning("login refused for user %r: unknown user or wrong password", username)
            return None
        _log.info("user %r logged in as %s", username, entry.role.value)
        return HilUser(role=UserRole.User, name=username, hil_role=entry.role)


class OpenUserManager(UserManager):
    """User manager of an unsecured bench: everyone is a controller."""

    def get_user(
        self, iserver: InternalServer, username: str | None = None, password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        return HilUser(role=UserRole.User, name=username or "anonymous", hil_role=Role.CONTROLLER)


class HilRuleset(SimpleRoleRuleset):
    """asyncua's role rules, plus: only controllers may call methods (``step``)."""

    _CALL = ua.NodeId(cast(ua.Int32, ua.ObjectIds.CallRequest_Encoding_DefaultBinary))

    def check_validity(self, user: User, action_type_id: ua.NodeId, body: Any) -> bool:
        if action_type_id == self._CALL and getattr(user, "hil_role", None) is not Role.CONTROLLER:
            return False
        return bool(super().check_validity(user, action_type_id, body))


# Certificates -------------------------------------------------------------------
def ensure_server_certificate(
    cert_dir: str | Path, application_uri: str, hostnames: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """Paths of the server certificate and key, generated when absent or for another URI."""
    cert_dir = Path(cert_dir)
    cert_dir.mkdir(parents=True, exist_ok=True)
    (cert_dir / TRUSTED_DIR).mkdir(exist_ok=True)
    cert_path, key_path = cert_dir / SERVER_CERT, cert_dir / SERVER_KEY
    if cert_path.is_file() and key_path.is_file():
        cert = x509.load_der_x509_certificate(cert_path.read_bytes())
        if application_uri in certificate_uris(cert) and cert.not_valid_after_utc > _now():
            return cert_path, key_path
        _log.warning("server certificate %s does not match %s or expired: regenerating", cert_path, application_uri)
    names = ("localhost", socket.gethostname(), *hostnames)
    key, cert = make_self_signed(application_uri, "rtompc HIL server", names, server=True)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    _log.info("generated server certificate %s for %s", cert_path, application_uri)
    return cert_path, key_path


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TrustListValidator:
    """asyncua certificate validator: the client certificate must be in (or issued from) the trust list."""

    def __init__(self, trusted_dir: str | Path) -> None:
        self._dir = Path(trusted_dir)
        self._fingerprints: set[bytes] = set()
        self._store: TrustStore | None = None

    async def load(self) -> None:
        """(Re)read the trust list directory."""
        self._dir.mkdir(parents=True, exist_ok=True)
        fps, cas = set(), False
        for path in sorted(self._dir.iterdir()):
            if path.suffix.lower() not in (".der", ".pem", ".crt", ".cer"):
                continue
            data = path.read_bytes()
            try:
                cert = (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                        else x509.load_der_x509_certificate(data))
            except ValueError:
                _log.warning("trust list: %s is not a certificate, ignored", path)
                continue
            fps.add(cert.fingerprint(hashes.SHA256()))
            cas = cas or _is_ca(cert)
        self._fingerprints = fps
        if cas:
            self._store = TrustStore([self._dir], [])
            await self._store.load()
        _log.info("trust list %s: %d certificate(s)", self._dir, len(fps))

    async def __call__(self, cert: x509.Certificate, app_description: ua.ApplicationDescription) -> None:
        now = _now()
        subject = cert.subject.rfc4514_string()
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            _log.warning("client certificate %s refused: outside its validity period", subject)
            raise BadCertificateTimeInvalid()
        if cert.fingerprint(hashes.SHA256()) in self._fingerprints:
            return
        if self._store is not None and self._store.validate(cert):
            return
        _log.warning("client certificate %s refused: not in trust list %s", subject, self._dir)
        raise BadCertificateUntrusted()


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
