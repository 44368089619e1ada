"""Steel works by-product gas network: three gases, gasholders, mixing stations, consumers, CHP.

What is modelled. An integrated steel works produces three by-product gases,
each in its own network with a gasholder as buffer (Kong et al. 2010, Fig. 1;
Zeng et al. 2018; Maddaloni et al. 2019):

    BFG (blast furnace gas) --+-> hot stoves ------------(mixing station S: BFG + COG)
                              +-> coke ovens underfiring (mixing station C: BFG + COG)
    COG (coke oven gas) ------+-> reheating furnace ------(mixing station F: BFG+COG+LDG+NG)
                              +-> boilers / CHP ----------(fuel switching: BFG+COG+LDG+NG)
    LDG (converter gas) ------+-> flares (one per network)
    NG (purchased) -----------+   top-up of the furnace and the boilers

States: holder contents ``v_bfg``, ``v_cog``, ``v_ldg`` (m^3 at normal conditions;
dV/dt = production - sum of the network's allocations - flare), the reheating
slab discharge temperature ``t_discharge`` (K, first-order lag of the furnace's
thermal response to fuel and throughput, time constant :data:`TAU_FURNACE`) and
the boilers' steam flow ``m_steam`` (kg/s, first-order lag :data:`TAU_BOILER`).

MVs (m^3/s normal): the allocation of each gas to each consumer it can reach
(``bfg_to_stoves`` ...), natural-gas top-up of the furnace and the boilers, and
the three flares. Disturbances: gas productions, consumer heat demands, the
furnace's throughput and discharge-temperature target, the process steam and
site power demands, and the prices (power, natural gas, flaring penalty), so a
price profile is a disturbance sequence and the RTO sees prices at run time.

Consumers. Hot stoves and coke ovens have heat demands (W) that a BFG/COG mix
must cover with a mixed lower heating value of at least :data:`MIN_LHV`
(flame temperature). The mixing constraint sum_i q_i LHV_i >= LHV_min sum_i q_i
is linear in the flows and is given as a *margin* output sum_i (LHV_i - LHV_min)
q_i >= 0 (W). The reheating furnace burns a mixed gas (BFG, COG, LDG, NG) of at
least 8 MJ/m^3; its steady fuel demand is the reduced relation

    q_req = Q_FIXED + throughput * (E_SPEC + DE_DT * (T_target - T_REF))        [W]
    T_ss  = T_REF + (q_fired - Q_FIXED - throughput * E_SPEC) / (throughput * DE_DT)
    dT_discharge/dt = (T_ss - T_discharge) / TAU_FURNACE

(at steady state the discharge temperature is on target exactly when the fired
heat q_fired equals q_req). Q_FIXED = 5.27 MW, E_SPEC = 1.559 MJ/kg at T_REF =
1200 degC and DE_DT = 0.095 MW/K / 57.6 kg/s are the LP fit of the zoned
``reheating_furnace`` model's minimum-fuel steady states (its :func:`fuel_demand`,
cold charge, 8 MJ/m^3 gas, 40-65 kg/s; see its docstring), so this site and that
furnace unit agree on the furnace's fuel (tested against ``fuel_demand``).
Boilers turn fuel into steam with a per-gas efficiency (lean BFG has the
largest flue-gas loss); the steam first covers the process steam demand through
back-pressure extraction (:data:`W_BACKPRESSURE` J of power per kg) and the rest
expands in the condensing turbine (:data:`W_CONDENSING` J/kg).

Economics (``profit_rate`` output, USD/s): power exported (negative = bought)
at ``power_price`` (USD/J; one price both ways), natural gas bought at
``ng_price`` (USD/m^3), flared energy charged ``flare_penalty`` (USD/J). Holder
levels are kept in their bands by the controller (hard low/high safety levels
:data:`LEVEL_SAFETY`, operating band :data:`LEVEL_BAND`).

Sources and data.
- H. Kong, E. Qi, H. Li, G. Li, X. Zhang, "An MILP model for optimization of
  byproduct gases in the integrated iron and steel plant", Applied Energy 87
  (2010) 2156-2163: the network structure (gas system, gasholders with safety
  levels, cogeneration system with fuel switching, iron and steel-making
  consumers, flaring penalty, purchased power and fuel), the per-period balance
  production = consumption + holder change + flare.
- J. Zeng, X. Zheng, et al. (2018), by-product gas scheduling at the Shougang
  Jingtang works: three-network structure with holders and mixed-gas users.
- A. Maddaloni, R. Matino, I. Matino, S. Dettori, A. Zaccara, V. Colla, "A
  quadratic programming model for the optimization of off-gas networks in
  integrated steelworks", Matériaux & Techniques 107 (2019) 502 (GASNET): the
  network as a capacitated digraph with mixing nodes; mixing constraints on
  heating value.
The paper tables were not available here to copy numbers from. ALL numerical
data below are ASSUMED typical values for a ~3 Mt/y hot-metal works, from the
usual ranges of the by-product gas literature (LHV of BFG 3-3.5, COG 16-18,
LDG 7-8.5, NG 34-36 MJ/m^3; BFG ~1500 m^3/t hot metal; holder sizes 1e5 m^3
order; safety bands ~10-90 %): see :data:`GASES`, :data:`HOLDERS` and the
constants. They are chosen so the steady economic optimum is unique (per-gas
boiler efficiencies differ), which the independent-LP test relies on.
"""

