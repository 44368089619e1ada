"""The engine's OPC UA namespace: what it serves of each unit, and writes to live parameters.

Layout under ``Objects/Units`` (namespace ``urn:rtompc:engine``; the server itself is
:class:`interfaces.engine_server.EngineServer`), one object per unit::

    Units/<unit>/Controller/  mode_request (String off/shadow/on, operator), mode,
                              rto_enable (Boolean, operator), status (solver status),
                              write_status, connected, plant_mode, solver, solve_time_s,
                              cycle, time_s, fallbacks, overruns, service_factor, flags,
                              rto_status, rto_last_profit, rto_active_constraints
    Units/<unit>/CVs/<cv>/    measured, estimate, target, prediction_end, prediction
                              (Double[] over the horizon), low, high, setpoint, zone_low,
                              zone_high (operator), weight, validity_low, validity_high
                              (engineer), in_service (operator), quality
    Units/<unit>/MVs/<mv>/    value, written, computed, low, high, rate (operator),
                              in_service (operator), health, write_status

Values are SI with EngineeringUnits; EURange is the signal's bounds for values and limits.
A NaN setpoint or rate means "none" (written as such too). Writes go through the unit's
:meth:`rtompc.live.LiveParameters.submit` with the user's role and source ``opcua``
(journaled, effective at the next cycle); refusals map to BadUserAccessDenied,
BadOutOfRange, BadTypeMismatch, BadNotWritable, BadNodeIdUnknown.
The newest published frame (:class:`rtompc.live.view.UnitView`) updates the values that
changed, at most ``max_rate_hz`` times a second (default 2; a faster loop is sampled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interfaces.engine_server import (
    EngineServer,
    EngineServerSettings,
    ServedVariable,
    ValueKind,
    WriteOutcome,
)
from plant_models.samples import Mode
from rtompc.live.frame import Frame
from rtompc.live.types import LiveChangeRefused, Refusal, Role, Source
from rtompc.live.view import EngineViews, Surface, UnitView

logger = logging.getLogger(__name__)

D, B, S, U32 = ValueKind.DOUBLE, ValueKind.BOOLEAN, ValueKind.STRING, ValueKind.UINT32
_REFUSAL = {
    Refusal.UNKNOWN: WriteOutcome.BAD_NODE_ID_UNKNOWN,
    Refusal.READ_ONLY: WriteOutcome.BAD_NOT_WRITABLE,
    Refusal.ROLE: WriteOutcome.BAD_USER_ACCESS_DENIED,
    Refusal.TYPE: WriteOutcome.BAD_TYPE_MISMATCH,
    Refusal.RANGE: WriteOutcome.BAD_OUT_OF_RANGE,
}
_NULLABLE = ("setpoint", "rate")

# Controller variables: name -> (kind, unit, EURange, live key or None, description)
_CONTROLLER: dict[str, tuple[ValueKind, str, float, float, str | None, str]] = {
    "mode_request": (S, "", 0, 0, "controller.mode_request", "requested mode: off/shadow/on"),
    "mode": (S, "", 0, 0, None, "mode of the last cycle"),
    "rto_enable": (B, "", 0, 1, "controller.rto_enable", "RTO on (operator)"),
    "status": (S, "", 0, 0, None, "solver status of the last cycle"),
    "write_status": (S, "", 0, 0, None, "outcome of the last write"),
    "connected": (B, "", 0, 1, None, "plant link up"),
    "plant_mode": (S, "", 0, 0, None, "plant side mode (REMOTE/LOCAL)"),
    "solver": (S, "", 0, 0, None, "solver of the last move"),
    "solve_time_s": (D, "s", 0, math.inf, None, "last controller step time"),
    "cycle": (U32, "", 0, 4294967295, None, "cycle counter"),
    "time_s": (D, "s", 0, math.inf, None, "engine time of the last cycle"),
    "fallbacks": (U32, "", 0, 4294967295, None, "fallback cycles since start"),
    "overruns": (U32, "", 0, 4294967295, None, "overrun cycles since start"),
    "service_factor": (D, "", 0, 1, None, "share of cycles ON with the controller's move"),
    "flags": (ValueKind.STRING_ARRAY, "", 0, 0, None, "supervision flags signal:reason"),
    "rto_status": (S, "", 0, 0, None, "last RTO status"),
    "rto_last_profit": (D, "", -math.inf, math.inf, None, "plant profit of the last RTO, $/s"),
    "rto_active_constraints": (ValueKind.STRING_ARRAY, "", 0, 0, None, "active at the optimum"),
}
_CV_VALUES = ("measured", "estimate", "target", "prediction_end")
_CV_LIVE = (
    "low",
    "high",
    "setpoint",
    "zone_low",
    "zone_high",
    "weight",
    "validity_low",
    "validity_high",
    "in_service",
)
_MV_VALUES = ("value", "written", "computed")
_MV_LIVE = ("low", "high", "rate", "in_service")


@dataclass(frozen=True)
class _Target:
    """Where a writable variable's writes go."""

    view: UnitView
    live_key: str


