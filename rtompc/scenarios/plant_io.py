"""The in-process scenario plant: :class:`InProcessPlantIO` plus the faults scenarios inject.

:class:`ScenarioPlantIO` adds what timed scenario events need on top of the
lockstep simulation: true-parameter drift (the plant's ``p`` moves away from the
model's), sensor faults with dynamics (bias, drift, freeze, forced value, Bad or
Uncertain quality), stuck actuators (the plant keeps the MV whatever is written;
the setpoint's read-back shows the written value, as on a PLC, and only the
actuator feedback, :meth:`read_actuators`, shows the stuck position), and link outages (``connected`` is False, reads hold
the last values with Bad quality, writes report ``not_connected``, the plant
keeps running). It also exposes the plant truth (outputs at the true state) for
KPIs; a controller never sees it. Optional seeded Gaussian measurement noise is
added to the readings (never to the truth).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from interfaces.inprocess import InProcessPlantIO
from interfaces.plantio import MvWriteStatus, PlantMode, WriteResult, WriteStatus
from plant_models.samples import ControlMove, Measurement, Quality
from rtompc.scenarios.spec import SensorFault


@dataclass(frozen=True)
class ActiveSensorFault:
    """A sensor fault in force."""

    kind: SensorFault
    """How the value is corrupted."""
    start_s: float
    """Plant time of onset."""
    end_s: float
    """Plant time the fault clears (inf: never)."""
    magnitude: float
    """Bias, drift rate or forced value, SI."""
    frozen_value: float
    """Value held by a FREEZE fault."""


class ScenarioPlantIO(InProcessPlantIO):
    """Lockstep in-process plant with scenario faults and parameter drift."""

    def __init__(
        self,
        *args: object,
        noise_std: dict[str, float] | None = None,
        seed: int = 0,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        std = noise_std or {}
        self._noise = np.array([float(std.get(n, 0.0)) for n in self.measurement_names])
        self._rng = np.random.default_rng(seed)
        # own copies: without x0/d/p the parent holds the model's nominal arrays themselves,
        # and the disturbance/parameter setters would change the model's nominal point
        self._x, self._d, self._p = self._x.copy(), self._d.copy(), self._p.copy()
        self._sensor: dict[str, ActiveSensorFault] = {}
        self._stuck: dict[str, tuple[float, float]] = {}  # name -> (value, end time)
        self._link_down_until = -math.inf
        self._last_meas: Measurement | None = None

    # Truth (for KPIs) -------------------------------------------------------
    @property
    def u_actual(self) -> NDArray[np.float64]:
        """MV values the plant holds."""
        return self._u.copy()

    @property
    def d_actual(self) -> NDArray[np.float64]:
        """Measured disturbances acting on the plant."""
        return self._d.copy()

    @property
    def p_actual(self) -> NDArray[np.float64]:
        """True plant parameters."""
        return self._p.copy()

    def true_outputs(self) -> NDArray[np.float64]:
        """Plant outputs ``y`` at the true state and inputs."""
        return np.asarray(self.model.h(self._x, self._u, self._d, self._p), dtype=float).reshape(-1)

    # Scenario hooks -----------------------------------------------------------
    def set_parameter(self, name: str, value: float) -> None:
        """Change a true plant parameter (SI) from the next step on."""
        self._p[self.model.p.index(name)] = float(value)

    def add_sensor_fault(
        self, name: str, kind: SensorFault, magnitude: float, duration_s: float
    ) -> None:
        """Corrupt measured signal ``name`` from now for ``duration_s`` (0: until the end)."""
        if name not in self.measurement_names:
            raise ValueError(f"sensor fault: unknown measured signal {name!r}")
        y = np.concatenate([self.true_outputs(), self._d])
        frozen = float(y[self.measurement_names.index(name)])
        end = self._time + duration_s if duration_s > 0 else math.inf
        self._sensor[name] = ActiveSensorFault(kind, self._time, end, magnitude, frozen)

    def stick_actuator(self, name: str, duration_s: float) -> None:
        """Hold MV ``name`` at its current value for ``duration_s`` (0: until the end)."""
        i = self.model.u.index(name)
        end = self._time + duration_s if duration_s > 0 else math.inf
        self._stuck[name] = (float(self._u[i]), end)

    def lose_link(self, duration_s: float) -> None:
        """Cut the link for ``duration_s`` of plant time (0: until the end)."""
        self._link_down_until = self._time + duration_s if duration_s > 0 else math.inf

    def _expire(self) -> None:
        now = self._time + 1e-9
        self._sensor = {k: f for k, f in self._sensor.items() if f.end_s > now}
        self._stuck = {k: v for k, v in self._stuck.items() if v[1] > now}

    # PlantIO overrides ---------------------------------------------------------
    @property
    def connected(self) -> bool:
        return super().connected and self._time >= self._link_down_until - 1e-9

    async def read(self) -> Measurement:
        self._expire()
        if not self.connected and self._last_meas is not None:
            last = self._last_meas
            return dataclasses.replace(
                last, time_s=self._time, quality=(Quality.BAD,) * len(last.names)
            )
        meas = await super().read()
        if np.any(self._noise > 0):
            noisy = meas.values + self._noise * self._rng.standard_normal(self._noise.size)
            meas = dataclasses.replace(meas, values=noisy)
        if self._sensor:
            values = meas.values.copy()
            quality = list(meas.quality)
            for name, f in self._sensor.items():
                i = meas.names.index(name)
                if f.kind is SensorFault.BIAS:
                    values[i] += f.magnitude
                elif f.kind is SensorFault.DRIFT:
                    values[i] += f.magnitude * (self._time - f.start_s)
                elif f.kind is SensorFault.FREEZE:
                    values[i] = f.frozen_value
                elif f.kind is SensorFault.VALUE:
                    values[i] = f.magnitude
                elif f.kind is SensorFault.BAD:
                    quality[i] = Quality.BAD
                elif f.kind is SensorFault.UNCERTAIN:
                    quality[i] = Quality.UNCERTAIN
            meas = dataclasses.replace(meas, values=values, quality=tuple(quality))
        self._last_meas = meas
        return meas

    async def read_actuators(self) -> Measurement:
        meas = await super().read_actuators()
        if not self.connected:
            return dataclasses.replace(meas, quality=(Quality.BAD,) * len(meas.names))
        return meas

    async def write(
        self, move: ControlMove, *, in_service: Sequence[bool] | None = None
    ) -> WriteResult:
        if not self.connected:
            nan = np.full(len(self.mv_names), np.nan)
            n = len(self.mv_names)
            return WriteResult(
                self._time,
                self.mv_names,
                WriteStatus.NOT_CONNECTED,
                np.asarray(move.u, dtype=float),
                nan,
                nan,
                message="link lost",
                mv_status=(MvWriteStatus.NOT_WRITTEN,) * n,
                codes=("",) * n,
                held=self._u.copy(),
            )
        self._expire()
        result = await super().write(move, in_service=in_service)
        # A stuck actuator ignores its setpoint: the PLC holds (and reads back) the written
        # setpoint, while the plant and the actuator feedback (read_actuators) keep the position.
        for mv, (held, _) in self._stuck.items():
            self._u[self.model.u.index(mv)] = held
        return result

    async def heartbeat(self, counter: int) -> None:
        if self.connected:
            await super().heartbeat(counter)

    async def request_mode(self, remote: bool) -> PlantMode:
        if not self.connected:
            return self._mode
        return await super().request_mode(remote)
