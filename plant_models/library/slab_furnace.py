"""Steel slab in a walking-beam reheating furnace: a Lagrangian slab-tracking model, SI units.

What is modelled. One slab is followed from the charging door to the
discharge door (Lagrangian tracking, as in slab-tracking furnace control). Its
position z (m) is a state with dz/dt = slab speed (a measured disturbance,
so production delays change the residence time). The furnace has four zones
along its length (:data:`ZONES`: preheating, heating 1, heating 2, soaking;
36 m in all, 2.5 h nominal residence), each with a gas temperature set by its
burners: the inputs ``u`` (K). The gas temperature the slab sees is a smooth
blend of the zone temperatures, T_g(z) = sum_i w_i(z) T_zone,i, with logistic
steps of width :data:`BLEND_WIDTH` at the zone boundaries (the weights are an
exact partition of unity, so the model is differentiable in z and u).

Heat transfer. Radiation from gas and walls to the top and bottom faces,
q = phi sigma (T_g^4 - T_s^4), with total exchange factors phi_top and
phi_bottom (parameters ``p``; the bottom face sees less because the walking
beams and skids shade it). ``boundary="convection"`` replaces this by a linear
convective boundary q = h (T_g - T_s) with coefficients htc_top, htc_bottom
(for the analytic check of the conduction part, Incropera & DeWitt, Fundamentals
of Heat and Mass Transfer, 6th ed., Sec. 5.5.1, plane wall with convection).

Conduction through the thickness H (default 0.22 m): 1-D vertex-centred finite
volumes with ``n_nodes`` >= 10 nodes (node 0 the top surface, node n-1 the
bottom surface, half cells at the surfaces; Incropera Sec. 5.10). Interface
conductivity k((T_i + T_i+1)/2). The scheme conserves energy exactly:
sum_i rho dx_i cp(T_i) dT_i/dt = q_top + q_bottom.

Steel properties (``properties=``):
- ``"temperature_dependent"`` (default): plain carbon steel, rho = 7850 kg/m^3;
  cp(T) = C0 + C1 T + CA exp(-((T - TC)/CW)^2) (the Gaussian holds the
  magnetic/alpha-gamma transformation peak), least-squares fit within 7 % to
  Incropera Table A.1 (plain carbon steel, 300-1000 K) plus austenite values
  650-670 J/(kg K) at 1200-1400 K (assumed typical); k(T) falls linearly from
  60.5 W/(m K) at 300 K to 30.0 at 1000 K (Table A.1) and is held at 28 W/(m K)
  in the austenite range (smooth maximum). Enthalpy 298 -> 1523 K: 0.855 MJ/kg.
- ``"constant"``: rho = 7850, cp = 700 J/(kg K), k = 35 W/(m K) (means over
  300-1500 K).

Fuel (economics). The burners of the zone the slab is in supply the heat the
slab absorbs plus losses, with an available-heat efficiency that falls with
the flue-gas (zone) temperature:

    fuel_rate = (q_top + q_bottom + U_LOSS (T_g - T_AMB)) / (eta(T_g) rho H)   [W/kg]
    eta(T_g)  = 1 - (1 - R_REC) (T_g - T_AMB) / (T_AD - T_AMB)

U_LOSS lumps wall and skid cooling-water losses per m^2 of slab face; T_AD is
an adiabatic flame temperature of natural gas in air and R_REC the fraction of
the flue-gas sensible heat returned by the air recuperator (the available-heat
concept of Trinks et al., Industrial Furnaces, 6th ed., Wiley 2004). The state
``fuel_energy`` accumulates it (J/kg of steel); ``fuel_cost`` = FUEL_PRICE *
fuel_energy. With the nominal inputs a slab uses about 1.5 GJ/t.

Set-up and typical figures (walking-beam furnace, slabs 0.2-0.25 m thick,
residence 2-3 h, discharge 1200-1250 degC with a small through-thickness
difference) follow the reheating-furnace literature, e.g. A. Steinboeck,
D. Wild, T. Kiefer, A. Kugi, "A mathematical model of a slab reheating furnace
with radiative heat transfer and non-participating gaseous media", Int. J. Heat
Mass Transfer 53 (2010) 5933-5946, and Metals 13 (2023) 1946 ("Effects of
furnace length on the thermal performance of a walking beam reheating
furnace"); the numbers here are representative, not one plant's data.

Steady state: this model has none (the position and the fuel energy grow with
time). Use :func:`simulate_passage` to follow a slab from charging to
discharge (the outputs at the end are the discharge values), or
:func:`discharge_function` for a differentiable CasADi map (x0, u, d, p) ->
discharge outputs, integrated over position, for steady-state economics (RTO):
with it, minimum fuel at 1200 degC discharge and <= 30 K surface - centre is
about 1.46 GJ/t against 1.55 GJ/t at the nominal zone temperatures.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import TYPE_CHECKING

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike

from plant_models.builder import Symbols, build_model
from plant_models.errors import ModelError
from plant_models.model import PlantModel
from plant_models.signals import Signal, signal_set

if TYPE_CHECKING:  # pragma: no cover
    from plant_models.simulation import Trajectory

SIGMA = 5.670374419e-8
"""Stefan-Boltzmann constant, W/(m^2 K^4)."""
C0 = 273.15
"""0 degC in K."""
T_AMB = 298.15
"""Ambient and charging temperature, K."""

ZONES: tuple[tuple[str, float, str], ...] = (
    ("t_preheat", 12.0, "preheating zone gas temperature"),
    ("t_heat_1", 9.0, "first heating zone gas temperature"),
    ("t_heat_2", 9.0, "second heating zone gas temperature"),
    ("t_soak", 6.0, "soaking zone gas temperature"),
)
"""Zones in slab travel order: input name, length (m), description."""
FURNACE_LENGTH = sum(z[1] for z in ZONES)
"""Charging door to discharge door, m."""
BLEND_WIDTH = 0.5
"""Width of the logistic zone-boundary blend, m."""
RESIDENCE_TIME_NOMINAL = 2.5 * 3600.0
"""Nominal residence time, s."""
SPEED_NOMINAL = FURNACE_LENGTH / RESIDENCE_TIME_NOMINAL
"""Nominal slab speed, m/s."""
ZONE_NOMINAL = {"t_preheat": 1150.0 + C0, "t_heat_1": 1320.0 + C0, "t_heat_2": 1340.0 + C0,
                "t_soak": 1290.0 + C0}
"""Nominal zone gas temperatures, K: 1244 degC mean discharge, 28 K surface - centre, at 2.5 h."""

RHO = 7850.0
"""Steel density, kg/m^3."""
CP_CONST = 700.0
"""Constant-property specific heat, J/(kg K)."""
K_CONST = 35.0
"""Constant-property thermal conductivity, W/(m K)."""
CP_C0, CP_C1, CP_A, CP_TC, CP_W = 395.0, 0.208, 685.0, 950.0, 115.0
"""cp(T) fit coefficients: J/(kg K), J/(kg K^2), J/(kg K), K, K."""
K_300, K_SLOPE, K_AUST, K_SMOOTH = 60.5, -0.04357, 28.0, 1.0
"""k(T) fit: W/(m K) at 300 K, W/(m K^2), austenite floor W/(m K), smoothing W/(m K)."""

PHI_TOP = 0.55
"""Nominal total exchange factor gas/walls -> top face."""
PHI_BOTTOM = 0.45
"""Nominal total exchange factor gas/walls -> bottom face (shaded by beams and skids)."""
HTC_NOMINAL = 200.0
"""Nominal heat transfer coefficient of the convective variant, W/(m^2 K)."""
U_LOSS = 15.0
"""Wall + skid cooling losses per m^2 of slab face and K of zone temperature, W/(m^2 K)."""
T_AD = 2200.0
"""Adiabatic flame temperature used in the available-heat efficiency, K."""
R_REC = 0.4
"""Fraction of flue-gas sensible heat returned by the recuperator."""
FUEL_PRICE = 35.0 / 3.6e9
"""Fuel (natural gas) price, EUR/J (35 EUR/MWh)."""


class Boundary(Enum):
    """Heat transfer law at the slab faces."""

    RADIATION = "radiation"
    """phi sigma (T_g^4 - T_s^4) with total exchange factors phi_top, phi_bottom."""
    CONVECTION = "convection"
    """Linear h (T_g - T_s) with htc_top, htc_bottom (for the analytic check)."""


class Properties(Enum):
    """Steel thermal properties."""

    TEMPERATURE_DEPENDENT = "temperature_dependent"
    """cp(T), k(T) of plain carbon steel (fits documented in the module)."""
    CONSTANT = "constant"
    """Constant cp, k (CP_CONST, K_CONST)."""


def specific_heat(t: ca.SX | float, properties: Properties) -> ca.SX | float:
    """cp(T), J/(kg K)."""
    if properties is Properties.CONSTANT:
        return CP_CONST + 0.0 * t
    return CP_C0 + CP_C1 * t + CP_A * ca.exp(-(((t - CP_TC) / CP_W) ** 2))


def enthalpy(t: ca.SX | float, properties: Properties) -> ca.SX | float:
    """Specific enthalpy relative to 0 K of the cp fit, J/kg (the integral of cp)."""
    if properties is Properties.CONSTANT:
        return CP_CONST * t
    return (
        CP_C0 * t + 0.5 * CP_C1 * t**2
        + CP_A * CP_W * math.sqrt(math.pi) / 2.0 * ca.erf((t - CP_TC) / CP_W)
    )


def conductivity(t: ca.SX | float, properties: Properties) -> ca.SX | float:
    """k(T), W/(m K)."""
    if properties is Properties.CONSTANT:
        return K_CONST + 0.0 * t
    lin = K_300 + K_SLOPE * (t - 300.0)
    return K_AUST + K_SMOOTH * ca.log1p(ca.exp((lin - K_AUST) / K_SMOOTH))


def zone_weights(z: ca.SX | float) -> list[ca.SX]:
    """Smooth weights of the zones at position z (sum exactly 1)."""
    bounds = np.cumsum([zone[1] for zone in ZONES])[:-1]
    steps = [1.0 / (1.0 + ca.exp(-(z - b) / BLEND_WIDTH)) for b in bounds]
    weights = [1.0 - steps[0]]
    weights += [steps[i - 1] - steps[i] for i in range(1, len(steps))]
    weights.append(steps[-1])
    return weights


def node_names(n_nodes: int) -> list[str]:
    """State names of the temperature nodes, top surface first."""
    return [f"t_{i:02d}" for i in range(n_nodes)]


def build(
    thickness: float = 0.22,
    n_nodes: int = 15,
    boundary: str | Boundary = Boundary.RADIATION,
    properties: str | Properties = Properties.TEMPERATURE_DEPENDENT,
) -> PlantModel:
    """Build the slab-tracking furnace model (see the module docstring)."""
    try:
        bnd = Boundary(boundary)
    except ValueError:
        raise ModelError(
            f"slab_furnace: boundary must be one of {[b.value for b in Boundary]}, got {boundary!r}"
        ) from None
    try:
        props = Properties(properties)
    except ValueError:
        raise ModelError(
            f"slab_furnace: properties must be one of {[p.value for p in Properties]}, "
            f"got {properties!r}"
        ) from None
    if not isinstance(n_nodes, int) or n_nodes < 10:
        raise ModelError(f"slab_furnace: n_nodes must be an integer >= 10, got {n_nodes!r}")
    if not (isinstance(thickness, (int, float)) and 0.05 <= thickness <= 0.5):
        raise ModelError(f"slab_furnace: thickness must be in [0.05, 0.5] m, got {thickness!r}")
    thickness = float(thickness)
    dx = thickness / (n_nodes - 1)
    widths = np.full(n_nodes, dx)
    widths[0] = widths[-1] = dx / 2.0
    names = node_names(n_nodes)
    mid = (n_nodes - 1) / 2.0

    temps = [
        Signal(nm, "K", 250.0, 1800.0, 1000.0,
               f"slab temperature at depth {i * dx:.4f} m from the top face")
        for i, nm in enumerate(names)
    ]
    x = signal_set(
        "x", *temps,
        Signal("position", "m", 0.0, 2.0 * FURNACE_LENGTH, FURNACE_LENGTH / 2,
               "distance of the slab from the charging door"),
        Signal("fuel_energy", "J/kg", 0.0, 1e7, 1.5e6,
               "fuel energy spent on this slab so far, per kg of steel"),
    )
    u = signal_set(
        "u", *[Signal(nm, "K", 773.15, 1350.0 + C0, 1500.0, desc) for nm, _, desc in ZONES]
    )
    d = signal_set(
        "d", Signal("slab_speed", "m/s", 0.0, 0.02, SPEED_NOMINAL,
                    "walking-beam transport speed of the slab")
    )
    if bnd is Boundary.RADIATION:
        p = signal_set(
            "p",
            Signal("phi_top", "1", 0.05, 1.0, PHI_TOP, "total exchange factor to the top face"),
            Signal("phi_bottom", "1", 0.05, 1.0, PHI_BOTTOM,
                   "total exchange factor to the bottom face"),
        )
        p_nom = {"phi_top": PHI_TOP, "phi_bottom": PHI_BOTTOM}
    else:
        p = signal_set(
            "p",
            Signal("htc_top", "W/(m^2 K)", 1.0, 1e4, HTC_NOMINAL, "top face heat transfer coef."),
            Signal("htc_bottom", "W/(m^2 K)", 1.0, 1e4, HTC_NOMINAL,
                   "bottom face heat transfer coefficient"),
        )
        p_nom = {"htc_top": HTC_NOMINAL, "htc_bottom": HTC_NOMINAL}
    y = signal_set(
        "y",
        Signal("t_mean", "K", 250.0, 1800.0, 1000.0, "mean slab temperature (discharge temperature)"),
        Signal("t_surface", "K", 250.0, 1800.0, 1000.0, "top surface temperature"),
        Signal("t_diff", "K", -500.0, 1000.0, 50.0, "top surface minus centre temperature"),
        Signal("position", "m", 0.0, 2.0 * FURNACE_LENGTH, FURNACE_LENGTH / 2, "slab position"),
        Signal("t_gas", "K", 250.0, 2000.0, 1500.0, "gas temperature seen by the slab"),
        Signal("heat_flux", "W/m^2", -1e6, 1e6, 1e5,
               "heat into the slab, top + bottom, per m^2 of face"),
        Signal("fuel_rate", "W/kg", -1e4, 1e4, 200.0, "fuel power spent on the slab per kg"),
        Signal("fuel_energy", "J/kg", 0.0, 1e7, 1.5e6, "fuel energy spent on the slab per kg"),
        Signal("fuel_cost", "EUR/kg", 0.0, 1.0, 0.015, "fuel cost of the slab per kg"),
    )
    mass_per_area = RHO * thickness

    def gas_temperature(s: Symbols) -> ca.SX:
        w = zone_weights(s.position)
        return ca.sum1(ca.vertcat(*[wi * s[nm] for wi, (nm, _, _) in zip(w, ZONES, strict=True)]))

    def face_fluxes(s: Symbols) -> tuple[ca.SX, ca.SX, ca.SX]:
        tg = gas_temperature(s)
        t_top, t_bot = s[names[0]], s[names[-1]]
        if bnd is Boundary.RADIATION:
            q_top = s.phi_top * SIGMA * (tg**4 - t_top**4)
            q_bot = s.phi_bottom * SIGMA * (tg**4 - t_bot**4)
        else:
            q_top = s.htc_top * (tg - t_top)
            q_bot = s.htc_bottom * (tg - t_bot)
        return tg, q_top, q_bot

    def fuel_rate(tg: ca.SX, q_top: ca.SX, q_bot: ca.SX) -> ca.SX:
        eta = 1.0 - (1.0 - R_REC) * (tg - T_AMB) / (T_AD - T_AMB)
        return (q_top + q_bot + U_LOSS * (tg - T_AMB)) / (eta * mass_per_area)

    def rhs(s: Symbols) -> dict[str, ca.SX]:
        tg, q_top, q_bot = face_fluxes(s)
        t = [s[nm] for nm in names]
        # conductive flux from node i to node i+1, W/m^2
        flux = [
            conductivity(0.5 * (t[i] + t[i + 1]), props) * (t[i] - t[i + 1]) / dx
            for i in range(n_nodes - 1)
        ]
        out: dict[str, ca.SX] = {}
        for i, nm in enumerate(names):
            q_in = q_top if i == 0 else flux[i - 1]
            q_out = -q_bot if i == n_nodes - 1 else flux[i]
            out[nm] = (q_in - q_out) / (RHO * widths[i] * specific_heat(t[i], props))
        out["position"] = s.slab_speed
        out["fuel_energy"] = fuel_rate(tg, q_top, q_bot)
        return out

    def output(s: Symbols) -> dict[str, ca.SX]:
        tg, q_top, q_bot = face_fluxes(s)
        t = [s[nm] for nm in names]
        t_mean = sum(w * ti for w, ti in zip(widths, t, strict=True)) / thickness
        lo, hi = int(math.floor(mid)), int(math.ceil(mid))
        t_centre = 0.5 * (t[lo] + t[hi])
        return {
            "t_mean": t_mean, "t_surface": t[0], "t_diff": t[0] - t_centre,
            "position": s.position, "t_gas": tg, "heat_flux": q_top + q_bot,
            "fuel_rate": fuel_rate(tg, q_top, q_bot), "fuel_energy": s.fuel_energy,
            "fuel_cost": FUEL_PRICE * s.fuel_energy,
        }

    x_nom = {nm: T_AMB for nm in names} | {"position": 0.0, "fuel_energy": 0.0}
    return build_model(
        "slab_furnace",
        x=x, u=u, d=d, p=p, y=y, rhs=rhs, output=output,
        nominal={"x": x_nom, "u": ZONE_NOMINAL, "d": {"slab_speed": SPEED_NOMINAL}, "p": p_nom},
        source="Incropera & DeWitt (conduction, steel data Table A.1); Steinboeck et al., "
        "Int. J. Heat Mass Transfer 53 (2010) 5933-5946 (reheating furnace set-up)",
        description=(
            f"Slab ({thickness:.3f} m, {n_nodes} nodes, {props.value} properties) tracked through "
            f"a 4-zone walking-beam reheating furnace, {bnd.value} boundary"
        ),
    )


def simulate_passage(
    model: PlantModel,
    u: dict[str, float] | ArrayLike | None = None,
    slab_speed: float | None = None,
    p: dict[str, float] | ArrayLike | None = None,
    steps: int = 100,
    x0: dict[str, float] | ArrayLike | None = None,
) -> Trajectory:
    """Follow one slab from the charging door (nominal x, or ``x0``) to the discharge door.

    Constant zone temperatures ``u`` (default nominal) and speed; ``steps``
    equal steps over the residence time FURNACE_LENGTH / speed. The last row of
    the trajectory's outputs is the discharge state.
    """
    speed = float(model.nominal.d[0] if slab_speed is None else slab_speed)
    if not (math.isfinite(speed) and speed > 0):
        raise ModelError(f"simulate_passage: slab_speed must be positive, got {slab_speed!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ModelError(f"simulate_passage: steps must be a positive integer, got {steps!r}")
    uv = model.resolve("u", u)
    dt = FURNACE_LENGTH / speed / steps
    return model.simulate(x0, np.tile(uv, (steps, 1)), dt, d=[speed], p=p)


def discharge_function(model: PlantModel) -> ca.Function:
    """CasADi Function ``discharge(x0, u, d, p) -> y`` at the discharge door, differentiable.

    The model is integrated over position instead of time (dx/dz = f / slab
    speed, z from 0 to FURNACE_LENGTH; CVODES with sensitivities), so the map
    from constant zone temperatures, speed and parameters to the discharge
    outputs has exact derivatives: what a steady-state optimiser (RTO) of the
    furnace needs, since the Lagrangian model has no steady state itself.
    """
    cached = model._cache.get("discharge")
    if cached is not None:
        return cached
    names = model.x.names
    if "position" not in names or "slab_speed" not in model.d.names:
        raise ModelError(f"discharge_function: {model.name!r} is not a slab_furnace model")
    x = ca.SX.sym("x", len(model.x))
    u = ca.SX.sym("u", len(model.u))
    d = ca.SX.sym("d", len(model.d))
    p = ca.SX.sym("p", len(model.p))
    speed = d[model.d.index("slab_speed")]
    ode = model.f(x, u, d, p) / speed
    integ = ca.integrator(
        "passage", "cvodes", {"x": x, "p": ca.vertcat(u, d, p), "ode": ode}, 0.0, FURNACE_LENGTH,
        {"abstol": 1e-8, "reltol": 1e-10, "max_num_steps": 100000},
    )
    x0 = ca.MX.sym("x0", len(model.x))
    um = ca.MX.sym("u", len(model.u))
    dm = ca.MX.sym("d", len(model.d))
    pm = ca.MX.sym("p", len(model.p))
    xf = integ(x0=x0, p=ca.vertcat(um, dm, pm))["xf"]
    fun = ca.Function("discharge", [x0, um, dm, pm], [model.h(xf, um, dm, pm)],
                      ["x0", "u", "d", "p"], ["y"])
    model._cache["discharge"] = fun
    return fun
