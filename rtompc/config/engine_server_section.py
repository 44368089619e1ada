"""``[engine_server]``: the engine's own OPC UA server (namespace ``urn:rtompc:engine``).

The section only describes; :func:`engine_server_settings` turns it (and a command-line
endpoint, which wins) into :class:`interfaces.engine_server.EngineServerSettings`, reading
the users file (roles viewer, operator, engineer). What the namespace serves and how
writes reach the live parameters: :mod:`rtompc.engine_namespace`, docs/operator-surface.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import field_validator

from plant_models.errors import ConfigError
from rtompc.config.fields import Section
from rtompc.config.paths import FilePath
from rtompc.config.transport import Security

if TYPE_CHECKING:
    from interfaces.engine_server import EngineServerSettings

ROLES = ("viewer", "operator", "engineer")
"""Roles of the engine's users (rtompc.live.Role values)."""


class EngineServerSection(Section):
    """``[engine_server]``: the engine's OPC UA server, served beside the loop while it runs."""

    endpoint: str = "opc.tcp://127.0.0.1:4841"
    """``opc.tcp://HOST:PORT`` to listen on. Without security only a loopback address is
    accepted (unless ``allow_insecure_remote``)."""
    security: Security = Security.SIGN_ENCRYPT
    """``sign-encrypt`` (Basic256Sha256 SignAndEncrypt, default), ``sign``, or ``none``
    (loopback tests only; anonymous clients are viewers)."""
    cert_dir: FilePath | None = None
    """Directory of the server certificate (``server_cert.der`` + ``server_key.pem``,
    generated on first start) and of ``trusted/``, the client certificates allowed in
    (DER or PEM, or a CA that issued them); required with security."""
    users: FilePath | None = None
    """Users file: ``[users.<name>]`` tables with ``role`` (viewer, operator, engineer) and
    ``password_hash`` (``rtompc hil hash-password``); required with security."""
    application_uri: str = "urn:rtompc:engine:server"
    """ApplicationUri of the server (also in its certificate)."""
    allow_insecure_remote: bool = False
    """Serve without security on a non-loopback address (isolated test networks only)."""

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not v.startswith("opc.tcp://"):
            raise ValueError(f"expected opc.tcp://HOST:PORT, got {v!r}")
        return v


def engine_server_settings(
    section: EngineServerSection | None, endpoint: str | None, where: str
) -> EngineServerSettings:
    """Settings from the section and an ``--engine-server`` endpoint (which overrides
    ``engine_server.endpoint``); ``where`` names the config file in errors."""
    from interfaces.engine_server import EngineServerSettings
    from plant_models.server_auth import parse_user_table, read_users_file

    sec = section if section is not None else EngineServerSection()
    secure = sec.security is not Security.NONE
    key = f"{where}: engine_server"
    if secure and (sec.cert_dir is None or sec.users is None):
        missing = [k for k in ("cert_dir", "users") if getattr(sec, k) is None]
        raise ConfigError(
            f"{key}: security {sec.security.value} needs {' and '.join(missing)} (an "
            "[engine_server] section with cert_dir and users; security = 'none' only on loopback)"
        )
    users = {}
    if secure and sec.users is not None:
        users = parse_user_table(read_users_file(sec.users), ROLES, f"{key}.users ({sec.users})")
    try:
        return EngineServerSettings(
            endpoint=endpoint or sec.endpoint,
            secure=secure,
            encrypt=sec.security is Security.SIGN_ENCRYPT,
            cert_dir=Path(sec.cert_dir) if sec.cert_dir is not None else None,
            users=users,
            application_uri=sec.application_uri,
            allow_insecure_remote=sec.allow_insecure_remote,
        )
    except ConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None
