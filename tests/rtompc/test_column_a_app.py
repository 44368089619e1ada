"""The shipped column A application config passes ``rtompc config check`` (everything built)."""

from __future__ import annotations

from pathlib import Path

from rtompc.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "rtompc" / "data" / "column_a.toml"


def test_shipped_column_a_config_checks_clean(capsys) -> None:
    assert main(["config", "check", str(CONFIG)]) == 0
    out = capsys.readouterr().out
    assert "RTO stage built (economic)" in out and "no problems" in out
