"""TOML configuration of a HIL bench: the plant, its simulator and its server.

A HIL config file (``rtompc hil serve bench.toml``); every table but ``[plant]``
is optional, paths are relative to the file::

    [plant]
    name = "van_de_vusse"                 # registry name or path/to/module.py:function
    params = { parameters = "klatt_engell" }

    [simulator]
    sample_time_s = 1.0
    seed = 0
    initial_mode = "local"                # local | remote
    initial_state = { c_a = 2140.0 }       # by state name, SI (default: nominal)
    initial_inputs = { q_k = -309.3 }      # by MV name, SI (default: nominal)
    noise_std = { t_r = 0.05, c_b = 5.0 } # by measurement name, SI
    [simulator.actuators.q_k]             # per MV: lower, upper, rate_limit_per_s, time_constant_s
    rate_limit_per_s = 50.0
    time_constant_s = 5.0
    [simulator.watchdog]
    timeout_s = 30.0                      # simulation seconds
    fallback = "safe_values"              # hold_last | safe_values
    safe_values = { q_k = -300.0 }
    [[simulator.disturbance]]             # signal, kind (step|ramp), start_s, value, duration_s
    signal = "t_in"
    kind = "ramp"
    start_s = 600.0
    value = 373.15
    duration_s = 300.0
    [[simulator.fault]]                   # see hil.faults

    [server]
    endpoint = "opc.tcp://127.0.0.1:4840"
    speed = 1.0                           # or lockstep = true
    security = "none"                     # none | sign | sign-encrypt
    cert_dir = "certs"
    users = "users.toml"
    faults = "faults.toml"                # more faults, from a scenario file

A multi-unit bench (:func:`load_benches`) has ``[[unit]]`` tables instead, each
with ``name`` and its own ``[unit.plant]``, ``[unit.simulator]`` and
``[unit.server]`` (own endpoint, clock, watchdog, faults and security)::

    [[unit]]
    name = "reactor"
    [unit.plant]
    name = "van_de_vusse"
    [unit.server]
    endpoint = "opc.tcp://127.0.0.1:4841"
    lockstep = true

    [[unit]]
    name = "tanks"
    [unit.plant]
    name = "quadruple_tank"
    [unit.server]
    endpoint = "opc.tcp://127.0.0.1:4842"
    lockstep = true
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.actuators import ActuatorSpec
from hil.clock import ClockConfig, ClockMode
from hil.disturbances import DisturbanceEvent
from hil.faults import load_faults, parse_faults
from hil.plc import ControlMode, WatchdogConfig
from hil.security import SecurityMode, load_users
from hil.server import ServerConfig
from hil.simulator import SimulatorConfig
from plant_models.errors import ConfigError, EngineError


@dataclass(frozen=True)
class BenchConfig:
    """Everything ``rtompc hil serve`` needs."""

    plant: str
    """Plant registry name or ``path/to/module.py:function``."""
    plant_params: Mapping[str, Any]
    """Keyword arguments of the plant builder."""
    simulator: SimulatorConfig
    """The simulated plant's behaviour."""
    server: ServerConfig
    """Endpoint, clock and security."""


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.{key}: expected a table")
    return value


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _build(cls: Any, kwargs: Mapping[str, Any], where: str) -> Any:
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def simulator_config(data: Mapping[str, Any], where: str = "simulator") -> SimulatorConfig:
    """A SimulatorConfig from a ``[simulator]`` table."""
    _check_keys(data, {"sample_time_s", "seed", "initial_mode", "noise_std", "actuators", "watchdog",
                       "disturbance", "fault", "initial_state", "initial_inputs", "integrator"}, where)
    kw: dict[str, Any] = {k: data[k] for k in ("sample_time_s", "seed", "integrator", "initial_state",
                                               "initial_inputs") if k in data}
    if "initial_mode" in data:
        try:
            kw["initial_mode"] = ControlMode[str(data["initial_mode"]).upper()]
        except KeyError:
            raise ConfigError(f"{where}.initial_mode: expected 'local' or 'remote', "
                              f"got {data['initial_mode']!r}") from None
    kw["noise_std"] = dict(_table(data, "noise_std", where))
    acts = _table(data, "actuators", where)
    kw["actuators"] = {name: _build(ActuatorSpec, _table(acts, name, f"{where}.actuators"),
                                    f"{where}.actuators.{name}") for name in acts}
    if "watchdog" in data:
        wd = _table(data, "watchdog", where)
        kw["watchdog"] = _build(WatchdogConfig, wd, f"{where}.watchdog")
    events = data.get("disturbance", [])
    if not isinstance(events, list):
        raise ConfigError(f"{where}.disturbance: expected an array of tables ([[simulator.disturbance]])")
    kw["disturbances"] = tuple(_build(DisturbanceEvent, ev, f"{where}.disturbance[{i}]")
                               for i, ev in enumerate(events))
    kw["faults"] = parse_faults(data.get("fault", []), f"{where}.fault")
    return _build(SimulatorConfig, kw, where)


