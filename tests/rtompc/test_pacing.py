"""The pacer never catches up, and the plant clock watch sees jumps (fake clocks, no sleeping)."""

from __future__ import annotations

import pytest

from rtompc.pacing import EngineClock, Pacer, PlantClockWatch


class FakeTime:
    """A monotonic clock the test moves; ``sleep`` advances it."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


async def test_pacer_skips_missed_periods_and_reanchors() -> None:
    clock = FakeTime()
    pacer = Pacer(0.5, clock=clock, sleep=clock.sleep)
    starts, ticks = [], []
    for k in range(12):
        tick = await pacer.wait()
        starts.append(clock.t)
        ticks.append(tick)
        clock.t += 0.02  # the cycle's own work
        if k == 4:
            clock.t += 3.1  # stalled (SIGSTOP) right after cycle 4
    skipped = [t.skipped for t in ticks]
    assert skipped == [0] * 5 + [5] + [0] * 6
    assert ticks[5].late_s == pytest.approx(0.02 + 3.1 - 0.5)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    # one cycle right after the stall, then one period apart again: never two within a period
    assert min(gaps) >= 0.5 - 1e-9
    assert gaps[5] == pytest.approx(0.5)
    assert all(t.late_s == pytest.approx(0.0) for t in ticks[6:])


async def test_pacer_overrun_shorter_than_a_period_keeps_the_grid() -> None:
    clock = FakeTime()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
    t0 = (await pacer.wait(), clock.t)[1]
    clock.t += 1.4  # cycle 0 overran by 0.4 s
    tick = await pacer.wait()
    assert tick.skipped == 0 and tick.late_s == pytest.approx(0.4)
    clock.t += 0.1
    await pacer.wait()
    assert clock.t == pytest.approx(t0 + 2.0)


def test_engine_clock_monotonic_and_plant_clock_jumps() -> None:
    mono = FakeTime()
    clock = EngineClock(speed=20.0, clock=mono)
    clock.anchor(14.0)
    watch = PlantClockWatch(tolerance_s=2.0)
    assert watch.check(14.0, clock.now(lockstep=False)) == ""
    mono.t += 0.025  # 0.5 plant s
    assert watch.check(14.5, clock.now(lockstep=False)) == ""
    mono.t += 0.05  # the PLC restarted: its clock starts again at 0.5 s
    msg = watch.check(0.5, clock.now(lockstep=False))
    assert "went back from 14.5 s to 0.5 s" in msg
    assert clock.now(lockstep=False) == pytest.approx(14.0 + 0.075 * 20.0)
    mono.t += 0.05
    assert watch.check(1.5, clock.now(lockstep=False)) == ""  # new reference, no repeat
    # a lockstep server stepping 1 s under a 20 s loop: flagged as running behind
    lock = EngineClock(speed=1.0)
    lock.anchor(0.0)
    watch2 = PlantClockWatch(tolerance_s=10.0)
    assert watch2.check(0.0, lock.now(lockstep=True)) == ""
    lock.step(20.0)
    assert "behind by 19 s" in watch2.check(1.0, lock.now(lockstep=True))
    assert watch.jumps == 1 and watch2.jumps == 1


async def test_pacer_start_later_than_half_a_period_reanchors() -> None:
    clock = FakeTime()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
    await pacer.wait()
    clock.t += 1.7  # cycle 0 overran by 0.7 s (e.g. the first solve)
    t1 = clock.t
    tick = await pacer.wait()
    assert tick.skipped == 0 and tick.late_s == pytest.approx(0.7)
    clock.t += 0.1
    await pacer.wait()
    assert clock.t == pytest.approx(t1 + 1.0)  # not 0.3 s later: no two moves in one period
