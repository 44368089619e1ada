"""The PlantIO seam: the one interface between the control stack and a plant.

Three transports implement it: the in-process simulator (lockstep, for fast
tests and nightly simulation), the OPC UA client against the HIL server, and the
OPC UA client against a real PLC. The controller stack cannot tell them apart.

A PlantIO reads :class:`~plant_models.samples.Measurement` values in SI with a
quality and a source timestamp per signal, reads the MV values the plant
actually holds (for bumpless (re)initialisation), writes moves after clamping
them to absolute and rate limits and verifies them by read-back, keeps a
heartbeat, asks the plant for REMOTE/LOCAL mode and, on lockstep transports,
advances the plant clock. Expected failures of a cycle are reported in the
returned values (qualities, :class:`WriteResult`), so the hot loop does not need
``try``; :class:`~plant_models.errors.PlantIOError` is raised for misuse and for
a connect that cannot succeed.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import PlantIOError
from plant_models.samples import ControlMove, Measurement


class PlantMode(Enum):
    """Who drives the MVs on the plant side (the HIL ``mode`` tag: 0 LOCAL, 1 REMOTE)."""

    LOCAL = 0
    """The plant's own base layer / operator holds the MVs; remote writes are refused."""
    REMOTE = 1
    """The plant accepts setpoints from this controller."""


class WriteStatus(Enum):
    """Outcome of one :meth:`PlantIO.write`."""

    VERIFIED = "verified"
    """Written, and the read-back equals the written values."""
    MISMATCH = "mismatch"
    """Written, but the read-back differs (the plant clamped or overrode it)."""
    UNVERIFIED = "unverified"
    """Written and acknowledged, but the read-back failed (link lost right after the write)."""
    REJECTED = "rejected"
    """The plant refused at least one value (e.g. LOCAL mode, type or access error)."""
    NOT_CONNECTED = "not_connected"
    """No link to the plant: nothing was written."""
    NOTHING_TO_WRITE = "nothing_to_write"
    """Every MV was non-finite and no held value was known: nothing was written."""

    @property
    def ok(self) -> bool:
        """True when the plant holds what was written."""
        return self is WriteStatus.VERIFIED


class MvWriteStatus(Enum):
    """Outcome of one write for one MV (a PLC answers every node of a batch on its own)."""

    ACCEPTED = "accepted"
    """Written, acknowledged and (where read back) held by the plant within tolerance."""
    CLAMPED = "clamped"
    """Written after the client changed it (absolute limits, rate limit, integer rounding
    beyond the tag's tolerance); the plant holds the written value."""
    MISMATCH = "mismatch"
    """Acknowledged, but the read-back differs from what was written beyond the tag's tolerance."""
    REJECTED = "rejected"
    """The plant refused this node (the OPC UA status code is in the result's message)."""
    OUT_OF_SERVICE = "out_of_service"
    """Not written: the MV is out of service."""
    DEADBAND = "deadband"
    """Not written: the change from what the plant holds is inside the tag's deadband; the
    plant keeps its value (a normal outcome, not a failure)."""
    NOT_WRITTEN = "not_written"
    """Not written: no finite value, no link, or the batch never reached the plant."""


class ServerClock(NamedTuple):
    """The plant's clock as the plant itself states it (None: not stated)."""

    lockstep: bool | None = None
    """True when the plant advances only when the controller steps it."""
    step_s: float | None = None
    """Plant time per step (lockstep) or per simulation step (real time), s."""
    speed: float | None = None
    """Plant seconds per wall second of a real-time plant (None in lockstep)."""


class LockstepNotSupported(PlantIOError):
    """:meth:`PlantIO.advance` was called on a transport whose plant runs in real time."""


@dataclass(frozen=True)
class WriteResult:
    """What one write did: requested, applied after limits, and read back."""

    time_s: float
    """Plant time of the write (seconds, clock of :class:`Measurement`)."""
    names: tuple[str, ...]
    """MV names, ordered like the model's ``u``."""
    status: WriteStatus
    """Overall outcome."""
    requested: NDArray[np.float64]
    """The move's values, SI."""
    written: NDArray[np.float64]
    """Values sent to the plant after clamping and rate limiting, SI (NaN: not written)."""
    readback: NDArray[np.float64]
    """Values read back after the write, SI (NaN where not available)."""
    clamped: tuple[bool, ...] = ()
    """Per MV: changed by the absolute limits."""
    rate_limited: tuple[bool, ...] = ()
    """Per MV: changed by the rate limit."""
    message: str = ""
    """Why the status is not VERIFIED (status codes, names of mismatching MVs)."""
    mv_status: tuple[MvWriteStatus, ...] = ()
    """Per MV outcome, ordered like ``names`` (empty from transports that predate it)."""
    codes: tuple[str, ...] = ()
    """Per MV OPC UA status code name of the write (``Good``, ``BadOutOfRange``; empty string
    where nothing was sent)."""
    held: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    """Per MV, what the plant holds after this write, SI: the read-back where there is one,
    else the written value of an accepted MV, else the value the transport knew before
    (NaN: unknown). Rejected, out-of-service and deadband MVs keep the plant's value. This is
    what the estimator and the controller must use as the applied input (empty from
    transports that predate it)."""

    @property
    def ok(self) -> bool:
        """True when the plant holds what was written."""
        return self.status.ok

    def mv(self, name: str) -> MvWriteStatus | None:
        """The outcome for MV ``name`` (None when the transport gives no per-MV status)."""
        if not self.mv_status:
            return None
        return self.mv_status[self.names.index(name)]


