"""OPC UA application instance certificates: generate, save, inspect (``cryptography`` only).

One generator for both ends of a link: the HIL server's certificate
(:func:`hil.security.ensure_server_certificate`) and the engine's client
certificate (``rtompc certs create``, :func:`create_client_pki`). It lives in the
base layer because ``hil`` and ``rtompc`` both use it and it needs no OPC UA stack.

A certificate follows OPC UA Part 6, 6.2.2: RSA 2048 with SHA-256, the
application URI as a URI in the SubjectAltName (peers compare it with the
ApplicationDescription of the session), host names and addresses as DNS/IP
entries, key usage digitalSignature, nonRepudiation, keyEncipherment and
dataEncipherment, extended key usage clientAuth and serverAuth (many servers,
among them the UA .NET stack, check for both on any application certificate).

:func:`create_client_pki` writes the folder layout that node-opcua's certificate
manager uses and asyncua reads file by file::

    <root>/own/certs/<name>.der     the certificate (DER; asyncua, UA .NET, S7 import)
    <root>/own/certs/<name>.pem     the same certificate (PEM; node-opcua, openssl)
    <root>/own/private/<name>.pem   its private key (PEM, PKCS#8, mode 0600)
    <root>/trusted/certs/           server (or CA) certificates this client trusts
    <root>/trusted/crl/, issuers/certs/, issuers/crl/
    <root>/rejected/                certificates that were refused (for inspection)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from plant_models.errors import ConfigError

PKI_DIRS = (
    "own/certs",
    "own/private",
    "trusted/certs",
    "trusted/crl",
    "issuers/certs",
    "issuers/crl",
    "rejected",
)
"""Folders of a client PKI (node-opcua's layout)."""
CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")
"""File endings read as certificates in trust lists."""


def make_self_signed(
    application_uri: str,
    common_name: str,
    hostnames: tuple[str, ...],
    *,
    server: bool,
    days: int = 365,
    key_size: int = 2048,
    organization: str = "rtompc",
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed OPC UA application certificate and its key.

    ``server=False`` gives clientAuth only; ``server=True`` gives serverAuth and clientAuth.
    """
    if not application_uri or ":" not in application_uri:
        raise ConfigError(
            f"application URI: expected a URI such as 'urn:site:unit:rtompc', "
            f"got {application_uri!r}"
        )
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    alt: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for host in dict.fromkeys(h for h in (*hostnames, "127.0.0.1") if h):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    usage = (
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        if server
        else [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def certificate_uris(cert: x509.Certificate) -> list[str]:
    """The URIs in a certificate's SubjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))


def load_certificate(path: str | Path) -> x509.Certificate:
    """A certificate from a DER or PEM file; the error names the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the certificate ({exc.strerror})") from None
    try:
        return (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data)
        )
    except ValueError:
        raise ConfigError(f"{path}: not a DER or PEM X.509 certificate") from None


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (what asyncua and node-opcua read)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file atomically, readable by its owner only (0600 from the start)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_public(path: Path, data: bytes) -> None:
    """Write a public file atomically (temp file + rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class ClientPki:
    """Files of a client PKI written by :func:`create_client_pki`."""

    root: Path
    """The PKI folder."""
    certificate_der: Path
    """The client certificate, DER."""
    certificate_pem: Path
    """The same certificate, PEM."""
    private_key: Path
    """Its private key, PEM (PKCS#8, unencrypted, mode 0600)."""
    trusted: Path
    """Folder of trusted server (or CA) certificates: ``transport.security.trusted_server_certificates``."""
    rejected: Path
    """Folder for refused certificates."""
    application_uri: str
    """The URI in the certificate's SubjectAltName: ``transport.security.application_uri``."""
    trusted_added: tuple[Path, ...] = ()
    """Server certificates copied into ``trusted``."""


def create_client_pki(
    root: str | Path,
    application_uri: str,
    *,
    name: str = "rtompc_client",
    common_name: str = "rtompc engine",
    hostnames: tuple[str, ...] = ("localhost",),
    days: int = 365,
    organization: str = "rtompc",
    trust: tuple[str | Path, ...] = (),
    server_auth: bool = True,
    force: bool = False,
) -> ClientPki:
    """Create a client certificate, its key and the trust-list folders under ``root``.

    ``server_auth`` adds serverAuth to the extended key usage next to clientAuth (the UA
    .NET stack and several PLCs expect both). ``trust`` lists server certificates (files) to copy into ``trusted/certs``. An existing
    certificate or key of that ``name`` is kept (a :class:`ConfigError`) unless ``force``:
    a server may already trust it. Every file is written to a temporary name and renamed,
    so an interrupted run leaves no half-written certificate or key.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(
            f"certificate name: expected letters, digits, '_', '.', '-', got {name!r}"
        )
    if days < 1:
        raise ConfigError(f"days: expected at least 1, got {days}")
    root = Path(root)
    trusted_src = [Path(t) for t in trust]
    certs = [(src, load_certificate(src)) for src in trusted_src]  # fail before writing anything
    for d in PKI_DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    der = root / "own" / "certs" / f"{name}.der"
    pem = der.with_suffix(".pem")
    key_path = root / "own" / "private" / f"{name}.pem"
    existing = [p for p in (der, pem, key_path) if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"{existing[0]}: exists (a server may already trust this certificate); "
            "use --force to replace it, or another --name"
        )
    key, cert = make_self_signed(
        application_uri,
        common_name,
        hostnames,
        server=server_auth,
        days=days,
        organization=organization,
    )
    write_private(key_path, key_pem(key))
    write_public(der, cert.public_bytes(serialization.Encoding.DER))
    write_public(pem, cert.public_bytes(serialization.Encoding.PEM))
    added = []
    for src, c in certs:
        thumb = c.fingerprint(hashes.SHA1()).hex()[:12]  # noqa: S303 - a name, not security
        dest = root / "trusted" / "certs" / f"{src.stem}-{thumb}.der"
        write_public(dest, c.public_bytes(serialization.Encoding.DER))
        added.append(dest)
    return ClientPki(
        root,
        der,
        pem,
        key_path,
        root / "trusted" / "certs",
        root / "rejected",
        application_uri,
        tuple(added),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
