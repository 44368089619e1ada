"""EngineView: the running state of the control loops, as operator surfaces read it.

- :class:`UnitView`: the latest :class:`~rtompc.live.frame.Frame` of one control loop,
  a bounded ring of recent frames (trends) and subscriptions to new frames. The loop
  feeds it after every cycle (:meth:`UnitView.publish`, called by
  :class:`rtompc.runtime.ControlLoop` when it has a ``view``). Thread-safe: the loop
  publishes from its thread, readers (OPC UA server, web console) may run anywhere.
- :class:`Subscription`: new frames for one consumer. Publishing never blocks and never
  waits for a consumer: a full subscription drops its oldest frame (``dropped`` counts).
  Read it from asyncio (``await sub.get()``, ``async for``) or a thread
  (``sub.wait(timeout)``).
- :class:`EngineViews`: unit name -> UnitView for an application (one unit per control
  loop).

Writes never go through a view: operator surfaces submit to the unit's
:attr:`UnitView.live` (:meth:`rtompc.live.LiveParameters.submit`), which the loop
applies at its next cycle. Values are SI; each CV/MV frame names its unit.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import numpy as np

from mpc.config import MpcConfig
from mpc.result import MpcResult
from plant_models.model import PlantModel
from plant_models.samples import Mode, OperatingTarget, Quality
from rtompc.cycle import CycleRecord
from rtompc.live.frame import CvFrame, Frame, MvFrame, Prediction, RtoFrame, StatusFrame
from rtompc.live.params import LiveParameters

DEFAULT_CAPACITY = 3600
"""Frames kept per unit for trends (one hour at 1 s)."""
_WRITTEN = ("verified", "unverified", "mismatch")


class Subscription:
    """New frames of one unit for one consumer (bounded; drops the oldest when full)."""

    def __init__(self, view: UnitView, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"subscription maxsize: expected >= 1, got {maxsize}")
        self._view = view
        self._items: deque[Frame] = deque(maxlen=maxsize)
        self._cond = threading.Condition()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._event = asyncio.Event()
        self.dropped = 0
        """Frames dropped because the consumer was slow."""
        self.closed = False

    def _push(self, frame: Frame) -> None:
        """Called by the publisher (any thread); never blocks on the consumer."""
        with self._cond:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(frame)
            self._cond.notify_all()
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            same = asyncio.get_running_loop() is loop
        except RuntimeError:
            same = False
        if same:
            self._event.set()
        else:
            try:
                loop.call_soon_threadsafe(self._event.set)
            except RuntimeError:  # the consumer's loop closed meanwhile
                pass

    def get_nowait(self) -> Frame | None:
        """The oldest unread frame, or None."""
        with self._cond:
            return self._items.popleft() if self._items else None

    def wait(self, timeout: float | None = None) -> Frame | None:
        """Blocking read for a consumer thread (None after ``timeout`` seconds)."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    async def get(self) -> Frame:
        """The next frame (asyncio; the subscription must be made inside the consumer's
        event loop)."""
        if self._loop is None:
            raise RuntimeError("subscription made outside an event loop: use wait()")
        while True:
            frame = self.get_nowait()
            if frame is not None:
                return frame
            self._event.clear()
            frame = self.get_nowait()
            if frame is not None:
                return frame
            await self._event.wait()

    async def __aiter__(self) -> AsyncIterator[Frame]:
        while not self.closed:
            yield await self.get()

    def close(self) -> None:
        """Stop receiving frames."""
        self.closed = True
        self._view._unsubscribe(self)


