"""What an operator surface sees of one control unit after one cycle: the :class:`Frame`.

A frame is plain, frozen data (floats in SI, strings, tuples): the engine's OPC UA
namespace and the web console read frames, never the loop's objects. Frames are
built by :class:`rtompc.live.view.UnitView` from a cycle record, the controller's
result and the live parameters; :meth:`Frame.to_json` gives a JSON-ready dict
(NaN and infinities as ``None``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from typing import Any

from plant_models.samples import Mode


@dataclass(frozen=True)
class Prediction:
    """A predicted trajectory over the controller's horizon."""

    times_s: tuple[float, ...] = ()
    """Engine time of each point (the first is the cycle's time), s."""
    values: tuple[float, ...] = ()
    """Predicted value at each time, SI."""

    @property
    def end(self) -> float:
        """The value at the end of the horizon (NaN when there is no prediction)."""
        return self.values[-1] if self.values else math.nan


@dataclass(frozen=True)
class CvFrame:
    """One controlled variable in one cycle (SI values, NaN where unknown)."""

    name: str
    """Signal name."""
    unit: str
    """Unit of every value of this CV (the model signal's SI unit)."""
    measured: float
    """Value read from the plant this cycle."""
    estimate: float
    """The estimator's value (model output at the estimate, with the output bias)."""
    target: float
    """Steady-state target the controller tracked this cycle (RTO or operator setpoint)."""
    setpoint: float
    """The operator's setpoint (live parameter; NaN: none)."""
    low: float
    """Operator low limit (-inf: none). Limits, setpoint, zone, weight and in service are the
    latest accepted values (live parameters): one accepted during this cycle shows here and is
    in force from the next cycle."""
    high: float
    """Operator high limit (inf: none)."""
    validity_low: float
    """Engineer validity low limit."""
    validity_high: float
    """Engineer validity high limit."""
    zone_low: float
    """Zone low edge (NaN: no zone)."""
    zone_high: float
    """Zone high edge (NaN: no zone)."""
    weight: float
    """Tracking weight."""
    in_service: bool
    """Whether the controller uses this CV."""
    quality: str
    """Measurement quality (``good``/``uncertain``/``bad``) or a supervision flag
    (``frozen``, ...) when one is raised on this signal."""
    prediction: Prediction
    """The controller's predicted trajectory of this CV."""

    @property
    def prediction_end(self) -> float:
        """Predicted value at the end of the horizon."""
        return self.prediction.end


@dataclass(frozen=True)
class MvFrame:
    """One manipulated variable in one cycle (SI values, NaN where unknown)."""

    name: str
    """Signal name."""
    unit: str
    """Unit of every value of this MV (SI)."""
    value: float
    """The value the plant held at the start of the cycle."""
    written: float
    """Value written this cycle (NaN: nothing written)."""
    computed: float
    """Move computed by the controller or the fallback."""
    low: float
    """Operator low limit."""
    high: float
    """Operator high limit."""
    rate: float
    """Rate limit, SI per second (NaN: none)."""
    in_service: bool
    """In service by the operator."""
    health: str
    """``ok``, ``saturated`` (at a limit) or a supervision flag (``stuck``, ...)."""
    write_status: str
    """This MV's write outcome (``accepted``, ``clamped``, ...) or the cycle's write status."""
    planned: Prediction = Prediction()
    """The controller's planned moves over the horizon."""


@dataclass(frozen=True)
class StatusFrame:
    """Controller, solver and link status of one cycle."""

    solver: str
    """Solver that produced the move (``rti``, ``ipopt``, ...)."""
    solver_status: str
    """Its status value (``success``, ``max_iter``, ``off``, ...)."""
    solve_time_s: float
    """Controller step time, s."""
    cycle_time_s: float
    """Whole cycle time, s."""
    fallback: bool
    """This cycle's move came from the fallback policy."""
    fallbacks: int
    """Fallback cycles since the view started."""
    overruns: int
    """Overrun cycles since the view started."""
    service_factor: float
    """Share of cycles since start in which the controller was ON, in control and wrote
    its own (not a fallback) move, 0..1."""
    write_status: str
    """Outcome of the cycle's write (``verified``, ``shadow``, ``held: plant LOCAL``, ...)."""
    flags: tuple[str, ...]
    """Supervision flags raised, ``signal:reason``."""
    events: tuple[str, ...]
    """Events of the cycle."""


@dataclass(frozen=True)
class RtoFrame:
    """The RTO layer as of one cycle."""

    enabled: bool
    """The RTO runs (configured and enabled by the operator)."""
    status: str
    """The last status text of the RTO stage (empty: has not run)."""
    last_profit: float
    """Plant profit of the last RTO iteration, $/s (NaN: none yet)."""
    active_constraints: tuple[str, ...]
    """Limits active at the last RTO optimum, ``signal:side``."""


@dataclass(frozen=True)
class Frame:
    """Everything an operator surface shows of one unit after one cycle."""

    unit: str
    """Unit (control loop) name."""
    cycle: int
    """Cycle counter from 0."""
    time_s: float
    """Engine time of the cycle, s."""
    wall_time_s: float
    """Wall-clock time at the start of the cycle (Unix seconds)."""
    mode: Mode
    """The mode the cycle ran in."""
    mode_request: Mode
    """The mode requested (applied at the next cycle when it differs)."""
    plant_mode: str
    """The plant's mode as read (``REMOTE``/``LOCAL``; empty when not read)."""
    connected: bool
    """Whether the plant link was up."""
    cvs: tuple[CvFrame, ...]
    """Controlled variables, in the controller's order."""
    mvs: tuple[MvFrame, ...]
    """Manipulated variables, in the model's order."""
    status: StatusFrame
    """Controller, solver and link status."""
    rto: RtoFrame
    """RTO status."""

    def cv(self, name: str) -> CvFrame:
        """The CV called ``name`` (KeyError naming the known ones)."""
        for c in self.cvs:
            if c.name == name:
                return c
        raise KeyError(f"no CV {name!r}; known {[c.name for c in self.cvs]}")

    def mv(self, name: str) -> MvFrame:
        """The MV called ``name`` (KeyError naming the known ones)."""
        for m in self.mvs:
            if m.name == name:
                return m
        raise KeyError(f"no MV {name!r}; known {[m.name for m in self.mvs]}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (enums as values, NaN/inf as None, tuples as lists)."""
        out = _plain(self)
        out["cvs"] = [
            {**c, "prediction_end": _num(x.prediction.end)}
            for c, x in zip(out["cvs"], self.cvs, strict=True)
        ]
        return out


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _plain(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, float):
        return _num(obj)
    if isinstance(obj, tuple | list):
        return [_plain(v) for v in obj]
    return obj
