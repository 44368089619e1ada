"""A multi-unit application from its config: build every unit, check, run, hand back, record.

:class:`SiteRun` turns a :class:`~rtompc.config.site.SiteConfig` into one
:class:`~rtompc.runtime.ControlLoop` per unit (each with its own PlantIO,
estimator, NMPC, RTO stage, live parameters and historian run) and a
:class:`~rtompc.multiunit.MultiUnitEngine` with its coordinator.

Lifecycle policy (``rtompc run SITE.toml``):

- start-up is all-or-nothing: every unit connects and passes its checks
  (nodes, clocks) before anything is written to any plant; one failing unit is
  exit code 2 and nothing runs;
- once running, units are independent: a unit whose link drops, whose plant
  goes LOCAL or whose solver fails keeps cycling (its loop holds, retries and
  records) while the others carry on; the coordinator holds its targets;
- at the end each unit is handed back by its own ``loop.on_stop`` and its run
  in the (shared) historian is closed with its own exit reason; the process
  exit code is the worst unit's (:func:`rtompc.multiunit.worst_outcome`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interfaces.plantio import PlantIO
from plant_models.errors import EngineError, PlantIOError
from plant_models.samples import Mode
from rtompc.config import build
from rtompc.config.errors import ConfigProblems, Problem
from rtompc.config.site import SiteConfig, UnitConfig
from rtompc.cycle import CycleRecord
from rtompc.historian.store import RunKind
from rtompc.lifecycle import ExitCode, RunOutcome, StartupError, decide_exit, hand_back
from rtompc.live.startup import live_for_run
from rtompc.live.view import EngineViews, UnitView
from rtompc.multiunit import Coordinator, MultiUnitEngine, SiteTargetSource, worst_outcome
from rtompc.plantwide_source import PlantwideSource
from rtompc.runtime import ControlLoop
from rtompc.status import CvLimits, StatusFormatter

logger = logging.getLogger(__name__)


@dataclass
class UnitStack:
    """One built unit."""

    name: str
    """Unit name."""
    cfg: UnitConfig
    """Its config."""
    loop: ControlLoop
    """Its control loop."""
    io: PlantIO
    """Its plant I/O (not yet connected)."""
    mode: Mode
    """Start mode."""
    historian: Any = None
    """Its historian handle (one per unit, all on the site's file), or None."""
    formatter: StatusFormatter | None = None
    """Status lines in the plant's units."""


@dataclass
class _UnitPrinter:
    """Prints a unit's state changes and every ``every``-th status line, prefixed by its name."""

    name: str
    fmt: StatusFormatter
    every: int
    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))

    def append(self, rec: CycleRecord) -> None:
        for line in self.fmt.event_lines(rec):
            self.out(f"[{self.name}] {line}")
        if self.every and rec.cycle % self.every == 0:
            self.out(f"[{self.name}] {self.fmt.line(rec)}")


def _config_text(site: SiteConfig) -> str:
    src = site.source
    return src.read_text(encoding="utf-8") if src is not None and src.is_file() else ""


