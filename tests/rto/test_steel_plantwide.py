"""Plant-wide RTO of the steel works gas network against an independent LP (SciPy HiGHS).

The LP is written here from the equations in the ``steel_energy`` docstring and
its data tables (not from the CasADi model): variables are the 15 allocations
and flares at steady state (lags settled: discharge temperature from the fired heat, m_steam =
boiler steam), constraints are the per-gas balances (holders neither fill nor
empty), the consumers' heat and least-LHV margins, the discharge band, the
steam limits; objective power export at the power price minus natural gas minus
the flaring penalty. The RTO (IPOPT on the nonlinear-form model) must give the
same profit (1e-7 relative), the same allocations (1e-4 m^3/s) and the same
active bounds, for several price and supply cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import linprog

from plant_models.errors import ConfigError
from plant_models.library import load
from plant_models.library import steel_energy as se
from rto.modifiers import Modifiers
from rto.plantwide import PriceSchedule
from rto.steel_site import steel_energy_rto

MWH = 3.6e9


def lp_optimum(d: dict[str, float]) -> tuple[float, dict[str, float], object]:
    """Independent LP of the site's steady economics; returns profit, allocations, result."""
    names = [se.mv_name(g, c) for g, c in se.allocations()] + [f"flare_{g}" for g in se.HOLDERS]
    idx = {n: i for i, n in enumerate(names)}
    n = len(names)
    lhv = {g: se.GASES[g]["lhv"] for g in se.GASES}
    c = np.zeros(n)  # minimise -profit (constant terms added afterwards)
    steam = np.zeros(n)
    for g in se.NETWORK["boiler"]:
        steam[idx[se.mv_name(g, "boiler")]] = se.GASES[g]["boiler_eff"] * lhv[g] / se.DH_STEAM
    c -= d["power_price"] * se.W_CONDENSING * steam
    for cons in ("furnace", "boiler"):
        c[idx[se.mv_name("ng", cons)]] += d["ng_price"]
    for g in se.HOLDERS:
        c[idx[f"flare_{g}"]] += d["flare_penalty"] * lhv[g]
    const = d["power_price"] * (
        (se.W_BACKPRESSURE - se.W_CONDENSING) * d["steam_demand"] - d["power_demand"]
    )
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    for g in se.HOLDERS:
        row = np.zeros(n)
        for cons, gases in se.NETWORK.items():
            if g in gases:
                row[idx[se.mv_name(g, cons)]] = 1.0
        row[idx[f"flare_{g}"]] = 1.0
        a_eq.append(row)
        b_eq.append(d[f"{g}_production"])
    heat_demand = {"stoves": d["stove_demand"], "coke_ovens": d["coke_oven_demand"]}
    for cons, gases in se.NETWORK.items():
        if cons == "boiler":
            continue
        heat, margin = np.zeros(n), np.zeros(n)
        for g in gases:
            heat[idx[se.mv_name(g, cons)]] = lhv[g]
            margin[idx[se.mv_name(g, cons)]] = lhv[g] - se.MIN_LHV[cons]
        a_ub.append(-margin)
        b_ub.append(0.0)
        if cons == "furnace":  # 0 <= (heat - q_req) / (throughput DE_DT) <= 5 K
            q_req = se.steady_furnace_demand(d["furnace_throughput"], d["discharge_target"])
            a_ub += [-heat, heat]
            b_ub += [-q_req, q_req + 5.0 * d["furnace_throughput"] * se.DE_DT]
        else:
            a_ub.append(-heat)
            b_ub.append(-heat_demand[cons])
    lo, hi = se.STEAM_LIMITS
    a_ub += [steam, -steam, -steam]
    b_ub += [hi, -lo, -d["steam_demand"]]
    model = load("steel_energy")
    bounds = [(model.u[k].lower, model.u[k].upper) for k in names]
    res = linprog(
        c,
        A_ub=np.array(a_ub),
        b_ub=b_ub,
        A_eq=np.array(a_eq),
        b_eq=b_eq,
        bounds=bounds,
        method="highs",
    )
    assert res.status == 0, res.message
    # the optimal face: range of every allocation over all LP optima (objective held)
    a_face = np.vstack([a_ub, c])
    b_face = np.concatenate([b_ub, [res.fun + 1e-9 * max(1.0, abs(res.fun))]])
    face = {}
    for i, name in enumerate(names):
        e = np.zeros(n)
        e[i] = 1.0
        lo_i = linprog(
            e,
            A_ub=a_face,
            b_ub=b_face,
            A_eq=np.array(a_eq),
            b_eq=b_eq,
            bounds=bounds,
            method="highs",
        )
        hi_i = linprog(
            -e,
            A_ub=a_face,
            b_ub=b_face,
            A_eq=np.array(a_eq),
            b_eq=b_eq,
            bounds=bounds,
            method="highs",
        )
        face[name] = (lo_i.fun, -hi_i.fun)
    res.face = face
    return -res.fun + const, dict(zip(names, res.x, strict=True)), res


