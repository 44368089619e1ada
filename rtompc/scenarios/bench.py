"""Test benches a scenario runs on: the simulated plant, its PlantIO, and the plant truth.

- :class:`InProcessBench`: :class:`~rtompc.scenarios.plant_io.ScenarioPlantIO`
  (lockstep, in-process); plant events (disturbances, parameter drift, faults)
  are applied when they fire, ramps are advanced every cycle.
- :class:`HilBench`: the HIL simulator behind its OPC UA server on loopback,
  lockstep, and the OPC UA client PlantIO; plant events are translated once into
  the simulator's disturbance profile and fault schedule (the HIL plant keeps
  its own time), so firing them is a no-op here.

Both expose the plant truth the KPIs use (true outputs, applied MVs, d, p),
which a controller never sees.
"""

from __future__ import annotations

import logging
import math
import socket
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from interfaces.plantio import PlantIO
from plant_models.errors import ConfigError, PlantIOError
from plant_models.model import PlantModel
from plant_models.simulation import Integrator
from rtompc.scenarios.plant_io import ScenarioPlantIO
from rtompc.scenarios.spec import CommFault, Event, EventKind, ScenarioSpec, SensorFault

logger = logging.getLogger(__name__)


class Bench(Protocol):
    """What the runner needs of a test bench."""

    @property
    def io(self) -> PlantIO:
        """The transport the loop uses."""

    @property
    def plant(self) -> PlantModel:
        """The simulated plant."""

    @property
    def time_s(self) -> float:
        """Plant time, seconds."""

    def truth(
        self,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """True (y, u, d, p) of the plant now."""

    def plant_event(self, event: Event, t: float) -> None:
        """Carry out a plant-side event (disturbance, drift, fault) firing at ``t``."""

    def link_disturbance(self, name: str, value: float) -> None:
        """Another unit's plant sets disturbance ``name`` (a stream between units)."""

    def update(self, t: float) -> None:
        """Advance ramps to plant time ``t`` (before the cycle reads)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def advance(self) -> None:
        """Advance the plant one control period (also while the link is down)."""


class _Ramp:
    def __init__(
        self, kind: EventKind, signal: str, t0: float, v0: float, t1: float, v1: float
    ) -> None:
        self.kind, self.signal, self.t0, self.v0, self.t1, self.v1 = kind, signal, t0, v0, t1, v1

    def value(self, t: float) -> float:
        if t >= self.t1:
            return self.v1
        return self.v0 + (self.v1 - self.v0) * (t - self.t0) / (self.t1 - self.t0)


class InProcessBench:
    """The in-process lockstep plant with scenario faults."""

    def __init__(self, spec: ScenarioSpec, plant: PlantModel) -> None:
        self.plant = plant
        self.io: ScenarioPlantIO = ScenarioPlantIO(
            plant,
            spec.loop.sample_time_s,
            x0=dict(spec.plant.x0) or None,
            d=dict(spec.plant.d) or None,
            p=dict(spec.plant.p) or None,
            u0=dict(spec.plant.u0) or None,
            method=spec.plant.integrator,
            noise_std=dict(spec.plant.noise_std),
            seed=spec.plant.seed,
        )
        self._ramps: list[_Ramp] = []

    @property
    def time_s(self) -> float:
        return self.io.time_s

    def truth(
        self,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        io = self.io
        return io.true_outputs(), io.u_actual, io.d_actual, io.p_actual

    def _set(self, kind: EventKind, signal: str, value: float) -> None:
        if kind is EventKind.PARAMETER_DRIFT:
            self.io.set_parameter(signal, value)
        else:
            self.io.set_disturbance(signal, value)

    def plant_event(self, event: Event, t: float) -> None:
        k, io = event.kind, self.io
        if k is EventKind.DISTURBANCE_STEP:
            io.set_disturbance(event.signal, event.value)
        elif k in (EventKind.DISTURBANCE_RAMP, EventKind.PARAMETER_DRIFT):
            if event.duration_s <= 0:
                self._set(k, event.signal, event.value)
            else:
                vec, names = (
                    (io.p_actual, self.plant.p)
                    if k is EventKind.PARAMETER_DRIFT
                    else (io.d_actual, self.plant.d)
                )
                v0 = float(vec[names.index(event.signal)])
                self._ramps.append(_Ramp(k, event.signal, t, v0, t + event.duration_s, event.value))
        elif k is EventKind.SENSOR_FAULT:
            io.add_sensor_fault(
                event.signal, SensorFault(event.fault), event.magnitude, event.duration_s
            )
        elif k is EventKind.ACTUATOR_FAULT:
            io.stick_actuator(event.signal, event.duration_s)
        elif k is EventKind.COMM_FAULT:
            io.lose_link(event.duration_s)

    def link_disturbance(self, name: str, value: float) -> None:
        """Another unit's plant sets disturbance ``name`` (a stream between units)."""
        self.io.set_disturbance(name, value)

    def update(self, t: float) -> None:
        still = []
        for ramp in self._ramps:
            self._set(ramp.kind, ramp.signal, ramp.value(t))
            if t < ramp.t1:
                still.append(ramp)
        self._ramps = still

    async def start(self) -> None:
        await self.io.connect()

    async def stop(self) -> None:
        await self.io.close()

    async def advance(self) -> None:
        await self.io.advance(1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HilBench:
    """The HIL simulator served over OPC UA on loopback (lockstep) and the OPC UA client."""

    def __init__(self, spec: ScenarioSpec, plant: PlantModel) -> None:
        from hil.clock import ClockConfig, ClockMode
        from hil.disturbances import DisturbanceEvent, DisturbanceProfile, ProfileKind
        from hil.faults import Fault, FaultKind
        from hil.server import HilServer, ServerConfig
        from hil.simulator import PlantSimulator, SimulatorConfig
        from interfaces.opcua_client import OpcUaPlantIO
        from interfaces.opcua_settings import OpcUaSettings

        dt = spec.loop.sample_time_s
        sim_plant = plant.with_nominal(
            x=dict(spec.plant.x0), u=dict(spec.plant.u0), d=dict(spec.plant.d), p=dict(spec.plant.p)
        )
        self.plant = sim_plant
        dist: list[DisturbanceEvent] = []
        faults: list[Fault] = []
        sensor = {
            SensorFault.BIAS: (FaultKind.BIAS, "BadSensorFailure"),
            SensorFault.DRIFT: (FaultKind.DRIFT, "BadSensorFailure"),
            SensorFault.FREEZE: (FaultKind.FREEZE, "BadSensorFailure"),
            SensorFault.BAD: (FaultKind.BAD_STATUS, "BadSensorFailure"),
            SensorFault.UNCERTAIN: (FaultKind.BAD_STATUS, "UncertainSensorNotAccurate"),
        }
        for ev in spec.events:
            dur = ev.duration_s if ev.duration_s > 0 else None
            if ev.kind is EventKind.DISTURBANCE_STEP:
                dist.append(DisturbanceEvent(ev.signal, ev.t_s, ev.value))
            elif ev.kind in (EventKind.DISTURBANCE_RAMP, EventKind.PARAMETER_DRIFT):
                kind = ProfileKind.RAMP if ev.duration_s > 0 else ProfileKind.STEP
                dist.append(DisturbanceEvent(ev.signal, ev.t_s, ev.value, kind, ev.duration_s))
            elif ev.kind is EventKind.SENSOR_FAULT:
                fault = SensorFault(ev.fault)
                if fault not in sensor:
                    raise ConfigError(
                        f"{spec.path}: event[{ev.index}].fault: {ev.fault!r} is not "
                        f"available on the HIL transport; use one of "
                        f"{[f.value for f in sensor]}"
                    )
                fk, status = sensor[fault]
                faults.append(Fault(fk, ev.t_s, ev.signal, dur, ev.magnitude, status))
            elif ev.kind is EventKind.ACTUATOR_FAULT:
                faults.append(Fault(FaultKind.ACTUATOR_STUCK, ev.t_s, ev.signal, dur))
            elif ev.kind is EventKind.COMM_FAULT and ev.fault != CommFault.PLC_STOP.value:
                faults.append(Fault(FaultKind.DROP_CONNECTIONS, ev.t_s))
        self._profile = DisturbanceProfile(sim_plant, tuple(dist))
        self._linked: dict[int, float] = {}
        self._plc_stop: tuple[float, float] | None = None
        self._plc_down = False
        self.sim = PlantSimulator(
            sim_plant,
            SimulatorConfig(
                sample_time_s=dt,
                disturbances=tuple(dist),
                faults=tuple(faults),
                integrator=Integrator(spec.plant.integrator),
                noise_std=dict(spec.plant.noise_std),
                seed=spec.plant.seed,
            ),
        )
        endpoint = f"opc.tcp://127.0.0.1:{_free_port()}"
        self.server = HilServer(
            self.sim, ServerConfig(endpoint=endpoint, clock=ClockConfig(mode=ClockMode.LOCKSTEP))
        )
        self.io = OpcUaPlantIO(
            sim_plant,
            OpcUaSettings(
                endpoint,
                sample_time_s=dt,
                lockstep=True,
                watchdog_interval_s=0.3,
                reconnect_initial_delay_s=0.05,
                reconnect_max_delay_s=0.5,
            ),
        )

    @property
    def time_s(self) -> float:
        return float(self.sim.snapshot().time_s)

    def truth(
        self,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        snap = self.sim.snapshot()
        d, p = self._profile.values(snap.time_s)
        d = np.array(d, dtype=float)
        for i, v in self._linked.items():  # streams from other units override the profile
            d[i] = v
        u = np.asarray(snap.actuators, dtype=float)
        y = np.asarray(self.plant.h(self.sim.state, u, d, p), dtype=float).reshape(-1)
        return y, u, d, p

    def link_disturbance(self, name: str, value: float) -> None:
        """Another unit's plant sets disturbance ``name`` (held over the profile)."""
        self.sim.link_disturbance(name, value)
        self._linked[self.plant.d.index(name)] = float(value)

    def plant_event(self, event: Event, t: float) -> None:
        """Plant events are scheduled in the HIL simulator already; a PLC stop is carried out
        here (the server goes down at the next :meth:`advance`)."""
        if event.kind is EventKind.COMM_FAULT and event.fault == CommFault.PLC_STOP.value:
            self._plc_stop = (t, t + event.duration_s if event.duration_s > 0 else math.inf)

    def update(self, t: float) -> None:
        """The HIL simulator evaluates its own ramps."""

    async def start(self) -> None:
        await self.server.start()
        await self.io.connect()

    async def stop(self) -> None:
        try:
            await self.io.close()
        finally:
            if not self._plc_down:
                await self.server.stop()

    async def advance(self) -> None:
        if self._plc_stop is not None and not self._plc_down:
            logger.warning("PLC stop: HIL server %s down", self.server.config.endpoint)
            await self.server.stop()
            self._plc_down = True
        await self._advance()
        if self._plc_down and self._plc_stop is not None and self.time_s >= self._plc_stop[1]:
            logger.warning("PLC restart: HIL server %s up again", self.server.config.endpoint)
            await self.server.start()
            self._plc_down, self._plc_stop = False, None

    async def _advance(self) -> None:
        if self.io.connected and not self._plc_down:
            try:
                await self.io.advance(1)
                return
            except PlantIOError as exc:
                logger.warning("lockstep step over OPC UA failed (%s); stepping the plant", exc)
        self.sim.step(1)  # the plant runs on while the link is down


def make_bench(spec: ScenarioSpec, plant: PlantModel) -> InProcessBench | HilBench:
    """The bench of the scenario's transport."""
    from rtompc.scenarios.spec import TransportKind

    if spec.transport.kind is TransportKind.OPCUA:
        return HilBench(spec, plant)
    return InProcessBench(spec, plant)
