"""The step-test plan file (TOML, engineering units) and the test signal it describes.

A plan says which MVs move, how, for how long, and which CV limits the test
must respect. Numbers are bare (the signal's SI unit; seconds for times) or
strings with a unit (``"0.3 V"``, ``"5 mm"``, ``"2 h"``, ``"60 s"``),
converted with :func:`plant_models.units.to_si`. Example::

    duration = "100 min"        # total length of the plan
    moves = "simultaneous"      # or "one_at_a_time": each MV in test gets its own slot
    lead_in = "100 s"           # MVs held at the start values first (steady start)
    seed = 3                    # random signals (PRBS start state, GBN switching)

    [[mv]]
    name = "v1"
    signal = "gbn"              # "step" (doublets) | "prbs" | "gbn"
    amplitude = "0.3 V"         # deviation from the start value
    min_switch_time = "60 s"    # step: hold of each half; prbs: clock; gbn: shortest hold
    mean_switch_time = "120 s"  # gbn only (default: 2 x min_switch_time)

    [[mv]]
    name = "v2"
    in_test = false             # held at its start value (still written, so it stays put)

    [[cv]]
    name = "h1"
    lower = "5 cm"
    upper = "13 cm"
    guard_band = "5 mm"         # back off when the CV comes this close to a limit

    [back_off]
    resume_samples = 3          # clear samples before the plan resumes
    lookahead = "0 s"           # extrapolate each CV's trend this far when checking the band
    resume_band_factor = 2.0    # resume once the CV is this many guard bands inside

:func:`load_plan` reads and checks the file against the plant model (names,
units, amplitudes within the MV bounds when the start values are known) and
returns a :class:`ResolvedPlan`: the deviation array per sample (SI) and the
:class:`~rtompc.step_test.StepTestSettings`. Every error names the file and the
key path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, ValidationError

from plant_models.errors import ConfigError
from plant_models.identification.excitation import gbn, prbs
from plant_models.model import PlantModel
from plant_models.units import to_si
from rtompc.config.errors import ConfigProblems, Problem
from rtompc.config.fields import PositiveSeconds, Seconds, Section
from rtompc.config.lines import LineIndex
from rtompc.config.load import _problems, read_toml
from rtompc.step_test import CvLimit, StepTestSettings


class PlanSignal(Enum):
    """Test signal of one MV."""

    STEP = "step"
    """Doublet: +amplitude, then -amplitude, each held ``min_switch_time``."""
    PRBS = "prbs"
    """Maximum-length pseudo-random binary sequence clocked every ``min_switch_time``."""
    GBN = "gbn"
    """Generalised binary noise: held at least ``min_switch_time``, mean ``mean_switch_time``."""


class MoveOrder(Enum):
    """How the MVs in test share the plan's time."""

    SIMULTANEOUS = "simultaneous"
    """All MVs in test move over the whole plan (independent signals)."""
    ONE_AT_A_TIME = "one_at_a_time"
    """The plan is cut into equal slots, one per MV in test, in file order."""


Quantity = float | str
"""A bare number (SI) or a string with a unit."""


class MvPlan(Section):
    """One MV of the plan (``[[mv]]``)."""

    name: str
    """MV name (as in the plant model)."""
    in_test: bool = True
    """Moved by the test; false: held at its start value."""
    signal: PlanSignal = PlanSignal.GBN
    """Test signal."""
    amplitude: Quantity = 0.0
    """Deviation from the start value (MV unit, a difference); > 0 when in test."""
    min_switch_time: Seconds = 0.0
    """Shortest time between moves, s; > 0 when in test."""
    mean_switch_time: PositiveSeconds | None = None
    """GBN: mean time between moves, s (default 2 x min_switch_time)."""


class CvPlan(Section):
    """One CV guarded during the test (``[[cv]]``)."""

    name: str
    """CV name (a measured signal)."""
    lower: Quantity | None = None
    """Lowest acceptable value (CV unit); none: unbounded."""
    upper: Quantity | None = None
    """Highest acceptable value (CV unit); none: unbounded."""
    guard_band: Quantity = 0.0
    """Back off when the CV comes this close to a limit (a difference)."""


class BackOffPlan(Section):
    """How the test backs off and resumes (``[back_off]``)."""

    resume_samples: int = Field(default=3, ge=1)
    """Consecutive clear samples before the plan resumes."""
    lookahead: Seconds = Field(default=0.0, ge=0.0)
    """Extrapolate each CV's last change this far ahead, s."""
    resume_band_factor: float = Field(default=2.0, ge=1.0)
    """Resume when every CV is this many guard bands inside its limits."""
    skip_segment: bool = True
    """Resume at the next switch of the plan rather than inside the interrupted segment."""
    max_duration_factor: float = Field(default=3.0, ge=1.0)
    """Stop when the test has run this many times the plan's duration (too much back-off)."""


