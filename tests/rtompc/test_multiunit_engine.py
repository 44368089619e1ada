"""Several control loops in one engine, in-process and lockstep: both units reach their
targets, plant time advances together, one unit's failing solver (targets held by the
coordinator, applied when it is back) or crashing loop does not stop the other, one
historian file holds a run per unit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from interfaces.plantio import PlantMode
from mpc.result import MpcResult
from plant_models.results import SolveStatus
from plant_models.samples import OperatingTarget
from rtompc.config.load import load_site
from rtompc.cycle import CycleRecord
from rtompc.historian import Historian
from rtompc.lifecycle import ExitCode
from rtompc.multiunit import UnitSnapshot, UnitState
from rtompc.site_run import SiteRun
from tests.rtompc.site_helpers import site_text


class _Order:
    """Recorder of (unit, plant time) in the order cycles completed."""

    def __init__(self, seen: list[tuple[str, float]], name: str) -> None:
        self.seen, self.name = seen, name

    def append(self, rec: CycleRecord) -> None:
        self.seen.append((self.name, rec.time_s))


class _FlakyController:
    """The real controller, failing (no usable move) inside a plant-time window."""

    def __init__(self, inner: Any, start_s: float, end_s: float) -> None:
        self.inner, self.start_s, self.end_s = inner, start_s, end_s
        self.config = inner.config

    def step(self, x: Any, **kw: Any) -> MpcResult:
        if self.start_s <= kw.get("time_s", 0.0) < self.end_s:
            return MpcResult(SolveStatus.FAILED, None, message="injected failure")
        return self.inner.step(x, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Schedule:
    """A plant-wide target source: new targets for both units from 400 s on."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, dict[str, UnitState]]] = []

    def update(
        self, time_s: float, units: Mapping[str, UnitSnapshot]
    ) -> Mapping[str, OperatingTarget]:
        self.calls.append((time_s, {n: u.state for n, u in units.items()}))
        if time_s < 400.0:
            return {}
        return {
            "reactor": OperatingTarget(time_s, y={"c_b": 950.0}, source="site"),
            "tanks": OperatingTarget(time_s, y={"h1": 0.14, "h2": 0.12783158}, source="site"),
        }


def test_two_units_lockstep_targets_held_while_solver_fails(tmp_path: Path) -> None:
    extra = "[plantwide]\nevery_s = 100.0\n"
    path = tmp_path / "site.toml"
    path.write_text(site_text(str(tmp_path / "site.sqlite"), extra=extra))
    site = load_site(path)
    source = _Schedule()
    lines: list[str] = []
    run = SiteRun(site, source=source, print_every=0, out=lines.append)
    seen: list[tuple[str, float]] = []
    for name, unit in run.units.items():
        unit.loop.recorders.append(_Order(seen, name))
    tanks = run.units["tanks"].loop
    tanks.controller = _FlakyController(tanks.controller, 300.0, 520.0)

    async def go() -> Any:
        await run.start()
        await run.run(duration_s=2400.0)
        return await run.close()

    outcome = asyncio.run(go())
    assert outcome.code is ExitCode.OK, outcome.reason
    # lockstep: cycles complete in plant-time order across units (advanced together)
    times = [t for _, t in seen]
    assert times == sorted(times)
    assert sum(1 for n, _ in seen if n == "tanks") == 4 * sum(1 for n, _ in seen if n == "reactor")
    # the coordinator held the failing unit's targets and said so, then applied them
    changes = run.coordinator.units["tanks"].changes
    assert any("tanks solver_failing" in c and "targets are held" in c for c in changes)
    assert any("pending plant-wide targets applied" in c for c in changes)
    assert any("tanks solver_failing" in line for line in lines)
    at_400 = [c for c in source.calls if c[0] == pytest.approx(400.0)]
    assert at_400 and at_400[0][1]["tanks"] is UnitState.SOLVER_FAILING
    assert at_400[0][1]["reactor"] is UnitState.RUNNING
    assert run.coordinator.units["reactor"].changes == [
        "coordinator: unit reactor stopped (normal end)"
    ]
    # both controlled to the plant-wide targets at the end
    with Historian(tmp_path / "site.sqlite") as h:
        runs = {r.unit: r for r in h.runs()}
        assert set(runs) == {"reactor", "tanks"}
        assert runs["reactor"].cycles == 120 and runs["tanks"].cycles == 480
        assert runs["tanks"].exit_code == 0
        last = {u: list(h.rows(r.run_id))[-1] for u, r in runs.items()}
        tank_rows = list(h.rows(runs["tanks"].run_id))
    assert last["reactor"]["meas__c_b"] == pytest.approx(950.0, abs=2.0)
    assert last["tanks"]["meas__h1"] == pytest.approx(0.14, abs=5e-4)
    assert last["tanks"]["target_y__h1"] == pytest.approx(0.14)
    held = [r for r in tank_rows if 400.0 <= r["time_s"] < 520.0]
    assert held and all(r["target_y__h1"] == pytest.approx(0.13) for r in held)
    assert any("targets are held" in (r["message"] or "") for r in tank_rows)