def variables(views: EngineViews) -> tuple[list[ServedVariable], dict[str, _Target]]:
    """The namespace of every unit, and the live key behind each writable variable."""
    out: list[ServedVariable] = []
    targets: dict[str, _Target] = {}

    def add(var: ServedVariable, live_key: str | None, view: UnitView) -> None:
        if live_key is not None and view.live is not None:
            if live_key not in view.live.keys():
                return  # e.g. zone edges of a CV without a zone
            targets[var.key] = _Target(view, live_key)
            var = ServedVariable(
                var.path, var.kind, var.unit, var.low, var.high, True, var.description
            )
        out.append(var)

    for unit, view in views.items():
        for name, (kind, eu, lo, hi, key, text) in _CONTROLLER.items():
            add(
                ServedVariable((unit, "Controller", name), kind, eu, lo, hi, False, text), key, view
            )
        for cv in view.cv_names:
            sig = view.model.y[cv]
            base = (unit, "CVs", cv)
            for f in _CV_VALUES:
                add(ServedVariable((*base, f), D, sig.unit, sig.lower, sig.upper), None, view)
            add(
                ServedVariable(
                    (*base, "prediction"),
                    ValueKind.DOUBLE_ARRAY,
                    sig.unit,
                    sig.lower,
                    sig.upper,
                    description="predicted over the horizon",
                ),
                None,
                view,
            )
            for f in _CV_LIVE:
                kind = B if f == "in_service" else D
                lo, hi = (0.0, math.inf) if f == "weight" else (sig.lower, sig.upper)
                unit_text = "" if f in ("weight", "in_service") else sig.unit
                add(ServedVariable((*base, f), kind, unit_text, lo, hi), f"cv.{cv}.{f}", view)
            add(ServedVariable((*base, "quality"), S), None, view)
        for mv in view.mv_names:
            sig = view.model.u[mv]
            base = (unit, "MVs", mv)
            for f in _MV_VALUES:
                add(ServedVariable((*base, f), D, sig.unit, sig.lower, sig.upper), None, view)
            for f in _MV_LIVE:
                kind = B if f == "in_service" else D
                unit_text = (
                    f"{sig.unit}/s" if f == "rate" else "" if f == "in_service" else sig.unit
                )
                lo, hi = (0.0, math.inf) if f == "rate" else (sig.lower, sig.upper)
                add(ServedVariable((*base, f), kind, unit_text, lo, hi), f"mv.{mv}.{f}", view)
            for f in ("health", "write_status"):
                add(ServedVariable((*base, f), S), None, view)
    return out, targets


def frame_values(frame: Frame) -> dict[str, Any]:
    """Variable key -> value for one frame."""
    u = frame.unit
    st, rto = frame.status, frame.rto
    out: dict[str, Any] = {
        f"{u}.Controller.mode_request": frame.mode_request.value,
        f"{u}.Controller.mode": frame.mode.value,
        f"{u}.Controller.rto_enable": rto.enabled,
        f"{u}.Controller.status": st.solver_status,
        f"{u}.Controller.write_status": st.write_status,
        f"{u}.Controller.connected": frame.connected,
        f"{u}.Controller.plant_mode": frame.plant_mode,
        f"{u}.Controller.solver": st.solver,
        f"{u}.Controller.solve_time_s": st.solve_time_s,
        f"{u}.Controller.cycle": frame.cycle,
        f"{u}.Controller.time_s": frame.time_s,
        f"{u}.Controller.fallbacks": st.fallbacks,
        f"{u}.Controller.overruns": st.overruns,
        f"{u}.Controller.service_factor": st.service_factor,
        f"{u}.Controller.flags": list(st.flags),
        f"{u}.Controller.rto_status": rto.status,
        f"{u}.Controller.rto_last_profit": rto.last_profit,
        f"{u}.Controller.rto_active_constraints": list(rto.active_constraints),
    }
    for cv in frame.cvs:
        k = f"{u}.CVs.{cv.name}."
        for f in (*_CV_VALUES, *_CV_LIVE, "quality"):
            out[k + f] = getattr(cv, f)
        out[k + "prediction"] = list(cv.prediction.values)
    for mv in frame.mvs:
        k = f"{u}.MVs.{mv.name}."
        for f in (*_MV_VALUES, *_MV_LIVE, "health", "write_status"):
            out[k + f] = getattr(mv, f)
    return out


