"""Starting the console from the command line: ``--console HOST:PORT`` on ``rtompc run`` and
``rtompc demo``.

- :func:`for_run`: settings from the config's ``[console]`` section and the option (the
  option wins), checked before anything starts; None when neither asks for a console.
- :func:`for_demo`: the demo's settings; without ``--console-users`` it makes a users file
  for this run (``viewer``, ``operator``, ``engineer`` with random passwords) in the demo's
  output directory, the passwords in ``console-login.txt`` beside it (mode 0600), never
  on the terminal or in a log.
- :func:`surface`: the operator surface (see :func:`rtompc.console.server.console_surface`)
  that tells the command where the console serves.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from plant_models.errors import ConfigError
from rtompc.console.settings import ConsoleSettings, is_loopback, parse_bind

DEMO_USERS = ("viewer", "operator", "engineer")
"""The demo's console users (each with the role of its name)."""


def for_run(config: Any, path: Path, bind: str | None) -> ConsoleSettings | None:
    """Console settings of ``rtompc run`` (None: no console asked for); checked."""
    from rtompc.config.console_section import console_settings

    section = getattr(config, "console", None)
    if section is None and bind is None:
        return None
    settings = console_settings(section, bind, str(path))
    settings.check()
    return settings


def for_demo(out_dir: Path, bind: str, users: Path | None) -> ConsoleSettings:
    """Console settings of ``rtompc demo`` (a users file made for the run when none given)."""
    from rtompc.console.auth import write_users_file

    host, port = parse_bind(bind, "--console")
    if not is_loopback(host):
        raise ConfigError(
            f"--console: refusing {host}:{port}: the demo serves its console on loopback only "
            "(no TLS options); for another address use `rtompc run` with [console] "
            "certificate and private_key, or a reverse proxy (docs/console.md)"
        )
    if users is None:
        out_dir.mkdir(parents=True, exist_ok=True)
        passwords = {u: secrets.token_urlsafe(12) for u in DEMO_USERS}
        users = out_dir / "console-users.toml"
        write_users_file(users, {u: (u, pw) for u, pw in passwords.items()})
        login = out_dir / "console-login.txt"
        tmp = login.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text("".join(f"{u} {pw}\n" for u, pw in passwords.items()), encoding="utf-8")
        tmp.replace(login)
    settings = ConsoleSettings(host=host, port=port, users=users, where="--console")
    settings.check()
    return settings


def surface(
    settings: ConsoleSettings, announce: Callable[[str], None] | None = None
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    """The console as an operator surface; ``announce`` is given its URL once it serves."""
    from rtompc.console.server import console_surface

    def started(server: Any) -> None:
        if announce is not None:
            announce(server.url)

    return console_surface(settings, started)
