"""Slab reheating furnace: conduction vs the analytic series, energy balance, monotone heating.

Analytic reference: Incropera & DeWitt, Fundamentals of Heat and Mass Transfer,
6th ed., Sec. 5.5.1, eqs. (5.39a)-(5.39c): plane wall of half-thickness L,
initial temperature T_i, both faces exposed to a fluid at T_inf with
coefficient h:

    theta* = sum_n C_n exp(-zeta_n^2 Fo) cos(zeta_n x*),
    C_n = 4 sin(zeta_n) / (2 zeta_n + sin(2 zeta_n)),  zeta_n tan(zeta_n) = Bi,

with Bi = h L / k and Fo = alpha t / L^2. The model's ``boundary="convection"``
and ``properties="constant"`` variant with all zone temperatures at T_inf and
htc_top = htc_bottom = h is exactly that problem discretised in space.
"""

from __future__ import annotations

import casadi as ca
import numpy as np
import pytest
from scipy.optimize import brentq

from plant_models.errors import ModelError
from plant_models.library import load
from plant_models.library.slab_furnace import (
    C0,
    CP_CONST,
    FURNACE_LENGTH,
    K_CONST,
    RHO,
    T_AMB,
    Properties,
    discharge_function,
    enthalpy,
    simulate_passage,
    specific_heat,
    zone_weights,
)


def _zetas(bi: float, n: int) -> np.ndarray:
    """First n roots of zeta tan(zeta) = Bi (one in each ((k) pi, (k + 1/2) pi))."""
    out = []
    for k in range(n):
        lo, hi = k * np.pi + 1e-12, k * np.pi + np.pi / 2 - 1e-12
        out.append(brentq(lambda z: z * np.tan(z) - bi, lo, hi))
    return np.array(out)


def plane_wall_series(x_star: float, fo: np.ndarray, bi: float, terms: int = 60) -> np.ndarray:
    """theta* = (T - T_inf)/(T_i - T_inf) of Incropera eq. (5.39a)."""
    z = _zetas(bi, terms)
    c = 4.0 * np.sin(z) / (2.0 * z + np.sin(2.0 * z))
    return np.sum(c[None, :] * np.exp(-np.outer(fo, z**2)) * np.cos(z * x_star)[None, :], axis=1)


def test_series_reference_itself_is_right() -> None:
    """Incropera Table 5.1: Bi = 1.0 gives zeta_1 = 0.8603, C_1 = 1.1191."""
    z = _zetas(1.0, 1)[0]
    assert z == pytest.approx(0.8603, abs=1e-4)
    assert 4 * np.sin(z) / (2 * z + np.sin(2 * z)) == pytest.approx(1.1191, abs=1e-4)
    # theta*(x*, 0) = 1 inside the wall
    assert plane_wall_series(0.3, np.array([0.0]), 1.0, terms=400)[0] == pytest.approx(1.0, abs=5e-3)


def _conduction_error(n_nodes: int, h: float = 200.0) -> tuple[float, float]:
    thickness = 0.22
    half = thickness / 2
    model = load("slab_furnace", n_nodes=n_nodes, boundary="convection", properties="constant")
    t_inf, t_i = 1300.0 + C0, T_AMB
    alpha = K_CONST / (RHO * CP_CONST)
    bi = h * half / K_CONST
    dt, steps = 120.0, 60  # 2 h, Fo up to 0.78
    u = np.full((steps, len(model.u)), t_inf)
    traj = model.simulate(None, u, dt, p={"htc_top": h, "htc_bottom": h})
    fo = alpha * traj.t / half**2
    centre = t_inf + (t_i - t_inf) * plane_wall_series(0.0, fo, bi)
    surface = t_inf + (t_i - t_inf) * plane_wall_series(1.0, fo, bi)
    keep = fo >= 0.05
    span = t_inf - t_i
    y = traj.y
    i_mean, i_surf, i_diff = (model.y.index(n) for n in ("t_mean", "t_surface", "t_diff"))
    model_centre = y[:, i_surf] - y[:, i_diff]
    err_c = np.max(np.abs(model_centre[keep] - centre[keep])) / span
    err_s = np.max(np.abs(y[keep, i_surf] - surface[keep])) / span
    # symmetric problem: top and bottom faces equal
    np.testing.assert_allclose(traj.x[:, 0], traj.x[:, n_nodes - 1], rtol=1e-9)
    assert np.all(np.diff(y[:, i_mean]) > 0)
    return err_c, err_s


def test_conduction_matches_plane_wall_series() -> None:
    """15 nodes (the default), Bi = 0.63, Fo >= 0.05: centre within 0.1 %, surface within 0.3 %
    of T_inf - T_i (measured: 0.04 % and 0.21 %)."""
    err_c, err_s = _conduction_error(15)
    assert err_c < 1e-3
    assert err_s < 3e-3


