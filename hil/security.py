"""Security of the HIL server: certificates, client trust list, users and roles.

The credentials (password hashes, users file, server certificate, trust list directory)
are shared with the engine's own server in :mod:`plant_models.server_auth` (re-exported
here); this module keeps the HIL's roles and the asyncua glue.

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

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, cast

from asyncua import ua
from asyncua.crypto.permission_rules import SimpleRoleRuleset, User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.user_managers import UserManager
from asyncua.ua.uaerrors import BadCertificateTimeInvalid, BadCertificateUntrusted
from cryptography import x509

from plant_models.certificates import certificate_uris, make_self_signed
from plant_models.server_auth import (
    DEFAULT_ITERATIONS,
    SERVER_CERT,
    SERVER_KEY,
    TRUSTED_DIR,
    TrustList,
    check_login,
    ensure_server_certificate,
    hash_password,
    parse_user_table,
    read_users_file,
    verify_password,
)

__all__ = [
    "DEFAULT_ITERATIONS",
    "SERVER_CERT",
    "SERVER_KEY",
    "TRUSTED_DIR",
    "HilRuleset",
    "HilUser",
    "HilUserManager",
    "OpenUserManager",
    "Role",
    "SecurityMode",
    "TrustListValidator",
    "UserEntry",
    "certificate_uris",
    "ensure_server_certificate",
    "hash_password",
    "load_users",
    "make_self_signed",
    "parse_users",
    "verify_password",
]

_log = logging.getLogger(__name__)

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
    return parse_users(read_users_file(path), str(path))


def parse_users(table: Mapping[str, Any], where: str = "users") -> dict[str, UserEntry]:
    """Users from the ``[users.<name>]`` tables."""
    records = parse_user_table(table, tuple(r.value for r in Role), where)
    return {n: UserEntry(n, Role(r.role), r.password_hash) for n, r in records.items()}


class HilUserManager(UserManager):
    """asyncua user manager: user name + password against the users file; no anonymous users."""

    def __init__(self, users: Mapping[str, UserEntry]) -> None:
        self._users = dict(users)

    def get_user(
        self, iserver: InternalServer, username: str | None = None, password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        entry = check_login(self._users, username, password)
        return None if entry is None else HilUser(role=UserRole.User, name=username, hil_role=entry.role)


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
class TrustListValidator:
    """asyncua certificate validator: the client certificate must be in (or issued from a CA
    in) the trust list directory; else BadCertificateUntrusted / BadCertificateTimeInvalid."""

    def __init__(self, trusted_dir: str | Path) -> None:
        self._list = TrustList(trusted_dir, _log)

    async def load(self) -> None:
        """(Re)read the trust list directory."""
        self._list.load()

    async def __call__(self, cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        verdict = self._list.verdict(cert)
        if verdict == "expired":
            raise BadCertificateTimeInvalid()
        if verdict != "trusted":
            raise BadCertificateUntrusted()
