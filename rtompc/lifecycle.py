"""The run lifecycle: start-up checks, hand-back of the plant at the end, exit codes.

A run of ``rtompc run`` goes: checks (config complete, objective defined,
historian writable, clocks agree, tags writable: errors before ON, warnings in
SHADOW) -> loop -> stop (signal, step count) -> the last cycle completes, the
heartbeat stops -> the plant is handed back (:class:`HandBack`) -> the run is
closed in the historian with its exit reason -> the process exits with an
:class:`ExitCode` a supervisor or a nightly job can act on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from enum import Enum, IntEnum

from interfaces.plantio import PlantIO, PlantMode
from plant_models.errors import EngineError, PlantIOError

logger = logging.getLogger(__name__)


class ExitCode(IntEnum):
    """Exit codes of ``rtompc run`` (documented in the README)."""

    OK = 0
    """Normal end: the step count was reached, or a stop by SIGINT/SIGTERM."""
    INTERNAL = 1
    """Unexpected internal error (a bug: the traceback is printed)."""
    STARTUP = 2
    """Configuration or start-up check failed; nothing was written to the plant."""
    NOT_IN_CONTROL = 3
    """ON run, but at the end the plant was not in REMOTE: it dropped to LOCAL (watchdog trip,
    key switch, PLC restart) and did not come back, or never granted REMOTE."""
    WRITE_FAILURES = 4
    """The share of cycles with a refused or failed write exceeded ``loop.max_write_failure_share``."""
    LINK_LOST = 5
    """The link to the plant was down at the end of the run."""
    WATCHDOG_TRIPPED = 6
    """ON run that ended in control, but the PLC's heartbeat watchdog tripped during it (the
    plant went LOCAL with the link up, its status text naming the watchdog) and control came
    back: the engine did not keep the plant alive for a while."""


class HandBack(Enum):
    """What the engine leaves the plant in when an ON run stops."""

    LOCAL = "local"
    """Ask the plant for LOCAL: its base layer takes over at once, holding the values it has
    (the default: an explicit hand-over the operator sees)."""
    HOLD = "hold"
    """Write nothing more: the plant keeps the last setpoints in REMOTE until its heartbeat
    watchdog trips to LOCAL (its own fallback policy applies)."""


class StartupError(EngineError):
    """A start-up check failed before anything was written to the plant (exit code 2)."""


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, for the exit code and the historian's run record."""

    code: ExitCode
    """Exit code."""
    reason: str
    """One line for people and for the historian's ``exit_reason``."""


def decide_exit(
    *,
    on: bool,
    connected: bool,
    in_control: bool,
    writes: int,
    write_failures: int,
    max_write_failure_share: float,
    stopped_by: str,
    watchdog_trips: int = 0,
    last_drop: str = "",
) -> RunOutcome:
    """The outcome of a finished run: link, then control, then write failures, then watchdog
    trips during the run, else OK. ``last_drop``: what the PLC said when it last dropped to
    LOCAL (named in the reason)."""
    attempts = writes + write_failures
    share = write_failures / attempts if attempts else 0.0
    if not connected:
        return RunOutcome(ExitCode.LINK_LOST, f"link to the plant lost at the end ({stopped_by})")
    if on and not in_control:
        said = f"; PLC at the last drop: {last_drop}" if last_drop else ""
        return RunOutcome(
            ExitCode.NOT_IN_CONTROL,
            f"plant not in REMOTE at the end of an ON run{said} ({stopped_by})",
        )
    if on and attempts and share > max_write_failure_share:
        return RunOutcome(
            ExitCode.WRITE_FAILURES,
            f"{write_failures} of {attempts} writes failed ({share:.0%} > "
            f"{max_write_failure_share:.0%}) ({stopped_by})",
        )
    if on and watchdog_trips:
        return RunOutcome(
            ExitCode.WATCHDOG_TRIPPED,
            f"the PLC's watchdog tripped {watchdog_trips} time(s) during the run, control came "
            f"back (PLC at the last drop: {last_drop or 'no status text'}) ({stopped_by})",
        )
    return RunOutcome(ExitCode.OK, stopped_by)


async def hand_back(io: PlantIO, policy: HandBack, confirm_within_s: float = 2.0) -> str:
    """Hand the plant back after the last cycle; returns what was done (never raises).

    With :attr:`HandBack.LOCAL` the LOCAL request is written and the plant's mode is read
    again until it reports LOCAL or ``confirm_within_s`` (``transport.mode_timeout_s``) has
    passed: a PLC takes a mode request at its next scan, so the first read may still say
    REMOTE.
    """
    if not io.connected:
        return "link down: nothing handed back (the plant's watchdog takes over)"
    if policy is HandBack.HOLD:
        return "holding the last setpoints; heartbeat stopped, the plant's watchdog takes over"
    try:
        mode = await io.request_mode(remote=False)
        deadline = time.monotonic() + max(0.0, confirm_within_s)
        while mode is not PlantMode.LOCAL and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            mode = await io.mode()
    except PlantIOError as exc:
        return f"LOCAL request failed ({exc}); the plant's watchdog takes over"
    if mode is PlantMode.LOCAL:
        return "plant handed back: LOCAL requested and granted, holding its current values"
    return (
        f"LOCAL requested, plant still reports {mode.name} after {confirm_within_s:g} s; "
        "the plant's watchdog takes over"
    )


def check_clock(
    *,
    lockstep: bool,
    sample_time_s: float,
    speed: float | None,
    server_lockstep: bool | None,
    server_step_s: float | None,
    server_speed: float | None,
) -> list[str]:
    """Problems between the loop's clock settings and what the server says (empty: agree).

    A lockstep loop advances the plant by one server step per cycle, so the server's step
    must equal the loop's sample time; a real-time loop paces ``sample_time_s / speed`` wall
    seconds per cycle, so its speed must equal the server's real-time factor.
    """
    problems = []
    if server_lockstep is not None and server_lockstep != lockstep:
        problems.append(
            f"transport.lockstep = {str(lockstep).lower()} but the server runs "
            f"{'in lockstep' if server_lockstep else 'in real time'}"
        )
    if (
        lockstep
        and server_step_s is not None
        and not math.isclose(server_step_s, sample_time_s, rel_tol=1e-9)
    ):
        problems.append(
            f"loop.sample_time_s = {sample_time_s:g} s but the lockstep server steps "
            f"{server_step_s:g} s per step: the model would run {sample_time_s / server_step_s:.3g}x "
            "ahead of the plant"
        )
    if (
        not lockstep
        and server_speed is not None
        and speed is not None
        and not math.isclose(server_speed, speed, rel_tol=1e-3)
    ):
        problems.append(
            f"transport.speed = {speed:g} but the server runs at {server_speed:g}x real time: "
            "set transport.speed to the server's speed factor"
        )
    return problems
