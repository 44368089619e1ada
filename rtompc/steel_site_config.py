"""The steel works as a site of two units on two PLCs: its application config and HIL bench.

Units (each its own ``[[unit]]``: own PLC endpoint, sample time, EKF and NMPC):

- ``steel``: the by-product gas network (``steel_energy`` with ``furnace = "external"``:
  holders, stoves, coke ovens, the furnace's mixing station, boilers/CHP, natural gas,
  flares), 60 s, the stage-structured NMPC of :func:`rtompc.steel_case.steel_mpc_config`
  with the furnace's heat margin in place of the reduced discharge temperature;
- ``furnace``: the three-zone slab reheating furnace (``reheating_furnace``, 63 states),
  300 s, the NMPC of ``scenarios/furnace_discharge_setpoint.toml`` (discharge temperature
  on target, surface-centre difference and zone temperatures under their limits).

The stream between them is physical on the bench (``[[link]]``: the furnace's fired fuel
power is the network's furnace demand after every furnace step) and in the plant-wide
RTO (``[[plantwide.stream]]`` ``furnace.fuel_power -> steel.furnace_demand``): the site
optimum trades the furnace's zone firing (least fuel for a 1200-1205 degC discharge)
against the network's gas allocation, power sold or bought, natural gas and flaring.
Prices are disturbances measured on the network's PLC (tags), so a price swing reaches
the RTO over OPC UA.

:func:`site_config_text` and :func:`bench_text` write both files; the demo
(:mod:`rtompc.steel_demo`) and the shipped example ``examples/steel_site/`` use them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plant_models.library import load
from plant_models.library import steel_energy as se
from rtompc.config.mpc_section import CvConfig, MvConfig
from rtompc.steel_case import StepEvent, steel_mpc_config

NETWORK = "steel"
"""Unit name of the gas network."""
FURNACE = "furnace"
"""Unit name of the reheating furnace."""
NETWORK_DT = 60.0
"""Network sample time, s."""
FURNACE_DT = 300.0
"""Furnace sample time, s (its NMPC sees 2 h ahead at 24 steps)."""
NETWORK_GATE = ("bfg_production", "cog_production", "ldg_production", "furnace_demand")
"""Network signals whose steadiness gates its new targets."""
FURNACE_GATE = ("throughput", "fuel_power")
"""Furnace signals whose steadiness gates its new targets."""
NETWORK_MEASURED = ("level_bfg", "level_cog", "level_ldg", "steam_flow")
FURNACE_MEASURED = (
    "t_discharge",
    "t_discharge_surface",
    "t_zone_preheat",
    "t_zone_heating",
    "t_zone_soaking",
)
FURNACE_EVENT_SIGNALS = {"furnace_throughput": (FURNACE, "throughput")}
"""Event signals of :data:`rtompc.steel_case.EVENTS` that belong to the furnace unit."""


@dataclass(frozen=True)
class Endpoint:
    """How the engine reaches one unit's PLC."""

    url: str
    """opc.tcp URL."""
    transport: Mapping[str, Any]
    """Extra ``[unit.transport]`` keys (security, certificates, user)."""


def secure_transport(secure: Any, password_env: str, **extra: Any) -> dict[str, Any]:
    """``[unit.transport]`` keys of a SignAndEncrypt client of a
    :func:`rtompc.hil_process.make_secure_bench` bench (password in ``password_env``)."""
    c = secure.client
    return {
        "security": "sign-encrypt",
        "certificate": str(c.certificate),
        "private_key": str(c.private_key),
        "trust_list": [str(c.trusted_server_certificates)],
        "application_uri": c.application_uri,
        "user": secure.username,
        "password_env": password_env,
        **extra,
    }


