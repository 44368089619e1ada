"""``rtompc config init``: an annotated starter config that passes ``rtompc config check``.

Three sources: a library plant or ``path.py:function`` (in-process transport, to
try the loop offline first), a running HIL or PLC (``--from-server``: the
address space is browsed and a tag map proposed, see
:mod:`rtompc.config.tag_proposal`), or an identified model file
(``--from-model``). Every key written carries a comment saying what it does;
the reference of all keys is ``docs/configuration.md``.

The starter is conservative: mode ``shadow`` (computes and logs, writes
nothing), every MV with a small move weight, as many CVs as MVs (the others
listed, commented out) with their nominal value as target, an EKF with an
output disturbance on each CV (offset-free). The sample time is a fifth of the
slowest time constant of the model linearised at its nominal point (rounded to
1, 2 or 5 × 10^k s) unless given; the horizon covers four time constants. The
text is validated with the config model before it is written; the file is
written whole (temporary file + rename) and an existing file is kept unless
``force``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plant_models.errors import ConfigError
from plant_models.model import PlantModel
from rtompc.config.files import write_text_atomic


@dataclass(frozen=True)
class StarterRequest:
    """What ``rtompc config init`` was asked for."""

    plant: str | None = None
    """Library name or ``path.py:function``."""
    from_server: str | None = None
    """OPC UA endpoint to browse."""
    from_model: str | None = None
    """Identified model file."""
    out: Path = Path("rtompc.toml")
    """File to write."""
    force: bool = False
    """Replace an existing file."""
    hil_plant: str | None = None
    """Object of the plant on the server (default: found by browsing)."""
    security: str | None = None
    """``none``, ``sign`` or ``sign-encrypt`` for ``from_server``."""
    certificate: str | None = None
    """Client certificate."""
    private_key: str | None = None
    """Client key."""
    trust: tuple[str, ...] = ()
    """Trusted server certificates (files or folders)."""
    application_uri: str | None = None
    """Client application URI."""
    user: str | None = None
    """User name."""
    password_env: str | None = None
    """Environment variable with the password."""
    sample_time_s: float | None = None
    """Control period (default: from the model's time constants)."""
    mapping: tuple[tuple[str, str], ...] = ()
    """``(signal, variable)`` pairs for ``from_server`` when the names differ."""


def write_starter(req: StarterRequest) -> tuple[Path, list[str]]:
    """Write the starter file; its path and what the engineer must still do (unmatched tags).

    ConfigError when it cannot be made."""
    if req.out.exists() and not req.force:
        raise ConfigError(f"{req.out}: exists; use --force to replace it (or choose another --out)")
    sources = [s for s in (req.from_server, req.from_model) if s]
    if len(sources) > 1:
        raise ConfigError("config init: give --from-server or --from-model, not both")
    text, todo = starter_text(req)
    req.out.parent.mkdir(parents=True, exist_ok=True)  # relative paths in it resolve from there
    _validate(text, req.out)
    return write_text_atomic(req.out, text, force=req.force), todo


def starter_text(req: StarterRequest) -> tuple[str, list[str]]:
    """The annotated TOML text for ``req`` (not written) and the signals left to map."""
    from plant_models.library import load, names

    base = req.out.resolve().parent
    proposal = None
    space = None
    if req.from_server:
        from interfaces.browse import browse_server
        from rtompc.config.tag_proposal import propose, suggest_plant

        settings = _settings(req)
        space = asyncio.run(browse_server(settings))
        name = (
            req.plant
            or (req.from_model and _rel(req.from_model, base))
            or suggest_plant(space, names())
        )
        if name is None:
            raise ConfigError(
                f"{req.from_server}: no rtompc HIL plant found on the server: name the model the "
                "tags belong to (`rtompc config init PLANT --from-server URL`, PLANT a library "
                "name or path/to/module.py:function)"
            )
        model = load(name)
        proposal = propose(
            space,
            model,
            req.hil_plant or _hil_object(space, model.name),
            mapping=_mapping(req.mapping, model),
        )
    elif req.from_model:
        name = _rel(req.from_model, base)
        model = load(str(Path(req.from_model).resolve()))
    elif req.plant:
        name = req.plant if req.plant in names() else _rel_callable(req.plant, base)
        model = load(req.plant if req.plant in names() else _abs_callable(req.plant))
    else:
        raise ConfigError(
            "config init: name a plant (`rtompc config init williams_otto`), "
            "--from-server URL or --from-model FILE"
        )
    return _Writer(req, name, model, proposal).text(), list(proposal.missing if proposal else ())


def _mapping(pairs: tuple[tuple[str, str], ...], model: PlantModel) -> dict[str, list[str]]:
    known = (*model.u.names, *model.y.names, *model.d.names)
    out: dict[str, list[str]] = {}
    for sig, name in pairs:
        if sig not in known:
            raise ConfigError(
                f"--map {sig}={name}: {sig!r} is not a signal of {model.name!r}; "
                f"known: {', '.join(known)}"
            )
        out.setdefault(sig, []).append(name)
    return out


def _rel(path: str, base: Path) -> str:
    return os.path.relpath(Path(path).resolve(), base)


def _abs_callable(spec: str) -> str:
    if ":" not in spec:
        return spec
    file, func = spec.rsplit(":", 1)
    return f"{Path(file).resolve()}:{func}"


def _rel_callable(spec: str, base: Path) -> str:
    if ":" not in spec:
        return spec
    file, func = spec.rsplit(":", 1)
    return f"{_rel(file, base)}:{func}"


def _hil_object(space: Any, model_name: str) -> str | None:
    tops = {v.path[0] for v in space.variables if v.path}
    return model_name if model_name in tops else None


def _settings(req: StarterRequest) -> Any:
    from interfaces.opcua_settings import (
        OpcUaSecurity,
        OpcUaSettings,
        SecurityMode,
        SecurityPolicy,
    )

    mode = {"sign": SecurityMode.SIGN, "sign-encrypt": SecurityMode.SIGN_AND_ENCRYPT}.get(
        req.security or "none", SecurityMode.NONE
    )
    password = os.environ.get(req.password_env) if req.password_env else None
    if req.user and password is None:
        raise ConfigError(
            f"--user {req.user}: set the password in an environment variable and "
            "name it with --password-env"
        )
    sec = OpcUaSecurity()
    if mode is not SecurityMode.NONE:
        trust = tuple(Path(t) for t in req.trust)
        sec = OpcUaSecurity(
            mode,
            SecurityPolicy.BASIC256SHA256,
            certificate=Path(req.certificate) if req.certificate else None,
            private_key=Path(req.private_key) if req.private_key else None,
            trusted_server_certificates=trust[0] if len(trust) == 1 else (trust or None),  # type: ignore[arg-type]
            application_uri=req.application_uri or "urn:rtompc:client",
        )
    return OpcUaSettings(
        req.from_server or "", 1.0, sec, username=req.user, password=password if req.user else None
    )


def _nice(x: float) -> float:
    """1, 2 or 5 × 10^k at or below ``x``."""
    k = math.floor(math.log10(x))
    for m in (5.0, 2.0, 1.0):
        if m * 10**k <= x:
            return m * 10**k
    return 10.0**k  # pragma: no cover - m = 1 always fits


def timing(model: PlantModel, sample_time_s: float | None) -> tuple[float, int, float]:
    """(sample time, horizon steps, slowest time constant) for a starter."""
    if not model.is_continuous and model.sample_time_s:
        dt_s = float(model.sample_time_s)
        return dt_s, 20, 10 * dt_s
    try:
        poles = model.linearize().poles
        taus = [1.0 / abs(p.real) for p in poles if p.real < -1e-12]
    except Exception:  # noqa: BLE001 - a model that does not linearise still gets a starter
        taus = []
    slow = max(taus) if taus else 100.0
    dt_s = sample_time_s or _nice(slow / 5.0)
    return dt_s, int(min(60, max(10, math.ceil(4 * slow / dt_s)))), slow


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)  # the shortest text that reads back exactly (limits must not move)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise TypeError(type(v))


