"""The HIL OPC UA server: a PlantSimulator exposed like a PLC (asyncua).

:class:`HilServer` builds the address space of :mod:`hil.address_space`,
installs the write guard, sets up security (:mod:`hil.security`), and runs the
clock: in real-time mode a task steps the simulator every
``sample_time_s / speed`` wall seconds; in lockstep mode the ``step`` method
does. Numeric work runs in a worker thread (``asyncio.to_thread``) so the
event loop keeps answering clients. Server faults (pause, dropped
connections) from the simulator's fault schedule are carried out here.

Use as an async context manager::

    async with HilServer(PlantSimulator(model), ServerConfig(endpoint=url)) as srv:
        await srv.wait_closed()       # or srv.step(n) in lockstep
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from asyncua import Server, ua

from hil.address_space import (
    STATUS_VARIABLES,
    GuardedAttributeService,
    NodeRule,
    PlantNodes,
    build_address_space,
    status,
    timestamp,
)
from hil.clock import ClockConfig, ClockMode, PacingStats
from hil.faults import Fault, FaultKind
from hil.plc import ControlMode, WriteOutcome
from hil.security import (
    TRUSTED_DIR,
    HilRuleset,
    HilUserManager,
    OpenUserManager,
    SecurityMode,
    TrustListValidator,
    UserEntry,
    ensure_server_certificate,
)
from hil.simulator import PlantSimulator, SimSnapshot
from plant_models.errors import ConfigError

_log = logging.getLogger(__name__)

_OUTCOME_STATUS = {
    WriteOutcome.ACCEPTED: ua.StatusCodes.Good,
    WriteOutcome.CLAMPED: ua.StatusCodes.GoodClamped,
    WriteOutcome.OUT_OF_RANGE: ua.StatusCodes.BadOutOfRange,
    WriteOutcome.NOT_REMOTE: ua.StatusCodes.BadInvalidState,
}


@dataclass(frozen=True)
class ServerConfig:
    """Endpoint, clock and security of a HIL server."""

    endpoint: str = "opc.tcp://127.0.0.1:4840"
    """URL to listen on (``opc.tcp://host:port``)."""
    clock: ClockConfig = field(default_factory=ClockConfig)
    """Real time with speed factor, or lockstep."""
    security: SecurityMode = SecurityMode.NONE
    """None (anonymous controller), or Basic256Sha256 Sign / SignAndEncrypt with users."""
    cert_dir: Path | None = None
    """Server certificate + key (generated when absent) and ``trusted/`` client certificates."""
    users: Mapping[str, UserEntry] = field(default_factory=dict)
    """Users and roles (required when security is on)."""
    application_uri: str = "urn:rtompc:hil:server"
    """ApplicationUri of the server (also in its certificate)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "security", SecurityMode(self.security))
        url = urlparse(self.endpoint)
        if url.scheme != "opc.tcp" or not url.hostname or url.port is None:
            raise ConfigError(f"endpoint {self.endpoint!r}: expected opc.tcp://host:port")
        if self.security is SecurityMode.NONE and self.users:
            raise ConfigError("users need security 'sign' or 'sign-encrypt': with security 'none' "
                              "passwords would cross the wire in clear")
        if self.security is not SecurityMode.NONE:
            if self.cert_dir is None:
                raise ConfigError(f"security {self.security.value}: cert_dir is required")
            if not self.users:
                raise ConfigError(f"security {self.security.value}: a users file is required "
                                  "(anonymous access is off when security is on)")


class PublishedValue(ua.DataValue):
    """A DataValue the server never mutates once published, so a deep copy may be itself.

    asyncua deep-copies the value for every monitored item on every write (to compare old
    and new); with 100 monitored items at 100 steps per second that copy dominated the
    server's time. The value is still encoded as a plain DataValue.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> PublishedValue:
        return self


async def _stop_time_task(server: Server) -> None:
    """Cancel asyncua's 1 s ServerStatus clock task, which otherwise delays stop() by up to 1 s."""
    iserver = server.iserver
    task = getattr(iserver, "time_task", None)
    if task is None:
        return
    iserver._time_task_stop = True
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    iserver.time_task = None


def _check_port_free(endpoint: str) -> None:
    """Raise :class:`ConfigError` when the endpoint's address cannot be bound (port in use),
    before asyncua would log a traceback about it."""
    url = urlparse(endpoint)
    host, port = url.hostname or "", int(url.port or 0)
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ConfigError(f"endpoint {endpoint}: cannot resolve host {host!r}: {exc.strerror}") from None
    for family, kind, proto, _, address in infos[:1]:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ConfigError(f"endpoint {endpoint}: port {port} on {host} is already in use "
                                      "(another server running there? choose another --endpoint)") from None
                raise ConfigError(f"endpoint {endpoint}: cannot listen there: {exc.strerror}") from None


class HilServer:
    """A running (or ready to run) HIL OPC UA server around one simulator."""

    def __init__(self, simulator: PlantSimulator, config: ServerConfig | None = None) -> None:
        self.simulator = simulator
        self.config = config or ServerConfig()
        self.stats = PacingStats()
        self._server: Server | None = None
        self._nodes: PlantNodes | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._last: dict[ua.NodeId, Any] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._stats_published = 0.0
        self._plc_seen: tuple[ControlMode, str] | None = None
        self._refused: dict[str, WriteOutcome] = {}

    # Lifecycle ------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The URL clients connect to."""
        return self.config.endpoint

    @property
    def nodes(self) -> PlantNodes:
        """NodeIds of the plant (after :meth:`start`)."""
        if self._nodes is None:
            raise ConfigError("HilServer: not started")
        return self._nodes

    async def start(self) -> None:
        """Build the address space, listen, and start the clock.

        Raises :class:`ConfigError` (one clear line) when the endpoint's port is taken.
        """
        cfg = self.config
        _check_port_free(cfg.endpoint)
        secure = cfg.security is not SecurityMode.NONE
        manager = HilUserManager(cfg.users) if secure else OpenUserManager()
        server = Server(user_manager=manager)  # type: ignore[arg-type]
        await server.init()
        server.allow_remote_admin(False)
        server.set_endpoint(cfg.endpoint)
        server.set_server_name(f"rtompc HIL {self.simulator.model.name}")
        await server.set_application_uri(cfg.application_uri)
        server.set_security_policy([cfg.security.policy], permission_ruleset=HilRuleset())
        if secure:
            host = urlparse(cfg.endpoint).hostname or ""
            cert_dir = Path(str(cfg.cert_dir))
            cert, key = ensure_server_certificate(cert_dir, cfg.application_uri, (host,))
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
            validator = TrustListValidator(cert_dir / TRUSTED_DIR)
            await validator.load()
            server.set_certificate_validator(validator)  # type: ignore[arg-type]
            server.set_identity_tokens([ua.UserNameIdentityToken])
        else:
            server.set_identity_tokens([ua.AnonymousIdentityToken])
        self._nodes = await build_address_space(server, self.simulator.model, self._step_method)
        server.iserver.attribute_service = GuardedAttributeService(server.iserver.aspace, self._rules())
        self._server = server
        snap = self.simulator.snapshot()
        await self._publish(snap)
        await self._write(self.nodes.status["heartbeat"], 0, ua.VariantType.UInt32)
        await self._write(self.nodes.status["mode_request"], int(snap.mode), ua.VariantType.Int32)
        lockstep = cfg.clock.mode is ClockMode.LOCKSTEP
        await self._write(self.nodes.status["lockstep"], lockstep, ua.VariantType.Boolean)
        await self._write(self.nodes.status["step_size_s"], float(self.simulator.sample_time_s),
                          ua.VariantType.Double)
        await self._write(self.nodes.status["speed_factor"], 0.0 if lockstep else cfg.clock.speed,
                          ua.VariantType.Double)
        await server.start()
        if cfg.clock.mode is ClockMode.REALTIME:
            self._task = asyncio.create_task(self._run_realtime(), name="hil-clock")
        _log.info("HIL server for %r ready at %s (%s, security %s)", self.simulator.model.name,
                  cfg.endpoint, cfg.clock.mode.value, cfg.security.value)

    async def stop(self) -> None:
        """Stop the clock and the server (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for task in list(self._background):
            task.cancel()
        if self._server is not None:
            await _stop_time_task(self._server)
            await self._server.stop()
            self._server = None
        self._closed.set()

    async def wait_closed(self) -> None:
        """Wait until :meth:`stop` has run."""
        await self._closed.wait()

    async def __aenter__(self) -> HilServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # Clock ----------------------------------------------------------------------------
    async def step(self, n: int = 1) -> float:
        """Advance exactly ``n`` steps (lockstep), publish, and return the new sim time."""
        loop = asyncio.get_running_loop()
        wall = loop.time()
        snap = await asyncio.to_thread(self.simulator.step, n)
        self.stats.record(0.0, wall, snap.time_s)
        await self._publish(snap)
        return snap.time_s

    async def _run_realtime(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.simulator.sample_time_s / self.config.clock.speed
        anchor, k = loop.time(), 0
        while True:
            due = anchor + k * period
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            start = loop.time()
            late = start - due
            if late > period:
                self.stats.overruns += 1
                anchor, k = start, 0
            try:
                snap = await asyncio.to_thread(self.simulator.step, 1)
            except Exception:
                _log.exception("simulation step failed; the plant holds its last state")
                k += 1
                continue
            self.stats.record(late, start, snap.time_s)
            await self._publish(snap)
            k += 1

    async def _step_method(self, parent: ua.NodeId, *args: ua.Variant) -> Any:
        if self.config.clock.mode is not ClockMode.LOCKSTEP:
            return status(ua.StatusCodes.BadInvalidState)
        if len(args) != 1:
            return status(ua.StatusCodes.BadArgumentsMissing if not args else ua.StatusCodes.BadTooManyArguments)
        arg = args[0]
        if not isinstance(arg, ua.Variant) or arg.VariantType != ua.VariantType.UInt32 or arg.is_array:
            return status(ua.StatusCodes.BadTypeMismatch)
        time_s = await self.step(int(arg.Value))
        return [ua.Variant(time_s, ua.VariantType.Double)]

    # Publishing -------------------------------------------------------------------------
    async def _write(self, nid: ua.NodeId, value: Any, vtype: ua.VariantType, code: int = 0,
                     source: dt.datetime | None = None, only_changed: bool = False) -> None:
        if only_changed and self._last.get(nid) == (value, code):
            return
        self._last[nid] = (value, code)
        now = dt.datetime.now(dt.UTC)
        dv = PublishedValue(ua.Variant(value, vtype), StatusCode=status(code),
                            SourceTimestamp=timestamp(source or now), ServerTimestamp=timestamp(now))
        if self._server is None:
            return
        await self._server.iserver.aspace.write_attribute_value(nid, ua.AttributeIds.Value, dv)

    async def _publish(self, snap: SimSnapshot) -> None:
        """Write a snapshot into the address space: measurements and sim time at every step,
        everything else when it changed (its SourceTimestamp is the time of the change)."""
        nodes = self.nodes
        src = dt.datetime.fromtimestamp(snap.wall_time, dt.UTC)
        D = ua.VariantType.Double
        for name, value, code in zip(self.simulator.measurement_names, snap.measurements,
                                       snap.measurement_status, strict=True):
            await self._write(nodes.measurements[name], float(value), D, code, src)
        u_names = self.simulator.model.u.names
        for i, name in enumerate(u_names):
            await self._write(nodes.actuators[name], float(snap.actuators[i]), D, 0, src, only_changed=True)
            await self._write(nodes.setpoints[name], float(snap.setpoints[i]), D, 0, src, only_changed=True)
        st = nodes.status
        await self._write(st["sim_time_s"], snap.time_s, D, 0, src)
        await self._publish_plc(snap.mode, snap.watchdog_tripped, snap.status_text, src)
        if snap.wall_time - self._stats_published >= 0.2:  # percentiles cost: 5 times per second
            self._stats_published = snap.wall_time
            await self._write(st["realtime_factor"], self.stats.realtime_factor(), D, 0, src)
            await self._write(st["pacing_jitter_p99_s"], self.stats.jitter_p99_s(), D, 0, src)
        for fault in snap.server_faults:
            self._server_fault(fault)

    async def _publish_plc(self, mode: ControlMode, tripped: bool, text: str,
                           src: dt.datetime | None = None) -> None:
        if (mode, text) != self._plc_seen:
            if self._plc_seen is not None:  # the start-up state is in the "ready" line
                _log.info("%s: mode %s: %s", self.simulator.model.name, mode.name, text)
            self._plc_seen = (mode, text)
        st = self.nodes.status
        await self._write(st["mode"], int(mode), ua.VariantType.Int32, 0, src, only_changed=True)
        await self._write(st["watchdog_tripped"], bool(tripped), ua.VariantType.Boolean, 0, src, only_changed=True)
        await self._write(st["status_text"], text, ua.VariantType.String, 0, src, only_changed=True)

    # Client writes ------------------------------------------------------------------------
    def _rules(self) -> dict[ua.NodeId, NodeRule]:
        nodes = self.nodes
        rules: dict[ua.NodeId, NodeRule] = {}
        for nid in [*nodes.measurements.values(), *nodes.actuators.values()]:
            rules[nid] = NodeRule(ua.VariantType.Double)
        for name, nid in nodes.setpoints.items():
            rules[nid] = NodeRule(ua.VariantType.Double, self._setpoint_check(name))
        for name, nid in nodes.status.items():
            vtype, writable, *_ = STATUS_VARIABLES[name]
            check = {"heartbeat": self._heartbeat_check, "mode_request": self._mode_check}.get(name)
            rules[nid] = NodeRule(vtype, check if writable else None)
        return rules

    def _setpoint_check(self, name: str) -> Any:
        index = self.simulator.model.u.index(name)

        async def check(value: Any) -> tuple[ua.StatusCode, Any]:
            outcome = self.simulator.write_setpoint(name, float(value))
            refused = outcome in (WriteOutcome.OUT_OF_RANGE, WriteOutcome.NOT_REMOTE)
            if refused and self._refused.get(name) is not outcome:
                code = status(_OUTCOME_STATUS[outcome]).name
                _log.info("%s: setpoint %s = %r refused: %s (%s); further refusals of the same "
                          "kind are not logged until a write is accepted",
                          self.simulator.model.name, name, value, code, outcome.value)
            if refused:
                self._refused[name] = outcome
            elif self._refused.pop(name, None) is not None:
                _log.info("%s: setpoint %s accepted again", self.simulator.model.name, name)
            stored = float(self.simulator.plc_status()[3][index])
            return status(_OUTCOME_STATUS[outcome]), stored

        return check

    async def _heartbeat_check(self, value: Any) -> tuple[ua.StatusCode, Any]:
        self.simulator.write_heartbeat(int(value))
        return ua.StatusCode(), int(value)

    async def _mode_check(self, value: Any) -> tuple[ua.StatusCode, Any]:
        if int(value) not in (ControlMode.LOCAL, ControlMode.REMOTE):
            return status(ua.StatusCodes.BadOutOfRange), value
        self.simulator.request_mode(int(value))
        mode, tripped, text, setpoints = self.simulator.plc_status()
        await self._publish_plc(mode, tripped, text)
        return ua.StatusCode(), int(value)

    # Server faults --------------------------------------------------------------------------
    def _server_fault(self, fault: Fault) -> None:
        loop = asyncio.get_running_loop()
        if fault.kind is FaultKind.DROP_CONNECTIONS:
            loop.call_later(0.01, self._drop_connections)
        elif fault.kind is FaultKind.SERVER_PAUSE:
            task = loop.create_task(self._pause(float(fault.duration_s or 0.0)))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _protocols(self) -> list[Any]:
        bserver = self._server.bserver if self._server is not None else None
        return list(bserver.clients) if bserver is not None else []

    def _drop_connections(self) -> None:
        protocols = self._protocols()
        _log.warning("fault: dropping %d client connection(s)", len(protocols))
        for proto in protocols:
            if proto.transport is not None:
                proto.transport.close()

    async def _pause(self, duration_s: float) -> None:
        transports = [p.transport for p in self._protocols() if p.transport is not None]
        _log.warning("fault: server stops answering %d connection(s) for %.3f s", len(transports), duration_s)
        for tr in transports:
            tr.pause_reading()
        try:
            await asyncio.sleep(duration_s)
        finally:
            for tr in transports:
                if not tr.is_closing():
                    tr.resume_reading()
            _log.warning("fault: server answers again")

    # Python API ---------------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        """Schedule a fault at run time (same as a fault file entry)."""
        self.simulator.add_fault(fault)

    async def pause(self, duration_s: float) -> None:
        """Stop answering every open client connection for ``duration_s`` wall seconds, now."""
        await self._pause(duration_s)

    def drop_connections(self) -> None:
        """Close every client connection now."""
        self._drop_connections()
