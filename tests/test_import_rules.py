"""The layer rules of ../shared/DESIGN.md, enforced by scanning imports.

plant_models <- rto, mpc, interfaces, hil <- rtompc; rto and mpc never import
interfaces/hil; hil never imports rto/mpc; do_mpc only in the two export/backend
modules; asyncua only in interfaces/ and hil/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("plant_models", "rto", "mpc", "interfaces", "hil", "rtompc")
FORBIDDEN = {
    "plant_models": {"rto", "mpc", "interfaces", "hil", "rtompc"},
    "rto": {"interfaces", "hil", "rtompc"},
    "mpc": {"interfaces", "hil", "rtompc"},
    "interfaces": {"rto", "mpc", "hil", "rtompc"},
    "hil": {"rto", "mpc", "interfaces", "rtompc"},
    "rtompc": set(),
}
DO_MPC_ALLOWED = {"plant_models/do_mpc_export.py", "mpc/do_mpc_backend.py"}
ASYNCUA_ALLOWED_PREFIX = ("interfaces/", "hil/")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _sources() -> list[tuple[str, Path]]:
    files = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            files.append((pkg, path))
    return files


def test_sources_found() -> None:
    assert len(_sources()) > 10


@pytest.mark.parametrize(
    ("pkg", "path"), _sources(), ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v
)
def test_layer_rules(pkg: str, path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    imported = _imports(path)
    bad = imported & FORBIDDEN[pkg]
    assert not bad, f"{rel} imports {sorted(bad)}, against the layer rules"
    if "do_mpc" in imported:
        assert rel in DO_MPC_ALLOWED, f"{rel} imports do_mpc; only {sorted(DO_MPC_ALLOWED)} may"
    if "asyncua" in imported:
        assert rel.startswith(ASYNCUA_ALLOWED_PREFIX), f"{rel} imports asyncua"


def test_scanner_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import hil.server\nfrom do_mpc import controller\n")
    assert _imports(bad) == {"hil", "do_mpc"}