class PlanFile(Section):
    """A step-test plan file."""

    duration: PositiveSeconds
    """Length of the plan, s (``"2 h"``)."""
    moves: MoveOrder = MoveOrder.SIMULTANEOUS
    """Simultaneous or one MV at a time."""
    lead_in: Seconds = Field(default=0.0, ge=0.0)
    """MVs held at their start values first, s."""
    seed: int = 0
    """Seed of the random signals."""
    sample_time: PositiveSeconds | None = None
    """Sample time of the test, s (default: the app config's loop sample time)."""
    mv: list[MvPlan] = Field(min_length=1)
    """The MVs (every MV the plant I/O writes; those not listed are held)."""
    cv: list[CvPlan] = Field(default_factory=list)
    """The CVs to record and guard."""
    back_off: BackOffPlan = BackOffPlan()
    """Back-off settings."""


@dataclass(frozen=True)
class ResolvedPlan:
    """A plan in SI numbers, ready for :func:`rtompc.step_test.run_step_test`."""

    sample_time_s: float
    """Sample time, s."""
    mv_names: tuple[str, ...]
    """All MVs, in the plant model's order."""
    in_test: tuple[bool, ...]
    """Moved by the test, per MV."""
    deviations: NDArray[np.float64]
    """Planned deviations from the start values (N, n_mv), SI."""
    settings: StepTestSettings
    """CVs, limits and back-off settings."""
    source: Path | None = None
    """The plan file."""

    @property
    def duration_s(self) -> float:
        """Plan length, s."""
        return float(self.deviations.shape[0] * self.sample_time_s)


class _Where:
    """File and line index of a plan, to name the place of a problem."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.index = LineIndex(text)

    def fail(self, loc: tuple[str | int, ...], message: str) -> ConfigProblems:
        return ConfigProblems([Problem(loc, message, self.path, self.index.line(loc))], self.path)

    def si(
        self, value: Any, unit: str | None, loc: tuple[str | int, ...], *, difference: bool = False
    ) -> float:
        try:
            out = to_si(value, unit, where="value", difference=difference)
        except ConfigError as exc:
            raise self.fail(loc, str(exc).removeprefix("value: ")) from None
        if not math.isfinite(out):
            raise self.fail(loc, f"must be finite, got {value!r}")
        return out


def read_plan(path: str | Path) -> tuple[PlanFile, _Where]:
    """Parse and validate the plan file's structure (every problem at once, with lines)."""
    p = Path(path)
    text, raw = read_toml(p)
    where = _Where(p, text)
    try:
        return PlanFile.model_validate(raw), where
    except ValidationError as exc:
        problems = [
            Problem(
                q.loc,
                q.message,
                q.file,
                where.index.line(q.loc),
                q.expected,
                q.allowed,
                q.suggestion,
                q.notes,
            )
            for q in _problems(exc, PlanFile, raw, p)
        ]
        raise ConfigProblems(problems, p) from None