from __future__ import annotations

from collections.abc import Mapping

import casadi as ca

from plant_models.builder import Symbols, build_model
from plant_models.errors import ModelError
from plant_models.model import PlantModel
from plant_models.signals import Signal, signal_set

C0 = 273.15
"""0 degC in K."""
MJ = 1e6
"""J per MJ."""

GASES: dict[str, dict[str, float]] = {
    "bfg": {"lhv": 3.2 * MJ, "production": 140.0, "boiler_eff": 0.85},
    "cog": {"lhv": 17.6 * MJ, "production": 17.0, "boiler_eff": 0.90},
    "ldg": {"lhv": 7.5 * MJ, "production": 10.0, "boiler_eff": 0.88},
    "ng": {"lhv": 35.6 * MJ, "production": 0.0, "boiler_eff": 0.91},
}
"""Per gas: lower heating value (J/m^3 normal), nominal production (m^3/s; 140 m^3/s =
504,000 m^3/h BFG), boiler efficiency (fuel -> steam heat). Assumed typical values."""

HOLDERS: dict[str, float] = {"bfg": 150_000.0, "cog": 100_000.0, "ldg": 80_000.0}
"""Gasholder working volumes, m^3 normal (assumed)."""
LEVEL_SAFETY = (0.10, 0.90)
"""Low/high safety levels of every holder, fraction of working volume (hard limits)."""
LEVEL_BAND = (0.30, 0.70)
"""Operating band of every holder (zone), fraction of working volume."""
LEVEL_NOMINAL = 0.5
"""Nominal holder level, fraction."""

MIN_LHV: dict[str, float] = {"stoves": 4.0 * MJ, "coke_ovens": 4.0 * MJ, "furnace": 8.0 * MJ}
"""Least mixed-gas heating value per mixing station, J/m^3 (assumed)."""

NETWORK: dict[str, tuple[str, ...]] = {
    "stoves": ("bfg", "cog"),
    "coke_ovens": ("bfg", "cog"),
    "furnace": ("bfg", "cog", "ldg", "ng"),
    "boiler": ("bfg", "cog", "ldg", "ng"),
}
"""Which gases reach which consumer (mixing stations)."""

ALLOC_MAX: dict[str, float] = {"bfg": 120.0, "cog": 20.0, "ldg": 20.0, "ng": 8.0}
"""Upper bound of any single allocation of a gas, m^3/s."""
FLARE_MAX: dict[str, float] = {"bfg": 150.0, "cog": 20.0, "ldg": 20.0}
"""Flare capacity per network, m^3/s."""

STOVE_DEMAND = 125.0 * MJ
"""Hot-stove heat demand, W (hot blast of a ~3 Mt/y blast furnace; assumed)."""
COKE_OVEN_DEMAND = 90.0 * MJ
"""Coke-oven underfiring heat demand, W (assumed)."""
THROUGHPUT = 57.6
"""Reheating furnace throughput, kg/s (207 t/h, the ``reheating_furnace`` nominal)."""
T_REF = 1200.0 + C0
"""Discharge temperature at which E_SPEC holds, K."""
Q_FIXED = 5.27e6
"""Throughput-independent furnace fuel (wall and skid losses), W (reheating_furnace fit)."""
E_SPEC = 1.559e6
"""Furnace fuel per kg of steel at T_REF, J/kg (reheating_furnace fit; 1.65 GJ/t in all at
the nominal throughput)."""
DE_DT = 0.095e6 / 57.6
"""Furnace fuel per kg of steel and K of discharge temperature, J/(kg K) (reheating_furnace:
0.095 MW/K at 57.6 kg/s)."""
TAU_FURNACE = 900.0
"""Lumped time constant of the furnace's fired heat -> discharge temperature, s (assumed)."""