class EngineNamespace:
    """Serves :class:`EngineViews` over OPC UA while entered (an operator surface)."""

    def __init__(
        self, views: EngineViews, settings: EngineServerSettings, *, max_rate_hz: float = 2.0
    ) -> None:
        self.views = views
        self.min_interval_s = 1.0 / max_rate_hz
        """Values are published at most this often (the newest frame; a loop faster than
        that, e.g. lockstep, is sampled)."""
        served, self._targets = variables(views)
        folders = frozenset((u, g) for u in views for g in ("CVs", "MVs"))
        self.server = EngineServer(
            settings, served, self._write, folders=folders, name="rtompc engine"
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _write(
        self, var: ServedVariable, value: Any, user: str, role: str
    ) -> tuple[WriteOutcome, Any]:
        target = self._targets.get(var.key)
        live = target.view.live if target is not None else None
        if target is None or live is None:
            return WriteOutcome.BAD_NOT_WRITABLE, None
        try:
            engine_role = Role(role)
        except ValueError:
            return WriteOutcome.BAD_USER_ACCESS_DENIED, None
        field = target.live_key.rsplit(".", 1)[-1]
        if target.live_key == "controller.mode_request" and value not in {m.value for m in Mode}:
            return WriteOutcome.BAD_OUT_OF_RANGE, None
        if field in _NULLABLE and isinstance(value, float) and math.isnan(value):
            value = None
        try:
            change = live.submit(
                target.live_key, value, role=engine_role, user=user, source=Source.OPCUA
            )
        except LiveChangeRefused as exc:
            return _REFUSAL[exc.reason], None
        return WriteOutcome.GOOD, _opcua_value(change.new)

    async def _follow(self, view: UnitView) -> None:
        sub = view.subscribe(maxsize=4)
        try:
            latest = view.latest
            if latest is not None:
                await self.server.update(frame_values(latest), latest.wall_time_s)
            loop = asyncio.get_running_loop()
            while True:
                frame = await sub.get()
                while (newer := sub.get_nowait()) is not None:  # only the newest matters
                    frame = newer
                t0 = loop.time()
                await self.server.update(frame_values(frame), frame.wall_time_s)
                await asyncio.sleep(max(0.0, t0 + self.min_interval_s - loop.time()))
        finally:
            sub.close()

    def initial_values(self) -> dict[str, Any]:
        """The live parameters' values, served before the first cycle publishes a frame."""
        out: dict[str, Any] = {}
        for key, target in self._targets.items():
            live = target.view.live
            if live is not None:
                out[key] = _opcua_value(live.value(target.live_key))
        for unit, view in self.views.items():
            if view.live is not None:
                out[f"{unit}.Controller.mode"] = _opcua_value(view.live.value("controller.mode"))
        return out

    async def __aenter__(self) -> EngineNamespace:
        await self.server.start()
        await self.server.update(self.initial_values())
        self._tasks = [
            asyncio.create_task(self._follow(v), name=f"engine-ns-{n}")
            for n, v in self.views.items()
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.server.stop()


def _opcua_value(value: Any) -> Any:
    """A live value as served: a mode as its text, None (no setpoint or rate) as NaN."""
    if isinstance(value, Mode):
        return value.value
    return math.nan if value is None else value


def engine_surface(settings: EngineServerSettings) -> Surface:
    """The engine namespace as a surface for ``run_app`` / ``run_demo``."""

    def make(views: EngineViews) -> contextlib.AbstractAsyncContextManager[Any]:
        return EngineNamespace(views, settings)

    return make


DEMO_USERS = ("viewer", "operator", "engineer")
"""The demo's engine-server users (each with the role of its name)."""


def demo_settings(out_dir: Path, endpoint: str) -> EngineServerSettings:
    """Settings of ``rtompc demo --engine-server URL``: SignAndEncrypt; the server PKI in
    ``OUT/engine-pki`` (copy a client's certificate into ``OUT/engine-pki/trusted/``); users
    viewer/operator/engineer with random passwords, written to ``OUT/engine-login.txt``
    (mode 0600), never printed."""
    from plant_models.server_auth import parse_user_table, read_users_file
    from rtompc.console.auth import write_users_file

    out_dir.mkdir(parents=True, exist_ok=True)
    passwords = {u: secrets.token_urlsafe(12) for u in DEMO_USERS}
    users = out_dir / "engine-users.toml"
    write_users_file(users, {u: (u, pw) for u, pw in passwords.items()})
    login = out_dir / "engine-login.txt"
    tmp = login.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text("".join(f"{u} {pw}\n" for u, pw in passwords.items()), encoding="utf-8")
    tmp.replace(login)
    table = parse_user_table(read_users_file(users), DEMO_USERS, str(users))
    return EngineServerSettings(endpoint=endpoint, cert_dir=out_dir / "engine-pki", users=table)
