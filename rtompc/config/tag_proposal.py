"""A tag map proposed from a browsed OPC UA address space (``rtompc config init --from-server``).

Each model signal is matched to a variable by its browse name or the last
``.`` part of it (case, ``_``, ``-``, ``.`` and spaces ignored: ``T_R``,
``t-r``, ``DB1.TR`` all match the signal ``t_r``), or by an explicit
``--map SIGNAL=NAME``. Setpoints must be writable for the session's user; read-backs
of the MVs (actuators) and measurements are the read-only ones; a folder name
(``Setpoints``, ``SP``, ``Actuators``, ``PV``, ``Measurements``) breaks ties.
Status nodes (heartbeat, mode, mode_request, sim_time, watchdog_tripped,
status_text) and a lockstep ``step`` method are found by name too. Units come
from EngineeringUnits when they convert to the signal's SI unit.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from interfaces.browse import AddressSpace, BrowsedVariable
from interfaces.tagmap import NodeRef, StatusTags, Tag, TagGroup
from interfaces.units import unit_from_unece_id
from plant_models.errors import ConfigError
from plant_models.model import PlantModel
from plant_models.signals import Signal
from rtompc.config.transport import StatusTagsConfig

STATUS_NAMES = {
    "heartbeat": ("heartbeat", "hb", "lifebit", "watchdog_counter"),
    "mode": ("mode", "remote", "mode_remote"),
    "mode_request": ("mode_request", "remote_request", "mode_req"),
    "sim_time": ("sim_time_s", "sim_time", "plant_time_s", "t_plant"),
    "watchdog_tripped": ("watchdog_tripped", "wd_tripped"),
    "status_text": ("status_text", "status_message", "status"),
    "clock_lockstep": ("lockstep",),
    "clock_step_s": ("step_size_s",),
    "clock_speed": ("speed_factor",),
}
"""Status-tag keys and the browse names that fill them."""
_SETPOINT_FOLDERS = ("setpoints", "setpoint", "sp", "outputs", "mv")
_READBACK_FOLDERS = ("actuators", "actuator", "pv", "feedback", "readback")
_MEASUREMENT_FOLDERS = ("measurements", "measurement", "inputs", "pv")


def norm(name: str) -> str:
    """A name for matching: lower case without ``_ - . `` and spaces."""
    return re.sub(r"[\s_.\-]", "", name).lower()


def _keys(var: BrowsedVariable) -> set[str]:
    """Names a variable answers to: its browse name and its last ``.`` part (``DB4.MODE``)."""
    return {norm(var.name), norm(var.name.rsplit(".", 1)[-1])}


@dataclass(frozen=True)
class ProposedTag:
    """One matched signal."""

    signal: Signal
    """The model signal."""
    variable: BrowsedVariable
    """The server variable."""
    unit: str | None
    """Unit for the config (None: the signal's SI unit, or the server's unit is unusable)."""
    note: str = ""
    """What the engineer should know (integer type, unit not recognised, narrower range)."""


@dataclass
class Proposal:
    """The proposed tag map and what could not be matched."""

    namespace: str = ""
    """The namespace URI most tags are in (``tags.namespace``)."""
    measurements: list[ProposedTag] = field(default_factory=list)
    setpoints: list[ProposedTag] = field(default_factory=list)
    actuators: list[ProposedTag] = field(default_factory=list)
    status: dict[str, NodeRef] = field(default_factory=dict)
    """Status key -> node."""
    lockstep: bool = False
    """The server has a ``step`` method and no running clock (an rtompc HIL in lockstep)."""
    step_s: float | None = None
    """Plant seconds per simulation step, when the server says (``Status.step_size_s``)."""
    speed: float | None = None
    """Plant seconds per wall second of a real-time server (``Status.speed_factor``)."""
    missing: list[str] = field(default_factory=list)
    """Signals without a match ("setpoint f_b", ...)."""
    unused: list[BrowsedVariable] = field(default_factory=list)
    """Variables that matched nothing (listed as comments for the engineer)."""


def propose(
    space: AddressSpace,
    model: PlantModel,
    plant_object: str | None = None,
    mapping: dict[str, list[str]] | None = None,
) -> Proposal:
    """Match ``model``'s signals to the variables of ``space`` (see module docstring).

    ``mapping`` names variables for signals whose names differ (``{"pump": ["DB2.P100_SP",
    "DB3.P100_PV"]}``: browse name, browse path or node id); an MV may name its writable
    setpoint and its read-only read-back.
    """
    variables = [v for v in space.variables if plant_object is None or v.path[0] == plant_object]
    out = Proposal()
    used: set[int] = set()
    by_name: dict[str, list[int]] = {}
    for i, v in enumerate(variables):
        for key in _keys(v):
            by_name.setdefault(key, []).append(i)
    for sig_name, targets in (mapping or {}).items():  # --map SIGNAL=NAME wins
        wanted = {norm(t) for t in targets}
        for i, v in enumerate(variables):
            if wanted & {norm(v.name), norm(".".join(v.path)), norm(v.node.identifier)}:
                by_name.setdefault(f"={sig_name}", []).append(i)

    def pick(sig: Signal, writable: bool, folders: Sequence[str]) -> int | None:
        named = by_name.get(f"={sig.name}") or by_name.get(norm(sig.name), [])
        cands = [i for i in named if i not in used and variables[i].writable == writable]
        if not cands:
            return None
        cands.sort(key=lambda i: not any(norm(p) in folders for p in variables[i].path[:-1]))
        return cands[0]

    for group, sigs, writable, folders, target in (
        (TagGroup.SETPOINT, model.u, True, _SETPOINT_FOLDERS, out.setpoints),
        (TagGroup.ACTUATOR, model.u, False, _READBACK_FOLDERS, out.actuators),
        (TagGroup.MEASUREMENT, (*model.y, *model.d), False, _MEASUREMENT_FOLDERS, out.measurements),
    ):
        for sig in sigs:
            found = pick(sig, writable, folders)
            if found is None:
                if group is not TagGroup.ACTUATOR:
                    out.missing.append(f"{group.value} {sig.name}")
                continue
            used.add(found)
            target.append(_tag(sig, variables[found], group))
    if len(out.actuators) != len(model.u):
        out.actuators = []  # all MVs or none (the tag map's rule); the read-back then comes
        # from the setpoints
    known = set(StatusTags.__dataclass_fields__) & set(StatusTagsConfig.model_fields)
    values: dict[str, object] = {}
    for key, names in STATUS_NAMES.items():
        for i, v in enumerate(variables):
            if i not in used and _keys(v) & {norm(n) for n in names}:
                used.add(i)
                values[key] = v.value
                if key in known:
                    out.status[key] = v.node
                break
    steps = [
        m
        for m in space.methods
        if norm(m.path[-1]) == "step" and (plant_object is None or m.path[0] == plant_object)
    ]
    if steps:
        out.status["plant_object"] = steps[0].parent
        out.status["step_method"] = steps[0].node
        if isinstance(values.get("clock_lockstep"), bool):
            out.lockstep = bool(values["clock_lockstep"])
        else:  # older HIL: a step method and a clock that does not run
            rt = next((v for v in variables if norm(v.name) == "realtimefactor"), None)
            out.lockstep = rt is not None and rt.value in (0, 0.0)
    step, speed = values.get("clock_step_s"), values.get("clock_speed")
    out.step_s = float(step) if isinstance(step, int | float) and step > 0 else None
    out.speed = float(speed) if isinstance(speed, int | float) and speed > 0 else None
    refs = [t.variable.node.namespace_uri for t in (*out.measurements, *out.setpoints)]
    out.namespace = (
        Counter(refs).most_common(1)[0][0]
        if refs
        else (variables[0].node.namespace_uri if variables else "")
    )
    out.unused = [v for i, v in enumerate(variables) if i not in used]
    return out


def _tag(sig: Signal, var: BrowsedVariable, group: TagGroup) -> ProposedTag:
    notes = []
    unit: str | None = None
    by_code = unit_from_unece_id(var.unece_code) if var.unece_code else None
    for candidate in dict.fromkeys(u for u in (var.unit, by_code) if u):
        try:
            Tag(sig.name, var.node, group, candidate, sig.unit)
        except ConfigError:
            continue
        unit = candidate
        break
    if var.unit and unit is None:
        notes.append(f"server unit {var.unit!r} is not a unit of {sig.unit}: set `unit`")
    if var.data_type not in ("Double", "Float"):
        notes.append(
            f"{var.data_type} node"
            + (": written values are rounded" if group is TagGroup.SETPOINT else "")
        )
    return ProposedTag(sig, var, unit, "; ".join(notes))


def suggest_plant(space: AddressSpace, names: Sequence[str]) -> str | None:
    """The library plant an rtompc HIL serves (its top-level object), if any."""
    for v in space.variables:
        if v.path and v.path[0] in names:
            return v.path[0]
    return None
