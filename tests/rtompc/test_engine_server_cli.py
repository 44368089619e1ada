"""``rtompc run APP.toml`` with ``[engine_server]`` / ``--engine-server URL``: the engine's OPC UA
server starts beside the loop and stops with it; refused settings stop the run before it
starts (exit 2, the message naming the file, key and what to set)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from plant_models.server_auth import SERVER_CERT, hash_password
from rtompc.cli import main

pytestmark = [pytest.mark.opcua, pytest.mark.timeout(180)]


def _app(tmp: Path, app_config: Callable[[Path | str], str], section: str) -> Path:
    path = tmp / "app.toml"
    path.write_text(app_config(tmp / "hist.sqlite") + section)
    return path


def test_run_serves_the_engine_namespace_beside_the_loop(
    tmp_path: Path, app_config: Callable[[Path | str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    h = hash_password("pw", iterations=1000)
    (tmp_path / "users.toml").write_text(f'[users.op]\nrole = "operator"\npassword_hash = "{h}"\n')
    section = '\n[engine_server]\ncert_dir = "engine-pki"\nusers = "users.toml"\n'
    app = _app(tmp_path, app_config, section)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"opc.tcp://127.0.0.1:{s.getsockname()[1]}"
    assert main(["run", str(app), "--steps", "2", "--engine-server", url]) == 0
    out = capsys.readouterr().out
    assert f"engine OPC UA server: {url}" in out and "exit 0 (ok)" in out
    assert (tmp_path / "engine-pki" / SERVER_CERT).is_file()  # made on first start


@pytest.mark.parametrize(
    ("section", "option", "expected"),
    [
        (
            "",
            "opc.tcp://127.0.0.1:4841",
            "engine_server: security sign-encrypt needs cert_dir and users",
        ),
        (
            '\n[engine_server]\nsecurity = "none"\n',
            "opc.tcp://0.0.0.0:4841",
            "refusing to serve without security on a non-loopback address",
        ),
        (
            '\n[engine_server]\ncert_dir = "pki"\nusers = "nobody.toml"\n',
            None,
            "nobody.toml: users file does not exist",
        ),
    ],
    ids=["no-credentials", "insecure-remote", "missing-users"],
)
def test_refused_engine_server_settings_stop_the_run_before_it_starts(
    tmp_path: Path,
    app_config: Callable[[Path | str], str],
    capsys: pytest.CaptureFixture[str],
    section: str,
    option: str | None,
    expected: str,
) -> None:
    app = _app(tmp_path, app_config, section)
    argv = ["run", str(app), "--steps", "1"] + (["--engine-server", option] if option else [])
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert expected in captured.err and "cycle" not in captured.out
    assert not (tmp_path / "hist.sqlite").exists()  # nothing ran