class _KeySwitch:
    """Recorder that turns the operator's key switch of an in-process plant: LOCAL from
    ``start_s`` of plant time, REMOTE refused until ``end_s``, then allowed again."""

    def __init__(self, io: Any, start_s: float, end_s: float) -> None:
        self.io, self.start_s, self.end_s = io, start_s, end_s
        self.now = 0.0
        real = io.request_mode

        async def request_mode(remote: bool) -> PlantMode:
            if remote and self.start_s <= self.now < self.end_s:
                return PlantMode.LOCAL  # refused: the key is in LOCAL
            return await real(remote)

        io.request_mode = request_mode

    def append(self, rec: CycleRecord) -> None:
        self.now = rec.time_s
        if self.start_s <= rec.time_s < self.start_s + 1.0:
            self.io._mode = PlantMode.LOCAL
            self.io._status_text = "LOCAL: operator key switch"


def test_a_unit_in_local_has_its_targets_held_and_the_other_goes_on(tmp_path: Path) -> None:
    """A unit whose plant the operator takes to LOCAL while the site runs: the coordinator
    holds its plant-wide targets and says so (log line, historian), nothing is written to it,
    the other unit takes its new targets; when REMOTE is granted again the held targets are
    applied and both end at them (exit 0: a key switch is not a watchdog trip)."""
    extra = "[plantwide]\nevery_s = 100.0\n"
    path = tmp_path / "site.toml"
    path.write_text(site_text(str(tmp_path / "site.sqlite"), extra=extra))
    source = _Schedule()
    lines: list[str] = []
    run = SiteRun(load_site(path), source=source, print_every=0, out=lines.append)
    tanks = run.units["tanks"].loop
    tanks.recorders.append(_KeySwitch(tanks.io, 300.0, 520.0))

    async def go() -> Any:
        await run.start()
        await run.run(duration_s=2400.0)
        return await run.close()

    outcome = asyncio.run(go())
    assert outcome.code is ExitCode.OK, outcome.reason
    changes = run.coordinator.units["tanks"].changes
    assert any("tanks local" in c and "targets are held" in c for c in changes), changes
    assert any("pending plant-wide targets applied" in c for c in changes), changes
    assert any("tanks local" in line for line in lines)
    at_400 = [c for c in source.calls if c[0] == pytest.approx(400.0)]
    assert at_400 and at_400[0][1]["tanks"] is UnitState.LOCAL
    assert at_400[0][1]["reactor"] is UnitState.RUNNING
    assert tanks.handshake.drops == 1 and tanks.handshake.watchdog_trips == 0
    with Historian(tmp_path / "site.sqlite") as h:
        runs = {r.unit: r for r in h.runs()}
        last = {u: list(h.rows(r.run_id))[-1] for u, r in runs.items()}
        tank_rows = list(h.rows(runs["tanks"].run_id))
    local = [r for r in tank_rows if 305.0 <= r["time_s"] < 520.0]
    assert local and all(r["plant_mode"] == "LOCAL" for r in local)
    assert all(r["write_status"] == "held: plant LOCAL" for r in local)
    held = [r for r in tank_rows if 400.0 <= r["time_s"] < 520.0]
    assert held and all(r["target_y__h1"] == pytest.approx(0.13) for r in held)
    assert last["reactor"]["meas__c_b"] == pytest.approx(950.0, abs=2.0)
    assert last["tanks"]["meas__h1"] == pytest.approx(0.14, abs=5e-4)


def test_a_crashing_unit_ends_alone_and_sets_the_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(site_text())
    run = SiteRun(load_site(path), print_every=0, out=lambda s: None)
    reactor = run.units["reactor"].loop
    real = reactor.estimator.update

    def broken(meas: Any, u: Any, d: Any = None, p: Any = None) -> Any:
        if meas.time_s >= 200.0:
            raise RuntimeError("estimator bug")
        return real(meas, u, d)

    reactor.estimator.update = broken  # type: ignore[method-assign]

    async def go() -> Any:
        await run.start()
        await run.run(duration_s=600.0)
        return await run.close()

    outcome = asyncio.run(go())
    assert outcome.code is ExitCode.INTERNAL
    assert "reactor: internal" in outcome.reason and "tanks: ok" in outcome.reason
    assert run.coordinator.units["reactor"].state is UnitState.FAILED
    assert run.units["tanks"].loop.stats.cycles == 120  # the other unit ran to the end
    assert reactor.stats.cycles == 10
    assert np.isfinite(run.units["tanks"].io.state).all()