def build_unit(
    unit: UnitConfig,
    *,
    site: SiteConfig,
    mode: Mode | None,
    default_mode: Mode = Mode.SHADOW,
    run_kind: RunKind = RunKind.RUN,
    print_every: int = 10,
    out: Callable[[str], None] | None = None,
    opcua: Mapping[str, Any] | None = None,
    plantwide: bool = False,
) -> UnitStack:
    """Build one unit's loop (ConfigProblems naming ``unit[i]....`` on a problem)."""
    ms = build.models(unit)
    model = ms.model
    estimator = build.estimator(unit, model)
    controller = build.controller(unit, model)
    target_source = build.rto_source(unit, ms)
    io = build.plantio(unit, ms.plant, **dict(opcua or {}))
    settings = build.loop_settings(unit, default_mode=default_mode, mode=mode)
    mpc_cfg, _ = build.mpc_config(unit)
    cv_limits = {c.name: CvLimits(c.target, c.lower, c.upper) for c in mpc_cfg.cvs}
    tags = getattr(io, "tags", None)
    fmt = (
        StatusFormatter.for_tags(model, cv_limits, (*tags.measurements, *tags.setpoints))
        if tags is not None
        else StatusFormatter(model, cv_limits)
    )
    printer = _UnitPrinter(unit.name, fmt, print_every, out or (lambda s: print(s, flush=True)))
    recorders: list[Any] = [printer, *build.rto_recorders(target_source)]
    text = _config_text(site)
    # per unit: the live-parameter replay must not take another unit's changes
    config_hash = hashlib.sha256(f"{unit.name}\n{text}".encode()).hexdigest()
    hist = build.historian(site, ms.plant, io.measurement_names)
    if hist is not None:
        hist.begin_run(
            run_kind,
            mode=settings.mode,
            config_hash=config_hash,
            config_text=text,
            meta={"unit": unit.name, "config": str(site.source or "")},
        )
        recorders.append(hist.recorder())
    live = live_for_run(
        model,
        getattr(controller, "base_config", mpc_cfg),
        mode=settings.mode,
        rto_enable=target_source is not None or plantwide,
        historian=hist,
        config_hash=config_hash,
    )
    loop = ControlLoop(
        model,
        io,
        estimator,
        controller,
        settings,
        target=build.initial_target(unit),
        target_source=target_source,
        recorders=recorders,
        supervision=build.supervision(unit, model),
        live=live,
    )
    return UnitStack(unit.name, unit, loop, io, settings.mode, hist, fmt)


