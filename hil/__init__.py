"""hil layer of rtompc: the plant side of a hardware-in-the-loop test bench.

A :class:`~hil.simulator.PlantSimulator` integrates any PlantModel behind
actuators (limits, rate limits, first-order lag), a PLC-like base layer
(LOCAL/REMOTE handshake, setpoint checks, heartbeat watchdog with bumpless
fallback), disturbance profiles, seeded measurement noise and scheduled faults.
:class:`~hil.server.HilServer` exposes it over OPC UA (asyncua) with the address
space of :mod:`hil.address_space`, a real-time (speed factor) or lockstep clock
and optional Basic256Sha256 security with users and roles.
``rtompc hil serve`` runs it from the command line.
"""

from hil.actuators import ActuatorSpec
from hil.address_space import NAMESPACE_URI
from hil.clock import ClockConfig, ClockMode
from hil.config import BenchConfig, load_bench
from hil.disturbances import DisturbanceEvent, ProfileKind
from hil.faults import Fault, FaultKind, load_faults
from hil.plc import ControlMode, FallbackPolicy, WatchdogConfig, WriteOutcome
from hil.security import Role, SecurityMode
from hil.server import HilServer, ServerConfig
from hil.simulator import PlantSimulator, SimSnapshot, SimulatorConfig

__all__ = [
    "NAMESPACE_URI", "ActuatorSpec", "BenchConfig", "ClockConfig", "ClockMode", "ControlMode",
    "DisturbanceEvent", "FallbackPolicy", "Fault", "FaultKind", "HilServer", "PlantSimulator",
    "ProfileKind", "Role", "SecurityMode", "ServerConfig", "SimSnapshot", "SimulatorConfig",
    "WatchdogConfig", "WriteOutcome", "load_bench", "load_faults",
]
