"""The JSON Schema in an editor's hands: taplo (the engine of VS Code's Even Better TOML).

Every shipped scenario and the demo's config must validate against
``rtompc config schema`` (so an editor shows no false errors), a mistyped key
or a wrong security word must be flagged at its line, and the ``#:schema``
directive that docs/configuration.md recommends must work. taplo comes from npm
(tests/tools/taplo, installed by run-tests.sh); without it the test is skipped.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from rtompc.cli import main

ROOT = Path(__file__).resolve().parents[2]
TAPLO = ROOT / "tests" / "tools" / "taplo" / "node_modules" / ".bin" / "taplo"

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js ('node') is not on PATH"),
    pytest.mark.skipif(
        not TAPLO.is_file(),
        reason="taplo is not installed: run `npm ci --prefix tests/tools/taplo`",
    ),
    pytest.mark.timeout(300),
]


def _schema(tmp: Path, *extra: str) -> Path:
    path = tmp / ("scenario.schema.json" if extra else "app.schema.json")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["config", "schema", "--out", str(path), *extra]) == 0
    return path


def _taplo(files: list[Path], schema: Path | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    args = [str(TAPLO), "check", "--no-auto-config"]
    if schema is not None:
        args += ["--schema", schema.resolve().as_uri()]
    return subprocess.run(
        [*args, *map(str, files)], capture_output=True, text=True, cwd=cwd, timeout=240
    )


def test_shipped_configs_validate_against_the_schema(tmp_path: Path) -> None:
    scenarios = sorted((ROOT / "scenarios").glob("*.toml"))
    assert len(scenarios) >= 20
    res = _taplo(scenarios, _schema(tmp_path, "--scenario"), tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    apps = sorted((ROOT / "rtompc" / "data").glob("*.toml"))
    starter = tmp_path / "starter.toml"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["config", "init", "williams_otto", "--out", str(starter)]) == 0
    res = _taplo([*apps, starter], _schema(tmp_path), tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


def test_taplo_flags_a_typo_and_a_wrong_security_word_at_their_lines(tmp_path: Path) -> None:
    schema = _schema(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "#:schema ./app.schema.json\n"
        '[plant]\nname = "williams_otto"\n\n'
        '[transport]\nkind = "opcua"\nendpoint = "opc.tcp://plc:4840"\n'
        'security = "SignAndEncrypt"\n\n'
        "[mpc]\nhorizon_steps = 20\n\n"
        '[[mpc.cvs]]\nname = "x_p"\nweigth = 1.0\n'
    )
    res = _taplo([bad], None, tmp_path)  # the #:schema directive names the schema
    text = res.stdout + res.stderr
    assert res.returncode != 0, text
    assert schema.name in bad.read_text()
    assert "bad.toml:8:" in text and "sign-encrypt" in text, text
    assert "weigth" in text and "bad.toml:15:" in text, text
