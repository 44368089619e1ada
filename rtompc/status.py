"""Status lines for people: one line per cycle (every N), one line per state change.

A status line shows the runtime and plant mode, the link, each CV with its value,
target and limits, and each MV with the value the plant holds, in the plant's
engineering units (the tag map's units over OPC UA, the model's SI units
in-process), then the solver and write outcome::

    cycle     40 t=720.0s ON REMOTE link up | c_b 698.7 mol/m^3 (target 700) t_r 104.3 degC
    (<= 140) | f_dil 14.2 1/h q_k -2.41 kW | solver success, write verified

State changes (link lost/back, mode granted/refused, MV in/out of service,
fallback entered/left, solver rescue, stalls, plant clock jumps) are the
record's events, one line each.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from interfaces.tagmap import Tag
from plant_models.model import PlantModel
from rtompc.cycle import CycleRecord


@dataclass(frozen=True)
class Shown:
    """How one signal is shown: unit and SI -> engineering-unit conversion."""

    unit: str
    """Engineering unit."""
    convert: Callable[[float], float]
    """SI -> engineering unit."""


@dataclass(frozen=True)
class CvLimits:
    """Target and limits of a CV, SI."""

    target: float | None = None
    lower: float = -math.inf
    upper: float = math.inf


def _num(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else "nan"


class StatusFormatter:
    """Formats cycle records for people."""

    def __init__(
        self,
        model: PlantModel,
        cvs: Mapping[str, CvLimits],
        units: Mapping[str, Shown] | None = None,
    ) -> None:
        self.model = model
        self.cvs = dict(cvs)
        self.units = dict(units or {})

    @classmethod
    def for_tags(
        cls, model: PlantModel, cvs: Mapping[str, CvLimits], tags: Sequence[Tag]
    ) -> StatusFormatter:
        """Units from the tag map's tags (engineering unit and SI -> raw conversion)."""
        units = {t.signal: Shown(t.unit, t.to_raw) for t in tags}
        return cls(model, cvs, units)

    def _shown(self, name: str) -> Shown:
        if name in self.units:
            return self.units[name]
        sig = next(
            (s for s in (*self.model.y, *self.model.u, *self.model.d) if s.name == name), None
        )
        return Shown(sig.unit if sig is not None else "", lambda v: v)

    def _value(self, name: str, value: float) -> str:
        shown = self._shown(name)
        return f"{name} {_num(shown.convert(value))} {shown.unit}".rstrip()

    def _cv(self, rec: CycleRecord, name: str) -> str:
        meas = rec.measurement
        value = meas.value(name) if name in meas.names else math.nan
        shown = self._shown(name)
        text = self._value(name, value)
        if name in meas.names and not meas.good(name):
            text += " BAD"
        lim = self.cvs[name]
        target = rec.target.y.get(name) if rec.target is not None else None
        target = target if target is not None else lim.target
        extra = []
        if target is not None:
            extra.append(f"target {_num(shown.convert(target))}")
        if math.isfinite(lim.lower) and math.isfinite(lim.upper):
            extra.append(f"[{_num(shown.convert(lim.lower))}, {_num(shown.convert(lim.upper))}]")
        elif math.isfinite(lim.lower):
            extra.append(f">= {_num(shown.convert(lim.lower))}")
        elif math.isfinite(lim.upper):
            extra.append(f"<= {_num(shown.convert(lim.upper))}")
        return text + (f" ({', '.join(extra)})" if extra else "")

    def line(self, rec: CycleRecord) -> str:
        """The status line of one cycle."""
        cvs = " ".join(self._cv(rec, n) for n in self.cvs)
        mvs = " ".join(
            self._value(n, float(v)) for n, v in zip(rec.mv_names, rec.u_plant, strict=True)
        )
        link = "link up" if rec.connected else "LINK DOWN"
        plant = f" {rec.plant_mode}" if rec.plant_mode else ""
        out = f"; {len(rec.flags)} flag(s)" if rec.flags else ""
        return (
            f"cycle {rec.cycle:6d} t={rec.time_s:.1f}s {rec.mode.value.upper()}{plant} {link} | "
            f"{cvs} | {mvs} | solver {rec.solver_status}, write {rec.write_status}{out}"
        )

    @staticmethod
    def event_lines(rec: CycleRecord) -> list[str]:
        """One line per state change of the cycle."""
        return [f"cycle {rec.cycle:6d} t={rec.time_s:.1f}s: {e}" for e in rec.events]