@dataclass(frozen=True)
class LinkState:
    """Snapshot of a transport's connection health (for the runtime and reports)."""

    connected: bool
    """True while reads and writes can reach the plant."""
    reconnects: int = 0
    """Successful reconnects since :meth:`PlantIO.connect`."""
    last_error: str = ""
    """Last link error (never contains secrets)."""
    down_since_s: float | None = None
    """Monotonic time the link was lost, None while connected."""
    extra: dict[str, float] = field(default_factory=dict)
    """Transport-specific counters (e.g. detection latency of the last loss, s)."""


class PlantIO(ABC):
    """Abstract plant I/O. Use as ``async with io: ...`` or call connect/close."""

    @property
    @abstractmethod
    def measurement_names(self) -> tuple[str, ...]:
        """Names of the signals returned by :meth:`read` (model ``y`` then ``d``)."""

    @property
    @abstractmethod
    def mv_names(self) -> tuple[str, ...]:
        """Names of the manipulated inputs, ordered like the model's ``u``."""

    @property
    @abstractmethod
    def sample_time_s(self) -> float:
        """Control interval the transport assumes (rate limits are per this interval)."""

    @property
    @abstractmethod
    def lockstep(self) -> bool:
        """True when the plant advances only on :meth:`advance` (simulation, HIL lockstep)."""

    @property
    @abstractmethod
    def connected(self) -> bool:
        """True while reads and writes can reach the plant."""

    @abstractmethod
    async def connect(self) -> None:
        """Open the link; raises :class:`PlantIOError` when the plant cannot be reached."""

    @abstractmethod
    async def close(self) -> None:
        """Close the link and stop background tasks (idempotent)."""

    @abstractmethod
    async def read(self) -> Measurement:
        """Measured signals in SI with per-signal quality and source timestamps.

        Never raises for a lost link: values are held and flagged ``BAD``.
        """

    @abstractmethod
    async def read_actuators(self) -> Measurement:
        """The MV values the plant actually holds (names = :attr:`mv_names`)."""

    async def read_setpoints(self) -> Measurement:
        """The setpoints in force on the plant (names = :attr:`mv_names`): what a bumpless start
        continues from and rate limits count from. An actuator that lags its setpoint is still
        on its way; this is where it is going. Default: :meth:`read_actuators`, for transports
        whose plant has no separate setpoint read."""
        return await self.read_actuators()

    @property
    def actuator_feedback(self) -> tuple[str, ...]:
        """MVs whose actuator position / PV :meth:`read_actuators` reports (not an echo of the
        setpoint); empty when the plant has none (the default)."""
        return ()

    @abstractmethod
    async def write(
        self, move: ControlMove, *, in_service: Sequence[bool] | None = None
    ) -> WriteResult:
        """Clamp, write (value only, in the declared type) and verify a move by read-back.

        Each MV gets its own outcome in :attr:`WriteResult.mv_status` (a PLC answers every
        node of a batch on its own) and :attr:`WriteResult.held` says what the plant holds
        now. MVs whose ``in_service`` entry is False are not written (``OUT_OF_SERVICE``).
        """

    @abstractmethod
    async def heartbeat(self, counter: int) -> None:
        """Write the controller's heartbeat counter (wraps at 2**32)."""

    @abstractmethod
    async def request_mode(self, remote: bool) -> PlantMode:
        """Ask the plant for REMOTE (``True``) or LOCAL mode; returns the mode it reports now.

        Never waits for the plant to switch (a PLC handles the request at its next scan, or
        refuses it): the caller asks again, or reads :meth:`mode`, on a later cycle. Why the
        plant is in its mode is in :meth:`status_text`.
        """

    @abstractmethod
    async def mode(self) -> PlantMode:
        """The plant's current mode."""

    async def status_text(self) -> str:
        """The plant's own words on its mode (e.g. ``"LOCAL: heartbeat watchdog tripped"``);
        ``""`` when the transport has no such text."""
        return ""

    async def server_clock(self) -> ServerClock:
        """The plant's clock as the plant states it (lockstep, step size, speed), so a run can
        refuse a configuration that does not match; all None when the plant does not say."""
        return ServerClock()

    async def advance(self, n_steps: int = 1) -> float:
        """Advance a lockstep plant by ``n_steps`` sample times; returns the new plant time.

        Real-time transports raise :class:`LockstepNotSupported`.
        """
        raise LockstepNotSupported(f"{type(self).__name__}: the plant runs in real time")

    def link_state(self) -> LinkState:
        """Connection health snapshot."""
        return LinkState(connected=self.connected)

    async def __aenter__(self) -> PlantIO:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def move_vector(move: ControlMove, mv_names: tuple[str, ...]) -> NDArray[np.float64]:
    """The move's values ordered like ``mv_names`` (by name when the move names its MVs)."""
    u = np.asarray(move.u, dtype=float).reshape(-1)
    if move.names and tuple(move.names) != mv_names:
        if sorted(move.names) != sorted(mv_names) or len(move.names) != len(u):
            raise PlantIOError(
                f"move names {list(move.names)} do not match the plant's MVs {list(mv_names)}"
            )
        lookup = dict(zip(move.names, u, strict=True))
        return np.array([lookup[n] for n in mv_names], dtype=float)
    if u.shape != (len(mv_names),):
        raise PlantIOError(
            f"move has {u.size} values, the plant has {len(mv_names)} MVs ({', '.join(mv_names)})"
        )
    return u


def readback_mismatches(
    written: NDArray[np.float64], readback: NDArray[np.float64], rel_tol: float, abs_tol: float
) -> list[int]:
    """Indices where a written value (finite) and its read-back differ beyond tolerance."""
    bad = []
    for i, (w, r) in enumerate(zip(written, readback, strict=True)):
        if not math.isfinite(w):
            continue
        if not (math.isfinite(r) and math.isclose(w, r, rel_tol=rel_tol, abs_tol=abs_tol)):
            bad.append(i)
    return bad