CASES = {
    "nominal": {},
    "power_peak_150": {"power_price": 150.0 / MWH},
    "power_cheap_20": {"power_price": 20.0 / MWH},
    "ng_expensive": {"ng_price": 0.9, "power_price": 150.0 / MWH},
    "bf_stop": {"bfg_production": 14.0, "stove_demand": 0.0, "coke_oven_demand": 90e6},
    "ldg_surplus": {"ldg_production": 25.0, "power_price": 20.0 / MWH, "flare_penalty": 1e-9},
    "hot_discharge": {"discharge_target": 1250.0 + 273.15, "furnace_throughput": 65.0},
}


@pytest.fixture(scope="module")
def rto():
    return steel_energy_rto()


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_rto_optimum_equals_independent_lp(rto, case: str) -> None:
    d = {**se.nominal_disturbances(), **CASES[case]}
    profit_lp, alloc_lp, lp = lp_optimum(d)
    res = rto.solve(d={"steel": d})
    assert res.usable, res.info.message
    model = rto.site.unit("steel").model
    u = model.u.mapping(res.units["steel"].u)
    assert res.profit == pytest.approx(profit_lp, rel=1e-7, abs=1e-7)
    unique = {k for k, (lo, hi) in lp.face.items() if hi - lo <= 1e-4}
    for k, v in alloc_lp.items():
        lo, hi = lp.face[k]
        # on the LP's optimal face; equal to the LP's where that face is a point
        assert lo - 1e-4 <= u[k] <= hi + 1e-4, k
        if k in unique:
            assert u[k] == pytest.approx(v, abs=2e-4), k
    assert len(unique) >= 11, sorted(set(alloc_lp) - unique)
    # active set: the same bounds of the uniquely determined allocations are active in both
    lp_active = {
        f"steel.{k} {'lower' if v <= model.u[k].lower + 1e-7 else 'upper'}"
        for k, v in alloc_lp.items()
        if k in unique and (v <= model.u[k].lower + 1e-7 or v >= model.u[k].upper - 1e-7)
    }
    rto_active = {a for a in res.active if a.split()[0].split(".")[1] in unique}
    assert rto_active == lp_active
    # KKT: the LP's dual of the per-gas balance is the RTO's marginal value of that gas
    # (d profit / d production): compare through a finite difference of the RTO itself
    gas = "cog"
    bumped = rto.solve(d={"steel": {**d, f"{gas}_production": d[f"{gas}_production"] + 1e-3}})
    marginal = (bumped.profit - res.profit) / 1e-3
    assert marginal == pytest.approx(-lp.eqlin.marginals[1], rel=1e-4, abs=1e-9)


def test_lp_optimum_is_unique_so_allocations_are_comparable() -> None:
    """A tiny objective perturbation must not move the LP vertex (no tie between gases)."""
    d = se.nominal_disturbances()
    _, base, _ = lp_optimum(d)
    _, moved, _ = lp_optimum({**d, "power_price": d["power_price"] * (1 + 1e-6)})
    for k, v in base.items():
        assert moved[k] == pytest.approx(v, abs=1e-6), k


def test_mass_and_energy_balances_close_at_the_optimum(rto) -> None:
    d = {**se.nominal_disturbances(), "power_price": 150.0 / MWH}
    res = rto.solve(d={"steel": d})
    model = rto.site.unit("steel").model
    u, y = model.u.mapping(res.units["steel"].u), model.y.mapping(res.units["steel"].y)
    lhv = {g: se.GASES[g]["lhv"] for g in se.GASES}
    supplied = 0.0
    for g in se.HOLDERS:
        used = sum(u[se.mv_name(g, c)] for c in se.NETWORK if g in se.NETWORK[c])
        # production = consumption + flare + holder accumulation (zero at steady state)
        assert d[f"{g}_production"] == pytest.approx(used + u[f"flare_{g}"], abs=1e-6)
        assert y[f"net_inflow_{g}"] == pytest.approx(0.0, abs=1e-6)
        supplied += lhv[g] * d[f"{g}_production"]
    supplied += lhv["ng"] * y["ng_flow"]
    consumed = (
        y["stoves_heat_margin"]
        + d["stove_demand"]
        + y["coke_ovens_heat_margin"]
        + d["coke_oven_demand"]
        + y["furnace_fuel_power"]
        + y["boiler_fuel_power"]
        + y["flare_power"]
    )
    assert consumed == pytest.approx(supplied, rel=1e-9)
    # power: generated = site demand + export
    assert y["power_generated"] == pytest.approx(d["power_demand"] + y["power_export"], rel=1e-12)


