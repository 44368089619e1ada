"""Issue 12, "What was seen": each finding about the configuration, through the commands a user
runs (``rtompc simulate`` and ``rtompc run``, which exist before and after the change). Each
test failed on aebdd36 and passes now."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rtompc.cli import main

VDV_APP = """
[plant]
name = "van_de_vusse"

[transport]
kind = "inprocess"

[loop]
sample_time_s = 20.0
mode = "on"

[mpc]
horizon_steps = 10
sample_time_s = 20.0
{mpc_extra}
[[mpc.cvs]]
name = "c_b"
{cv}
[[mpc.mvs]]
name = "f_dil"
move_weight = 0.1
[[mpc.mvs]]
name = "q_k"
move_weight = 0.1

[estimator]
measured = ["c_b", "t_r", "t_k"]
output_disturbances = ["c_b"]
{extra}
"""
TRACKING = "weight = 10.0\ntarget = 1090.0"

SCENARIO_HEAD = """
[scenario]
name = "finding"
duration_s = 600.0
"""
FINAL_ERROR = """
[[criterion]]
kpi = "final_error.c_b"
op = "<="
threshold = 20.0
"""


def _write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _app(cv: str = TRACKING, mpc_extra: str = "", extra: str = "") -> str:
    return VDV_APP.format(cv=cv, mpc_extra=mpc_extra, extra=extra)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unknown_key_lists_every_allowed_key_and_suggests_the_near_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # seen: "mpc.cvs[0].weigth: unknown key; this table accepts name, target, weight, zone"
    path = _write(
        tmp_path,
        SCENARIO_HEAD
        + _app(cv="weigth = 10.0\ntarget = 1090.0\nupper = 1200.0\nl1_penalty = 100.0"),
    )
    code, _, err = _cli(["simulate", str(path)], capsys)
    assert code == 2
    line = next(ln for ln in err.splitlines() if "weigth" in ln)
    assert "mpc.cvs[0].weigth: unknown key" in line and "did you mean 'weight'?" in line
    allowed = re.search(r"allowed keys here: (.*)", line)
    assert allowed is not None
    keys = {k.strip() for k in allowed.group(1).split(",")}
    assert {
        "name",
        "weight",
        "target",
        "lower",
        "upper",
        "l1_penalty",
        "l2_penalty",
        "zone",
        "zone_weight",
    } <= keys
    assert f"{path}:" in line  # file (and line) named


def test_typo_in_a_required_key_names_the_typed_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # seen: "mpc.horizon_steps: missing value" without a word about the 'horizon_step' typed
    text = SCENARIO_HEAD + _app().replace("horizon_steps = 10", "horizon_step = 10")
    code, _, err = _cli(["simulate", str(_write(tmp_path, text))], capsys)
    assert code == 2
    assert "mpc.horizon_step: unknown key; did you mean 'horizon_steps'?" in err
    assert "mpc.horizon_steps: missing required key" in err
    assert "'horizon_step' written here looks like a typo of 'horizon_steps'" in err


@pytest.mark.parametrize("command", ["run", "simulate"])
def test_readme_qp_solver_hpipm_is_accepted(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # seen: the README's qp_solver = "hpipm" rejected as an unknown key by run and simulate
    text = _app(mpc_extra='qp_solver = "hpipm"')
    if command == "simulate":
        path = _write(tmp_path, SCENARIO_HEAD + text + FINAL_ERROR)
        code, out, err = _cli(["simulate", str(path)], capsys)
    else:
        code, out, err = _cli(
            ["run", str(_write(tmp_path, text)), "--steps", "3", "--print-every", "0"], capsys
        )
    assert code == 0, err
    assert "summary" in out or "passed" in out


RTO = """
[economics]
prices = { c_b = 0.002, f_dil = -2000.0 }
limits = { f_dil = [0.0014, 0.0069] }