DH_STEAM = 2.9e6
"""Enthalpy rise feedwater -> live steam, J/kg (13 MPa/540 degC from 150 degC feedwater)."""
W_CONDENSING = 1.15e6
"""Electric energy per kg of steam through the condensing turbine, J/kg."""
W_BACKPRESSURE = 0.45e6
"""Electric energy per kg of process steam extracted (back-pressure part), J/kg."""
STEAM_LIMITS = (40.0, 220.0)
"""Boiler steam output range (turndown, capacity), kg/s."""
TAU_BOILER = 180.0
"""Boiler steam response time constant, s (assumed)."""
STEAM_DEMAND = 40.0
"""Process steam demand, kg/s."""
POWER_DEMAND = 180.0 * MJ
"""Site electric power demand, W."""

POWER_PRICE = 60.0 / 3.6e9
"""Power price, USD/J (60 USD/MWh)."""
NG_PRICE = 0.30
"""Natural gas price, USD/m^3 normal (8.4 USD/GJ)."""
FLARE_PENALTY = 5.0 / 1e9
"""Penalty on flared energy, USD/J (5 USD/GJ: CO2 cost and permits; assumed)."""


def allocations() -> list[tuple[str, str]]:
    """(gas, consumer) pairs in MV order (flares follow)."""
    return [(g, c) for c in NETWORK for g in NETWORK[c]]


def mv_name(gas: str, consumer: str) -> str:
    """MV name of one allocation, e.g. ``bfg_to_stoves``."""
    return f"{gas}_to_{consumer}"


def steady_furnace_demand(throughput: float, t_target: float) -> float:
    """Steady fuel demand of the reheating furnace, W (the reduced relation above)."""
    return Q_FIXED + throughput * (E_SPEC + DE_DT * (t_target - T_REF))


def _heat(s: Symbols, consumer: str, lhv: Mapping[str, float]) -> ca.SX:
    return ca.sum1(ca.vertcat(*[lhv[g] * s[mv_name(g, consumer)] for g in NETWORK[consumer]]))


def _margin(s: Symbols, consumer: str, lhv: Mapping[str, float]) -> ca.SX:
    terms = [(lhv[g] - MIN_LHV[consumer]) * s[mv_name(g, consumer)] for g in NETWORK[consumer]]
    return ca.sum1(ca.vertcat(*terms))


def _steam_rate(s: Symbols, lhv: Mapping[str, float]) -> ca.SX:
    """Steam the boilers make at steady state from their fuel, kg/s."""
    terms = [GASES[g]["boiler_eff"] * lhv[g] * s[mv_name(g, "boiler")] for g in NETWORK["boiler"]]
    return ca.sum1(ca.vertcat(*terms)) / DH_STEAM


