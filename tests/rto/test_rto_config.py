"""Bad economics are refused with a ConfigError naming the key."""

from __future__ import annotations

import math

import casadi as ca
import pytest

from plant_models.builder import build_model
from plant_models.errors import ConfigError
from plant_models.library import load
from plant_models.library.williams_otto import PRICES
from plant_models.signals import Signal, signal_set
from rto import EconomicOptimizer, RtoConfig


@pytest.fixture(scope="module")
def plant():
    return load("williams_otto")


def _unbounded_tank():
    """A mixing tank whose feed has no upper bound: selling the outflow is unbounded."""
    return build_model(
        "tank",
        x=signal_set("x", Signal("c", "1", 0.0, 1.0, 0.5)),
        u=signal_set("u", Signal("f_in", "kg/s", 0.0, math.inf, 1.0)),
        y=signal_set("y", Signal("f_out", "kg/s", 0.0, math.inf, 1.0)),
        rhs=lambda s: {"c": s.f_in * (1.0 - s.c) / 10.0},
        output=lambda s: {"f_out": s.f_in * ca.SX(1.0)},
        nominal={"x": {"c": 1.0}, "u": {"f_in": 1.0}},
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prices": {**PRICES, "f_q": 3.0}}, r"prices\['f_q'\].*no stream"),
        ({"prices": PRICES, "limits": {"t_jacket": (300.0, 400.0)}}, r"limits\['t_jacket'\]"),
        ({"prices": PRICES, "limits": {"f_a": (1.0, 2.0)}}, r"limits\['f_a'\].*disturbance"),
        ({"prices": PRICES, "limits": {"f_b": (7.0, 8.0)}}, r"limits\['f_b'\].*infeasible"),
        ({"prices": PRICES, "decisions": ("f_a",)}, r"decisions.*'f_a'"),
    ],
    ids=["missing_stream", "unknown_limit", "limit_on_disturbance",
         "limit_outside_bounds", "decision_not_input"],
)
def test_config_errors_name_the_key(plant, kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        EconomicOptimizer(plant, RtoConfig(**kwargs))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prices": {}}, "at least one"),
        ({"prices": {"f_p": math.nan}}, r"prices\['f_p'\]"),
        ({"prices": PRICES, "limits": {"x_g": (0.2, 0.1)}}, r"limits\['x_g'\].*above"),
        ({"prices": PRICES, "limits": {"x_g": 0.1}}, r"limits\['x_g'\].*\(lower, upper\)"),
        ({"prices": PRICES, "tol": -1.0}, "tol"),
    ],
)
def test_config_is_validated_on_construction(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        RtoConfig(**kwargs)


def test_unbounded_objective_is_refused() -> None:
    tank = _unbounded_tank()
    with pytest.raises(ConfigError, match=r"prices\['c'\].*it is a state"):
        EconomicOptimizer(tank, RtoConfig(prices={"c": 1.0}, limits={"f_in": (0.0, 1.0)}))
    with pytest.raises(ConfigError, match=r"limits\['f_in'\].*no finite upper limit.*unbounded"):
        EconomicOptimizer(tank, RtoConfig(prices={"f_out": 2.0, "f_in": -1.0}))
    # a limit makes it bounded: the optimum sits on it and the limit is worth the margin
    res = EconomicOptimizer(
        tank, RtoConfig(prices={"f_out": 2.0, "f_in": -1.0}, limits={"f_in": (0.0, 3.0)})
    ).solve()
    assert res.u[0] == pytest.approx(3.0)
    assert res.profit == pytest.approx(3.0)
    assert res.sensitivity("f_in", "upper") == pytest.approx(1.0, rel=1e-6)


def test_config_is_frozen() -> None:
    cfg = RtoConfig(prices=PRICES)
    with pytest.raises(AttributeError):
        cfg.tol = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.prices["f_p"] = 0.0  # type: ignore[index]