class UnitView:
    """Latest frame, recent frames and subscriptions of one control loop."""

    def __init__(
        self,
        name: str,
        model: PlantModel,
        config: MpcConfig,
        *,
        live: LiveParameters | None = None,
        rto: Any = None,
        capacity: int = DEFAULT_CAPACITY,
        stop: Callable[[], None] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"view capacity: expected >= 1, got {capacity}")
        self.name = name
        """Unit name (snake_case)."""
        self.model = model
        self.config = config
        """The controller configuration at start (CVs, sample time; limits when no live)."""
        self.live = live
        """The unit's live parameters: the one place operator surfaces write to (None: the
        loop runs without live parameters; nothing can be changed)."""
        self.rto = rto
        """The RTO stage (``iterations``), or None."""
        self._stop = stop
        self.cv_names: tuple[str, ...] = tuple(c.name for c in config.cvs)
        self.mv_names: tuple[str, ...] = model.u.names
        self._ring: deque[Frame] = deque(maxlen=capacity)
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._cycles = self._fallbacks = self._overruns = self._in_service_cycles = 0
        self._rto_status = ""

    @classmethod
    def for_loop(cls, name: str, loop: Any, *, capacity: int = DEFAULT_CAPACITY) -> UnitView:
        """A view of a :class:`rtompc.runtime.ControlLoop`, attached to it (``loop.view``)."""
        ctrl = loop.controller
        config = getattr(ctrl, "base_config", None) or getattr(ctrl, "config", None)
        live = loop.live.live if loop.live is not None else None
        if config is None and live is not None:
            config = live.base_config
        if config is None:
            raise ValueError(f"unit {name}: the controller has no MpcConfig to describe its CVs")
        view = cls(
            name,
            loop.model,
            config,
            live=live,
            rto=loop.target_source,
            capacity=capacity,
            stop=loop.stop,
        )
        loop.view = view
        return view

    def request_stop(self) -> bool:
        """Ask the loop to finish after its current cycle (the engine's own shutdown, tests;
        operator surfaces do not offer it). False when the view has no loop."""
        if self._stop is None:
            return False
        self._stop()
        return True

    # reading ---------------------------------------------------------------------------
    @property
    def latest(self) -> Frame | None:
        """The last frame (None before the first cycle)."""
        with self._lock:
            return self._ring[-1] if self._ring else None

    def frames(self, since_cycle: int = -1) -> list[Frame]:
        """Kept frames with ``cycle > since_cycle``, oldest first."""
        with self._lock:
            return [f for f in self._ring if f.cycle > since_cycle]

    @property
    def capacity(self) -> int:
        """How many frames are kept."""
        return self._ring.maxlen or 0

    def subscribe(self, maxsize: int = 64) -> Subscription:
        """New frames from now on; call inside the consumer's event loop for ``await get()``."""
        sub = Subscription(self, maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    # feeding ---------------------------------------------------------------------------
    def publish(
        self,
        record: CycleRecord,
        result: MpcResult | None,
        *,
        target: OperatingTarget | None = None,
    ) -> Frame:
        """Build this cycle's frame, keep it and hand it to the subscribers (the loop, after
        each cycle). ``target``: the target the controller tracked (default the record's)."""
        frame = self._frame(record, result, target if target is not None else record.target)
        with self._lock:
            self._ring.append(frame)
            subs = list(self._subs)
        for sub in subs:
            sub._push(frame)
        return frame

    def _frame(
        self, rec: CycleRecord, result: MpcResult | None, target: OperatingTarget | None
    ) -> Frame:
        values: Mapping[str, Any] = self.live.snapshot() if self.live is not None else {}
        self._cycles += 1
        self._fallbacks += rec.fallback
        self._overruns += rec.overrun
        own_move = rec.mode is Mode.ON and rec.write_status in _WRITTEN and not rec.fallback
        self._in_service_cycles += own_move
        if rec.rto_status:
            self._rto_status = rec.rto_status
        flags = _flags_by_signal(rec.flags)
        usable = result is not None and result.y_pred.ndim == 2 and result.y_pred.size > 0
        y_pred = result.y_pred if usable and result is not None else np.zeros((0, 0))
        dt = self.config.sample_time_s
        times = tuple(rec.time_s + k * dt for k in range(y_pred.shape[0]))
        cvs = tuple(self._cv(n, rec, values, target, flags, y_pred, times) for n in self.cv_names)
        u_pred = result.u_pred if result is not None and result.u_pred.ndim == 2 else None
        mvs = tuple(self._mv(i, n, rec, values, flags, u_pred) for i, n in enumerate(self.mv_names))
        mode_request = values.get("controller.mode_request", rec.mode)
        status = StatusFrame(
            solver=rec.solver,
            solver_status=rec.solver_status,
            solve_time_s=rec.solve_time_s,
            cycle_time_s=rec.cycle_time_s,
            fallback=rec.fallback,
            fallbacks=self._fallbacks,
            overruns=self._overruns,
            service_factor=self._in_service_cycles / self._cycles,
            write_status=rec.write_status,
            flags=rec.flags,
            events=rec.events,
        )
        return Frame(
            unit=self.name,
            cycle=rec.cycle,
            time_s=rec.time_s,
            wall_time_s=rec.wall_time_s,
            mode=rec.mode,
            mode_request=mode_request if isinstance(mode_request, Mode) else rec.mode,
            plant_mode=rec.plant_mode,
            connected=rec.connected,
            cvs=cvs,
            mvs=mvs,
            status=status,
            rto=self._rto(values),
        )

    def _cv(
        self,
        name: str,
        rec: CycleRecord,
        values: Mapping[str, Any],
        target: OperatingTarget | None,
        flags: Mapping[str, str],
        y_pred: np.ndarray,
        times: tuple[float, ...],
    ) -> CvFrame:
        spec = next(c for c in self.config.cvs if c.name == name)
        sig = self.model.y[name]
        k = f"cv.{name}."
        meas = rec.measurement
        measured = meas.value(name) if name in meas.names else math.nan
        quality = (
            meas.quality[meas.names.index(name)].value if name in meas.names else Quality.BAD.value
        )
        j = self.model.y.index(name)
        traj = tuple(float(v) for v in y_pred[:, j]) if y_pred.size else ()
        zone = spec.zone if spec.zone is not None else (math.nan, math.nan)
        tgt = target.y.get(name) if target is not None else None
        return CvFrame(
            name=name,
            unit=sig.unit,
            measured=measured,
            estimate=traj[0] if traj else math.nan,
            target=_num(tgt if tgt is not None else spec.target),
            setpoint=_num(values.get(k + "setpoint", spec.target)),
            low=_num(values.get(k + "low", spec.lower)),
            high=_num(values.get(k + "high", spec.upper)),
            validity_low=_num(values.get(k + "validity_low", sig.lower)),
            validity_high=_num(values.get(k + "validity_high", sig.upper)),
            zone_low=_num(values.get(k + "zone_low", zone[0])),
            zone_high=_num(values.get(k + "zone_high", zone[1])),
            weight=_num(values.get(k + "weight", spec.weight)),
            in_service=values.get(k + "in_service", True) is not False,
            quality=flags.get(name, quality),
            prediction=Prediction(times, traj),
        )

    def _mv(
        self,
        i: int,
        name: str,
        rec: CycleRecord,
        values: Mapping[str, Any],
        flags: Mapping[str, str],
        u_pred: np.ndarray | None,
    ) -> MvFrame:
        sig = self.model.u[name]
        spec = self.config.mv(name)
        k = f"mv.{name}."
        lo = _num(values.get(k + "low", sig.lower))
        hi = _num(values.get(k + "high", sig.upper))
        value = float(rec.u_plant[i]) if i < len(rec.u_plant) else math.nan
        tol = 1e-6 * max(1.0, abs(hi - lo)) if math.isfinite(hi - lo) else 0.0
        health = flags.get(name) or (
            "saturated" if value <= lo + tol or value >= hi - tol else "ok"
        )
        dt = self.config.sample_time_s
        planned = (
            Prediction(
                tuple(rec.time_s + n * dt for n in range(u_pred.shape[0])),
                tuple(float(v) for v in u_pred[:, i]),
            )
            if u_pred is not None and u_pred.shape[1] > i
            else Prediction()
        )
        return MvFrame(
            name=name,
            unit=sig.unit,
            value=value,
            written=float(rec.u_written[i]) if i < len(rec.u_written) else math.nan,
            computed=float(rec.u_computed[i]) if i < len(rec.u_computed) else math.nan,
            low=lo,
            high=hi,
            rate=_num(values.get(k + "rate", spec.max_rate_per_s if spec is not None else None)),
            in_service=values.get(k + "in_service", True) is not False,
            health=health,
            write_status=rec.mv_status[i] if i < len(rec.mv_status) else rec.write_status,
            planned=planned,
        )

    def _rto(self, values: Mapping[str, Any]) -> RtoFrame:
        its = getattr(self.rto, "iterations", None) or ()
        last = its[-1] if its else None
        active: tuple[str, ...] = ()
        opt = getattr(last, "optimum", None)
        if opt is not None:
            active = tuple(f"{lim.signal}:{lim.side.value}" for lim in opt.active)
        return RtoFrame(
            enabled=self.rto is not None and values.get("controller.rto_enable", True) is not False,
            status=self._rto_status,
            last_profit=float(last.plant_profit) if last is not None else math.nan,
            active_constraints=active,
        )


class EngineViews(Mapping[str, UnitView]):
    """Unit name -> :class:`UnitView` of an application (insertion order)."""

    def __init__(self, views: Sequence[UnitView] = ()) -> None:
        self._views: dict[str, UnitView] = {}
        for v in views:
            self.add(v)

    def add(self, view: UnitView) -> UnitView:
        """Add a unit's view (ValueError on a duplicate name)."""
        if view.name in self._views:
            raise ValueError(f"two units named {view.name!r}")
        self._views[view.name] = view
        return view

    def __getitem__(self, name: str) -> UnitView:
        try:
            return self._views[name]
        except KeyError:
            raise KeyError(f"no unit {name!r}; known {list(self._views)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)


def _num(v: object) -> float:
    """A live value as a float (None -> NaN)."""
    if v is None or isinstance(v, Mode | bool):
        return math.nan
    return float(v)  # type: ignore[arg-type]


def _flags_by_signal(flags: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in flags:
        sig, _, reason = f.partition(":")
        if reason:
            out[sig] = f"{out[sig]},{reason}" if sig in out else reason
    return out


Surface = Callable[[EngineViews], AbstractAsyncContextManager[Any]]
"""An operator surface started beside the loops (engine OPC UA server, web console): given
the application's views, an async context manager that serves while it is entered."""


def unit_name(path: str | Path) -> str:
    """The unit name of a single-unit config file: its stem in snake_case."""
    stem = re.sub(r"[^0-9a-zA-Z]+", "_", Path(path).stem).strip("_").lower()
    return stem if stem and not stem[0].isdigit() else f"unit_{stem}"
