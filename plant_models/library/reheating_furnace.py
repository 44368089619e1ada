"""Walking-beam slab reheating furnace with three gas-fired zones (Eulerian), SI units.

What is modelled. Slabs move through the furnace at a throughput (a measured
disturbance, kg/s); the furnace is cut into ``n_cells`` equal cells along its
36 m, each holding the slab material that passes it, with a 1-D temperature
profile through the slab thickness (``n_nodes`` vertex-centred nodes, node 0 the
top face). Three zones (:data:`ZONES`: preheating 12 m, heating 18 m, soaking
6 m, the zone layout of :mod:`plant_models.library.slab_furnace` with its two
heating zones merged) each have a zone (gas and refractory) temperature, a
state, and their own gas firing, an input (Nm3/s of fuel gas). Unlike the
Lagrangian ``slab_furnace`` (one slab followed through the furnace, no steady
state), this model has a steady state: the furnace at constant throughput, what
the discharge temperature, fuel demand and the plant-wide steel-works energy
balance need.

Equations, per cell j (in zone z(j)) and node i:

- slab transport, first-order upwind: ``+ v/dz (T[j-1,i] - T[j,i])`` with
  ``v = throughput / (RHO * H * SLAB_WIDTH)`` and ``T[-1,i] = t_charge``;
- conduction through the thickness and radiation exchange with the zone on the
  top and bottom faces, ``phi sigma (T_zone^4 - T_face^4)``, as in
  ``slab_furnace`` (same cp(T), k(T) of plain carbon steel, same exchange
  factors), which conserves energy exactly;
- zone energy balance, ``C_ZONE L_z dT_zone/dt = eta(T_zone) LHV q_gas
  - sum_cells A (q_top + q_bottom) - U_LOSS A_z (T_zone - T_AMB)``, with the
  available-heat efficiency ``eta(T) = 1 - (1 - R_REC)(T - T_AMB)/(T_AD - T_AMB)``
  (recuperated flue gas; Trinks et al., Industrial Furnaces, 6th ed., Wiley 2004)
  and wall and skid losses ``U_LOSS`` per m^2 of slab face, both from
  ``slab_furnace``. ``C_ZONE`` lumps gas and refractory hot face: a zone
  temperature answers a firing step with a time constant of about 10 min.

Inputs ``u``: ``q_gas_preheat``, ``q_gas_heating``, ``q_gas_soaking`` (Nm3/s of
fuel gas). Disturbances ``d``: ``throughput`` (kg/s), ``lhv`` (lower heating
value of the gas, J/Nm3; a mixed blast-furnace / coke-oven gas by default,
8 MJ/Nm3), ``t_charge`` (K). Parameters ``p``: ``phi_top``, ``phi_bottom``.
Outputs: ``t_discharge`` (mean temperature of the slab leaving), its top surface
temperature and surface-minus-centre difference, the three zone temperatures,
the fuel power (LHV times gas), the gas flow, the specific fuel (J/kg of steel),
the heat taken up by the slabs, and the throughput.

Nominal: 57.6 kg/s (207 t/h) of 0.22 m slabs 10 m long at 3 h residence, cold
charged, 8 MJ/Nm3 gas, minimum-fuel firing for a 1200 degC discharge with at
most 30 K surface-centre difference: zone temperatures 1021 / 1295 / 1247 degC,
94.9 MW, 1.65 GJ/t, 50 % of the fuel into the steel (figures of the order of
``slab_furnace`` and of the walking-beam furnace literature, 1.3-1.8 GJ/t for
cold charging:
Steinboeck et al., Int. J. Heat Mass Transfer 53 (2010) 5933-5946; Metals 13
(2023) 1946). The numbers are representative, not one plant's.

The upwind transport is implicit Euler in position at steady state: with the
default 12 cells (3 m, 12.5 min) the steady discharge temperature is within
about 15 K of the Lagrangian model's CVODES passage at the same zone
temperatures, and the error falls about linearly with the cell length (tested).

:func:`fuel_demand` gives the steady-state fuel the furnace needs for a
throughput and a discharge temperature (minimum-fuel firing of the three zones,
IPOPT, about 0.5 s), the interface of the plant-wide steel-works model. For a
linear (LP) site model, at 1200 degC discharge, cold charge and 8 MJ/Nm3 gas:

    fuel_power ~ 5.27 MW + 1.559 MJ/kg * throughput      (40-65 kg/s, within 0.2 %)
    d fuel_power / d t_discharge ~ 0.095 MW/K             (1150-1250 degC at 57.6 kg/s)

(94.9 MW at the nominal 57.6 kg/s; the gas flow is fuel_power / LHV; above about
70 kg/s the heating zone reaches T_ZONE_MAX and 1200 degC costs more per tonne,
above about 76 kg/s it cannot be reached.) Hot charging at 600 K: 78.4 MW.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import casadi as ca
import numpy as np

from plant_models.builder import Symbols, build_model
from plant_models.errors import ModelError
from plant_models.library.slab_furnace import (
    C0,
    PHI_BOTTOM,
    PHI_TOP,
    R_REC,
    RHO,
    SIGMA,
    T_AD,
    T_AMB,
    U_LOSS,
    Properties,
    conductivity,
    specific_heat,
)
from plant_models.model import PlantModel
from plant_models.signals import Signal, signal_set
from plant_models.steady_state import steady_state

ZONES: tuple[tuple[str, float], ...] = (("preheat", 12.0), ("heating", 18.0), ("soaking", 6.0))
"""Zones in slab travel order: name, length (m)."""
FURNACE_LENGTH = sum(z[1] for z in ZONES)
"""Charging door to discharge door, m."""
SLAB_WIDTH = 10.0
"""Slab length across the furnace (the width of the charged row), m."""
THICKNESS = 0.22
"""Slab thickness, m."""
RESIDENCE_NOMINAL = 3.0 * 3600.0
"""Nominal residence time, s."""
THROUGHPUT_NOMINAL = RHO * THICKNESS * SLAB_WIDTH * FURNACE_LENGTH / RESIDENCE_NOMINAL
"""Nominal throughput, kg/s (69.1 kg/s = 249 t/h)."""
LHV_NOMINAL = 8.0e6
"""Lower heating value of the nominal fuel gas (a BFG/COG mix), J/Nm3."""
C_ZONE = 5.0e6
"""Heat capacity of gas and refractory hot face per metre of furnace, J/(K m)."""
T_ZONE_MAX = 1350.0 + C0
"""Highest zone temperature allowed (refractory and burner limit), K."""
GAS_NOMINAL = {"q_gas_preheat": 3.756, "q_gas_heating": 7.330, "q_gas_soaking": 0.775}
"""Nominal firing, Nm3/s at LHV_NOMINAL: the minimum-fuel firing for 1200 degC discharge at the
nominal throughput (zone temperatures 1021, 1295, 1247 degC; 94.9 MW, 1.65 GJ/t)."""
GAS_MAX = {"q_gas_preheat": 8.0, "q_gas_heating": 12.0, "q_gas_soaking": 2.5}
"""Burner capacity per zone, Nm3/s at LHV_NOMINAL."""


def _cell_names(n_cells: int, n_nodes: int) -> list[list[str]]:
    return [[f"t_{j:02d}_{i}" for i in range(n_nodes)] for j in range(n_cells)]


def zone_of_cells(n_cells: int) -> list[int]:
    """Zone index of each cell (cells must not straddle a zone boundary)."""
    dz = FURNACE_LENGTH / n_cells
    out: list[int] = []
    for k, (_, length) in enumerate(ZONES):
        cells = length / dz
        if abs(cells - round(cells)) > 1e-9:
            raise ModelError(
                f"reheating_furnace: n_cells={n_cells} puts a cell boundary inside zone "
                f"{ZONES[k][0]!r}; use a multiple of 6 (cells of 6, 3, 2, 1.5, 1 m ...)"
            )
        out += [k] * int(round(cells))
    return out


def build(
    n_cells: int = 12,
    n_nodes: int = 5,
    properties: str | Properties = Properties.TEMPERATURE_DEPENDENT,
) -> PlantModel:
    """Build the three-zone furnace (see the module docstring)."""
    if isinstance(n_cells, bool) or not isinstance(n_cells, int) or not 6 <= n_cells <= 216:
        raise ModelError(
            f"reheating_furnace: n_cells must be an integer in [6, 216], got {n_cells!r}"
        )
    if isinstance(n_nodes, bool) or not isinstance(n_nodes, int) or not 3 <= n_nodes <= 31:
        raise ModelError(
            f"reheating_furnace: n_nodes must be an integer in [3, 31], got {n_nodes!r}"
        )
    try:
        props = Properties(properties)
    except ValueError:
        raise ModelError(
            f"reheating_furnace: properties must be one of {[p.value for p in Properties]}, "
            f"got {properties!r}"
        ) from None
    zone_idx = zone_of_cells(n_cells)
    dz = FURNACE_LENGTH / n_cells
    dx = THICKNESS / (n_nodes - 1)
    widths = np.full(n_nodes, dx)
    widths[0] = widths[-1] = dx / 2.0
    names = _cell_names(n_cells, n_nodes)
    zone_states = [f"t_zone_{z}" for z, _ in ZONES]
    gas = [f"q_gas_{z}" for z, _ in ZONES]
    mid_lo, mid_hi = (n_nodes - 1) // 2, n_nodes // 2

    x = signal_set(
        "x",
        *[
            Signal(
                nm,
                "K",
                250.0,
                1900.0,
                1000.0,
                f"slab temperature in cell {j + 1} (of {n_cells}), node {i} from the top face",
            )
            for j, row in enumerate(names)
            for i, nm in enumerate(row)
        ],
        *[
            Signal(nm, "K", 250.0, 2200.0, 1500.0, f"{z} zone temperature")
            for nm, (z, _) in zip(zone_states, ZONES, strict=True)
        ],
    )
    u = signal_set(
        "u",
        *[
            Signal(g, "Nm3/s", 0.0, GAS_MAX[g], GAS_NOMINAL[g], f"{z} zone fuel gas flow")
            for g, (z, _) in zip(gas, ZONES, strict=True)
        ],
    )
    d = signal_set(
        "d",
        Signal(
            "throughput",
            "kg/s",
            1.0,
            2.0 * THROUGHPUT_NOMINAL,
            THROUGHPUT_NOMINAL,
            "steel throughput (slabs charged and discharged)",
        ),
        Signal("lhv", "J/Nm3", 2.5e6, 40.0e6, LHV_NOMINAL, "lower heating value of the fuel gas"),
        Signal("t_charge", "K", 250.0, 1200.0, T_AMB, "slab temperature at charging"),
    )
    p = signal_set(
        "p",
        Signal("phi_top", "1", 0.05, 1.0, PHI_TOP, "total exchange factor to the top face"),
        Signal(
            "phi_bottom", "1", 0.05, 1.0, PHI_BOTTOM, "total exchange factor to the bottom face"
        ),
    )
    y = signal_set(
        "y",
        Signal("t_discharge", "K", 250.0, 1900.0, 1500.0, "mean temperature of the slab leaving"),
        Signal(
            "t_discharge_surface",
            "K",
            250.0,
            1900.0,
            1500.0,
            "top surface temperature of the slab leaving",
        ),
        Signal(
            "t_discharge_diff",
            "K",
            -500.0,
            1000.0,
            50.0,
            "surface minus centre temperature of the slab leaving",
        ),
        *[
            Signal(nm, "K", 250.0, 2200.0, 1500.0, f"{z} zone temperature (thermocouple)")
            for nm, (z, _) in zip(zone_states, ZONES, strict=True)
        ],
        Signal("fuel_power", "W", 0.0, 5e8, 1e8, "fuel power fired, LHV times gas flow"),
        Signal("q_gas_total", "Nm3/s", 0.0, 100.0, 12.0, "fuel gas flow, all zones"),
        Signal("specific_fuel", "J/kg", 0.0, 1e7, 1.5e6, "fuel power per steel throughput"),
        Signal("heat_to_slabs", "W", -1e8, 5e8, 5e7, "heat taken up by the slabs"),
        Signal(
            "throughput_out",
            "kg/s",
            0.0,
            2.0 * THROUGHPUT_NOMINAL,
            THROUGHPUT_NOMINAL,
            "steel throughput",
        ),
    )
    face = dz * SLAB_WIDTH  # m^2 of one face in one cell
    mass_per_length = RHO * THICKNESS * SLAB_WIDTH

    def fluxes(s: Symbols, j: int) -> tuple[ca.SX, ca.SX]:
        tz = s[zone_states[zone_idx[j]]]
        row = names[j]
        q_top = s.phi_top * SIGMA * (tz**4 - s[row[0]] ** 4)
        q_bot = s.phi_bottom * SIGMA * (tz**4 - s[row[-1]] ** 4)
        return q_top, q_bot

    def eta(tz: ca.SX) -> ca.SX:
        return 1.0 - (1.0 - R_REC) * (tz - T_AMB) / (T_AD - T_AMB)

    def rhs(s: Symbols) -> dict[str, ca.SX]:
        out: dict[str, ca.SX] = {}
        speed = s.throughput / mass_per_length
        zone_heat = [ca.SX(0)] * len(ZONES)
        for j, row in enumerate(names):
            q_top, q_bot = fluxes(s, j)
            zone_heat[zone_idx[j]] = zone_heat[zone_idx[j]] + face * (q_top + q_bot)
            t = [s[nm] for nm in row]
            upstream = [s.t_charge] * n_nodes if j == 0 else [s[nm] for nm in names[j - 1]]
            flux = [
                conductivity(0.5 * (t[i] + t[i + 1]), props) * (t[i] - t[i + 1]) / dx
                for i in range(n_nodes - 1)
            ]
            for i, nm in enumerate(row):
                q_in = q_top if i == 0 else flux[i - 1]
                q_out = -q_bot if i == n_nodes - 1 else flux[i]
                out[nm] = (q_in - q_out) / (RHO * widths[i] * specific_heat(t[i], props)) + (
                    speed / dz * (upstream[i] - t[i])
                )
        for k, (_, length) in enumerate(ZONES):
            tz = s[zone_states[k]]
            fired = eta(tz) * s.lhv * s[gas[k]]
            loss = U_LOSS * 2.0 * length * SLAB_WIDTH * (tz - T_AMB)
            out[zone_states[k]] = (fired - zone_heat[k] - loss) / (C_ZONE * length)
        return out

    def output(s: Symbols) -> dict[str, ca.SX]:
        last = [s[nm] for nm in names[-1]]
        t_mean = sum(w * t for w, t in zip(widths, last, strict=True)) / THICKNESS
        centre = 0.5 * (last[mid_lo] + last[mid_hi])
        heat = ca.SX(0)
        for j in range(n_cells):
            q_top, q_bot = fluxes(s, j)
            heat = heat + face * (q_top + q_bot)
        gas_total = sum(s[g] for g in gas)
        power = s.lhv * gas_total
        return {
            "t_discharge": t_mean,
            "t_discharge_surface": last[0],
            "t_discharge_diff": last[0] - centre,
            **{nm: s[nm] for nm in zone_states},
            "fuel_power": power,
            "q_gas_total": gas_total,
            "specific_fuel": power / s.throughput,
            "heat_to_slabs": heat,
            "throughput_out": s.throughput,
        }

    # a first guess of the profile (linear in position), then the nominal steady state
    guess: dict[str, float] = {}
    for j, row in enumerate(names):
        t_j = T_AMB + (1480.0 - T_AMB) * (j + 1) / n_cells
        guess.update({nm: t_j for nm in row})
    guess.update(
        {
            "t_zone_preheat": 1150.0 + C0,
            "t_zone_heating": 1330.0 + C0,
            "t_zone_soaking": 1290.0 + C0,
        }
    )
    model = build_model(
        "reheating_furnace",
        x=x,
        u=u,
        d=d,
        p=p,
        y=y,
        rhs=rhs,
        output=output,
        nominal={
            "x": guess,
            "u": GAS_NOMINAL,
            "d": {"throughput": THROUGHPUT_NOMINAL, "lhv": LHV_NOMINAL, "t_charge": T_AMB},
            "p": {"phi_top": PHI_TOP, "phi_bottom": PHI_BOTTOM},
        },
        source="Incropera & DeWitt (conduction, steel data Table A.1); Steinboeck et al., "
        "Int. J. Heat Mass Transfer 53 (2010) 5933-5946 (reheating furnace set-up); "
        "Trinks et al., Industrial Furnaces (available heat)",
        description=(
            f"three-zone gas-fired walking-beam reheating furnace, {n_cells} cells x {n_nodes} "
            f"nodes ({props.value} properties), slabs moving at a throughput"
        ),
    )
    ss = steady_state(model, x_guess=model.nominal.x)  # raises SolverFailed naming the states
    if ss.x is None:  # pragma: no cover - steady_state raises first
        raise ModelError("reheating_furnace: no nominal steady state")
    return replace(model, nominal=replace(model.nominal, x=ss.x))


@dataclass(frozen=True)
class FuelDemand:
    """Steady-state minimum fuel of the furnace at a throughput and discharge temperature."""

    throughput: float
    """Steel throughput, kg/s."""
    t_discharge: float
    """Discharge (mean slab) temperature reached, K."""
    lhv: float
    """Lower heating value of the fuel gas, J/Nm3."""
    fuel_power: float
    """Fuel power fired, W (LHV times gas)."""
    gas_flow: float
    """Fuel gas flow, all zones, Nm3/s."""
    zone_gas: dict[str, float]
    """Gas flow per zone input, Nm3/s."""
    zone_temperatures: dict[str, float]
    """Zone temperatures, K."""
    specific_fuel: float
    """Fuel per steel, J/kg."""
    t_discharge_diff: float
    """Surface minus centre temperature of the slab leaving, K."""


def fuel_demand(
    throughput: float,
    t_discharge: float,
    *,
    lhv: float = LHV_NOMINAL,
    t_charge: float = T_AMB,
    max_diff: float = 30.0,
    model: PlantModel | None = None,
) -> FuelDemand:
    """Minimum-fuel steady state reaching ``t_discharge`` (K) at ``throughput`` (kg/s).

    The three zone firings are chosen by IPOPT on the steady-state equations:
    minimum fuel power subject to the discharge temperature, ``|surface - centre|
    <= max_diff`` (K), zone temperatures <= :data:`T_ZONE_MAX` and the burner
    capacities (scaled by ``LHV_NOMINAL / lhv``: a burner passes more of a leaner
    gas). Raises :class:`ModelError` naming the case when no firing reaches it.
    """
    m = model if model is not None else load_default()
    for label, val, lo, hi in (
        ("throughput", throughput, 1.0, 2.0 * THROUGHPUT_NOMINAL),
        ("t_discharge", t_discharge, 800.0, T_ZONE_MAX),
        ("lhv", lhv, 2.5e6, 40.0e6),
        ("t_charge", t_charge, 250.0, 1200.0),
    ):
        if not (isinstance(val, (int, float)) and math.isfinite(val) and lo <= val <= hi):
            raise ModelError(f"fuel_demand: {label} must be in [{lo:g}, {hi:g}], got {val!r}")
    nx, nu = len(m.x), len(m.u)
    xs, us = ca.MX.sym("x", nx), ca.MX.sym("u", nu)
    dv = np.array([throughput, lhv, t_charge])
    xnom, unom = m.x.nominal, m.u.nominal
    x, uu = xs * xnom, us * unom
    f = m.f(x, uu, dv, m.nominal.p) / xnom
    yv = m.h(x, uu, dv, m.nominal.p)
    iy = m.y.index
    g = ca.vertcat(
        f, (yv[iy("t_discharge")] - t_discharge) / 100.0, yv[iy("t_discharge_diff")] / 10.0
    )
    obj = yv[iy("fuel_power")] / 1e8
    solver = ca.nlpsol(
        "fuel_demand",
        "ipopt",
        {"x": ca.vertcat(xs, us), "f": obj, "g": g},
        {"print_time": False, "ipopt": {"print_level": 0, "sb": "yes", "tol": 1e-10}},
    )
    cap = np.array([GAS_MAX[n] for n in m.u.names]) * LHV_NOMINAL / lhv
    lbx = np.concatenate([m.x.lower / xnom, np.zeros(nu)])
    ubx = np.concatenate([m.x.upper / xnom, cap / unom])
    for k in range(len(ZONES)):
        ubx[m.x.index(f"t_zone_{ZONES[k][0]}")] = (
            T_ZONE_MAX / xnom[m.x.index(f"t_zone_{ZONES[k][0]}")]
        )
    u0 = np.minimum(unom * LHV_NOMINAL / lhv * throughput / THROUGHPUT_NOMINAL, 0.95 * cap)
    guess = steady_state(m, u0, dv, x_guess=m.nominal.x, raise_on_failure=False)
    x0 = guess.x if guess.x is not None else m.nominal.x
    sol = solver(
        x0=np.concatenate([x0 / xnom, u0 / unom]),
        lbx=lbx,
        ubx=ubx,
        lbg=np.concatenate([np.zeros(nx + 1), [-max_diff / 10.0]]),
        ubg=np.concatenate([np.zeros(nx + 1), [max_diff / 10.0]]),
    )
    stats = solver.stats()
    if not stats.get("success", False):
        raise ModelError(
            f"fuel_demand: no firing reaches {t_discharge - C0:.1f} degC at "
            f"{throughput:.2f} kg/s with LHV {lhv / 1e6:.2f} MJ/Nm3 ({stats.get('return_status')})"
        )
    z = np.asarray(sol["x"], dtype=float).ravel()
    xo, uo = z[:nx] * xnom, z[nx:] * unom
    out = m.y.mapping(np.asarray(m.h(xo, uo, dv, m.nominal.p), dtype=float).ravel())
    return FuelDemand(
        throughput=float(throughput),
        t_discharge=out["t_discharge"],
        lhv=float(lhv),
        fuel_power=out["fuel_power"],
        gas_flow=out["q_gas_total"],
        zone_gas=dict(zip(m.u.names, (float(v) for v in uo), strict=True)),
        zone_temperatures={f"t_zone_{z}": out[f"t_zone_{z}"] for z, _ in ZONES},
        specific_fuel=out["specific_fuel"],
        t_discharge_diff=out["t_discharge_diff"],
    )


@functools.cache
def load_default() -> PlantModel:
    """The default-size furnace, built once per process (for :func:`fuel_demand`)."""
    return build()
