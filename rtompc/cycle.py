"""What one control cycle did: the record the runtime hands to the historian and reports.

A :class:`CycleRecord` is built once per cycle by :mod:`rtompc.runtime` and is
plain data (names, arrays, enums), so historians and reports need no knowledge of
the solver or transport objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from plant_models.samples import Measurement, Mode, OperatingTarget, StateEstimate


@dataclass(frozen=True)
class CycleRecord:
    """Everything one cycle measured, estimated, decided and wrote."""

    cycle: int
    """Cycle counter from 0."""
    time_s: float
    """Plant time of the read (measurement clock)."""
    wall_time_s: float
    """Wall-clock time (UNIX seconds) at the start of the cycle."""
    mode: Mode
    """Runtime mode in this cycle."""
    connected: bool
    """Whether the plant link was up when the cycle read."""
    measurement: Measurement
    """What was read, with quality per signal."""
    estimate: StateEstimate
    """Estimator output (x, disturbance estimates, rejected signals)."""
    target: OperatingTarget | None
    """Targets in force."""
    mv_names: tuple[str, ...]
    """Names of the MVs, ordered like ``u_*``."""
    u_computed: NDArray[np.float64]
    """Move computed by the controller or the fallback (NaN where none)."""
    u_written: NDArray[np.float64]
    """Values written to the plant (NaN where nothing was written)."""
    u_plant: NDArray[np.float64]
    """MV values the plant reported holding before the write."""
    solver_status: str
    """Controller status value (``success``, ``max_iter``, ...)."""
    solver: str
    """Which solver produced the move."""
    fallback: bool
    """True when the move came from the fallback policy."""
    solve_time_s: float
    """Controller step time."""
    estimator_time_s: float
    """Estimator update time."""
    cycle_time_s: float
    """Whole cycle time (wall clock) excluding waiting for the next period."""
    overrun: bool
    """True when the cycle took longer than its period (real-time transports)."""
    write_status: str = ""
    """Outcome of the write (``verified``, ``not_connected``, ``shadow``, ...)."""
    rto_status: str = ""
    """RTO outcome this cycle (empty when RTO did not run)."""
    events: tuple[str, ...] = field(default_factory=tuple)
    """Noteworthy events of the cycle (reconnect, fallback engaged, RTO accepted, ...)."""
    u_requested: NDArray[np.float64] | None = None
    """Values sent in the write request after client-side clamping, rate limits and integer
    rounding, SI (None/NaN: not requested)."""
    u_readback: NDArray[np.float64] | None = None
    """Setpoints read back after the write, SI (None/NaN: not read)."""
    u_measured: NDArray[np.float64] | None = None
    """Actuator feedback (position / PV) read this cycle, SI (None/NaN where the tag map has none)."""
    mv_status: tuple[str, ...] = field(default_factory=tuple)
    """Per MV, the :class:`interfaces.plantio.MvWriteStatus` value of this cycle's write
    (empty when nothing was written)."""
    plant_time_s: float | None = None
    """Plant (PLC) clock of the read, when it differs from ``time_s`` (engine run time)."""
    plant_mode: str = ""
    """Plant-side mode as read (``REMOTE``, ``LOCAL``; empty when not read)."""
    plant_status_text: str = ""
    """The PLC's own status text, when the tag map has one."""
    flags: tuple[str, ...] = field(default_factory=tuple)
    """Supervision flags raised this cycle, ``signal:reason`` (``t_r:frozen``, ``q_k:stuck``)."""