class SiteRun:
    """Every unit of a site, its engine and coordinator; ``start`` -> ``run`` -> ``close``."""

    def __init__(
        self,
        site: SiteConfig,
        *,
        mode: Mode | None = None,
        default_mode: Mode = Mode.SHADOW,
        run_kind: RunKind = RunKind.RUN,
        source: SiteTargetSource | None = None,
        print_every: int = 10,
        out: Callable[[str], None] | None = None,
        opcua: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.site = site
        self.out = out or (lambda s: print(s, flush=True))
        self.units: dict[str, UnitStack] = {}
        if source is None:
            source = _config_source(site)
        self.source = source
        """The coordinator's target source (built from ``[plantwide]`` when not given)."""
        try:
            for u in site.units:
                self.units[u.name] = build_unit(
                    u,
                    site=site,
                    mode=mode,
                    default_mode=default_mode,
                    run_kind=run_kind,
                    print_every=print_every,
                    out=self.out,
                    opcua=(opcua or {}).get(u.name),
                    plantwide=source is not None
                    and (site.plantwide is None or site.plantwide.enabled),
                )
        except BaseException:
            self._close_historians(RunOutcome(ExitCode.STARTUP, "start-up failed"))
            raise
        if isinstance(source, PlantwideSource):
            for n, st in self.units.items():
                st.loop.recorders.append(source.recorder(n))
        self.views = EngineViews([UnitView.for_loop(n, s.loop) for n, s in self.units.items()])
        """Each unit's view (operator surfaces: engine OPC UA namespace, console)."""
        pw = site.plantwide
        self.coordinator = Coordinator(
            {n: s.loop for n, s in self.units.items()},
            source if (pw is None or pw.enabled) else None,
            every_s=pw.every_s if pw is not None else 60.0,
            on_change=lambda st: self.out(st.changes[-1]),
        )
        self.engine = MultiUnitEngine(
            {n: s.loop for n, s in self.units.items()},
            self.coordinator,
            outcome_of=self._outcome_of,
        )
        self.stopped_by = ""

    def _outcome_of(self, name: str, loop: ControlLoop) -> RunOutcome:
        u = self.units[name]
        if self.stopped_by and loop.stats.cycles == 0:
            # stopped while starting (e.g. the operator surfaces): the loop never read its
            # plant, so its link and handshake say nothing about how the plant was left
            return RunOutcome(ExitCode.OK, f"{self.stopped_by}, before its first cycle")
        return decide_exit(
            on=u.mode is Mode.ON,
            connected=loop.connected,
            in_control=loop.handshake.in_control,
            watchdog_trips=loop.handshake.watchdog_trips,
            last_drop=loop.handshake.last_drop,
            writes=loop.write_attempts - loop.stats.write_failures,
            write_failures=loop.stats.write_failures,
            max_write_failure_share=u.cfg.loop.max_write_failure_share,
            stopped_by=self.stopped_by or "normal end",
        )

    async def start(self) -> None:
        """Connect every unit and run its start-up checks; StartupError (nothing written to
        any plant) when one fails."""
        from rtompc.commands.run import _check_clock, _check_nodes

        connected: list[UnitStack] = []
        try:
            for u in self.units.values():
                try:
                    await u.io.connect()
                except PlantIOError as exc:
                    raise StartupError(
                        f"{self.site.source or 'config'}: unit[{u.name}].transport: {exc}"
                    ) from None
                connected.append(u)
                _check_nodes(u.io, u.cfg, u.mode)  # type: ignore[arg-type]
                await _check_clock(u.io, u.cfg, u.loop.settings)  # type: ignore[arg-type]
        except BaseException as exc:
            for u in connected:
                await u.io.close()
            self._close_historians(RunOutcome(ExitCode.STARTUP, f"start-up failed: {exc}"))
            raise

    async def run(
        self, steps: int | None = None, *, duration_s: float | None = None
    ) -> dict[str, dict[str, float]]:
        """Run every unit (``steps``: per unit, default its ``loop.steps``)."""
        per_unit = {
            n: steps if steps is not None else u.cfg.loop.steps for n, u in self.units.items()
        }
        return await self.engine.run(per_unit, duration_s=duration_s)

    def stop(self, why: str = "") -> None:
        """Stop every unit after its current cycle."""
        self.stopped_by = self.stopped_by or why
        self.engine.stop()

    async def close(self) -> RunOutcome:
        """Hand each unit back (its ``loop.on_stop``), close its I/O and historian run; the
        site's outcome (worst unit)."""
        outcomes: dict[str, RunOutcome] = {}
        engine_outcomes = self.engine.outcomes()
        for name, u in self.units.items():
            outcomes[name] = engine_outcomes.get(name) or self._outcome_of(name, u.loop)
            if u.mode is Mode.ON:
                handed = await hand_back(u.io, u.cfg.loop.on_stop, u.cfg.transport.mode_timeout_s)
                self.out(f"[{name}] hand-back ({u.cfg.loop.on_stop.value}): {handed}")
            try:
                await u.io.close()
            except Exception as exc:  # noqa: BLE001 - closing one unit must not stop the rest
                logger.warning("unit %s: closing the plant I/O failed: %s", name, exc)
            if u.historian is not None:
                u.historian.end_run(outcomes[name].reason, int(outcomes[name].code))
        self._close_historians(None)
        return worst_outcome(outcomes)

    def _close_historians(self, outcome: RunOutcome | None) -> None:
        for u in self.units.values():
            if u.historian is not None:
                if outcome is not None:
                    u.historian.end_run(outcome.reason, int(outcome.code))
                u.historian.close()


def _config_source(site: SiteConfig) -> PlantwideSource | None:
    """The plant-wide RTO of ``[plantwide]`` (None without an objective); ConfigProblems
    naming ``plantwide`` when it cannot be built."""
    pw = site.plantwide
    if pw is None or not pw.enabled or not pw.objective:
        return None
    models = {u.name: build.models(u).rto_model for u in site.units}
    try:
        return PlantwideSource(pw, models)
    except EngineError as exc:
        raise ConfigProblems(
            [Problem(("plantwide",), str(exc), site.source)], site.source
        ) from None


def unit_historian_path(site: SiteConfig) -> Path | None:
    """The site's historian file (None without ``[historian]``)."""
    return site.historian.path if site.historian is not None else None


__all__ = ["SiteRun", "UnitStack", "build_unit", "unit_historian_path"]