def network_mpc_tables(horizon_steps: int = 15) -> list[str]:
    """``[unit.mpc]`` of the network: the steel case's NMPC, the furnace heat margin kept
    non-negative instead of the reduced discharge temperature."""
    mpc = steel_mpc_config(NETWORK_DT, horizon_steps)
    cvs = [c for c in mpc.cvs if c.name != "discharge_error"]
    stoves = next(c for c in mpc.cvs if c.name == "stoves_heat_margin")
    cvs.append(dataclasses.replace(stoves, name="furnace_heat_margin"))
    lines = ["[unit.mpc]", f"horizon_steps = {horizon_steps}", f"sample_time_s = {NETWORK_DT!r}"]
    for cv in cvs:
        lines += _spec_table("[[unit.mpc.cvs]]", cv, CvConfig)
    for mv in mpc.mvs:
        lines += _spec_table("[[unit.mpc.mvs]]", mv, MvConfig)
    return lines


FURNACE_MPC = """\
[unit.mpc]
horizon_steps = 24
sample_time_s = 300.0
discretisation = "collocation"
collocation_degree = 1
ipopt_fallback = false
[[unit.mpc.cvs]]
name = "t_discharge"
weight = 1.0
target = "1200 degC"
cost_scale = "1 K"
[[unit.mpc.cvs]]
name = "t_discharge_diff"
upper = "40 K"
l1_penalty = 10000.0
l2_penalty = 1000.0
[[unit.mpc.cvs]]
name = "t_zone_heating"
upper = "1350 degC"
l1_penalty = 10000.0
l2_penalty = 1000.0
[[unit.mpc.cvs]]
name = "t_zone_soaking"
upper = "1350 degC"
l1_penalty = 10000.0
l2_penalty = 1000.0
[[unit.mpc.mvs]]
name = "q_gas_preheat"
move_weight = 1.0
cost_scale = 0.1
weight = 0.01
target = {q_preheat}
[[unit.mpc.mvs]]
name = "q_gas_heating"
move_weight = 1.0
cost_scale = 0.1
weight = 0.01
target = {q_heating}
[[unit.mpc.mvs]]
name = "q_gas_soaking"
move_weight = 1.0
cost_scale = 0.1
weight = 0.01
target = {q_soaking}
[unit.estimator]
measured = {measured}
output_disturbances = ["t_discharge"]
substeps = 10
"""


def _furnace_mpc() -> str:
    """``[unit.mpc]`` and ``[unit.estimator]`` of the furnace: the zone firings rest at their
    nominal values (weight 0.01: a tie-breaker between the firings that give the same discharge
    temperature), which the plant-wide RTO replaces by its least-fuel firing."""
    model = load("reheating_furnace")
    text = FURNACE_MPC.replace("{measured}", _toml_value(list(FURNACE_MEASURED)))
    for z in ("preheat", "heating", "soaking"):
        nominal = float(model.nominal.u[model.u.index(f"q_gas_{z}")])
        text = text.replace(f"{{q_{z}}}", repr(nominal))
    return text


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(float(v)) if isinstance(v, float) else repr(v)


def _spec_table(header: str, spec: Any, section: type[Any]) -> list[str]:
    """A config table from an ``mpc.config`` spec (fields the section has, when they differ
    from its defaults)."""
    lines = [header]
    for f in dataclasses.fields(spec):
        if f.name not in section.model_fields:
            continue
        value = getattr(spec, f.name)
        default = section.model_fields[f.name].default
        if f.name != "name" and (value is None or value == default):
            continue
        lines.append(f"{f.name} = {_toml_value(value)}")
    return lines