[rto]
method = "economic"
every_n = 2
handoff_cvs = ["c_b"]
handoff_mvs = ["f_dil"]
"""


def test_rto_section_runs_in_rtompc_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # seen: [rto] refused by 'rtompc run' ("not supported yet")
    code, out, err = _cli(
        ["run", str(_write(tmp_path, _app(extra=RTO))), "--steps", "6", "--print-every", "0"],
        capsys,
    )
    assert code == 0, err
    updates = re.search(r"rto_updates=(\d+)", out)
    assert updates is not None and int(updates.group(1)) >= 2, out


def test_rto_steady_gate_is_fed_in_rtompc_run(tmp_path: Path) -> None:
    """The economic RTO's steady-state gate sees every cycle's measurement in ``run``."""
    from types import SimpleNamespace

    import numpy as np

    from plant_models.samples import Measurement, Quality
    from rtompc.config import build, load_app

    cfg = load_app(_write(tmp_path, _app(extra=RTO + "steady_window_s = 240.0\n")))
    source = build.rto_source(cfg, build.models(cfg))
    feeds = build.rto_recorders(source)
    assert len(feeds) == 1
    assert source.steady()[0] is False  # window empty
    names = ("c_a", "c_b", "t_r", "t_k")
    for k in range(12):
        m = Measurement(
            20.0 * k, names, np.array([2140.0, 1090.0, 387.3, 386.0]), (Quality.GOOD,) * 4
        )
        for f in feeds:
            f.append(SimpleNamespace(measurement=m))
    assert source.steady() == (True, "")


def test_rto_every_n_without_rto_is_a_load_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _app().replace('mode = "on"', 'mode = "on"\nrto_every_n = 5')
    code, _, err = _cli(["run", str(_write(tmp_path, text)), "--steps", "2"], capsys)
    assert code == 2 and "loop.rto_every_n: needs an [rto] section" in err


def test_engineering_units_in_a_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # seen: config values only in SI (K, mol/m3, W, 1/s); engineers speak degC, mol/l, kW
    cv = (
        'weight = 10.0\ntarget = "1.09 mol/l"\n[[mpc.cvs]]\nname = "t_r"\n'
        'upper = "126.85 degC"\nl1_penalty = 100.0\nl2_penalty = 100.0'
    )
    text = (
        SCENARIO_HEAD
        + _app(cv=cv).replace(
            'name = "q_k"\nmove_weight = 0.1',
            'name = "q_k"\nmove_weight = 0.1\nmax_rate_per_s = "60 kW/min"',
        )
        + FINAL_ERROR
        + """
[[criterion]]
kpi = "violation.t_r"
op = "<="
threshold = 1.0
"""
    )
    code, out, err = _cli(["simulate", str(_write(tmp_path, text)), "--json"], capsys)
    assert code == 0, err + out
    assert '"final_error.c_b"' in out


def test_cv_without_objective_is_a_load_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # seen: a CV with no weight, target or zone was accepted; every QP then failed while the
    # status said success, and SHADOW proposed the middle of the MV bounds
    code, _, err = _cli(
        ["run", str(_write(tmp_path, _app(cv=""))), "--steps", "2", "--print-every", "0"], capsys
    )
    assert code == 2
    assert "mpc.cvs[0]: CV 'c_b' has no objective" in err


def test_weight_without_target_names_the_cv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(
        ["run", str(_write(tmp_path, _app(cv="weight = 1.0"))), "--steps", "2"], capsys
    )
    assert code == 2 and "mpc.cvs[0]: CV 'c_b' has weight > 0 but no target" in err


def test_rpm_and_r_min_tags_work_in_a_tag_map() -> None:
    # seen: 'r/min' and 'rpm' unknown; the error told the user to fix the tag's unit, and the
    # fix was then refused. f_dil of the Van de Vusse plant is in 1/s.
    from interfaces.tagmap import TagMap
    from plant_models.library import load

    vdv = load("van_de_vusse")
    for unit in ("rpm", "r/min"):
        tags = TagMap.from_mapping(
            {
                "namespace": "urn:plc",
                "setpoints": {
                    "f_dil": {"node": "s=SP", "unit": unit},
                    "q_k": {"node": "s=Q", "unit": "kW"},
                },
            },
            vdv,
        )
        tag = tags.setpoints[0]
        assert tag.to_model(60.0) == pytest.approx(1.0)
        assert tag.to_raw(1.0) == pytest.approx(60.0)
        assert tags.setpoints[1].to_model(2.0) == pytest.approx(2000.0)
