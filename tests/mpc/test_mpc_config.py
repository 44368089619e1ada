"""MpcConfig validation: every bad field raises ConfigError naming the field."""

from __future__ import annotations

import math

import pytest

from mpc import CvSpec, Discretisation, MpcConfig, MvSpec, NmpcController, RobustSpec
from plant_models.errors import ConfigError
from plant_models.library import load


@pytest.fixture(scope="module")
def model():
    return load("van_de_vusse", parameters="do_mpc")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"horizon_steps": 0}, "horizon_steps"),
        ({"horizon_steps": 2.5}, "horizon_steps"),
        ({"sample_time_s": -1.0}, "sample_time_s"),
        ({"sample_time_s": math.nan}, "sample_time_s"),
        ({"rk4_substeps": 0}, "rk4_substeps"),
        ({"discretisation": "euler"}, "discretisation"),
        ({"terminal_weight": -1.0}, "terminal_weight"),
        ({"control_horizon_steps": 0}, "control_horizon_steps"),
        ({"control_horizon_steps": 11}, "control_horizon_steps"),
        ({"move_blocks": (3, 3)}, "move_blocks"),
        ({"move_blocks": (5, 0, 5)}, "move_blocks"),
        ({"cvs": (CvSpec("c_b"), CvSpec("c_b"))}, "cvs"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_bad_problem_fields(kwargs, field):
    args = {"horizon_steps": 10, "sample_time_s": 18.0, **kwargs}
    with pytest.raises(ConfigError, match=field):
        MpcConfig(**args)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: CvSpec("c_b", weight=-1.0, target=1.0), r"cvs\['c_b'\].weight"),
        (lambda: CvSpec("c_b", weight=1.0), r"cvs\['c_b'\].target"),
        (lambda: CvSpec("t_r", lower=400.0, upper=300.0, l1_penalty=1.0), r"cvs\['t_r'\].lower"),
        (lambda: CvSpec("t_r", upper=400.0), r"cvs\['t_r'\].l1_penalty"),
        (lambda: CvSpec("t_r", zone=(5.0, 1.0), zone_weight=1.0), r"cvs\['t_r'\].zone"),
        (lambda: CvSpec("t_r", zone=(1.0, 5.0)), r"cvs\['t_r'\].zone_weight"),
        (lambda: CvSpec("c_b", l2_penalty=-2.0), r"cvs\['c_b'\].l2_penalty"),
        (lambda: MvSpec("q_k", move_weight=-1e-3), r"mvs\['q_k'\].move_weight"),
        (lambda: MvSpec("q_k", weight=1.0), r"mvs\['q_k'\].target"),
        (lambda: MvSpec("q_k", lower=0.0, upper=-10.0), r"mvs\['q_k'\].lower"),
        (lambda: MvSpec("q_k", max_rate_per_s=0.0), r"mvs\['q_k'\].max_rate_per_s"),
        (lambda: RobustSpec((("alpha", ()),)), r"robust.values\['alpha'\]"),
    ],
)
def test_bad_signal_specs(make, field):
    with pytest.raises(ConfigError, match=field):
        make()


def test_unknown_signal_names_are_named(model):
    cfg = MpcConfig(10, 18.0, cvs=(CvSpec("c_x", weight=1.0, target=1.0),))
    with pytest.raises(ConfigError, match=r"cvs\['c_x'\].name.*c_a, c_b, t_r, t_k"):
        NmpcController(model, cfg)
    cfg = MpcConfig(10, 18.0, mvs=(MvSpec("flow"),))
    with pytest.raises(ConfigError, match=r"mvs\['flow'\].name.*f_dil, q_k"):
        cfg.check_against(model)
    cfg = MpcConfig(10, 18.0, robust=RobustSpec((("gamma", (1.0, 2.0)),)))
    with pytest.raises(ConfigError, match=r"robust.values\['gamma'\]"):
        cfg.check_against(model)


def test_mv_bound_inverted_against_model_default(model):
    # upper only, below the model's lower bound of f_dil (5/h)
    cfg = MpcConfig(10, 18.0, mvs=(MvSpec("f_dil", upper=1e-4),))
    with pytest.raises(ConfigError, match=r"mvs\['f_dil'\].lower/upper"):
        cfg.check_against(model)


def test_valid_config_is_frozen_and_normalised():
    cfg = MpcConfig(
        horizon_steps=10, sample_time_s=18, discretisation="collocation",
        cvs=[CvSpec("c_b", weight=1, target=600)], move_blocks=[2, 3, 5],
    )
    assert cfg.discretisation is Discretisation.COLLOCATION
    assert cfg.cvs[0].weight == 1.0 and isinstance(cfg.cvs, tuple)
    assert [cfg.free_move(k) for k in range(10)] == [
        True, False, True, False, False, True, False, False, False, False]
    with pytest.raises(AttributeError):
        cfg.horizon_steps = 3  # type: ignore[misc]
    assert RobustSpec((("alpha", (1, 2, 3)), ("beta", (1, 2)))).n_scenarios == 6