def test_conduction_error_falls_with_second_order_under_refinement() -> None:
    e15 = max(_conduction_error(15))
    e29 = max(_conduction_error(29))  # half the node spacing
    assert e29 < e15 / 3.0  # second order: about 1/4
    assert e29 < 1.5e-3


def test_energy_is_conserved_exactly_by_the_discretisation() -> None:
    """sum_i rho dx_i cp(T_i) dT_i/dt equals the heat flux through the faces, at random states."""
    model = load("slab_furnace")
    n = 15
    dx = 0.22 / (n - 1)
    widths = np.full(n, dx)
    widths[0] = widths[-1] = dx / 2
    rng = np.random.default_rng(1)
    i_flux = model.y.index("heat_flux")
    for _ in range(20):
        temps = rng.uniform(300.0, 1500.0, n)
        x = np.concatenate([temps, [rng.uniform(0, FURNACE_LENGTH), 0.0]])
        u = rng.uniform(1000.0, 1600.0, 4)
        xdot = model.rhs(x=x, u=u)
        cp = np.array([float(specific_heat(t, Properties.TEMPERATURE_DEPENDENT)) for t in temps])
        stored = np.sum(RHO * widths * cp * xdot[:n])
        flux = model.outputs(x=x, u=u)[i_flux]
        assert stored == pytest.approx(flux, rel=1e-10, abs=1e-6 * abs(flux))


def test_energy_balance_over_a_passage() -> None:
    """Enthalpy gained by the slab = time integral of the face heat flux (within 0.3 %)."""
    model = load("slab_furnace")
    traj = simulate_passage(model, steps=400)
    n = 15
    dx = 0.22 / (n - 1)
    widths = np.full(n, dx)
    widths[0] = widths[-1] = dx / 2

    def slab_enthalpy(temps: np.ndarray) -> float:
        h = np.array([float(enthalpy(t, Properties.TEMPERATURE_DEPENDENT)) for t in temps])
        return float(np.sum(RHO * widths * h))

    gained = slab_enthalpy(traj.x[-1, :n]) - slab_enthalpy(traj.x[0, :n])
    flux = traj.y[:, model.y.index("heat_flux")]
    supplied = np.trapezoid(flux, traj.t)
    assert gained == pytest.approx(supplied, rel=3e-3)
    # enthalpy per kg gained, 298 K -> discharge, from the closed form
    per_kg = gained / (RHO * 0.22)
    assert 0.75e6 < per_kg < 0.9e6
    # the fuel-energy state is the integral of the fuel rate
    rate = traj.y[:, model.y.index("fuel_rate")]
    fuel = traj.y[-1, model.y.index("fuel_energy")]
    assert fuel == pytest.approx(np.trapezoid(rate, traj.t), rel=3e-3)
    # fuel exceeds the heat absorbed (losses and flue gas): thermal efficiency 45-75 %
    assert 0.45 < per_kg / fuel < 0.75


def test_nominal_passage_gives_typical_discharge_figures() -> None:
    """2.5 h for a 0.22 m slab: 1200-1250 degC mean, |surface - centre| < 40 K, 1.2-1.8 GJ/t."""
    model = load("slab_furnace")
    traj = simulate_passage(model, steps=60)
    y = model.y.mapping(traj.y[-1])
    assert 1200.0 + C0 <= y["t_mean"] <= 1250.0 + C0
    assert abs(y["t_diff"]) < 40.0
    assert y["position"] == pytest.approx(FURNACE_LENGTH, rel=1e-9)
    assert 1.2e6 < y["fuel_energy"] < 1.8e6
    assert y["fuel_cost"] == pytest.approx(y["fuel_energy"] * 35.0 / 3.6e9)


def test_heating_is_monotone_along_the_furnace_and_in_the_zone_temperatures() -> None:
    model = load("slab_furnace")
    traj = simulate_passage(model, steps=60)
    n = 15
    i_mean = model.y.index("t_mean")
    assert np.all(np.diff(traj.y[:, i_mean]) > 0)
    centre = traj.x[:, n // 2]
    assert np.all(np.diff(centre) >= -1e-9)
    # gas hotter than the surface all the way (so the slab only ever takes heat)
    assert np.all(traj.y[:, model.y.index("heat_flux")] > 0)
    base = traj.y[-1, i_mean]
    for j in range(len(model.u)):
        u = model.nominal.u.copy()
        u[j] += 20.0
        hotter = simulate_passage(model, u=u, steps=60).y[-1, i_mean]
        assert hotter > base + 1.0, model.u.names[j]
    # a slower slab (longer residence) leaves hotter and more uniform
    slow = simulate_passage(model, slab_speed=0.9 * model.nominal.d[0], steps=60)
    assert slow.y[-1, i_mean] > base
    assert abs(slow.y[-1, model.y.index("t_diff")]) < abs(traj.y[-1, model.y.index("t_diff")])


def test_zone_weights_are_a_smooth_partition_of_unity() -> None:
    zs = np.linspace(-5, FURNACE_LENGTH + 5, 401)
    w = np.array([[float(wi) for wi in zone_weights(z)] for z in zs])
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(w >= 0)
    # zone centres are (almost) pure: 3 m (6 blend widths) from a boundary, 1 - sigmoid(6)
    for j, z in enumerate((6.0, 16.5, 25.5, 33.0)):
        assert float(zone_weights(z)[j]) > 0.995


def test_bottom_face_heats_slower_than_top_with_default_exchange_factors() -> None:
    model = load("slab_furnace")
    traj = simulate_passage(model, steps=30)
    assert traj.x[5, 0] > traj.x[5, 14]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_nodes": 5}, "n_nodes"), ({"boundary": "conduction"}, "boundary"),
     ({"properties": "magic"}, "properties"), ({"thickness": 2.0}, "thickness")],
    ids=["few-nodes", "bad-boundary", "bad-properties", "bad-thickness"],
)
def test_bad_build_arguments_are_rejected(kwargs, match) -> None:
    with pytest.raises(ModelError, match=match):
        load("slab_furnace", **kwargs)


