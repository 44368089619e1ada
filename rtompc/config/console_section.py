"""``[console]``: the live web console (``rtompc run APP.toml --console HOST:PORT``).

The section only describes; :func:`console_settings` turns it (and the command-line
address, which wins) into :class:`rtompc.console.ConsoleSettings`, whose ``check``
enforces the security rules (login always; TLS for any non-loopback bind).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import field_validator

from rtompc.config.fields import PositiveSeconds, Section
from rtompc.config.paths import FilePath

if TYPE_CHECKING:
    from rtompc.console.settings import ConsoleSettings


class ConsoleSection(Section):
    """``[console]``: the live web console, served beside the loop while it runs."""

    bind: str = "127.0.0.1:8080"
    """``HOST:PORT`` to listen on. Loopback by default; any other address needs ``users``
    and TLS (``certificate`` + ``private_key``), or the engine refuses to start. Behind a
    reverse proxy keep it on loopback (docs/console.md)."""
    users: FilePath | None = None
    """Users file: ``[users.<name>]`` tables with ``role`` (viewer, operator, engineer) and
    ``password_hash`` (from ``rtompc hil hash-password``); required to serve."""
    certificate: FilePath | None = None
    """TLS certificate chain, PEM (e.g. ``certificate_pem`` of ``rtompc certs create``)."""
    private_key: FilePath | None = None
    """TLS private key, PEM."""
    session_timeout_s: PositiveSeconds = 8 * 3600.0
    """How long a login lasts (``"8 h"`` works)."""

    @field_validator("bind")
    @classmethod
    def _bind(cls, v: str) -> str:
        from rtompc.console.settings import parse_bind

        parse_bind(v, "console.bind")
        return v


def console_settings(
    section: ConsoleSection | None, bind: str | None, where: str
) -> ConsoleSettings:
    """:class:`rtompc.console.ConsoleSettings` from the section and a ``--console`` address
    (which overrides ``console.bind``); ``where`` names the config file in errors."""
    from rtompc.console.settings import ConsoleSettings, parse_bind

    sec = section if section is not None else ConsoleSection()
    host, port = (
        parse_bind(bind, "--console") if bind else parse_bind(sec.bind, f"{where}: console.bind")
    )
    return ConsoleSettings(
        host=host,
        port=port,
        users=sec.users,
        certificate=sec.certificate,
        private_key=sec.private_key,
        session_timeout_s=sec.session_timeout_s,
        where=f"{where}: console",
    )
