"""Pacing of the control loop in wall time, the engine's clock and the plant clock watch.

:class:`Pacer` starts cycles on a fixed grid of wall-clock periods and never
catches up. When it wakes later than one period after a cycle's slot (the
process was stopped by SIGSTOP, the host froze, the event loop was blocked, a
cycle overran), the missed slots are skipped and counted, and the next cycle
starts at once in the current slot; a burst of back-to-back cycles (and of
rate-limited moves) after a stall cannot happen; the grid is re-anchored there so
the following cycle comes one whole period later (also after a start more than half a
period late), so no two cycles are less than half a period apart. Every start's lateness is
returned as the cycle's jitter, stalls included.

:class:`EngineClock` is the engine's run time in plant seconds: monotonic,
anchored on the plant clock at the first good read, advanced by the wall clock
times the speed factor (real time) or by one sample time per lockstep step. It
is what the controller and the records use as ``time_s``; the plant's own clock
is recorded beside it (``plant_time_s``).

:class:`PlantClockWatch` compares the two and reports jumps of the plant clock
(a PLC restart resets it: 14.5 s -> 0.5 s) and clocks running at another rate
than the engine expects; the loop logs them and goes on.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tick:
    """When one cycle started relative to its slot on the period grid."""

    slot: int
    """Index of the grid slot the cycle runs in (slots skipped after a stall are not used)."""
    late_s: float
    """Wall seconds between the first skipped-or-used slot's start and the actual start (jitter)."""
    skipped: int
    """Whole periods skipped before this cycle (0 unless the process stalled or a cycle overran)."""


class Pacer:
    """Fixed-period wall-clock schedule without catch-up."""

    def __init__(
        self,
        period_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"pacing period must be > 0 s, got {period_s}")
        self.period_s = period_s
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None
        self._next = 0

    async def wait(self) -> Tick:
        """Sleep until the next slot; after a stall return at once with the skipped count."""
        now = self._clock()
        if self._start is None:
            self._start = now
        scheduled = self._start + self._next * self.period_s
        if now < scheduled:
            await self._sleep(scheduled - now)
            now = self._clock()
        late = max(0.0, now - scheduled)
        skipped = int(late // self.period_s)
        slot = self._next + skipped
        if skipped or late > 0.5 * self.period_s:
            # re-anchor: the next cycle comes one whole period after this one, so two cycles
            # (and two rate-limited moves) are never less than half a period apart
            self._start = now - slot * self.period_s
        self._next = slot + 1
        return Tick(slot=slot, late_s=late, skipped=skipped)


class EngineClock:
    """The engine's run time in plant seconds: monotonic, anchored on the plant clock."""

    def __init__(self, speed: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self._clock = clock
        self._t0 = 0.0
        self._mono0: float | None = None
        self._stepped = 0.0

    @property
    def anchored(self) -> bool:
        """True once :meth:`anchor` has been called."""
        return self._mono0 is not None

    def anchor(self, plant_time_s: float) -> None:
        """Start at the plant's time (first good read); later calls are ignored."""
        if self._mono0 is None:
            self._t0 = plant_time_s if math.isfinite(plant_time_s) else 0.0
            self._mono0 = self._clock()

    def step(self, seconds: float) -> None:
        """Advance by ``seconds`` of plant time (one lockstep step)."""
        self._stepped += seconds

    def now(self, lockstep: bool) -> float:
        """Engine time: anchor + lockstep steps, or anchor + wall time elapsed x speed."""
        if self._mono0 is None:
            return self._t0 + self._stepped
        if lockstep:
            return self._t0 + self._stepped
        return self._t0 + (self._clock() - self._mono0) * self.speed


class PlantClockWatch:
    """Detects jumps and rate errors of the plant clock against the engine clock."""

    def __init__(self, tolerance_s: float) -> None:
        self.tolerance_s = tolerance_s
        """Largest accepted change of (plant time - engine time) between two reads, plant s."""
        self.jumps = 0
        """Jumps seen so far."""
        self._last_plant: float | None = None
        self._offset: float | None = None

    def reset(self) -> None:
        """Forget the reference (after a link loss: the next read sets a new one)."""
        self._last_plant = None
        self._offset = None

    def check(self, plant_time_s: float, engine_time_s: float) -> str:
        """A message when the plant clock jumped since the last check, else ""."""
        if not math.isfinite(plant_time_s):
            return ""
        offset = plant_time_s - engine_time_s
        last, ref = self._last_plant, self._offset
        self._last_plant = plant_time_s
        if last is None or ref is None:
            self._offset = offset
            return ""
        if plant_time_s < last:
            self._offset = offset
            self.jumps += 1
            return (
                f"plant clock went back from {last:.6g} s to {plant_time_s:.6g} s "
                "(PLC restart?); engine time goes on"
            )
        drift = offset - ref
        if abs(drift) > self.tolerance_s:
            self._offset = offset
            self.jumps += 1
            how = "ahead" if drift > 0 else "behind"
            return (
                f"plant clock jumped {how} by {abs(drift):.6g} s against the engine clock "
                f"(plant {plant_time_s:.6g} s); check the plant's speed / step size"
            )
        return ""