def plantwide_text(every_s: float = 900.0) -> str:
    """The ``[plantwide]`` section of the steel site."""
    model = load("steel_energy", furnace="external")
    limits = [
        '"steel.stoves_heat_margin" = [0, inf]',
        '"steel.stoves_lhv_margin" = [0, inf]',
        '"steel.coke_ovens_heat_margin" = [0, inf]',
        '"steel.coke_ovens_lhv_margin" = [0, inf]',
        '"steel.furnace_lhv_margin" = [0, inf]',
        '"steel.furnace_heat_margin" = [0, inf]',
        f'"steel.steam_flow" = ["{se.STEAM_LIMITS[0]:g} kg/s", "{se.STEAM_LIMITS[1]:g} kg/s"]',
        '"steel.steam_margin" = [0, inf]',
        '"furnace.t_discharge" = ["1200 degC", "1205 degC"]',
        '"furnace.t_discharge_diff" = [-inf, "40 K"]',
        '"furnace.t_zone_heating" = [-inf, "1350 degC"]',
        '"furnace.t_zone_soaking" = [-inf, "1350 degC"]',
    ]
    rates = ", ".join(f"{n} = {0.02 * float(model.u[n].nominal)!r}" for n in model.u.names)
    lines = [
        "# plant-wide RTO: one steady-state optimisation over both units, every 15 min",
        "[plantwide]",
        f"every_s = {every_s!r}",
        "# a price move > 5 % runs the RTO at once (its targets pass the steady-state gates)",
        'trigger_signals = ["steel.power_price", "steel.ng_price"]',
        "trigger_change = 0.05",
        "[plantwide.objective]",
        '"steel.profit_rate" = 1.0  # USD/s: power sold at its price, NG bought, flaring',
        "[plantwide.limits]",
        *limits,
        "[[plantwide.stream]]",
        'name = "furnace_fuel"',
        'kind = "gas"',
        'from = "furnace.fuel_power"',
        'to = "steel.furnace_demand"',
        "[plantwide.units.steel]",
        'held_states = ["v_bfg", "v_cog", "v_ldg"]',
        f"steady_signals = {_toml_value(list(NETWORK_GATE))}",
        f"max_rate = {{ {rates} }}",
        "[plantwide.units.furnace]",
        f"steady_signals = {_toml_value(list(FURNACE_GATE))}",
        "steady_window = 11",
        "max_rate = { q_gas_preheat = 0.002, q_gas_heating = 0.002, q_gas_soaking = 0.002 }",
    ]
    return "\n".join(lines) + "\n"


def _transport(ep: Endpoint) -> list[str]:
    lines = ["[unit.transport]", 'kind = "opcua"', f"endpoint = {json.dumps(ep.url)}"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in ep.transport.items()]
    lines.append("lockstep = true")
    return lines


def site_config_text(
    endpoints: Mapping[str, Endpoint],
    *,
    historian: str | None = "steel.sqlite",
    every_s: float = 900.0,
    plantwide: bool = True,
    horizon_steps: int = 15,
) -> str:
    """The multi-unit application: network and furnace over OPC UA, plant-wide RTO (or, with
    ``plantwide=False``, fixed setpoints: the units keep their configured targets)."""
    lines = ["# The steel works as two units on two PLCs (rtompc.steel_site_config)."]
    if historian is not None:
        lines += ["[historian]", f"path = {json.dumps(historian)}", ""]
    if plantwide:
        lines += [plantwide_text(every_s)]
    lines += [
        "[[unit]]",
        f'name = "{NETWORK}"',
        "[unit.plant]",
        'name = "steel_energy"',
        'params = { furnace = "external" }',
        *_transport(endpoints[NETWORK]),
        "[unit.loop]",
        'mode = "on"',
        "max_fallback_cycles = 5",
        *network_mpc_tables(horizon_steps),
        "[unit.estimator]",
        f"measured = {_toml_value(list(NETWORK_MEASURED))}",
        "",
        "[[unit]]",
        f'name = "{FURNACE}"',
        "[unit.plant]",
        'name = "reheating_furnace"',
        *_transport(endpoints[FURNACE]),
        "[unit.loop]",
        'mode = "on"',
        "max_fallback_cycles = 5",
        _furnace_mpc(),
    ]
    return "\n".join(lines)


