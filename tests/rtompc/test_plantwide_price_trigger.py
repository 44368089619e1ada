"""A price event runs the plant-wide RTO at once, with the price in force now, past the gate.

Industrial RTO practice: a change of an economic parameter beyond a threshold
starts a run between the periodic ones, and a run that only re-optimises the
model on new prices is not held by the steady-state gate (which protects the
measurement-based updates: modifiers). The two-unit site of
``test_plantwide_config`` (its gas network unit) with a price file
stepping the power price from 60 to -20 USD/MWh at 600 s, RTO every 15 min, and
the network's gate closed all run long (its window of 40 cycles is never full):
the price step starts a run within one network cycle that reads -20 USD/MWh
and whose targets are issued while a gated dispatch would hold them; a negative
power price sends the boilers to their turndown (steam flow at its 40 kg/s
limit), as in ``test_price_file_changes_the_optimum_and_site_run_builds_the_source``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from rto.coordinator import DispatchStatus
from rtompc.config.errors import ConfigProblems
from rtompc.config.load import load_site
from rtompc.plantwide_source import PlantwideSource
from rtompc.site_run import SiteRun

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_plantwide_config import LIMITS, STEEL_UNIT, _write  # noqa: E402

LOW = -20 / 3.6e9  # USD/J
HIGH = 60 / 3.6e9


def _site_text(trigger: str) -> str:
    return f"""\
[plantwide]
every_s = "15 min"
price_file = "prices.csv"
{trigger}[plantwide.objective]
"steel.profit_rate" = 1.0
{LIMITS}"steel.discharge_error" = [0, "5 K"]
[plantwide.units.steel]
held_states = ["v_bfg", "v_cog", "v_ldg"]
steady_signals = ["level_bfg"]
steady_window = 40

{STEEL_UNIT}"""


def _run(tmp_path: Path, trigger: str) -> PlantwideSource:
    (tmp_path / "prices.csv").write_text(f"time_s,steel.power_price\n0,{HIGH!r}\n600,{LOW!r}\n")
    site = load_site(_write(tmp_path, _site_text(trigger)))
    run = SiteRun(site, print_every=0, out=lambda s: None)
    source = run.source
    assert isinstance(source, PlantwideSource)

    async def go() -> None:
        await run.start()
        try:
            await run.run(12)  # 0 .. 660 s: the periodic runs are at 0 and 900 s
        finally:
            await run.close()

    asyncio.run(go())
    return source


def test_price_step_runs_the_rto_within_a_cycle_and_passes_the_closed_gate(
    tmp_path: Path,
) -> None:
    source = _run(tmp_path, 'trigger_signals = ["steel.power_price"]\ntrigger_change = 0.05\n')
    # no cycle before the periodic run at 0 s: the step's run is the first one
    assert [t for t, _ in source.history] == [600.0]
    assert [t for t, _ in source.events] == [600.0]  # within one 60 s cycle of the step
    assert "steel.power_price" in source.events[0][1]
    t, disp = source.history[-1]
    assert t == 600.0
    assert disp["steel"].status is DispatchStatus.ISSUED
    assert "not gated" in disp["steel"].message
    assert disp["steel"].target is not None
    last = source.last
    assert last is not None and last.usable
    # the gate is closed: a periodic (gated) dispatch of the same optimum is held
    assert len(source.windows["steel"].rows) < 40
    gated = source.coordinator.dispatch(600.0, last, {})["steel"]
    assert gated.status is DispatchStatus.HELD_NOT_STEADY
    assert last.value("steel.power_price") == pytest.approx(LOW)  # the price in force now
    assert "steel.steam_flow lower" in last.active
    assert last.value("steel.steam_flow") == pytest.approx(40.0, rel=1e-6)


def test_without_trigger_signals_the_step_waits_for_the_period_and_the_gate(
    tmp_path: Path,
) -> None:
    source = _run(tmp_path, "")
    assert source.history == [] and source.events == []  # next run at 900 s
    assert source.coordinator.target("steel") is None


def test_trigger_signal_must_be_a_disturbance(tmp_path: Path) -> None:
    (tmp_path / "prices.csv").write_text(f"time_s,steel.power_price\n0,{HIGH!r}\n")
    text = _site_text('trigger_signals = ["steel.bfg_to_boiler"]\n')
    with pytest.raises(ConfigProblems) as err:
        load_site(_write(tmp_path, text))
    msg = str(err.value)
    assert "trigger_signals" in msg and "'steel.bfg_to_boiler' is an input" in msg


def test_ramps_advance_every_cycle_between_runs(tmp_path: Path) -> None:
    """A price-triggered run shortly after the previous one may move its targets only a
    cycle's ramp; the ramps then advance every cycle (no new solve) instead of waiting for
    the next periodic run 15 min later."""
    rate = 0.02  # m^3/s per s on the boiler's BFG
    (tmp_path / "prices.csv").write_text(
        f"time_s,steel.power_price\n0,{HIGH!r}\n300,{LOW!r}\n420,{3 * HIGH!r}\n"
    )
    text = _site_text('trigger_signals = ["steel.power_price"]\n').replace(
        'steady_signals = ["level_bfg"]\nsteady_window = 40',
        f"max_rate = {{ bfg_to_boiler = {rate} }}",
    )
    site = load_site(_write(tmp_path, text))
    run = SiteRun(site, print_every=0, out=lambda s: None)
    source = run.source
    assert isinstance(source, PlantwideSource)
    issued: list[tuple[float, float]] = []
    dispatch = source.coordinator.dispatch

    def spy(time_s, result, windows=None, **kw):  # type: ignore[no-untyped-def]
        out = dispatch(time_s, result, windows, **kw)
        r = out.get("steel")
        if r is not None and r.status is DispatchStatus.ISSUED and r.target is not None:
            issued.append((time_s, r.target.u["bfg_to_boiler"]))
        return out

    source.coordinator.dispatch = spy  # type: ignore[method-assign]

    async def go() -> None:
        await run.start()
        try:
            await run.run(14)  # 0 .. 780 s
        finally:
            await run.close()

    asyncio.run(go())
    assert [t for t, _ in source.history] == [300.0, 420.0]  # two price-triggered runs
    last = source.last
    assert last is not None
    goal = last.value("steel.bfg_to_boiler")
    times = [t for t, _ in issued]
    assert times[:3] == [300.0, 420.0, 480.0]  # the ramp advances at 480 s without a run
    values = [v for _, v in issued]
    start = values[0]
    assert abs(goal - start) > 3 * rate * 120.0  # far: several cycles of ramp
    for (t0, v0), (t1, v1) in zip(issued[:-1], issued[1:], strict=True):
        assert abs(v1 - v0) <= rate * (t1 - t0) * (1 + 1e-6) + 1e-9
        assert abs(goal - v1) < abs(goal - v0)  # toward the optimum every cycle