class _Writer:
    """Builds the annotated text, section by section."""

    def __init__(self, req: StarterRequest, name: str, model: PlantModel, proposal: Any) -> None:
        self.req, self.name, self.model, self.p = req, name, model, proposal
        self.lines: list[str] = []

    def add(self, key: str, value: Any, comment: str = "") -> None:
        line = f"{key} = {_toml(value)}"
        self.lines.append(f"{line:<44} # {comment}" if comment else line)

    def text(self) -> str:
        m = self.model
        dt_s, horizon, slow = timing(m, self.req.sample_time_s)
        step = self.p.step_s if self.p is not None else None
        if step and self.req.sample_time_s is None:  # a whole number of the server's steps
            dt_s = step * max(1, round(dt_s / step))
            horizon = int(min(60, max(10, math.ceil(4 * slow / dt_s))))
        y0 = dict(zip(m.y.names, m.outputs(), strict=True))
        src = (
            f"the server {self.req.from_server}"
            if self.req.from_server
            else f"the identified model {self.req.from_model}"
            if self.req.from_model
            else f"the plant {self.name!r}"
        )
        today = dt.date.today().isoformat()
        self.lines += [
            f"# rtompc application config for {m.name}, written by `rtompc config init` from "
            f"{src} on {today}.",
            "# Every key: docs/configuration.md. Before running it: "
            "`rtompc config check THIS_FILE` (add --connect for a server).",
            "# A bare number is in the signal's SI unit (listed in the comments); a string may "
            'carry a unit: "126.85 degC", "1.09 mol/l".',
            "",
            "[plant]",
            "# The model of the plant: a library name, path/to/module.py:function, or an "
            "identified-model .json.",
        ]
        self.add("name", self.name, "tags, limits and targets are checked against it")
        self._transport()
        self.lines += ["", "[loop]"]
        why = (
            f"{dt_s / step:g} steps of the server's {step:g} s"
            if step and self.req.sample_time_s is None
            else f"slowest time constant ~{slow:.3g} s"
        )
        self.add("sample_time_s", float(dt_s), f"control period ({why})")
        self.add("mode", "shadow", "off | shadow (compute and log, write nothing) | on")
        self.add("fallback", "shifted_plan", "on a failed solve: shifted_plan | hold_last")
        self._mpc(horizon, y0)
        self._estimator()
        self.lines += ["", "[historian]"]
        self.add("path", f"{m.name}-historian.sqlite", "SQLite file, one run appended per start")
        return "\n".join(self.lines) + "\n"

    def cvs(self) -> list[str]:
        names = list(self.model.y.names)
        if self.p is not None:
            measured = {t.signal.name for t in self.p.measurements}
            names = [n for n in names if n in measured] or names
        return names

    def _transport(self) -> None:
        self.lines += ["", "[transport]"]
        if self.p is None:
            self.add("kind", "inprocess", 'simulate the plant here; "opcua" for a PLC or HIL')
            return
        req, p = self.req, self.p
        self.add("kind", "opcua", "OPC UA client to the PLC or HIL")
        self.add("endpoint", req.from_server, "server URL")
        self.add("lockstep", p.lockstep, "true: the plant advances only through its step method")
        if p.speed and not p.lockstep:
            self.add("speed", p.speed, "plant seconds per wall second (from the server)")
        self.add("security", req.security or "none", "none | sign | sign-encrypt")
        if req.security and req.security != "none":
            self.add("policy", "Basic256Sha256", "security policy")
            if req.certificate:
                self.add(
                    "certificate",
                    _rel(req.certificate, self._base()),
                    "client certificate (`rtompc certs create`)",
                )
            if req.private_key:
                self.add("private_key", _rel(req.private_key, self._base()), "its private key")
            self.add(
                "trust_list",
                [_rel(t, self._base()) for t in req.trust],
                "trusted server certificates (files or folders)",
            )
            self.add(
                "application_uri",
                req.application_uri or "urn:rtompc:client",
                "must equal the URI in the certificate",
            )
        if req.user:
            self.add("user", req.user, "user name on the server")
            self.add(
                "password_env",
                req.password_env or "RTOMPC_PASSWORD",
                "environment variable holding the password",
            )
        self.add("request_timeout_s", 2.0, "timeout of each OPC UA request")
        self.add("check_units", True, "compare tag units with the nodes' EngineeringUnits")
        self._tags()

    def _base(self) -> Path:
        return self.req.out.resolve().parent

    def _tags(self) -> None:
        p = self.p
        self.lines += [
            "",
            "[transport.tags]",
            "# Proposed from the server's address space: check every line.",
        ]
        self.add(
            "namespace",
            p.namespace,
            "namespace URI of the nodes (its index is resolved at connect)",
        )
        for group, tags, what in (
            ("measurements", p.measurements, "read each cycle"),
            ("setpoints", p.setpoints, "written in ON mode"),
            ("actuators", p.actuators, "MV values the plant holds"),
        ):
            self.lines += ["", f"[transport.tags.{group}]  # {what}"]
            for t in tags:
                entry = {"node": t.variable.node.identifier}
                if t.variable.node.namespace_uri != p.namespace:
                    entry["namespace"] = t.variable.node.namespace_uri
                if t.unit:
                    entry["unit"] = t.unit
                inner = ", ".join(f"{k} = {_toml(v)}" for k, v in entry.items())
                info = f"{t.variable.data_type}, SI {t.signal.unit}" + (
                    f"; {t.note}" if t.note else ""
                )
                self.lines.append(f"{t.signal.name} = {{ {inner} }}  # {info}")
        for miss in p.missing:
            self.lines.append(f"# TODO {miss}: no variable of that name found; add it here")
        if p.status:
            self.lines += [
                "",
                "[transport.tags.status]  # heartbeat, REMOTE/LOCAL handshake, plant clock",
            ]
            for key, ref in p.status.items():
                ns = (
                    ""
                    if ref.namespace_uri == p.namespace
                    else f", namespace = {_toml(ref.namespace_uri)}"
                )
                self.lines.append(f"{key} = {{ node = {_toml(ref.identifier)}{ns} }}")
        if p.unused:
            self.lines += ["# Other variables on the server (not mapped):"]
            for v in p.unused[:40]:
                unit = f" [{v.unit}]" if v.unit else ""
                self.lines.append(
                    f"#   {v.node.identifier}  {v.data_type}{unit}"
                    f"{'  writable' if v.writable else ''}"
                )

    def _mpc(self, horizon: int, y0: dict[str, float]) -> None:
        m = self.model
        self.lines += ["", "[mpc]"]
        self.add("horizon_steps", horizon, "prediction horizon in samples (~4 time constants)")
        self.add("solver", "rti", "rti (real-time iterations) | ipopt")
        cvs = self.cvs()
        active = cvs[: len(m.u)]
        for name in cvs:
            sig = m.y[name]
            on = name in active
            pre = "" if on else "# "
            self.lines += [
                "",
                f"{pre}[[mpc.cvs]]" + ("" if on else "  # uncomment to control this output too"),
            ]
            self.lines.append(
                f"{pre}name = {_toml(name)}" + (f"  # {sig.description}" if sig.description else "")
            )
            self.lines.append(
                f"{pre}weight = 1.0  # cost of ((y - target) / {sig.nominal:g})^2 per stage"
            )
            self.lines.append(
                f"{pre}target = {_toml(float(y0[name]))}  # {sig.unit}, the "
                "nominal value; the RTO may replace it"
            )
        ref = self.p.setpoints if self.p is not None else []
        ranges = {t.signal.name: t for t in ref if t.variable.eu_range is not None}
        for sig in m.u:
            self.lines += ["", "[[mpc.mvs]]"]
            self.lines.append(
                f"name = {_toml(sig.name)}" + (f"  # {sig.description}" if sig.description else "")
            )
            self.lines.append(
                f"move_weight = 0.1  # cost of (move / {sig.nominal:g})^2 per "
                "stage: raise it for calmer moves"
            )
            lo, hi = self._mv_range(sig, ranges.get(sig.name))
            for key, value, what in (("lower", lo, "lowest"), ("upper", hi, "highest")):
                if math.isfinite(value):
                    self.lines.append(
                        f"{key} = {_toml(value)}  # {sig.unit}, {what} value the "
                        f"controller may write (plant: [{sig.lower:g}, "
                        f"{sig.upper:g}])"
                    )
                else:
                    self.lines.append(
                        f"# {key} = ...  # {sig.unit}: the model has no {key} "
                        "limit; set the MV's operating limit here"
                    )

    @staticmethod
    def _mv_range(sig: Any, tag: Any) -> tuple[float, float]:
        lo, hi = float(sig.lower), float(sig.upper)
        if tag is None:
            return lo, hi
        from interfaces.tagmap import Tag, TagGroup

        conv = Tag(sig.name, tag.variable.node, TagGroup.SETPOINT, tag.unit or sig.unit, sig.unit)
        a, b = sorted(conv.to_model(v) for v in tag.variable.eu_range)
        return max(lo, a), min(hi, b)

    def _estimator(self) -> None:
        cvs = self.cvs()[: len(self.model.u)]
        measured = self.cvs()
        self.lines += ["", "[estimator]"]
        self.add("kind", "ekf", "ekf | mhe")
        self.add("measured", measured, "outputs the estimator uses")
        self.add("output_disturbances", cvs, "offset-free: one disturbance state per CV")


def _validate(text: str, out: Path) -> None:
    """Refuse to write a starter the config model rejects (a bug here, or a model problem)."""
    import tomllib

    from rtompc.config.load import validate
    from rtompc.config.model import AppConfig

    data = tomllib.loads(text)
    validate(AppConfig, data, file=out.resolve(), text=text)


__all__ = ["StarterRequest", "starter_text", "timing", "write_starter"]