def event_steps(events: Sequence[StepEvent], hours: float) -> list[tuple[str, str, float, float]]:
    """(unit, signal, start_s, value) steps of the benches' disturbance schedules: each event's
    values, and back to nominal at its end."""
    nominal = {
        NETWORK: load("steel_energy", furnace="external"),
        FURNACE: load("reheating_furnace"),
    }
    steps = []
    for ev in events:
        for name, value in ev.values.items():
            unit, sig = FURNACE_EVENT_SIGNALS.get(name, (NETWORK, name))
            v = float(value)
            if name == "furnace_throughput":  # the reduced model's kg/s, the same on the furnace
                v = float(value) * float(nominal[FURNACE].nominal.d[0]) / se.THROUGHPUT
            steps.append((unit, sig, ev.start_s, v))
            if math.isfinite(ev.end_s) and ev.end_s < hours * 3600.0:
                m = nominal[unit]
                steps.append((unit, sig, ev.end_s, float(m.nominal.d[m.d.index(sig)])))
    return steps


def bench_text(
    endpoints: Mapping[str, str],
    *,
    events: Sequence[tuple[str, str, float, float]] = (),
    secure: Any = None,
    seed: int = 2010,
) -> str:
    """The multi-unit HIL bench of the units in ``endpoints`` (both: two PLCs and the fuel
    link furnace -> network; one: that unit's PLC alone, its stream inputs at their
    profile): lockstep, measurement noise on the gated signals, the event schedule."""
    from rtompc.hil_process import bench_text as one_bench

    steel = load("steel_energy", furnace="external")
    furnace = load("reheating_furnace")
    noise = {
        NETWORK: {n: 5e-3 * abs(float(steel.nominal.d[steel.d.index(n)])) for n in NETWORK_GATE},
        FURNACE: {"throughput": 5e-3 * float(furnace.nominal.d[0]), "fuel_power": 2e5},
    }
    plants = {
        NETWORK: ("steel_energy", {"furnace": "external"}, NETWORK_DT),
        FURNACE: ("reheating_furnace", {}, FURNACE_DT),
    }
    out: list[str] = ["# The steel works bench: two PLCs and the stream between them."]
    for unit, (plant, params, dt) in plants.items():
        if unit not in endpoints:
            continue
        text = one_bench(
            plant,
            params,
            endpoint=endpoints[unit],
            sample_time_s=dt,
            speed=None,
            secure=secure,
            noise_std=noise[unit],
            seed=seed,
            watchdog_timeout_s=20 * dt,
        )
        out += ["[[unit]]", f'name = "{unit}"']
        out += [f"[unit.{ln[1:]}" if ln.startswith("[") else ln for ln in text.splitlines()]
        for u, sig, start, value in events:
            if u == unit:
                out += [
                    "[[unit.simulator.disturbance]]",
                    f'signal = "{sig}"',
                    'kind = "step"',
                    f"start_s = {start!r}",
                    f"value = {value!r}",
                ]
        out.append("")
    if NETWORK in endpoints and FURNACE in endpoints:
        out += ["[[link]]", f'from = "{FURNACE}.fuel_power"', f'to = "{NETWORK}.furnace_demand"']
    return "\n".join(out) + "\n"


EXAMPLE_ENDPOINTS = {NETWORK: "opc.tcp://127.0.0.1:4861", FURNACE: "opc.tcp://127.0.0.1:4862"}
"""Loopback endpoints of the shipped example (security none: loopback only)."""


def example_texts() -> dict[str, str]:
    """``examples/steel_site/``: ``site.toml`` and ``bench.toml`` (loopback, no security;
    the demo writes the secured ones)."""
    how = (
        "# Written by rtompc.steel_site_config.example_texts (a test checks they agree). Run:\n"
        "#   rtompc hil serve examples/steel_site/bench.toml      # two PLCs, lockstep\n"
        "#   rtompc run examples/steel_site/site.toml --steps 180  # 3 h of the network\n"
    )
    return {
        "site.toml": how
        + site_config_text(
            {u: Endpoint(url, {}) for u, url in EXAMPLE_ENDPOINTS.items()},
            historian="steel_site.sqlite",
        ),
        "bench.toml": how + bench_text(EXAMPLE_ENDPOINTS),
    }