def build(lhv: Mapping[str, float] | None = None, furnace: str = "reduced") -> PlantModel:
    """Build the steel works by-product gas network at its nominal point.

    ``lhv`` overrides heating values by gas (J/m^3), e.g. ``{"bfg": 3.0e6}`` for a
    'true plant' whose gas is leaner than the model believes (modifier adaptation tests).
    ``furnace``: ``"reduced"`` (default) holds the reheating furnace's reduced demand
    relation and discharge temperature; ``"external"`` leaves the furnace to a unit of its
    own (``reheating_furnace`` on its own PLC): its fuel demand is the disturbance
    ``furnace_demand`` (W, fed by that unit's ``fuel_power``), the network must cover it
    (output ``furnace_heat_margin`` >= 0, like the stoves), and the furnace's throughput,
    discharge target and temperature are not signals of the network.
    """
    if furnace not in ("reduced", "external"):
        raise ModelError(
            f"steel_energy: furnace: expected 'reduced' or 'external', got {furnace!r}"
        )
    external = furnace == "external"
    heating = {g: GASES[g]["lhv"] for g in GASES}
    for g, val in (lhv or {}).items():
        if g not in heating or not (float(val) > 0):
            raise ModelError(
                f"steel_energy: lhv[{g!r}]: expected a gas in {sorted(heating)} "
                f"and a positive J/m^3 value, got {val!r}"
            )
        heating[g] = float(val)
    lv = {g: LEVEL_NOMINAL * HOLDERS[g] for g in HOLDERS}
    x = signal_set(
        "x",
        *[
            Signal(
                f"v_{g}",
                "m^3",
                0.0,
                HOLDERS[g],
                HOLDERS[g] / 2,
                f"{g.upper()} gasholder content (normal m^3)",
            )
            for g in HOLDERS
        ],
        *(
            []
            if external
            else [
                Signal(
                    "t_discharge", "K", 300.0, 1800.0, 1473.0, "slab discharge temperature (lagged)"
                )
            ]
        ),
        Signal("m_steam", "kg/s", 0.0, 400.0, 150.0, "boiler steam flow (lagged)"),
    )
    us = [
        Signal(
            mv_name(g, c),
            "m^3/s",
            0.0,
            ALLOC_MAX[g],
            max(1.0, ALLOC_MAX[g] / 4),
            f"{g.upper()} to {c.replace('_', ' ')} (normal m^3/s)",
        )
        for g, c in allocations()
    ]
    us += [
        Signal(
            f"flare_{g}",
            "m^3/s",
            0.0,
            FLARE_MAX[g],
            max(1.0, FLARE_MAX[g] / 10),
            f"{g.upper()} flared (normal m^3/s)",
        )
        for g in HOLDERS
    ]
    u = signal_set("u", *us)
    d = signal_set(
        "d",
        *[
            Signal(
                f"{g}_production",
                "m^3/s",
                0.0,
                400.0,
                max(1.0, GASES[g]["production"]),
                f"{g.upper()} production (normal m^3/s)",
            )
            for g in HOLDERS
        ],
        Signal("stove_demand", "W", 0.0, 400e6, 100e6, "hot-stove heat demand"),
        Signal("coke_oven_demand", "W", 0.0, 400e6, 100e6, "coke-oven underfiring heat demand"),
        *(
            [Signal("furnace_demand", "W", 0.0, 400e6, 100e6, "reheating furnace fuel demand")]
            if external
            else [
                Signal(
                    "furnace_throughput", "kg/s", 1.0, 200.0, 70.0, "reheating furnace throughput"
                ),
                Signal(
                    "discharge_target",
                    "K",
                    1373.15,
                    1573.15,
                    1473.15,
                    "slab discharge temperature target",
                ),
            ]
        ),
        Signal("steam_demand", "kg/s", 0.0, 200.0, 40.0, "process steam demand"),
        Signal("power_demand", "W", 0.0, 1e9, 180e6, "site electric power demand"),
        Signal("power_price", "USD/J", -1e-6, 1e-6, 1.7e-8, "electric power price"),
        Signal("ng_price", "USD/m^3", 0.0, 10.0, 0.3, "natural gas price"),
        Signal("flare_penalty", "USD/J", 0.0, 1e-6, 5e-9, "penalty on flared energy"),
    )
    heat_y = []
    for c in ("stoves", "coke_ovens"):
        label = c.replace("_", " ")
        heat_y += [
            Signal(
                f"{c}_heat_margin",
                "W",
                nominal=1e6,
                description=f"{label}: heat supplied minus demand",
            ),
            Signal(
                f"{c}_lhv_margin",
                "W",
                nominal=1e6,
                description=f"{label}: sum (LHV_i - LHV_min) q_i, >= 0",
            ),
        ]
    y = signal_set(
        "y",
        *[
            Signal(f"level_{g}", "1", 0.0, 1.0, 0.5, f"{g.upper()} gasholder level")
            for g in HOLDERS
        ],
        *heat_y,
        Signal(
            "furnace_lhv_margin",
            "W",
            nominal=1e6,
            description="furnace mixing station: sum (LHV_i - LHV_min) q_i, >= 0",
        ),
        Signal("furnace_fuel_power", "W", nominal=1e8, description="fuel power to the furnace"),
        *(
            [
                Signal(
                    "furnace_heat_margin",
                    "W",
                    nominal=1e6,
                    description="furnace: heat supplied minus demand",
                )
            ]
            if external
            else [
                Signal(
                    "discharge_temperature", "K", nominal=1473.0, description="slab discharge temp."
                ),
                Signal("discharge_error", "K", nominal=10.0, description="discharge minus target"),
            ]
        ),
        Signal("boiler_fuel_power", "W", nominal=5e8, description="fuel power to the boilers"),
        Signal("steam_flow", "kg/s", nominal=150.0, description="boiler steam output"),
        Signal("steam_margin", "kg/s", nominal=10.0, description="steam minus process demand"),
        Signal("power_generated", "W", nominal=1e8, description="CHP electric output"),
        Signal("power_export", "W", nominal=1e8, description="power sold (<0: bought)"),
        Signal("ng_flow", "m^3/s", nominal=1.0, description="natural gas bought"),
        Signal("flare_power", "W", nominal=1e7, description="energy flared"),
        Signal("profit_rate", "USD/s", nominal=1.0, description="power - NG - flare penalty"),
        *[
            Signal(
                f"net_inflow_{g}",
                "m^3/s",
                nominal=10.0,
                description=f"{g.upper()} holder net inflow",
            )
            for g in HOLDERS
        ],
    )

    def outflow(s: Symbols, gas: str) -> ca.SX:
        return sum(s[mv_name(gas, c)] for c in NETWORK if gas in NETWORK[c]) + s[f"flare_{gas}"]

    def rhs(s: Symbols) -> dict[str, ca.SX]:
        out = {f"v_{g}": s[f"{g}_production"] - outflow(s, g) for g in HOLDERS}
        out["m_steam"] = (_steam_rate(s, heating) - s.m_steam) / TAU_BOILER
        if external:
            return out
        t_ss = T_REF + (_heat(s, "furnace", heating) - Q_FIXED - s.furnace_throughput * E_SPEC) / (
            s.furnace_throughput * DE_DT
        )
        out["t_discharge"] = (t_ss - s.t_discharge) / TAU_FURNACE
        return out

    def output(s: Symbols) -> dict[str, ca.SX]:
        power = W_CONDENSING * (s.m_steam - s.steam_demand) + W_BACKPRESSURE * s.steam_demand
        export = power - s.power_demand
        ng = s.ng_to_furnace + s.ng_to_boiler
        flare = ca.sum1(ca.vertcat(*[heating[g] * s[f"flare_{g}"] for g in HOLDERS]))
        out: dict[str, ca.SX] = {f"level_{g}": s[f"v_{g}"] / HOLDERS[g] for g in HOLDERS}
        out["stoves_heat_margin"] = _heat(s, "stoves", heating) - s.stove_demand
        out["stoves_lhv_margin"] = _margin(s, "stoves", heating)
        out["coke_ovens_heat_margin"] = _heat(s, "coke_ovens", heating) - s.coke_oven_demand
        out["coke_ovens_lhv_margin"] = _margin(s, "coke_ovens", heating)
        out["furnace_lhv_margin"] = _margin(s, "furnace", heating)
        out["furnace_fuel_power"] = _heat(s, "furnace", heating)
        if external:
            out["furnace_heat_margin"] = _heat(s, "furnace", heating) - s.furnace_demand
        else:
            out["discharge_temperature"] = s.t_discharge
            out["discharge_error"] = s.t_discharge - s.discharge_target
        out["boiler_fuel_power"] = _heat(s, "boiler", heating)
        out["steam_flow"] = s.m_steam
        out["steam_margin"] = s.m_steam - s.steam_demand
        out["power_generated"] = power
        out["power_export"] = export
        out["ng_flow"] = ng
        out["flare_power"] = flare
        out["profit_rate"] = s.power_price * export - s.ng_price * ng - s.flare_penalty * flare
        for g in HOLDERS:
            out[f"net_inflow_{g}"] = s[f"{g}_production"] - outflow(s, g)
        return out

    nominal_u = nominal_allocation()
    q_f = sum(heating[g] * nominal_u[mv_name(g, "furnace")] for g in NETWORK["furnace"])
    t_dis = T_REF + (q_f - Q_FIXED - THROUGHPUT * E_SPEC) / (THROUGHPUT * DE_DT)
    m_st = (
        sum(
            GASES[g]["boiler_eff"] * heating[g] * nominal_u[mv_name(g, "boiler")]
            for g in NETWORK["boiler"]
        )
        / DH_STEAM
    )
    return build_model(
        "steel_energy",
        x=x,
        u=u,
        d=d,
        y=y,
        rhs=rhs,
        output=output,
        nominal={
            "x": {
                **{f"v_{g}": lv[g] for g in HOLDERS},
                **({} if external else {"t_discharge": t_dis}),
                "m_steam": m_st,
            },
            "u": nominal_u,
            "d": nominal_disturbances(external=external),
        },
        source="Structure: Kong et al., Applied Energy 87 (2010) 2156-2163; Zeng et al. (2018, "
        "Shougang Jingtang); Maddaloni et al. (2019, GASNET). Data: assumed typical values "
        "(see module docstring).",
        description="Steel works by-product gas network: BFG/COG/LDG holders, mixing stations, "
        "hot stoves, coke ovens, reheating furnace, boilers/CHP, NG top-up, flares",
    )