def test_holder_dynamics_integrate_the_balance() -> None:
    """Holder change over an hour = (production - allocations - flare) * time, per gas."""
    model = load("steel_energy")
    u = model.u.mapping(model.nominal.u)
    u["bfg_to_boiler"] -= 5.0
    u["flare_ldg"] = 1.5
    traj = model.simulate(None, np.tile(model.u.vector(u), (6, 1)), 600.0)
    x_end = model.x.mapping(traj.x[-1])
    assert x_end["v_bfg"] - model.nominal.x[0] == pytest.approx(5.0 * 3600.0, rel=1e-6)
    assert x_end["v_ldg"] - model.nominal.x[2] == pytest.approx(-1.5 * 3600.0, rel=1e-6)
    assert x_end["v_cog"] == pytest.approx(model.nominal.x[1], rel=1e-9)


def test_prices_change_at_run_time_without_rebuild(rto, tmp_path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "time_s,steel.power_price,steel.ng_price\n0,1.6667e-8,0.3\n"
        "3600,4.1667e-8,0.3\n7200,1.6667e-8,0.3\n"
    )
    sched = PriceSchedule.from_csv(path)
    solver_before = rto._solver
    steam = []
    for t in (0.0, 4000.0, 8000.0):
        d = {**se.nominal_disturbances(), **sched.by_unit(t)["steel"]}
        res = rto.solve(d={"steel": d})
        assert res.usable
        steam.append(res.value("steel.ng_to_boiler"))
    assert rto._solver is solver_before
    assert steam[0] == pytest.approx(0.0, abs=1e-6) and steam[2] == pytest.approx(0.0, abs=1e-6)
    assert steam[1] > 1.0  # at 150 USD/MWh natural gas in the boilers pays


def test_price_file_errors_name_file_row_and_column(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,steel.power_price\n0,abc\n")
    with pytest.raises(ConfigError, match=r"bad.csv, row 2, column 'steel.power_price'"):
        PriceSchedule.from_csv(bad)
    bad.write_text("t,steel.power_price\n0,1\n")
    with pytest.raises(ConfigError, match="time_s"):
        PriceSchedule.from_csv(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        PriceSchedule.from_csv(tmp_path / "missing.csv")


def test_bad_price_key_gives_invalid_input_not_a_crash(rto) -> None:
    res = rto.solve(prices={"steel.nope": 1.0})
    assert not res.usable and "steel.nope" in res.info.message


def test_modifier_adaptation_reaches_the_plant_optimum() -> None:
    """The model believes BFG has 3.2 MJ/m^3; the plant's has 3.0. Modifier adaptation
    (Marchetti et al. 2009: value and gradient modifiers of cost and limits, gradients of
    the plant's steady map by finite differences) converges to the plant's own optimum,
    where the model's optimum under-fires the stoves and coke ovens."""
    plant = load("steel_energy", lhv={"bfg": 3.0e6})
    rto = steel_energy_rto()
    truth = steel_energy_rto(plant).solve()
    model = rto.site.unit("steel").model
    limited = [k.split(".")[1] for k in rto.limited]

    def plant_y(u: np.ndarray) -> np.ndarray:
        x = plant.nominal.x.copy()
        f = plant.rhs(x, u)
        x[3] += se.TAU_FURNACE * f[3]
        x[4] += se.TAU_BOILER * f[4]
        return plant.outputs(x, u)

    def model_y(u: np.ndarray) -> np.ndarray:
        x = model.nominal.x.copy()
        f = model.rhs(x, u)
        x[3] += se.TAU_FURNACE * f[3]
        x[4] += se.TAU_BOILER * f[4]
        return model.outputs(x, u)

    def grads(fun, u: np.ndarray) -> np.ndarray:
        base = fun(u)
        g = np.zeros((len(base), len(u)))
        for i in range(len(u)):
            du = np.zeros(len(u))
            du[i] = 1e-3
            g[:, i] = (fun(u + du) - base) / 1e-3
        return g

    first = rto.solve()
    u0 = first.units["steel"].u
    assert plant.y.mapping(plant_y(u0))["stoves_heat_margin"] < -1e6  # model optimum under-fires
    u = u0
    ip = model.y.index("profit_rate")
    for _ in range(4):
        yp, ym = plant_y(u), model_y(u)
        gp, gm = grads(plant_y, u), grads(model_y, u)
        ci = [model.y.index(k) for k in limited]
        mods = Modifiers(
            u_ref=u,
            cost_gradient=gp[ip] - gm[ip],
            constraint_bias={f"steel.{k}": yp[i] - ym[i] for k, i in zip(limited, ci, strict=True)},
            constraint_gradient={
                f"steel.{k}": gp[i] - gm[i] for k, i in zip(limited, ci, strict=True)
            },
        )
        res = rto.solve(modifiers=mods)
        assert res.usable, res.info.message
        u = res.units["steel"].u
    yp = plant.y.mapping(plant_y(u))
    assert yp["stoves_heat_margin"] > -1e-3 * se.STOVE_DEMAND
    assert yp["profit_rate"] == pytest.approx(truth.profit, abs=1e-5)
    assert u == pytest.approx(truth.units["steel"].u, abs=1e-3)
    assert math.isfinite(res.profit)
