"""rtompc demo --case steel-energy with the default, relative output folder: the bench and the
site config it writes must load from there (they name files under it; a relative folder was
doubled, out/out/pki/users.toml, and the HIL refused to start from a fresh clone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.config import load_benches
from rtompc.config.load import load_site
from rtompc.steel_demo import SteelDemoOptions, write_files


def test_a_relative_output_folder_gives_files_that_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    opts = SteelDemoOptions(out=Path("rtompc-demo"))
    assert opts.out == tmp_path / "rtompc-demo"
    bench, config, _ = write_files(opts)
    assert set(load_benches(bench)) == {"steel", "furnace"}
    site = load_site(config)
    assert [u.name for u in site.units] == ["steel", "furnace"]
    assert Path(site.historian.path).parent == tmp_path / "rtompc-demo"
