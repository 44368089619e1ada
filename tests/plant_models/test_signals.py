"""Signals and signal sets: validation errors name the signal and the expectation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plant_models import ModelError, Signal, SignalSet, signal_set


def test_signal_fields_are_floats_and_defaults() -> None:
    s = Signal("t_r", "K", 273, 500, 400, "reactor temperature")
    assert (s.lower, s.upper, s.nominal) == (273.0, 500.0, 400.0)
    assert Signal("x", "1").lower == -math.inf


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "Bad Name", "unit": "K"}, "snake_case"),
        ({"name": "t", "unit": ""}, "missing unit"),
        ({"name": "t", "unit": "K", "lower": 2.0, "upper": 1.0}, "lower bound 2.0 is above"),
        ({"name": "t", "unit": "K", "nominal": 0.0}, "nominal must be positive"),
        ({"name": "t", "unit": "K", "lower": float("nan")}, "lower is NaN"),
        ({"name": "t", "unit": "K", "upper": "high"}, "upper must be a number"),
    ],
    ids=["name", "unit", "inverted", "nominal", "nan", "type"],
)
def test_signal_rejects_bad_definitions(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ModelError, match=fragment):
        Signal(**kwargs)


def test_set_vector_by_name_and_array() -> None:
    xs = signal_set("x", Signal("a", "m"), Signal("b", "K"))
    np.testing.assert_array_equal(xs.vector({"b": 2.0, "a": 1.0}), [1.0, 2.0])
    np.testing.assert_array_equal(xs.vector([3, 4]), [3.0, 4.0])
    np.testing.assert_array_equal(xs.vector({"a": 5.0}, default=[0.0, 9.0]), [5.0, 9.0])
    assert xs.mapping([1, 2]) == {"a": 1.0, "b": 2.0}
    assert xs.names == ("a", "b") and "a" in xs and xs["b"].unit == "K"


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"c": 1.0}, "unknown x signal 'c'; known: a, b"),
        ({"a": 1.0}, "missing values for b"),
        ([1.0, 2.0, 3.0], r"expected 2 values \(a, b\)"),
        ([1.0, float("nan")], r"non-finite value \(NaN or inf\) for b"),
        ({"a": 1.0, "b": float("inf")}, "non-finite value .* for b"),
        ({"a": "x", "b": 1.0}, r"x\['a'\]: expected a number"),
    ],
    ids=["unknown", "missing", "dims", "nan", "inf", "type"],
)
def test_set_vector_errors(values: object, fragment: str) -> None:
    xs = signal_set("x", Signal("a", "m"), Signal("b", "K"))
    with pytest.raises(ModelError, match=fragment):
        xs.vector(values)  # type: ignore[arg-type]


def test_duplicate_names_rejected() -> None:
    with pytest.raises(ModelError, match="duplicate signal name 'a'"):
        SignalSet((Signal("a", "m"), Signal("a", "K")), kind="u")
