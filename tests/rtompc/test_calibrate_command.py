"""``rtompc calibrate``: fit first-principles parameters to a historian run, write them into the
config, through the command line.

The in-process plant is the quadruple tank (Johansson 2000) whose valves have
drifted (gamma1 = 0.65, gamma2 = 0.55 instead of the model's 0.70 / 0.60). A
20-minute step test goes to the historian; ``calibrate --param gamma1,gamma2``
must recover the drifted values (noise-free data: within 1e-3, and inside the
reported 95 % intervals), write them as ``[model] p`` into a new file that
loads as a valid config, update an existing ``p`` line in place keeping a
``.bak`` of the old file, and write nothing when asked for a parameter the
model does not have.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rtompc.config import build, load_app

APP = """# drifted valves: the controller's model does not know yet
[plant]
name = "quadruple_tank"
p = { gamma1 = 0.65, gamma2 = 0.55 }

[transport]
kind = "inprocess"

[loop]
sample_time_s = 5.0

[historian]
path = "h.sqlite"
"""

PLAN = """
duration = "20 min"
lead_in = "20 s"
seed = 4

[[mv]]
name = "v1"
signal = "gbn"
amplitude = "0.3 V"
min_switch_time = "30 s"

[[mv]]
name = "v2"
signal = "gbn"
amplitude = "0.3 V"
min_switch_time = "30 s"
"""


def _rtompc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtompc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("calibrate")
    (d / "app.toml").write_text(APP)
    (d / "plan.toml").write_text(PLAN)
    res = _rtompc("steptest", "app.toml", "plan.toml", "--print-every", "0", cwd=d)
    assert res.returncode == 0, res.stderr[-2000:]
    return d


def test_calibrate_recovers_drifted_valves_into_a_new_file(bench: Path) -> None:
    res = _rtompc(
        "calibrate",
        "app.toml",
        "--historian",
        "h.sqlite",
        "--run",
        "1",
        "--param",
        "gamma1,gamma2",
        "--out",
        "app_cal.toml",
        "--json",
        cwd=bench,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    for name, truth in (("gamma1", 0.65), ("gamma2", 0.55)):
        got = out["parameters"][name]
        assert got["value"] == pytest.approx(truth, abs=1e-3)
        lo, hi = got["interval"]
        assert lo <= truth <= hi
    assert (bench / "app.toml").read_text() == APP  # the original is untouched
    cfg = load_app(bench / "app_cal.toml")
    model = build.models(cfg).model
    p = dict(zip(model.p.names, model.nominal.p, strict=True))
    assert p["gamma1"] == pytest.approx(0.65, abs=1e-3)
    assert p["k1"] == pytest.approx(3.33e-6)  # untouched parameters keep their values


def test_calibrate_in_place_updates_p_and_keeps_a_backup(bench: Path) -> None:
    text = APP + '\n[model]\nname = "quadruple_tank"\np = { gamma1 = 0.7, k1 = 3.33e-6 }\n'
    (bench / "inplace.toml").write_text(text)
    res = _rtompc(
        "calibrate",
        "inplace.toml",
        "--historian",
        "h.sqlite",
        "--run",
        "1",
        "--param",
        "gamma1",
        "--param",
        "gamma2",
        "--in-place",
        cwd=bench,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert (bench / "inplace.toml.bak").read_text() == text
    new = (bench / "inplace.toml").read_text()
    assert new.count("[model]") == 1 and new.count("p = {") == 2  # [plant] p and [model] p
    cfg = load_app(bench / "inplace.toml")
    assert cfg.model is not None
    assert cfg.model.p["gamma2"] == pytest.approx(0.55, abs=1e-3)
    assert cfg.model.p["k1"] == pytest.approx(3.33e-6)


def test_calibrate_unknown_parameter_writes_nothing(bench: Path) -> None:
    res = _rtompc(
        "calibrate",
        "app.toml",
        "--historian",
        "h.sqlite",
        "--run",
        "1",
        "--param",
        "gamma9",
        "--out",
        "never.toml",
        cwd=bench,
    )
    assert res.returncode == 2
    assert "gamma9" in res.stderr and "gamma1" in res.stderr
    assert not (bench / "never.toml").exists()
    assert not list(bench.glob(".*.part"))
