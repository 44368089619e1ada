"""OPC UA PlantIO: reads, verified writes, heartbeat, mode handshake and reconnect.

:class:`OpcUaPlantIO` is the PlantIO of a HIL server or a PLC. Each cycle it
reads every measurement tag in one batched Read (or takes the latest values of a
queue-size-1 subscription); every value keeps its status code and source
timestamp and is assessed by :func:`interfaces.quality.assess` (Bad/Uncertain
status, missing/NaN, out of validity, stale), so nothing enters the engine
unflagged. Moves are clamped to MV and rate limits around the value the plant
holds, written in one batch as value-only DataValues in each node's declared
type, then read back and compared.

One request per cycle for what the loop reads before it decides: a polled
:meth:`read` also fetches the plant's mode, status text (and watchdog flag) and
the actuator feedback in the same batched Read. The loop's calls to
:meth:`mode`, :meth:`status_text` and :meth:`read_actuators` right after it take
those values, each once, instead of a round trip each; any write (setpoints, a
mode request, the heartbeat) or a new session discards what was not taken, so a
value read after a write is always read afresh. Measured on the demo (secured
loopback, 600x): 7 round trips per cycle became 4 (see the README).

The link (detection of loss, reconnect with backoff) is
:class:`interfaces.opcua_link.OpcUaLink`. While it is down, :meth:`read`
returns the last values flagged ``BAD`` and :meth:`write` returns
``NOT_CONNECTED`` without sending anything. Every new session re-resolves the
namespace indices and re-reads the actuators before it is used (bumpless
re-initialisation of the rate-limit reference), then calls the optional
``on_reconnect`` callback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeVar

import numpy as np
from asyncua import ua
from asyncua.ua.uaerrors import UaError

from interfaces.limits import MoveLimits
from interfaces.mv_writes import MvRule, judge_write, plan_write
from interfaces.node_checks import NodeProblem, check_nodes
from interfaces.opcua_link import OpcUaLink
from interfaces.opcua_session import INT_TYPES, OpcUaSession, is_link_error
from interfaces.opcua_settings import OpcUaSettings, ReadMethod
from interfaces.plantio import (
    LinkState,
    LockstepNotSupported,
    MvWriteStatus,
    PlantIO,
    PlantMode,
    ServerClock,
    WriteResult,
    WriteStatus,
    move_vector,
)
from interfaces.quality import Issue, assess
from interfaces.tagmap import Tag, TagMap
from plant_models.errors import PlantIOError
from plant_models.model import PlantModel
from plant_models.samples import ControlMove, Measurement, Quality

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


_BATCHED_STATUS = ("mode", "status_text", "watchdog_tripped")
"""Status nodes read in the same batch as the measurements (when the tag map has them)."""


@dataclass
class _Batched:
    """Values read with the last measurement read, for the calls that follow it (each once)."""

    session: OpcUaSession
    """The session they were read on (a new session discards them)."""
    status: dict[str, ua.DataValue]
    """Status node values by name, taken (popped) by :meth:`OpcUaPlantIO.mode` etc."""
    actuators: list[ua.DataValue] | None
    """Actuator node values (None: not read with it, or taken)."""
    time_s: float
    """POSIX time of the read (for the ages of the actuator values)."""


@dataclass(frozen=True)
class _Assessed:
    """Assessed values of a batch of tags."""

    values: np.ndarray
    """SI values (NaN where missing)."""
    quality: list[Quality]
    """Quality per tag."""
    ages: np.ndarray
    """Age of each value (server time minus source time), s; NaN if unknown."""
    issues: dict[str, tuple[Issue, ...]]
    """Reasons per signal."""
    codes: dict[str, int]
    """OPC UA status code per signal."""


class OpcUaPlantIO(PlantIO):
    """PlantIO over OPC UA (asyncua client) for a HIL server or a PLC."""

    def __init__(
        self,
        model: PlantModel,
        settings: OpcUaSettings,
        tags: TagMap | None = None,
        *,
        limits: MoveLimits | None = None,
        on_reconnect: Callable[[Measurement], Awaitable[None]] | None = None,
    ) -> None:
        self._model = model
        self._settings = settings
        self._tags = tags if tags is not None else TagMap.for_hil(model)
        self._tags.check_model(model)
        self._limits = limits or MoveLimits.from_model(model)
        self._on_reconnect = on_reconnect
        self._link = OpcUaLink(settings, self._tags, self._on_open)
        self._reference = np.full(len(model.u), np.nan)
        self._rules = tuple(MvRule.from_tag(t) for t in self._tags.setpoints)
        names = tuple(t.signal for t in self._tags.measurements)
        self._last = Measurement(
            0.0,
            names,
            np.full(len(names), np.nan),
            (Quality.BAD,) * len(names),
            np.full(len(names), np.nan),
        )
        self.issues: dict[str, tuple[Issue, ...]] = {}
        """Why each measured signal was not GOOD in the last read (empty tuple when GOOD)."""
        self._status_text = ""
        self.node_problems: list[NodeProblem] = []
        """Connect-time node checks of the current session (:mod:`interfaces.node_checks`):
        data type, access levels, EURange against the MV limits; empty when all fit. The
        caller decides: an error before writing (ON), a warning when only reading (SHADOW)."""
        self.status_codes: dict[str, int] = {}
        """OPC UA status code of each measured signal in the last read (0: Good)."""
        self._batched: _Batched | None = None
        self.round_trips = 0
        """OPC UA requests sent by reads, writes and the heartbeat (not connect-time checks)."""

    # Properties -----------------------------------------------------------
    @property
    def tags(self) -> TagMap:
        """The tag map in use."""
        return self._tags

    @property
    def settings(self) -> OpcUaSettings:
        """Client settings (secrets hidden from repr)."""
        return self._settings

    @property
    def measurement_names(self) -> tuple[str, ...]:
        return self._last.names

    @property
    def mv_names(self) -> tuple[str, ...]:
        return self._model.u.names

    @property
    def sample_time_s(self) -> float:
        return self._settings.sample_time_s

    @property
    def actuator_feedback(self) -> tuple[str, ...]:
        """Every MV when the tag map has actuator tags (positions / PVs), else none."""
        return tuple(t.signal for t in self._tags.actuators)

    @property
    def lockstep(self) -> bool:
        return self._settings.lockstep

    @property
    def connected(self) -> bool:
        return self._session is not None

    @property
    def reference(self) -> np.ndarray:
        """MV values the rate limits are measured from (last read-back or actuator values)."""
        return self._reference.copy()

    def link_state(self) -> LinkState:
        link = self._link
        return LinkState(
            connected=self.connected,
            reconnects=link.reconnects,
            last_error=link.last_error,
            down_since_s=link.down_since,
        )

    @property
    def _session(self) -> OpcUaSession | None:
        return self._link.session

    # Link -----------------------------------------------------------------
    async def connect(self) -> None:
        await self._link.start()

    async def close(self) -> None:
        await self._link.close()

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait until the link is up; False on timeout."""
        return await self._link.wait_up(timeout_s)

    async def wait_disconnected(self, timeout_s: float) -> bool:
        """Wait until a loss has been detected; False on timeout."""
        return await self._link.wait_down(timeout_s)

    async def _on_open(self, session: OpcUaSession, reconnect: bool) -> None:
        """Prepare a new session before it is used: subscription, bumpless re-initialisation."""
        self._rules = tuple(
            MvRule.from_tag(t, vtype in INT_TYPES)
            for t, vtype in zip(self._tags.setpoints, session.setpoint_types, strict=True)
        )
        if self._settings.read_method is ReadMethod.SUBSCRIPTION:
            sim = [session.status["sim_time"]] if "sim_time" in session.status else []
            await session.subscribe(
                session.measurements + sim, min(self._settings.sample_time_s, 0.1)
            )
        problems = await check_nodes(session.client, self._tags, self._limits)
        if problems != self.node_problems and problems:
            _log.warning(
                "%s: connect checks found %d problem(s): %s",
                self._settings.endpoint,
                len(problems),
                "; ".join(str(p) for p in problems),
            )
        self.node_problems = problems
        act = await self._actuators(session)
        held = await self._setpoints(session)
        # Bumpless: rate limits start from the setpoints in force now, not from our last write
        # (nor from a lagging actuator's position on its way there).
        good = np.array([q is Quality.GOOD for q in held.quality])
        self._reference = np.where(good, held.values, np.nan)
        if reconnect and self._on_reconnect is not None:
            try:
                await self._on_reconnect(act)
            except Exception:  # noqa: BLE001 - a user callback must not kill the link
                _log.exception("on_reconnect callback failed")

    async def _call(self, what: str, session: OpcUaSession, coro: Awaitable[_T]) -> _T:
        self.round_trips += 1
        return await self._link.call(what, session, coro)

    def _take(self, session: OpcUaSession, names: Sequence[str]) -> list[ua.DataValue] | None:
        """The status values ``names`` read with the last measurement read on ``session``,
        once (None: not all there: read them afresh)."""
        b = self._batched
        if b is None or b.session is not session or not all(n in b.status for n in names):
            return None
        return [b.status.pop(n) for n in names]

    def _require(self, what: str) -> OpcUaSession:
        session = self._session
        if session is None:
            raise PlantIOError(f"{self._settings.endpoint}: {what}: not connected")
        return session

    # Reads ----------------------------------------------------------------
    def _assess(
        self, tags: Sequence[Tag], dvs: Sequence[ua.DataValue | None], now: float
    ) -> _Assessed:
        values = np.full(len(tags), np.nan)
        ages = np.full(len(tags), np.nan)
        quality: list[Quality] = []
        issues: dict[str, tuple[Issue, ...]] = {}
        codes: dict[str, int] = {}
        for i, (tag, dv) in enumerate(zip(tags, dvs, strict=True)):
            if dv is None:
                quality.append(Quality.BAD)
                issues[tag.signal] = (Issue.NO_VALUE,)
                continue
            raw = dv.Value.Value if dv.Value is not None else None
            code = dv.StatusCode.value if dv.StatusCode is not None else 0
            codes[tag.signal] = int(code)
            age = None
            if dv.SourceTimestamp is not None:
                ref = dv.ServerTimestamp.timestamp() if dv.ServerTimestamp is not None else now
                age = ref - dv.SourceTimestamp.timestamp()
                ages[i] = age
            res = assess(
                raw,
                code,
                to_model=tag.to_model,
                lower=tag.lower,
                upper=tag.upper,
                age_s=age,
                stale_after_s=self._settings.stale_after_s,
            )
            values[i] = res.value
            quality.append(res.quality)
            issues[tag.signal] = res.issues
        return _Assessed(values, quality, ages, issues, codes)

    def _held(self) -> Measurement:
        n = len(self._last.names)
        self.issues = {name: (Issue.NOT_CONNECTED,) for name in self._last.names}
        return replace(self._last, quality=(Quality.BAD,) * n)

    async def read(self) -> Measurement:
        """Measurements in SI with quality; held values flagged BAD while the link is down.

        ``time_s`` is the plant clock (the ``sim_time`` status node when the tag map has
        one, else the client's POSIX time); ``source_time_s`` is ``time_s`` minus each
        value's age (server timestamp minus source timestamp), so it is on the same clock.
        Reasons for non-GOOD values are in :attr:`issues`, raw status codes in
        :attr:`status_codes`.
        """
        session = self._session
        if session is None:
            return self._held()
        sim = session.status.get("sim_time")
        nodes = session.measurements + ([sim] if sim is not None else [])
        self._batched = None
        try:
            if self._settings.read_method is ReadMethod.SUBSCRIPTION:
                dvs: list[ua.DataValue | None] = session.latest(nodes)
            else:
                extra = [k for k in _BATCHED_STATUS if k in session.status]
                more = [session.status[k] for k in extra] + list(session.actuators)
                answer = list(await self._call("read", session, session.read(nodes + more)))
                dvs = list(answer[: len(nodes)])
                rest = answer[len(nodes) :]
                self._batched = _Batched(
                    session,
                    dict(zip(extra, rest, strict=False)),
                    rest[len(extra) :] if session.actuators else None,
                    time.time(),
                )
        except PlantIOError as exc:
            _log.debug("%s", exc)
            return self._held()
        now = time.time()
        a = self._assess(self._tags.measurements, dvs[: len(session.measurements)], now)
        time_s = now
        if sim is not None:
            sdv = dvs[-1]
            if (
                sdv is not None
                and sdv.Value is not None
                and isinstance(sdv.Value.Value, int | float)
            ):
                time_s = float(sdv.Value.Value)
        changed = {k: v for k, v in a.issues.items() if v and self.issues.get(k) != v}
        for name, why in changed.items():
            _log.warning("measurement %s flagged: %s", name, ", ".join(i.value for i in why))
        self.issues = a.issues
        self.status_codes = a.codes
        meas = Measurement(time_s, self._last.names, a.values, tuple(a.quality), time_s - a.ages)
        self._last = meas
        return meas

    async def read_actuators(self) -> Measurement:
        return await self._actuators(self._require("read_actuators"))

    def set_reference(self, held: np.ndarray) -> None:
        """Measure rate limits from ``held`` (SI, NaN: keep) from now on: the runtime calls it
        after re-reading what the plant holds (after a stall, a drop to LOCAL, a reconnect)."""
        held = np.asarray(held, dtype=float)
        self._reference = np.where(np.isfinite(held), held, self._reference)

    async def read_setpoints(self) -> Measurement:
        return await self._setpoints(self._require("read_setpoints"))

    async def _setpoints(self, session: OpcUaSession) -> Measurement:
        """The setpoint nodes' current values."""
        return await self._read_mvs(session, self._tags.setpoints, session.setpoints, "setpoints")

    async def _actuators(self, session: OpcUaSession) -> Measurement:
        """Actuator values (or, without actuator tags, the setpoints' read-back); those read
        with the last measurement read when they are still there."""
        b = self._batched
        if b is not None and b.session is session and b.actuators is not None:
            dvs, b.actuators = b.actuators, None
            a = self._assess(self._tags.actuators, dvs, b.time_s)
            return Measurement(
                self._last.time_s,
                self.mv_names,
                a.values,
                tuple(a.quality),
                self._last.time_s - a.ages,
            )
        tags = self._tags.actuators or self._tags.setpoints
        nodes = session.actuators or session.setpoints
        return await self._read_mvs(session, tags, nodes, "actuators")

    async def _read_mvs(
        self, session: OpcUaSession, tags: Sequence[Tag], nodes: Sequence[ua.NodeId], what: str
    ) -> Measurement:
        try:
            self.round_trips += 1
            dvs = await asyncio.wait_for(session.read(nodes), self._settings.request_timeout_s)
        except (UaError, ConnectionError, OSError, TimeoutError) as exc:
            if is_link_error(exc):
                self._link.lost(exc, session)
            raise PlantIOError(f"{self._settings.endpoint}: read {what} failed ({exc!r})") from None
        a = self._assess(tags, dvs, time.time())
        return Measurement(
            self._last.time_s, self.mv_names, a.values, tuple(a.quality), self._last.time_s - a.ages
        )

    # Writes ---------------------------------------------------------------
    async def write(
        self, move: ControlMove, *, in_service: Sequence[bool] | None = None
    ) -> WriteResult:
        """Clamp, round and send the move in one batch, read the setpoints back, judge per MV.

        A node the plant refuses (BadOutOfRange, BadInvalidState, ...) is REJECTED on its own;
        the others of the batch count as written. :attr:`WriteResult.held` is what the plant
        holds afterwards (read-back), and becomes the reference of the next rate limits.
        """
        self._batched = None  # what is read after a write is read afresh
        requested = move_vector(move, self.mv_names)
        reference = self._reference.copy()
        rules = self._rules
        plan = plan_write(self._limits, rules, requested, reference, self.sample_time_s, in_service)
        session = self._session
        judge = partial(
            judge_write,
            plan,
            time_s=self._last.time_s,
            names=self.mv_names,
            requested=requested,
            reference=reference,
            rules=rules,
            nodes=[str(t.node) for t in self._tags.setpoints],
            rel_tol=self._settings.readback_rel_tol,
            abs_tol=self._settings.readback_abs_tol,
        )
        if session is None:
            return judge(
                codes=(),
                readback=None,
                failure=WriteStatus.NOT_CONNECTED,
                note="link down: nothing written",
            )
        codes = [""] * len(requested)
        idx = plan.send
        if idx:
            try:
                answers = await self._call(
                    "write",
                    session,
                    session.write(
                        [session.setpoints[i] for i in idx],
                        [float(plan.raw[i]) for i in idx],
                        [session.setpoint_types[i] for i in idx],
                    ),
                )
            except PlantIOError as exc:
                lost = self._session is None
                return judge(
                    codes=codes,
                    readback=None,
                    note=str(exc),
                    failure=WriteStatus.NOT_CONNECTED if lost else WriteStatus.REJECTED,
                )
            for i, code in zip(idx, answers, strict=True):
                codes[i] = code.name
        elif all(s is MvWriteStatus.NOT_WRITTEN for s in plan.skipped):
            return judge(codes=codes, readback=None)
        try:
            rb = await self._call("read-back", session, session.read(session.setpoints))
        except PlantIOError as exc:
            result = judge(codes=codes, readback=None, note=str(exc))
        else:
            readback = self._assess(self._tags.setpoints, list(rb), time.time()).values
            result = judge(codes=codes, readback=readback)
        self._reference = np.where(np.isfinite(result.held), result.held, self._reference)
        return result

    async def heartbeat(self, counter: int) -> None:
        session = self._session
        if session is None or "heartbeat" not in session.status:
            return
        self._batched = None
        try:
            code = await self._call(
                "heartbeat", session, session.write_status("heartbeat", int(counter) % 2**32)
            )
        except PlantIOError as exc:
            _log.debug("%s", exc)
            return
        if not code.is_good():
            _log.warning("heartbeat write refused: %s", code.name)

    async def request_mode(self, remote: bool) -> PlantMode:
        """Write the mode request and return the mode the plant reports now (no waiting).

        A PLC handles the request at its next scan, or refuses it and says why in its
        status text: ask again on a later cycle. A request the plant refuses outright
        (a Bad status on the write) raises :class:`PlantIOError` with the plant's text.
        """
        session = self._require("request_mode")
        if "mode_request" not in session.status:
            return PlantMode.REMOTE
        self._batched = None
        code = await self._call(
            "mode request", session, session.write_status("mode_request", 1 if remote else 0)
        )
        if not code.is_good():
            text = await self.status_text()
            raise PlantIOError(
                f"{self._settings.endpoint}: mode request refused: {code.name}"
                + (f" ({text})" if text else "")
            )
        return await self.mode()

    async def mode(self) -> PlantMode:
        session = self._require("mode")
        if "mode" not in session.status:
            return PlantMode.REMOTE
        dvs = self._take(session, ["mode"])
        if dvs is None:
            dvs = await self._call("read mode", session, session.read([session.status["mode"]]))
        (dv,) = dvs
        code = dv.StatusCode.value if dv.StatusCode is not None else 0
        value = dv.Value.Value if dv.Value is not None else None
        if code != 0 or value not in (0, 1):
            name = ua.StatusCode(ua.UInt32(code)).name
            raise PlantIOError(
                f"{self._settings.endpoint}: mode tag unreadable ({name}, {value!r})"
            )
        return PlantMode(int(value))

    async def status_text(self) -> str:
        """The plant's status text (the ``status_text`` tag), prefixed with ``watchdog tripped:``
        when the ``watchdog_tripped`` tag says so and the text does not; ``""`` when unmapped.
        While the link is down: the last text read."""
        session = self._session
        if session is None:
            return self._status_text
        names = [k for k in ("status_text", "watchdog_tripped") if k in session.status]
        if not names:
            return ""
        try:
            dvs = self._take(session, names)
            if dvs is None:
                dvs = await self._call(
                    "read status text", session, session.read([session.status[k] for k in names])
                )
        except PlantIOError as exc:
            _log.debug("%s", exc)
            return self._status_text
        values = {
            k: dv.Value.Value if dv.Value is not None else None
            for k, dv in zip(names, dvs, strict=True)
        }
        text = str(values.get("status_text") or "")
        if values.get("watchdog_tripped") is True and "watchdog" not in text.lower():
            text = f"watchdog tripped: {text}" if text else "watchdog tripped"
        self._status_text = text
        return text

    async def server_clock(self) -> ServerClock:
        """The plant's clock as its server publishes it (HIL Status folder): lockstep or not,
        step size and speed factor; None for what the server does not publish."""
        session = self._require("server_clock")
        names = [
            k for k in ("clock_lockstep", "clock_step_s", "clock_speed") if k in session.status
        ]
        if not names:
            return ServerClock()
        dvs = await self._call(
            "read clock", session, session.read([session.status[k] for k in names])
        )
        values = {
            k: dv.Value.Value if dv.Value is not None else None
            for k, dv in zip(names, dvs, strict=True)
        }
        lockstep = values.get("clock_lockstep")
        step, speed = values.get("clock_step_s"), values.get("clock_speed")
        return ServerClock(
            lockstep=bool(lockstep) if isinstance(lockstep, bool) else None,
            step_s=float(step) if isinstance(step, int | float) else None,
            speed=float(speed) if isinstance(speed, int | float) and not lockstep else None,
        )

    async def advance(self, n_steps: int = 1) -> float:
        if not self._settings.lockstep:
            raise LockstepNotSupported(
                f"{self._settings.endpoint}: transport is real-time (lockstep = false)"
            )
        session = self._require("advance")
        if "step_method" not in session.status or "plant_object" not in session.status:
            raise LockstepNotSupported(f"{self._settings.endpoint}: the tag map has no step method")
        if int(n_steps) < 0:
            raise PlantIOError(f"advance: n_steps must be >= 0, got {n_steps}")
        return float(await self._call("step", session, session.call_step(int(n_steps))))
