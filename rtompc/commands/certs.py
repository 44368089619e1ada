"""``rtompc certs create``: an OPC UA client certificate, its key and the trust-list folders.

Writes the layout of :func:`plant_models.certificates.create_client_pki` under
``--dir`` and prints the ``[transport]`` security lines that use it, plus what
to do on the server side (put the client certificate into its trust list).
Light at import: the generator is imported when the command runs.
"""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path
from typing import Any


def _create(args: argparse.Namespace) -> int:
    from plant_models.certificates import create_client_pki

    hosts = tuple(dict.fromkeys(args.host or ("localhost", socket.gethostname())))
    uri = args.uri or f"urn:{socket.gethostname()}:rtompc:client"
    pki = create_client_pki(
        Path(args.dir),
        uri,
        name=args.name,
        common_name=args.common_name,
        hostnames=hosts,
        days=args.days,
        organization=args.organization,
        trust=tuple(args.trust or ()),
        server_auth=not args.client_auth_only,
        force=args.force,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "certificate_der": str(pki.certificate_der),
                    "certificate_pem": str(pki.certificate_pem),
                    "private_key": str(pki.private_key),
                    "trusted": str(pki.trusted),
                    "rejected": str(pki.rejected),
                    "application_uri": pki.application_uri,
                    "trusted_added": [str(p) for p in pki.trusted_added],
                },
                indent=2,
            )
        )
        return 0
    print(f"certificate  {pki.certificate_der}  (PEM: {pki.certificate_pem.name})")
    print(f"private key  {pki.private_key}  (mode 0600; keep it on this machine)")
    print(f"trust list   {pki.trusted}  ({len(pki.trusted_added)} server certificate(s) added)")
    print(f"application  {pki.application_uri}\n")
    print("In the application config (paths relative to the config file work too):\n")
    print("[transport]")
    print('security = "sign-encrypt"')
    print('policy = "Basic256Sha256"')
    print(f'certificate = "{pki.certificate_der}"')
    print(f'private_key = "{pki.private_key}"')
    print(f'trust_list = ["{pki.trusted}"]')
    print(f'application_uri = "{pki.application_uri}"\n')
    print(
        "On the server: add the certificate to its trusted clients (HIL: copy it into "
        "<cert-dir>/trusted/; a PLC: import it in its certificate manager)."
    )
    if not pki.trusted_added:
        print(f"Copy the server's certificate into {pki.trusted} (or use --trust FILE).")
    return 0


def register(sub: Any) -> None:
    """Add the ``certs`` command with ``create``."""
    p = sub.add_parser(
        "certs",
        help="make an OPC UA client certificate, key and trust-list folders",
        description="Certificates for a secured OPC UA link (security sign or sign-encrypt).",
    )
    csub = p.add_subparsers(dest="certs_command", metavar="SUBCOMMAND")
    c = csub.add_parser(
        "create",
        help="create a client certificate + key and the trust-list folders",
        description="Create a self-signed OPC UA client application certificate (RSA 2048, "
        "SHA-256; application URI in the SubjectAltName; key usage digitalSignature, "
        "nonRepudiation, keyEncipherment, dataEncipherment; extended key usage clientAuth and "
        "serverAuth) as DER and PEM, its private key (PEM, mode 0600) and the folders "
        "own/, trusted/, issuers/, rejected/ under --dir. Files are written whole or not at all.",
    )
    c.add_argument("--dir", default="pki", help="PKI folder to create or complete (default ./pki)")
    c.add_argument(
        "--uri",
        help="application URI (default urn:<hostname>:rtompc:client); "
        "the config's transport.application_uri must equal it",
    )
    c.add_argument(
        "--name",
        default="rtompc_client",
        help="file name stem of the certificate and key (default rtompc_client)",
    )
    c.add_argument("--common-name", default="rtompc engine", help="subject CN")
    c.add_argument("--organization", default="rtompc", help="subject O")
    c.add_argument(
        "--host",
        action="append",
        help="host name or IP address for the SubjectAltName (repeat; default: "
        "localhost and this machine's name)",
    )
    c.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    c.add_argument(
        "--trust",
        action="append",
        metavar="SERVER_CERT",
        help="a server certificate (DER or PEM) to put into trusted/certs (repeat)",
    )
    c.add_argument(
        "--client-auth-only",
        action="store_true",
        help="extended key usage clientAuth only (default: clientAuth and serverAuth)",
    )
    c.add_argument("--force", action="store_true", help="replace an existing certificate and key")
    c.add_argument("--json", action="store_true", help="print the file paths as JSON")
    c.set_defaults(func=_create)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