def load_benches(path: str | Path, **overrides: Any) -> dict[str, BenchConfig]:
    """Read a HIL config file of one plant or of several units; unit name -> bench.

    A multi-unit bench has ``[[unit]]`` tables, each with a ``name`` and its own ``[plant]``,
    ``[simulator]`` and ``[server]`` (``[unit.plant]``, ...): one endpoint per unit, i.e.
    several "PLCs" in one process, each with its own watchdog, faults and security. A
    single-plant file is one unit named after its plant. ``overrides`` apply to every unit
    (``endpoint`` only to a single-plant file).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        return benches_from_mapping(data, base_dir=path.parent, **overrides)
    except EngineError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def benches_from_mapping(
    data: Mapping[str, Any], *, base_dir: Path = Path("."), **overrides: Any
) -> dict[str, BenchConfig]:
    """Unit name -> BenchConfig from parsed TOML (single plant or ``[[unit]]`` tables)."""
    units = data.get("unit")
    if units is None:
        bench = bench_from_mapping(data, base_dir=base_dir, **overrides)
        return {bench.plant.rsplit(":", 1)[-1]: bench}
    _check_keys(data, {"unit", "link"}, "config")
    if not isinstance(units, list) or not units:
        raise ConfigError("unit: expected one or more [[unit]] tables")
    if overrides.get("endpoint") is not None:
        raise ConfigError("--endpoint: a multi-unit bench has one endpoint per unit "
                          "([unit.server] endpoint); give them in the file")
    out: dict[str, BenchConfig] = {}
    endpoints: dict[str, str] = {}
    for i, unit in enumerate(units):
        where = f"unit[{i}]"
        if not isinstance(unit, Mapping):
            raise ConfigError(f"{where}: expected a table")
        name = unit.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ConfigError(f"{where}.name: required, a snake_case unit name, got {name!r}")
        if name in out:
            raise ConfigError(f"{where}.name: unit {name!r} is defined twice")
        body = {k: v for k, v in unit.items() if k != "name"}
        try:
            bench = bench_from_mapping(body, base_dir=base_dir, **overrides)
        except ConfigError as exc:
            raise ConfigError(f"{where} ({name}): {exc}") from None
        if bench.server.endpoint in endpoints:
            raise ConfigError(f"{where}.server.endpoint: {bench.server.endpoint} is also unit "
                              f"{endpoints[bench.server.endpoint]!r}'s: one endpoint per unit")
        endpoints[bench.server.endpoint] = name
        out[name] = bench
    return out


@dataclass(frozen=True)
class LinkConfig:
    """``[[link]]`` of a multi-unit bench: a stream between two units' plants. After every
    step of the source unit, its output's noise-free value becomes the sink unit's
    disturbance (gas drawn, slabs passed) until the next step."""

    source: tuple[str, str]
    """(unit, output) the stream comes from."""
    sink: tuple[str, str]
    """(unit, disturbance) it sets."""


def links_from_mapping(data: Mapping[str, Any], benches: Mapping[str, BenchConfig]) -> tuple[LinkConfig, ...]:
    """The ``[[link]]`` tables (``from = "unit.output"``, ``to = "unit.disturbance"``), checked
    against the units of ``benches`` and their plants."""
    from plant_models.library import load

    raw = data.get("link", [])
    if not isinstance(raw, list):
        raise ConfigError("link: expected an array of tables ([[link]])")
    out = []
    for i, table in enumerate(raw):
        where = f"link[{i}]"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: expected a table")
        _check_keys(table, {"from", "to"}, where)
        ends = []
        for key, group, kind in (("from", "y", "output"), ("to", "d", "disturbance")):
            value = table.get(key)
            unit, dot, sig = str(value).partition(".")
            if not isinstance(value, str) or not dot or unit not in benches:
                raise ConfigError(f"{where}.{key}: expected 'unit.{kind}' with a unit of the bench "
                                  f"({', '.join(benches)}), got {value!r}")
            bench = benches[unit]
            model = load(bench.plant, **bench.plant_params)
            if sig not in getattr(model, group):
                raise ConfigError(f"{where}.{key}: unit {unit!r} ({model.name}) has no {kind} {sig!r}; "
                                  f"{kind}s: {', '.join(getattr(model, group).names)}")
            ends.append((unit, sig))
        out.append(LinkConfig(ends[0], ends[1]))
    return tuple(out)


def load_links(path: str | Path) -> tuple[LinkConfig, ...]:
    """The ``[[link]]`` tables of a bench file (none for a single-plant file)."""
    path = Path(path)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    if "unit" not in data:
        return ()
    try:
        return links_from_mapping(data, benches_from_mapping(data, base_dir=path.parent))
    except EngineError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_bench(path: str | Path, **overrides: Any) -> BenchConfig:
    """Read a HIL config file; ``overrides`` replace ``[server]`` keys (from the command line;
    give their paths absolute)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        return bench_from_mapping(data, base_dir=path.parent, **overrides)
    except EngineError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def bench_from_mapping(data: Mapping[str, Any], *, base_dir: Path = Path("."), **overrides: Any) -> BenchConfig:
    """A BenchConfig from parsed TOML (``[plant]``, ``[simulator]``, ``[server]``)."""
    _check_keys(data, {"plant", "simulator", "server"}, "config")
    plant = _table(data, "plant", "config")
    _check_keys(plant, {"name", "params"}, "plant")
    if not isinstance(plant.get("name"), str):
        raise ConfigError("plant.name: required (a registry name or path/to/module.py:function)")
    sim = simulator_config(_table(data, "simulator", "config"))
    server = {**_table(data, "server", "config"), **{k: v for k, v in overrides.items() if v is not None}}
    _check_keys(server, {"endpoint", "speed", "lockstep", "security", "cert_dir", "users", "faults",
                         "application_uri"}, "server")
    faults_path = server.pop("faults", None)
    if faults_path:
        extra = load_faults(_resolve(base_dir, faults_path))
        sim = SimulatorConfig(**{**sim.__dict__, "faults": sim.faults + extra})
    return BenchConfig(plant["name"], dict(_table(plant, "params", "plant")), sim,
                       server_config(server, base_dir))


def server_config(server: Mapping[str, Any], base_dir: Path = Path(".")) -> ServerConfig:
    """A ServerConfig from a ``[server]`` table (paths relative to ``base_dir``)."""
    lockstep = bool(server.get("lockstep", False))
    clock = _build(ClockConfig, {"mode": ClockMode.LOCKSTEP if lockstep else ClockMode.REALTIME,
                                 "speed": server.get("speed", 1.0)}, "server.speed")
    try:
        security = SecurityMode(server.get("security", "none"))
    except ValueError:
        raise ConfigError(f"server.security: expected none, sign or sign-encrypt, "
                          f"got {server.get('security')!r}") from None
    users = load_users(_resolve(base_dir, server["users"])) if server.get("users") else {}
    cert_dir = _resolve(base_dir, server["cert_dir"]) if server.get("cert_dir") else None
    kw: dict[str, Any] = {"clock": clock, "security": security, "users": users, "cert_dir": cert_dir}
    for key in ("endpoint", "application_uri"):
        if key in server:
            kw[key] = server[key]
    return _build(ServerConfig, kw, "server")


def _resolve(base: Path, value: Any) -> Path:
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else base / p
