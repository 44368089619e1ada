"""Identified models as files (JSON) and as discrete-time PlantModels with dead-time states."""

from __future__ import annotations

import json

import numpy as np
import pytest

from plant_models.errors import ModelError
from plant_models.identification import IdentifiedModel
from plant_models.identified import load_model, read_identified
from plant_models.library import load
from plant_models.model import TimeDomain


@pytest.fixture()
def model() -> IdentifiedModel:
    a = np.array([[0.9, 0.05], [0.0, 0.7]])
    b = np.array([[0.2, 0.0], [0.1, 0.4]])
    c = np.array([[1.0, 0.0], [0.5, 1.0]])
    d = np.array([[0.0, 0.01], [0.0, 0.0]])
    return IdentifiedModel(
        a,
        b,
        c,
        d,
        2.0,
        ("valve", "pump"),
        ("level", "flow"),
        np.array([0.4, 3.0]),
        np.array([0.12, 1e-4]),
        delays=(2, 0),
        u_units=("1", "V"),
        y_units=("m", "m^3/s"),
        method="test",
        info={"fit_percent": [97.0, 95.5]},
    )


def test_json_round_trip_through_the_registry(model, tmp_path) -> None:
    path = model.save(tmp_path / "unit.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "rtompc.identified_model" and doc["version"] == 1
    back = read_identified(path)
    for k in "ABCD":
        np.testing.assert_array_equal(getattr(back, k), getattr(model, k))
    assert back.delays == (2, 0) and back.u_units == ("1", "V") and back.info == model.info
    plant = load(str(path))
    assert plant.name == "unit"
    assert plant.time_domain is TimeDomain.DISCRETE and plant.sample_time_s == 2.0
    assert plant.u.names == ("valve", "pump") and plant.y.names == ("level", "flow")
    assert plant.x.names[-2:] == ("valve_lag_01", "valve_lag_02")
    assert plant.y["level"].unit == "m"
    assert load(str(path), model_name="tank").name == "tank"


def test_plant_model_simulation_matches_the_deviation_model_with_dead_time(model) -> None:
    plant = model.to_plant_model()
    rng = np.random.default_rng(0)
    du = rng.normal(size=(40, 2))
    traj = plant.simulate(None, model.u0 + du, 2.0)
    expected = model.simulate(du) + model.y0
    np.testing.assert_allclose(traj.y[:-1], expected, atol=1e-12)
    # the nominal point is a steady state with the operating-point outputs
    np.testing.assert_allclose(plant.outputs(), model.y0)
    ss = plant.steady_state()
    np.testing.assert_allclose(ss.x, 0.0, atol=1e-9)
    # a step on the delayed input shows nothing for two samples but D of the undelayed one
    step = np.tile(model.u0 + [1.0, 0.0], (5, 1))
    y = plant.simulate(None, step, 2.0).y
    np.testing.assert_allclose(y[:3], np.tile(model.y0, (3, 1)), atol=1e-15)
    assert y[3, 0] > model.y0[0]
    # linearisation of the PlantModel gives the model's gain
    np.testing.assert_allclose(plant.linearize().gain(), model.gain(), rtol=1e-9)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.pop("A"), "missing key 'A'"),
        (lambda d: d.update(format="other"), "'format'"),
        (lambda d: d.update(version=9), "'version'"),
        (lambda d: d.update(B=[[1.0]]), r"'B' has shape \(1, 1\), expected \(2, 2\)"),
        (lambda d: d["inputs"][0].pop("operating_point"), "operating_point"),
        (lambda d: d.update(sample_time_s="fast"), "sample_time_s"),
    ],
    ids=["no-A", "format", "version", "B-shape", "no-op", "dt"],
)
def test_bad_files_name_the_key(model, tmp_path, mutate, match) -> None:
    doc = model.to_dict()
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match=match):
        load_model(path)


def test_other_file_problems(model, tmp_path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model(tmp_path / "x.json")
    with pytest.raises(ModelError, match="json"):
        load(str(tmp_path / "m.npz"))
    with pytest.raises(ModelError, match="use a .json name"):
        model.save(tmp_path / "m.pkl")
    path = model.save(tmp_path / "ok.json")
    with pytest.raises(ModelError, match="unknown parameter"):
        load_model(path, colour="red")
    with pytest.raises(ModelError, match="shape"):
        IdentifiedModel(
            np.eye(2),
            np.ones((3, 2)),
            np.eye(2),
            np.zeros((2, 2)),
            1.0,
            ("a", "b"),
            ("c", "d"),
            np.zeros(2),
            np.zeros(2),
        )


def test_input_limits_round_trip_into_the_plant_model(tmp_path) -> None:
    """The plant's MV bounds travel with an identified model (``rtompc sysid`` from a step test
    records them), so connect-time checks and the NMPC see them as for a first-principles
    model; an unbounded side is written as null."""
    import math

    m = IdentifiedModel(
        np.array([[0.9]]),
        np.array([[0.1, 0.2]]),
        np.array([[1.0]]),
        np.zeros((1, 2)),
        5.0,
        ("v1", "v2"),
        ("h1",),
        np.array([3.0, 3.0]),
        np.array([0.12]),
        u_units=("V", "V"),
        y_units=("m",),
        u_limits=((0.0, 10.0), (0.0, math.inf)),
    )
    path = m.save(tmp_path / "m.json")
    doc = json.loads(path.read_text())
    assert doc["inputs"][0]["lower"] == 0.0 and doc["inputs"][1]["upper"] is None
    plant = load(str(path))
    assert (plant.u["v1"].lower, plant.u["v1"].upper) == (0.0, 10.0)
    assert plant.u["v2"].upper == math.inf
    with pytest.raises(ModelError, match="u_limits"):
        IdentifiedModel(
            m.A,
            m.B,
            m.C,
            m.D,
            5.0,
            m.u_names,
            m.y_names,
            m.u0,
            m.y0,
            u_limits=((1.0, 0.0), (0.0, 1.0)),
        )
