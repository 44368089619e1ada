"""Issue 17's controller options reach mpc.config.MpcConfig through the typed config."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpc.config import Transcription
from rtompc.config import load_app
from rtompc.config.build import mpc_config
from rtompc.config.errors import ConfigProblems

APP = """
[plant]
name = "van_de_vusse"
params = {{ parameters = "do_mpc" }}

[transport]
kind = "inprocess"

[loop]
sample_time_s = 18.0

[mpc]
horizon_steps = 10
transcription = "stagewise"
ipopt_fallback = false
first_sqp_iterations = 40
hard_bound_penalty = 5000.0
robust_horizon = 2
robust = {{ alpha = [1.0, 1.05], beta = [1.0, 1.1] }}
robust_probabilities = {{ alpha = [0.8, 0.2], beta = [0.5, 0.5] }}
{extra}
[[mpc.cvs]]
name = "c_b"
weight = 1.0
target = 600.0
cost_scale = 100.0
[[mpc.cvs]]
name = "t_r"
hard_upper = "140 degC"
[[mpc.cvs]]
name = "c_a"
linear_cost = -0.001
[[mpc.mvs]]
name = "f_dil"
move_weight = 0.1
cost_scale = 0.001
linear_cost = 10.0
"""


def test_stagewise_keys_map_onto_mpc_config(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    path.write_text(APP.format(extra=""), encoding="utf-8")
    mc, _ = mpc_config(load_app(path))
    assert mc.transcription is Transcription.STAGEWISE
    assert mc.ipopt_fallback is False and mc.first_sqp_iterations == 40
    assert mc.hard_bound_penalty == 5000.0 and mc.robust_horizon == 2
    assert mc.robust is not None and mc.robust.branch_probabilities() == pytest.approx(
        (0.4, 0.4, 0.1, 0.1)
    )
    cvs = {c.name: c for c in mc.cvs}
    assert cvs["c_b"].cost_scale == 100.0
    assert cvs["t_r"].hard_upper == pytest.approx(413.15)
    assert cvs["c_a"].linear_cost == -0.001
    mv = mc.mvs[0]
    assert mv.cost_scale == 0.001 and mv.linear_cost == 10.0


def test_probabilities_must_match_the_robust_values(tmp_path: Path) -> None:
    path = tmp_path / "app.toml"
    text = APP.format(extra="").replace("beta = [0.5, 0.5]", "beta = [0.5]")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigProblems, match="robust_probabilities"):
        load_app(path)
