"""In-process PlantIO: a PlantModel simulated in lockstep, for fast tests and simulation runs.

The plant state is advanced with :func:`plant_models.simulation.step` (CVODES by
default) only when :meth:`InProcessPlantIO.advance` is called, so a closed loop
is deterministic and runs as fast as the integrator. It mimics the plant side of
the HIL contract: MV writes are accepted only in REMOTE mode, the plant holds
the last accepted MV values (clamped to the model's ``u`` bounds), measurements
are the model outputs ``y`` followed by the measured disturbances ``d``, and
values outside the signals' bounds are flagged ``BAD``. Faults can be injected
per signal (:meth:`InProcessPlantIO.inject`) to exercise quality handling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from numpy.typing import ArrayLike, NDArray

from interfaces.limits import MoveLimits
from interfaces.mv_writes import MvRule, judge_write, plan_write
from interfaces.plantio import (
    LinkState,
    PlantIO,
    PlantMode,
    ServerClock,
    WriteResult,
    move_vector,
)
from plant_models.errors import ModelError, PlantIOError
from plant_models.model import PlantModel
from plant_models.samples import ControlMove, Measurement, Quality
from plant_models.simulation import Integrator, step

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InjectedFault:
    """A value and/or quality forced on one measured signal (test and scenario hook)."""

    value: float | None = None
    """Value reported instead of the true one (SI); None keeps the true value."""
    quality: Quality | None = None
    """Quality reported; None lets the normal checks decide."""


class InProcessPlantIO(PlantIO):
    """Lockstep simulation of ``model`` behind the PlantIO seam."""

    def __init__(
        self,
        model: PlantModel,
        sample_time_s: float,
        *,
        x0: Mapping[str, float] | ArrayLike | None = None,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
        u0: Mapping[str, float] | ArrayLike | None = None,
        limits: MoveLimits | None = None,
        method: Integrator | str = Integrator.CVODES,
        start_remote: bool = False,
    ) -> None:
        if not (np.isfinite(sample_time_s) and sample_time_s > 0):
            raise ModelError(f"InProcessPlantIO: sample_time_s must be > 0, got {sample_time_s}")
        self._model = model
        self._dt = float(sample_time_s)
        self._x = model.resolve("x", x0)
        self._d = model.resolve("d", d)
        self._p = model.resolve("p", p)
        self._u = np.clip(model.resolve("u", u0), model.u.lower, model.u.upper)
        self._limits = limits or MoveLimits.from_model(model)
        self._rules = tuple(MvRule() for _ in model.u.names)
        self._method = Integrator(method) if not isinstance(method, Integrator) else method
        self._mode = PlantMode.REMOTE if start_remote else PlantMode.LOCAL
        self._status_text = f"{self._mode.name} at start"
        self._time = 0.0
        self._connected = False
        self._faults: dict[str, InjectedFault] = {}
        self._heartbeat: int | None = None
        self._names = model.y.names + model.d.names
        self._lower = np.concatenate([model.y.lower, model.d.lower])
        self._upper = np.concatenate([model.y.upper, model.d.upper])

    # Properties -----------------------------------------------------------
    @property
    def model(self) -> PlantModel:
        """The simulated plant."""
        return self._model

    @property
    def measurement_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def mv_names(self) -> tuple[str, ...]:
        return self._model.u.names

    @property
    def sample_time_s(self) -> float:
        return self._dt

    @property
    def actuator_feedback(self) -> tuple[str, ...]:
        """Every MV: :meth:`read_actuators` reports the values the plant acts on."""
        return self.mv_names

    @property
    def lockstep(self) -> bool:
        return True

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def state(self) -> NDArray[np.float64]:
        """True plant state (for tests and reports; a controller must not use it)."""
        return self._x.copy()

    @property
    def time_s(self) -> float:
        """Plant time, seconds."""
        return self._time

    @property
    def last_heartbeat(self) -> int | None:
        """Last heartbeat counter received."""
        return self._heartbeat

    def link_state(self) -> LinkState:
        return LinkState(connected=self._connected)

    # Scenario hooks -------------------------------------------------------
    def set_disturbance(self, name: str, value: float) -> None:
        """Change a measured disturbance (SI) from the next step on."""
        self._d[self._model.d.index(name)] = float(value)

    def inject(self, name: str, value: float | None = None, quality: Quality | None = None) -> None:
        """Force the reported value and/or quality of measured signal ``name``."""
        if name not in self._names:
            raise ModelError(
                f"inject: unknown measured signal {name!r}; known: {', '.join(self._names)}"
            )
        self._faults[name] = InjectedFault(value, quality)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    # Link -----------------------------------------------------------------
    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        self._connected = False

    def _require(self) -> None:
        if not self._connected:
            raise PlantIOError(
                "InProcessPlantIO: not connected (call connect() or use 'async with')"
            )

    # I/O -----------------------------------------------------------------
    async def read(self) -> Measurement:
        self._require()
        y = np.asarray(self._model.h(self._x, self._u, self._d, self._p), dtype=float).reshape(-1)
        values = np.concatenate([y, self._d])
        quality = []
        for i, name in enumerate(self._names):
            fault = self._faults.get(name)
            if fault is not None and fault.value is not None:
                values[i] = fault.value
            if fault is not None and fault.quality is not None:
                q = fault.quality
            elif not np.isfinite(values[i]) or not (self._lower[i] <= values[i] <= self._upper[i]):
                q = Quality.BAD
            else:
                q = Quality.GOOD
            quality.append(q)
        return Measurement(
            time_s=self._time,
            names=self._names,
            values=values,
            quality=tuple(quality),
            source_time_s=np.full(len(values), self._time),
        )

    async def read_actuators(self) -> Measurement:
        self._require()
        return Measurement(
            time_s=self._time,
            names=self.mv_names,
            values=self._u.copy(),
            quality=(Quality.GOOD,) * len(self._u),
            source_time_s=np.full(len(self._u), self._time),
        )

    async def write(
        self, move: ControlMove, *, in_service: Sequence[bool] | None = None
    ) -> WriteResult:
        self._require()
        requested = move_vector(move, self.mv_names)
        reference = self._u.copy()
        plan = plan_write(self._limits, self._rules, requested, reference, self._dt, in_service)
        judge = partial(
            judge_write,
            plan,
            time_s=self._time,
            names=self.mv_names,
            requested=requested,
            reference=reference,
            rules=self._rules,
            rel_tol=1e-12,
            abs_tol=0.0,
        )
        send = plan.send
        if self._mode is not PlantMode.REMOTE and send:
            codes = ["BadInvalidState" if i in send else "" for i in range(len(requested))]
            return judge(codes=codes, readback=self._u.copy(), note="plant is in LOCAL mode")
        if send:
            self._accept(send, plan.written)
        codes = ["Good" if i in send else "" for i in range(len(requested))]
        return judge(codes=codes, readback=self._u.copy())

    def _accept(self, send: list[int], written: NDArray[np.float64]) -> None:
        """The plant takes the written values of MVs ``send`` (clamped to its own MV bounds)."""
        for i in send:
            self._u[i] = float(np.clip(written[i], self._model.u.lower[i], self._model.u.upper[i]))

    async def heartbeat(self, counter: int) -> None:
        self._require()
        self._heartbeat = int(counter) % 2**32

    async def request_mode(self, remote: bool) -> PlantMode:
        self._require()
        mode = PlantMode.REMOTE if remote else PlantMode.LOCAL
        if mode is not self._mode:
            self._status_text = f"{mode.name}: requested by the controller at {self._time:g} s"
            _log.info("in-process plant %s: mode %s", self._model.name, mode.name)
        self._mode = mode
        return self._mode

    async def mode(self) -> PlantMode:
        self._require()
        return self._mode

    async def status_text(self) -> str:
        self._require()
        return self._status_text

    async def server_clock(self) -> ServerClock:
        return ServerClock(lockstep=True, step_s=self._dt, speed=None)

    async def advance(self, n_steps: int = 1) -> float:
        self._require()
        if int(n_steps) < 0:
            raise PlantIOError(f"advance: n_steps must be >= 0, got {n_steps}")
        x, u, d, p = self._x, self._u.copy(), self._d.copy(), self._p

        def run() -> np.ndarray:
            xk = x
            for _ in range(int(n_steps)):
                xk = step(self._model, xk, u, d, p, self._dt, self._method)
            return xk

        self._x = await asyncio.to_thread(run)
        self._time += int(n_steps) * self._dt
        return self._time
