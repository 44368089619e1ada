"""asyncua glue of a secured rtompc OPC UA server: user manager and client-certificate check.

The credentials themselves (users file, password hashes, server certificate, trust list
directory) are in :mod:`plant_models.server_auth`, shared with the HIL server, which has
the same glue in :mod:`hil.security` (the layers keep ``hil`` and ``interfaces`` apart).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import User
from asyncua.server.internal_server import InternalServer
from asyncua.server.user_managers import UserManager
from asyncua.ua.uaerrors import BadCertificateTimeInvalid, BadCertificateUntrusted
from cryptography import x509

from plant_models.server_auth import TrustList, check_login

_log = logging.getLogger(__name__)


class PasswordUserManager(UserManager):
    """User name + password against a users table; no anonymous users.

    ``make_user(name, entry)`` gives the asyncua user object carrying the server's role."""

    def __init__(self, users: Mapping[str, Any], make_user: Callable[[str, Any], User]) -> None:
        self._users = dict(users)
        self._make_user = make_user

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        entry = check_login(self._users, username, password)
        return None if entry is None else self._make_user(str(username), entry)


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