def nominal_disturbances(*, external: bool = False) -> dict[str, float]:
    """Nominal productions, demands and prices (SI); ``external``: of the network whose
    furnace is a unit of its own (its fuel demand instead of throughput and target)."""
    furnace = (
        {"furnace_demand": steady_furnace_demand(THROUGHPUT, T_REF)}
        if external
        else {"furnace_throughput": THROUGHPUT, "discharge_target": T_REF}
    )
    return {
        **{f"{g}_production": GASES[g]["production"] for g in HOLDERS},
        "stove_demand": STOVE_DEMAND,
        "coke_oven_demand": COKE_OVEN_DEMAND,
        **furnace,
        "steam_demand": STEAM_DEMAND,
        "power_demand": POWER_DEMAND,
        "power_price": POWER_PRICE,
        "ng_price": NG_PRICE,
        "flare_penalty": FLARE_PENALTY,
    }


def nominal_allocation() -> dict[str, float]:
    """A balanced hand-set allocation at the nominal disturbances (the 'fixed setpoints').

    Stoves and coke ovens burn BFG enriched with COG at exactly their least mixed LHV;
    the furnace burns COG + LDG + BFG at 8 MJ/m^3; all remaining gas goes to the
    boilers; no natural gas, no flaring. This is what a site without RTO would run.
    """
    lhv = {g: GASES[g]["lhv"] for g in GASES}
    out = {mv_name(g, c): 0.0 for g, c in allocations()}
    out.update({f"flare_{g}": 0.0 for g in HOLDERS})
    for c, demand in (("stoves", STOVE_DEMAND), ("coke_ovens", COKE_OVEN_DEMAND)):
        # bfg*(Lb - Lm) + cog*(Lc - Lm) = 0, bfg*Lb + cog*Lc = demand
        lm = MIN_LHV[c]
        ratio = (lm - lhv["bfg"]) / (lhv["cog"] - lm)  # cog per bfg
        bfg = demand / (lhv["bfg"] + ratio * lhv["cog"])
        out[mv_name("bfg", c)], out[mv_name("cog", c)] = bfg, ratio * bfg
    # furnace: all LDG share fixed at 5 m^3/s, COG/BFG at 8 MJ/m^3 for the rest
    demand = steady_furnace_demand(THROUGHPUT, T_REF)
    ldg = 5.0
    rest = demand - ldg * lhv["ldg"]
    lm = MIN_LHV["furnace"]
    # bfg*(Lb-Lm) + cog*(Lc-Lm) + ldg*(Ll-Lm) = 0 and bfg*Lb + cog*Lc = rest
    a = [[lhv["bfg"] - lm, lhv["cog"] - lm], [lhv["bfg"], lhv["cog"]]]
    b = [-ldg * (lhv["ldg"] - lm), rest]
    det = a[0][0] * a[1][1] - a[0][1] * a[1][0]
    bfg = (b[0] * a[1][1] - a[0][1] * b[1]) / det
    cog = (a[0][0] * b[1] - b[0] * a[1][0]) / det
    out["bfg_to_furnace"], out["cog_to_furnace"], out["ldg_to_furnace"] = bfg, cog, ldg
    for g in HOLDERS:
        used = sum(out[mv_name(g, c)] for c in NETWORK if g in NETWORK[c] and c != "boiler")
        out[mv_name(g, "boiler")] = GASES[g]["production"] - used
    return out