def test_simulate_passage_rejects_a_stopped_slab() -> None:
    with pytest.raises(ModelError, match="slab_speed"):
        simulate_passage(load("slab_furnace"), slab_speed=0.0)


def test_discharge_function_matches_the_time_simulation_and_has_exact_derivatives() -> None:
    model = load("slab_furnace")
    fun = discharge_function(model)
    nom = model.nominal
    y = np.asarray(fun(nom.x, nom.u, nom.d, nom.p)).ravel()
    traj = simulate_passage(model, steps=50)
    np.testing.assert_allclose(y, traj.y[-1], rtol=1e-6, atol=1e-5)
    jac = np.asarray(fun.factory("J", ["x0", "u", "d", "p"], ["jac:y:u"])(
        nom.x, nom.u, nom.d, nom.p))
    for k in range(len(model.u)):
        e = np.zeros(len(model.u))
        e[k] = 0.5
        fd = (np.asarray(fun(nom.x, nom.u + e, nom.d, nom.p)).ravel()
              - np.asarray(fun(nom.x, nom.u - e, nom.d, nom.p)).ravel())
        np.testing.assert_allclose(jac[:, k], fd, rtol=1e-4, atol=1e-6)
    with pytest.raises(ModelError, match="not a slab_furnace"):
        discharge_function(load("quadruple_tank"))


@pytest.mark.slow
def test_minimum_fuel_zone_temperatures_satisfy_kkt() -> None:
    """RTO on the discharge map: min fuel s.t. discharge >= 1200 degC, |surface - centre| <= 30 K.

    Checks first-order optimality (stationarity of the Lagrangian with IPOPT's
    multipliers), active discharge-temperature constraint and a fuel saving.
    """
    model = load("slab_furnace")
    fun = discharge_function(model)
    nom = model.nominal
    iy = model.y.index
    scale = 100.0  # zone temperatures in units of 100 K, constraints in 100 K and 10 K
    z = ca.MX.sym("z", len(model.u))
    y = fun(nom.x, scale * z, nom.d, nom.p)
    f = y[iy("fuel_energy")] / 1e6
    g = ca.vertcat(y[iy("t_mean")] / 100.0, y[iy("t_diff")] / 10.0)
    solver = ca.nlpsol("rto", "ipopt", {"x": z, "f": f, "g": g}, {
        "print_time": False,
        "ipopt": {"print_level": 0, "sb": "yes", "hessian_approximation": "limited-memory",
                  "tol": 1e-6}})
    sol = solver(x0=nom.u / scale, lbx=model.u.lower / scale, ubx=model.u.upper / scale,
                 lbg=[(1200.0 + C0) / 100.0, -3.0], ubg=[ca.inf, 3.0])
    stats = solver.stats()
    assert stats["return_status"] in ("Solve_Succeeded", "Solved_To_Acceptable_Level"), stats
    zopt = np.asarray(sol["x"]).ravel()
    grad = ca.Function("grad", [z], [ca.gradient(f, z), ca.jacobian(g, z)])
    df, dg = (np.asarray(v) for v in grad(zopt))
    stationarity = df.ravel() + dg.T @ np.asarray(sol["lam_g"]).ravel() \
        + np.asarray(sol["lam_x"]).ravel()
    assert np.max(np.abs(stationarity)) < 1e-4 * np.max(np.abs(df))
    g_opt = np.asarray(sol["g"]).ravel()
    assert g_opt[0] * 100.0 == pytest.approx(1200.0 + C0, abs=1e-3)
    nominal_fuel = float(np.asarray(fun(nom.x, nom.u, nom.d, nom.p)).ravel()[iy("fuel_energy")])
    assert float(sol["f"]) * 1e6 < 0.97 * nominal_fuel
