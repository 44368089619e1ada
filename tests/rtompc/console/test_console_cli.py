"""``rtompc run APP.toml --console HOST:PORT``: the console beside the loop, and the binds
that are refused before anything starts (exit 2, the message naming what to set)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from console_helpers import users_file

from rtompc.cli import main


def _app(tmp: Path, app_config: Callable[[Path | str], str], console: str = "") -> Path:
    path = tmp / "app.toml"
    path.write_text(app_config(tmp / "hist.sqlite") + console)
    return path


def test_run_serves_the_console_beside_the_loop(
    tmp_path: Path, app_config: Callable[[Path | str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    users = users_file(tmp_path)
    app = _app(tmp_path, app_config, f'\n[console]\nusers = "{users.name}"\nbind = "127.0.0.1:0"\n')
    assert main(["run", str(app), "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "console: http://127.0.0.1:" in out and "exit 0 (ok)" in out


@pytest.mark.parametrize(
    ("console", "option", "expected"),
    [
        ("", "0.0.0.0:8080", "console.users: the console needs a users file"),
        ('\n[console]\nusers = "console_users.toml"\n', "0.0.0.0:8080", "without TLS"),
        (
            '\n[console]\nusers = "console_users.toml"\nbind = "192.0.2.1:8443"\n',
            None,
            "refusing to serve on 192.0.2.1:8443 without TLS",
        ),
        ('\n[console]\nusers = "nobody.toml"\n', None, "nobody.toml does not exist"),
        ("", "localhost", "expected HOST:PORT"),
    ],
    ids=["no-users", "option-non-loopback", "config-non-loopback", "missing-users", "no-port"],
)
def test_refused_console_settings_stop_the_run_before_it_starts(
    tmp_path: Path,
    app_config: Callable[[Path | str], str],
    capsys: pytest.CaptureFixture[str],
    console: str,
    option: str | None,
    expected: str,
) -> None:
    users_file(tmp_path)
    app = _app(tmp_path, app_config, console)
    argv = ["run", str(app), "--steps", "1"] + (["--console", option] if option else [])
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert expected in captured.err and "cycle" not in captured.out
    assert not (tmp_path / "hist.sqlite").exists()  # nothing ran


def test_demo_console_makes_its_users_and_keeps_passwords_off_the_terminal(tmp_path: Path) -> None:
    """``rtompc demo --console`` without a users file: viewer/operator/engineer with random
    passwords, hashes in console-users.toml, the passwords only in console-login.txt (0600)."""
    from hil.security import verify_password
    from rtompc.console.auth import load_console_users
    from rtompc.console.launch import for_demo

    settings = for_demo(tmp_path, "127.0.0.1:0", None)
    assert settings.users == tmp_path / "console-users.toml" and not settings.tls
    users = load_console_users(settings.users)
    login = tmp_path / "console-login.txt"
    assert login.stat().st_mode & 0o777 == 0o600
    pairs = dict(line.split() for line in login.read_text().splitlines())
    assert {u: users[u].role.value for u in users} == {
        "viewer": "viewer",
        "operator": "operator",
        "engineer": "engineer",
    }
    for name, password in pairs.items():
        assert verify_password(password, users[name].password_hash)
        assert password not in settings.users.read_text()
    from plant_models.errors import ConfigError

    with pytest.raises(ConfigError, match="loopback only"):
        for_demo(tmp_path / "other", "0.0.0.0:8080", None)
    assert not (tmp_path / "other").exists()  # refused before writing anything
