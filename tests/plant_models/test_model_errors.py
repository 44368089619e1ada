"""Bad input to the model core gets clear errors from the one exception tree."""

from __future__ import annotations

from pathlib import Path

import casadi as ca
import numpy as np
import pytest

from plant_models import (
    ModelError,
    OperatingPoint,
    PlantModel,
    Signal,
    SolverFailed,
    TimeDomain,
    build_model,
    signal_set,
)
from plant_models.library import load, names


@pytest.fixture(scope="module")
def cstr():
    return load("van_de_vusse")


def test_registry_lists_and_rejects_unknown() -> None:
    assert "van_de_vusse" in names()
    with pytest.raises(ModelError, match="unknown plant 'nope'; known: van_de_vusse"):
        load("nope")
    with pytest.raises(ModelError, match="unknown parameter.*colour.*accepted: parameters"):
        load("van_de_vusse", colour="red")
    with pytest.raises(ModelError, match="parameters must be one of"):
        load("van_de_vusse", parameters="other")


def test_simulate_errors(cstr) -> None:
    with pytest.raises(ModelError, match=r"u must have shape \(steps, 2\) for inputs f_dil, q_k"):
        cstr.simulate(None, cstr.nominal.u, 1.0)
    with pytest.raises(ModelError, match=r"expected shape \(3, 2\)|expected 2 values"):
        cstr.simulate(None, np.ones((3, 3)), 1.0)
    bad = np.tile(cstr.nominal.u, (3, 1))
    bad[1, 0] = np.nan
    with pytest.raises(ModelError, match="non-finite value at step 1, column 0"):
        cstr.simulate(None, bad, 1.0)
    with pytest.raises(ModelError, match="dt must be positive"):
        cstr.simulate(None, np.tile(cstr.nominal.u, (3, 1)), -1.0)
    with pytest.raises(ModelError, match="non-finite value .* for t_r"):
        cstr.simulate({"c_a": 1.0, "c_b": 1.0, "t_r": np.inf, "t_k": 300.0},
                      np.tile(cstr.nominal.u, (1, 1)), 1.0)


def test_steady_state_errors(cstr) -> None:
    with pytest.raises(ModelError, match="must be square; 1 output targets"):
        cstr.steady_state(targets={"c_b": 1000.0})
    with pytest.raises(ModelError, match="unknown y signal 'c_z'"):
        cstr.steady_state(targets={"c_z": 1.0, "t_r": 390.0})
    # c_B above what any input can reach inside the bounds: no steady state
    with pytest.raises(SolverFailed, match="steady state of 'van_de_vusse' not found"):
        cstr.steady_state(targets={"c_b": 4.9e3, "t_r": 390.0})


def test_model_construction_errors() -> None:
    x = signal_set("x", Signal("h", "m", 0, 1))
    u = signal_set("u", Signal("q", "m^3/s"))
    y = signal_set("y", Signal("level", "m"))
    with pytest.raises(ModelError, match="rhs must give exactly the x signals; missing \\['h'\\]"):
        build_model("t", x=x, u=u, y=y, rhs=lambda s: {}, output=lambda s: {"level": s.h},
                    nominal={"x": {"h": 0.5}, "u": {"q": 0.1}})
    with pytest.raises(ModelError, match="missing values for q"):
        build_model("t", x=x, u=u, y=y, rhs=lambda s: {"h": s.q}, output=lambda s: {"level": s.h},
                    nominal={"x": {"h": 0.5}, "u": {}})
    with pytest.raises(ModelError, match="discrete-time model needs sample_time_s"):
        build_model("t", x=x, u=u, y=y, rhs=lambda s: {"h": s.h}, output=lambda s: {"level": s.h},
                    nominal={"x": {"h": 0.5}, "u": {"q": 0.1}}, time_domain=TimeDomain.DISCRETE)
    xs, us = ca.SX.sym("x", 2), ca.SX.sym("u", 1)
    f = ca.Function("f", [xs, us, ca.SX(0, 1), ca.SX(0, 1)], [xs])
    with pytest.raises(ModelError, match="input .* has 2 entries, expected 1"):
        PlantModel("t", x, u, signal_set("d"), signal_set("p"), y, f, f,
                   OperatingPoint(np.zeros(1), np.zeros(1), np.zeros(0), np.zeros(0)))


def test_discrete_model_simulates_and_linearises() -> None:
    x = signal_set("x", Signal("z", "1"))
    u = signal_set("u", Signal("v", "1"))
    y = signal_set("y", Signal("out", "1"))
    m = build_model("ar1", x=x, u=u, y=y, rhs=lambda s: {"z": 0.9 * s.z + 0.5 * s.v},
                    output=lambda s: {"out": 2 * s.z}, nominal={"x": {"z": 0}, "u": {"v": 0}},
                    time_domain=TimeDomain.DISCRETE, sample_time_s=2.0)
    traj = m.simulate([0.0], np.ones((3, 1)), 2.0)
    np.testing.assert_allclose(traj.x[:, 0], [0, 0.5, 0.95, 1.355])
    ss = m.steady_state(u=[1.0])
    assert ss.x[0] == pytest.approx(5.0)
    lin = m.linearize()
    assert lin.sample_time_s == 2.0 and lin.gain()[0, 0] == pytest.approx(10.0)
    with pytest.raises(ModelError, match="cannot step by 1.0 s"):
        m.simulate([0.0], np.ones((3, 1)), 1.0)


def test_user_plant_from_file(tmp_path: Path) -> None:
    src = tmp_path / "tank.py"
    src.write_text(
        "from plant_models import Signal, build_model, signal_set\n"
        "def make(area=2.0):\n"
        "    x = signal_set('x', Signal('h', 'm', 0, 10))\n"
        "    u = signal_set('u', Signal('q_in', 'm^3/s', 0, 1))\n"
        "    y = signal_set('y', Signal('level', 'm'))\n"
        "    return build_model('tank', x=x, u=u, y=y,\n"
        "        rhs=lambda s: {'h': (s.q_in - 0.1 * s.h) / area},\n"
        "        output=lambda s: {'level': s.h}, nominal={'x': {'h': 1}, 'u': {'q_in': 0.1}})\n"
    )
    m = load(f"{src}:make", area=4.0)
    assert m.steady_state(u=[0.2]).x[0] == pytest.approx(2.0)
    with pytest.raises(ModelError, match="has no function 'other'"):
        load(f"{src}:other")
