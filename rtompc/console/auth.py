"""Who may use the console: users file, password check, signed session cookies, CSRF.

- Users: the same file format and password hashes as the OPC UA servers
  (``[users.<name>]`` with ``role`` and ``password_hash`` =
  ``pbkdf2_sha256$<iterations>$<salt>$<hash>``, made by ``rtompc hil hash-password``),
  with the live-parameter roles ``viewer``, ``operator``, ``engineer``
  (:class:`rtompc.live.Role`). Passwords are never logged.
- Sessions: a random session id in a cookie signed with HMAC-SHA256 under a per-process
  key, ``HttpOnly``, ``SameSite=Strict``, ``Secure`` under TLS, ``Path=/``; the server
  keeps the session (user, role, CSRF token, expiry), so logout and expiry are real.
- CSRF: SameSite=Strict keeps the cookie off cross-site requests; on top, every write
  (``POST``) must carry the session's CSRF token (header ``X-CSRF-Token`` for the page's
  JSON calls, a form field for the logout form), and the login form carries a
  pre-session token bound to a cookie (double submit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.security import verify_password
from plant_models.errors import ConfigError
from plant_models.server_auth import parse_user_table, read_users_file
from rtompc.live.types import Role

logger = logging.getLogger(__name__)

COOKIE = "rtompc_session"
"""Name of the session cookie."""
LOGIN_COOKIE = "rtompc_login"
"""Name of the login form's CSRF cookie."""
ROLES = tuple(r.value for r in Role)


@dataclass(frozen=True)
class ConsoleUser:
    """One user of the users file."""

    name: str
    """User name."""
    role: Role
    """Live-parameter role."""
    password_hash: str
    """PBKDF2 hash string."""


def load_console_users(path: Path) -> dict[str, ConsoleUser]:
    """Users with roles viewer/operator/engineer; errors name the file and key (the users
    file format and checks of the OPC UA servers, :mod:`plant_models.server_auth`)."""
    records = parse_user_table(read_users_file(path), ROLES, str(path))
    return {n: ConsoleUser(n, Role(r.role), r.password_hash) for n, r in records.items()}


def write_users_file(
    path: Path, users: Mapping[str, tuple[str, str]], *, iterations: int | None = None
) -> None:
    """Write a users file from ``name -> (role, password)`` (hashes only; mode 0600).
    ``iterations``: PBKDF2 iterations (default: the servers' default)."""
    from hil.security import DEFAULT_ITERATIONS, hash_password

    lines = []
    for name, (role, password) in users.items():
        lines += [
            f"[users.{name}]",
            f'role = "{role}"',
            f'password_hash = "{hash_password(password, iterations=iterations or DEFAULT_ITERATIONS)}"',
            "",
        ]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


@dataclass(frozen=True)
class Session:
    """A logged-in user."""

    user: str
    """User name."""
    role: Role
    """Role."""
    csrf: str
    """Token every write of this session must carry."""
    expires: float
    """Monotonic time the session ends."""


class Sessions:
    """Server-side sessions behind signed cookies (thread-safe)."""

    def __init__(self, users: Mapping[str, ConsoleUser], timeout_s: float) -> None:
        if not users:
            raise ConfigError("console users: expected at least one user")
        self.users = dict(users)
        self.timeout_s = timeout_s
        self._key = secrets.token_bytes(32)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    # signing ---------------------------------------------------------------------------
    def sign(self, value: str) -> str:
        """``value.signature`` (HMAC-SHA256, URL-safe base64)."""
        mac = hmac.new(self._key, value.encode(), hashlib.sha256).digest()
        return f"{value}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def unsign(self, signed: str | None) -> str | None:
        """The value of a signed string, None when absent or forged."""
        if not signed or "." not in signed:
            return None
        value, _, _ = signed.rpartition(".")
        return value if hmac.compare_digest(self.sign(value), signed) else None

    # logging in ------------------------------------------------------------------------
    def authenticate(self, name: str, password: str) -> ConsoleUser | None:
        """The user when the password matches (slow on purpose: PBKDF2)."""
        user = self.users.get(name)
        if user is None or not verify_password(password, user.password_hash):
            logger.warning("console login refused for user %r", name)
            return None
        logger.info("console login: %s (%s)", name, user.role.value)
        return user

    def open(self, user: ConsoleUser) -> str:
        """A new session; returns the signed cookie value."""
        sid = secrets.token_urlsafe(24)
        session = Session(
            user.name, user.role, secrets.token_urlsafe(24), time.monotonic() + self.timeout_s
        )
        with self._lock:
            now = time.monotonic()
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
            self._sessions[sid] = session
        return self.sign(sid)

    def get(self, cookie: str | None) -> Session | None:
        """The live session of a cookie, None when absent, forged, expired or logged out."""
        sid = self.unsign(cookie)
        if sid is None:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.expires <= time.monotonic():
                del self._sessions[sid]
                return None
        return session

    def close(self, cookie: str | None) -> None:
        """Log out."""
        sid = self.unsign(cookie)
        if sid is not None:
            with self._lock:
                self._sessions.pop(sid, None)


def cookie_options(secure: bool, max_age: float | None) -> dict[str, Any]:
    """Starlette ``set_cookie`` options of every console cookie."""
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": secure,
        "path": "/",
        "max_age": None if max_age is None else int(max_age),
    }