def load_plan(
    path: str | Path,
    model: PlantModel,
    *,
    sample_time_s: float | None = None,
    measured: tuple[str, ...] | None = None,
) -> ResolvedPlan:
    """Read a plan file and resolve it against ``model`` (module docstring).

    ``sample_time_s`` is used when the plan does not set one; ``measured`` are the
    names the plant I/O measures (default: the model's outputs and disturbances).
    """
    p = Path(path)
    plan, w = read_plan(p)
    dt = plan.sample_time if plan.sample_time is not None else sample_time_s
    if dt is None or not dt > 0:
        raise w.fail(("sample_time",), "give a positive sample time (plan or app config)")
    duration, lead_in = plan.duration, plan.lead_in
    n = int(round(duration / dt))
    n_lead = int(round(lead_in / dt))
    if n < 2 or not 0 <= n_lead < n:
        raise w.fail(
            ("lead_in",),
            f"duration {duration:g} s and lead_in {lead_in:g} s give {n} "
            f"samples of {dt:g} s with {n_lead} lead-in samples; need lead_in < duration",
        )
    names = model.u.names
    seen: dict[str, int] = {}
    for i, mv in enumerate(plan.mv):
        if mv.name not in names:
            raise w.fail(
                ("mv", i, "name"),
                f"{mv.name!r} is not an MV of plant {model.name!r} (MVs: {', '.join(names)})",
            )
        if mv.name in seen:
            raise w.fail(("mv", i, "name"), f"{mv.name!r} is already mv[{seen[mv.name]}]")
        seen[mv.name] = i
    in_test = [mv for mv in plan.mv if mv.in_test]
    if not in_test:
        raise w.fail(("mv",), "no MV has in_test = true; nothing would move")
    dev = np.zeros((n, len(names)))
    slots = (
        [(n_lead, n)] * len(in_test)
        if plan.moves is MoveOrder.SIMULTANEOUS
        else [
            (
                n_lead + k * (n - n_lead) // len(in_test),
                n_lead + (k + 1) * (n - n_lead) // len(in_test),
            )
            for k in range(len(in_test))
        ]
    )
    for k, (mv, (a, b)) in enumerate(zip(in_test, slots, strict=True)):
        i = seen[mv.name]
        unit = model.u[mv.name].unit
        amp = w.si(mv.amplitude, unit, ("mv", i, "amplitude"), difference=True)
        t_min = mv.min_switch_time
        if not amp > 0:
            raise w.fail(
                ("mv", i, "amplitude"), f"must be > 0 for an MV in test, got {amp:g} {unit}"
            )
        if not t_min >= dt:
            raise w.fail(
                ("mv", i, "min_switch_time"),
                f"must be at least the sample time {dt:g} s, got {t_min:g} s",
            )
        dev[a:b, names.index(mv.name)] = _signal(mv, amp, t_min, b - a, dt, plan.seed + k, w, i)
    cvs, limits = _cv_limits(w, plan, model, measured)
    bo = plan.back_off
    settings = StepTestSettings(
        cvs=cvs,
        limits=limits,
        resume_margin_factor=bo.resume_band_factor,
        resume_samples=bo.resume_samples,
        lookahead_s=bo.lookahead,
        skip_segment_on_resume=bo.skip_segment,
        max_samples=int(math.ceil(bo.max_duration_factor * n)),
    )
    return ResolvedPlan(
        dt, names, tuple(n in {m.name for m in in_test} for n in names), dev, settings, p
    )


def _signal(
    mv: MvPlan, amp: float, t_min: float, n: int, dt: float, seed: int, w: _Where, i: int
) -> NDArray[np.float64]:
    hold = max(1, int(round(t_min / dt)))
    if mv.signal is PlanSignal.STEP:
        if 2 * hold > n:
            raise w.fail(
                ("mv", i, "min_switch_time"),
                f"a doublet needs {2 * hold} samples, the MV's slot has {n}; lengthen "
                f"the plan or shorten the switch time",
            )
        out = np.zeros(n)
        out[:hold] = amp
        out[hold : 2 * hold] = -amp
        return out
    if mv.signal is PlanSignal.PRBS:
        return prbs(n, dt, amp, hold * dt, seed)
    mean = mv.mean_switch_time if mv.mean_switch_time is not None else 2.0 * hold * dt
    if mean < hold * dt:
        raise w.fail(
            ("mv", i, "mean_switch_time"),
            f"must be >= min_switch_time ({hold * dt:g} s), got {mean:g} s",
        )
    # GBN clocked at the minimum switch time: switch probability per clock = min / mean
    n_clock = math.ceil(n / hold)
    return np.repeat(gbn(n_clock, hold * dt, amp, mean, seed), hold)[:n]


def _cv_limits(
    w: _Where, plan: PlanFile, model: PlantModel, measured: tuple[str, ...] | None
) -> tuple[tuple[str, ...], tuple[CvLimit, ...]]:
    known = measured if measured is not None else model.y.names + model.d.names
    units = {s.name: s.unit for s in (*model.y, *model.d)}
    cvs: list[str] = []
    limits = []
    for i, cv in enumerate(plan.cv):
        if cv.name not in known:
            raise w.fail(
                ("cv", i, "name"), f"{cv.name!r} is not measured (measured: {', '.join(known)})"
            )
        if cv.name in cvs:
            raise w.fail(("cv", i, "name"), f"{cv.name!r} is listed twice")
        cvs.append(cv.name)
        unit = units.get(cv.name)
        lo = w.si(cv.lower, unit, ("cv", i, "lower")) if cv.lower is not None else -math.inf
        hi = w.si(cv.upper, unit, ("cv", i, "upper")) if cv.upper is not None else math.inf
        band = w.si(cv.guard_band, unit, ("cv", i, "guard_band"), difference=True)
        if cv.lower is None and cv.upper is None:
            continue
        try:
            limits.append(CvLimit(cv.name, lo, hi, band))
        except ConfigError as exc:
            raise w.fail(("cv", i), str(exc)) from None
    if not cvs:
        cvs = [n for n in model.y.names if n in known]
    return tuple(cvs), tuple(limits)
