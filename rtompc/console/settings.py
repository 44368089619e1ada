"""Where and how the web console listens: the bind address, users, TLS, and the rules.

:class:`ConsoleSettings` is built from the ``[console]`` config section or the
``--console HOST:PORT`` option (:func:`parse_bind`). :meth:`ConsoleSettings.check`
enforces the security rules before anything listens:

- a login is always required (the users file; ``rtompc demo`` makes one per run);
- a loopback bind (``127.0.0.1``, ``::1``, ``localhost``) may run without TLS;
- any other bind needs TLS as well (``certificate`` and ``private_key``, PEM; e.g. from
  ``rtompc certs create``), else it is refused with an error naming the keys to set.
  Behind a reverse proxy, bind the console to loopback and let the proxy terminate TLS
  (``docs/console.md``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from plant_models.errors import ConfigError

LOOPBACK_NAMES = ("localhost",)
"""Host names taken as loopback without resolving them."""


def parse_bind(text: str, where: str = "--console") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port); ConfigError naming ``where``."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{where}: expected HOST:PORT (e.g. 127.0.0.1:8080), got {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{where}: port must be a number 0-65535, got {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{where}: port must be a number 0-65535, got {port}")
    return host, port


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ConsoleSettings:
    """How the console serves."""

    host: str = "127.0.0.1"
    """Address to bind (loopback by default)."""
    port: int = 8080
    """TCP port (0: any free port; the server reports the one it got)."""
    users: Path | None = None
    """Users file (``[users.<name>]`` with ``role`` viewer/operator/engineer and
    ``password_hash``); required."""
    certificate: Path | None = None
    """TLS certificate (PEM); with ``private_key`` the console serves HTTPS."""
    private_key: Path | None = None
    """TLS private key (PEM)."""
    session_timeout_s: float = 8 * 3600.0
    """A login lasts this long."""
    where: str = "console"
    """Where the settings came from (for error messages: a config key or an option)."""

    @property
    def tls(self) -> bool:
        """Whether the console serves HTTPS."""
        return self.certificate is not None and self.private_key is not None

    @property
    def url(self) -> str:
        """The console's address as a browser would use it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    def check(self) -> None:
        """Refuse settings that would serve insecurely (ConfigError naming the keys)."""
        if self.users is None:
            raise ConfigError(
                f"{self.where}.users: the console needs a users file (roles viewer/operator/"
                "engineer; make a hash with `rtompc hil hash-password`)"
            )
        if not self.users.is_file():
            raise ConfigError(f"{self.where}.users: {self.users} does not exist")
        if (self.certificate is None) != (self.private_key is None):
            raise ConfigError(
                f"{self.where}: give both certificate and private_key for TLS, or neither"
            )
        for key, path in (("certificate", self.certificate), ("private_key", self.private_key)):
            if path is not None and not path.is_file():
                raise ConfigError(f"{self.where}.{key}: {path} does not exist")
        if not is_loopback(self.host) and not self.tls:
            raise ConfigError(
                f"{self.where}: refusing to serve on {self.host}:{self.port} without TLS: a "
                "non-loopback bind needs a login and TLS (set console.certificate and "
                "console.private_key, PEM, e.g. from `rtompc certs create`), or bind to "
                "127.0.0.1 behind a reverse proxy that terminates TLS (docs/console.md)"
            )
        if self.session_timeout_s <= 0:
            raise ConfigError(f"{self.where}.session_timeout_s: expected > 0")
