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
