"""Client-side OPC UA security: credentials, certificates, server trust, error mapping.

:func:`configure_client` applies :class:`~interfaces.opcua_settings.OpcUaSettings`
to an asyncua ``Client`` before it connects: user name and password, the client
certificate and key, and a certificate validator with a trust store, so a
server whose certificate is not in the trust list is refused (asyncua would
otherwise accept any server certificate). :func:`connect_error` turns what
asyncua raises on a failed connect (including the bare ``AssertionError`` of a
rejected secure channel) into a :class:`~plant_models.errors.PlantIOError` with a
message that says what to check. Secrets are never put into messages or logs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import security_policies
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.uacrypto import load_certificate
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

from interfaces.opcua_settings import OpcUaSettings
from plant_models.errors import ConfigError, PlantIOError

_log = logging.getLogger(__name__)

_PASSWORD = re.compile(r"""Password=b?(['"]).*?\1""")
_ASYNCUA_CLIENT_LOGGERS = (
    "asyncua.client.ua_client.UASocketProtocol",
    "asyncua.client.ua_client.UaClient",
    "asyncua.client.ua_session.UaSession",
    "asyncua.client.client",
)


class RedactPasswords(logging.Filter):
    """Blank ``Password=...`` fields in asyncua's request dumps (it logs ActivateSession at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        if "Password=" in text:
            record.msg, record.args = _PASSWORD.sub("Password=<redacted>", text), None
        return True


def protect_asyncua_logs() -> None:
    """Attach :class:`RedactPasswords` to asyncua's client loggers (idempotent)."""
    for name in _ASYNCUA_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactPasswords) for f in logger.filters):
            logger.addFilter(RedactPasswords())


class _FileOrDirTrustStore(TrustStore):
    """asyncua's TrustStore, whose locations may also be single certificate files."""

    async def _load_trust_location(self, location: Path) -> list[Any]:
        if location.is_file():
            return [await load_certificate(location)]
        return await super()._load_trust_location(location)


_SERVER_CHECKS = (
    CertificateValidatorOptions.TIME_RANGE
    | CertificateValidatorOptions.URI
    | CertificateValidatorOptions.TRUSTED
    | CertificateValidatorOptions.REVOKED
    | CertificateValidatorOptions.PEER_SERVER
)

_CERT_CODES = {
    ua.StatusCodes.BadCertificateUntrusted: "is not in the trust list",
    ua.StatusCodes.BadCertificateRevoked: "is revoked",
    ua.StatusCodes.BadCertificateTimeInvalid: "is expired or not yet valid",
    ua.StatusCodes.BadCertificateUriInvalid: "does not carry the server's application URI",
    ua.StatusCodes.BadCertificateUseNotAllowed: "is not meant for a server (key usage)",
    ua.StatusCodes.BadCertificateInvalid: "is malformed",
}
_IDENTITY_CODES = {
    ua.StatusCodes.BadUserAccessDenied,
    ua.StatusCodes.BadIdentityTokenInvalid,
    ua.StatusCodes.BadIdentityTokenRejected,
    ua.StatusCodes.BadUserSignatureInvalid,
}


async def configure_client(client: Client, settings: OpcUaSettings) -> None:
    """Apply identity and security settings to a not-yet-connected client."""
    if settings.username is not None:
        protect_asyncua_logs()
        client.set_user(settings.username)
        client.set_password(settings.password or "")
    sec = settings.security
    client.application_uri = sec.application_uri
    if not sec.enabled:
        return
    locations = sec.trust_locations
    bad = [p for p in locations if not (p.is_dir() or p.is_file())]
    if not locations or bad:
        raise ConfigError(
            f"security.trusted_server_certificates: {', '.join(map(str, bad)) or '(none)'} "
            "is not a .der/.pem file or a directory of them"
        )
    store = _FileOrDirTrustStore(list(locations), [])
    await store.load()
    client.certificate_validator = CertificateValidator(_SERVER_CHECKS, store)
    policy = getattr(security_policies, f"SecurityPolicy{sec.policy.value}")
    mode = getattr(ua.MessageSecurityMode, sec.mode.value)
    for name in ("certificate", "private_key"):
        path = getattr(sec, name)
        if path is None or not path.is_file():
            raise ConfigError(f"security.{name}: file {path} does not exist")
    try:
        await asyncio.wait_for(
            client.set_security(
                policy,
                str(sec.certificate),
                str(sec.private_key),
                sec.private_key_password,
                None,
                mode,
            ),
            timeout=settings.request_timeout_s * 2,
        )
    except ua.UaError as exc:
        raise PlantIOError(
            f"{settings.endpoint}: the server offers no endpoint with policy "
            f"{sec.policy.value} and mode {sec.mode.value} ({exc})"
        ) from None
    except ValueError as exc:
        raise PlantIOError(
            f"{settings.endpoint}: cannot use the client certificate or key ({type(exc).__name__}); "
            "check the files and the key password"
        ) from None


def connect_error(exc: BaseException, settings: OpcUaSettings) -> PlantIOError:
    """A PlantIOError that says what failed on connect and what to check (no secrets)."""
    url = settings.endpoint
    if isinstance(exc, PlantIOError):
        return exc
    if isinstance(exc, AssertionError):
        return PlantIOError(
            f"{url}: the server rejected the secure channel (policy {settings.security.policy.value}, "
            f"mode {settings.security.mode.value}); check that the server trusts the client "
            "certificate and offers this policy"
        )
    if isinstance(exc, ua.UaStatusCodeError):
        code = exc.code
        name = _code_name(code)
        ours = isinstance(exc.__cause__, ServiceError)  # raised by our validator of the server cert
        if code in _CERT_CODES and not ours:
            return PlantIOError(
                f"{url}: the server refused the client certificate ({name}); add "
                f"{settings.security.certificate} to the server's trusted certificates"
            )
        if code in _CERT_CODES:
            return PlantIOError(
                f"{url}: server certificate {_CERT_CODES[code]} ({name}); add the server's "
                "certificate to security.trusted_server_certificates if it is the right server"
            )
        if code in _IDENTITY_CODES:
            user = settings.username or "anonymous"
            return PlantIOError(f"{url}: user {user!r} was rejected by the server ({name})")
        if code == ua.StatusCodes.BadSecurityChecksFailed:
            return PlantIOError(
                f"{url}: security checks failed ({name}); the server may not trust the client "
                "certificate"
            )
        return PlantIOError(f"{url}: connect failed with {name}")
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return PlantIOError(f"{url}: no answer within {settings.request_timeout_s} s")
    if isinstance(exc, OSError | ConnectionError):
        return PlantIOError(f"{url}: cannot reach the server ({type(exc).__name__}: {exc})")
    return PlantIOError(f"{url}: connect failed ({type(exc).__name__}: {exc})")


def _code_name(code: int) -> str:
    try:
        return ua.StatusCode(ua.UInt32(code)).name
    except Exception:  # pragma: no cover - unknown code
        return f"0x{code:08X}"
