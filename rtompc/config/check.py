"""``rtompc config check FILE [--connect]``: every problem of a config, before anything runs.

Offline, in this order (each step's problems are collected, none stops the
report): the file loads (keys, types, units, signals against the model,
objectives, MV limits within the plant's, sample times: :func:`load_app` /
:func:`load_scenario`); the stack builds without a solve (models, estimator,
controller, RTO stage, tag map, rate limits, OPC UA settings with the secrets
from the environment); the files it needs are there (client certificate and
key, with the application URI of the config in the certificate; trust list;
historian folder writable). With ``connect`` the OPC UA server is asked about
every tag (:mod:`interfaces.node_checks`): node exists, data type numeric,
setpoints writable for this user, EURange within the MV limits, units.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from plant_models.errors import ConfigError, EngineError
from rtompc.config.errors import ConfigProblems

_log = logging.getLogger(__name__)


@dataclass
class CheckReport:
    """What ``config check`` found."""

    file: Path
    """The checked file."""
    kind: str = "app"
    """``app`` or ``scenario``."""
    passed: list[str] = field(default_factory=list)
    """One line per step that found nothing wrong."""
    problems: list[str] = field(default_factory=list)
    """One line per problem (file:line: key path: what is wrong, what was expected)."""
    has_server: bool = False
    """The config talks to an OPC UA server (``--connect`` can check its tags)."""

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-able dict."""
        return {
            "file": str(self.file),
            "kind": self.kind,
            "ok": self.ok,
            "passed": self.passed,
            "problems": self.problems,
        }


def check_file(path: Path, *, connect: bool = False, timeout_s: float = 10.0) -> CheckReport:
    """Check one config file (see module docstring); never raises for a bad file."""
    from rtompc.config.load import load_app, load_scenario, read_toml

    report = CheckReport(path)
    try:
        _, data = read_toml(path)
    except ConfigProblems as exc:
        report.problems += [str(p) for p in exc.problems]
        return report
    from rtompc.config.load import is_multi_unit
    from rtompc.config.site_scenario import is_site_scenario, load_site_scenario

    site_scenario = "scenario" in data and is_site_scenario(data)
    if is_multi_unit(data) and not site_scenario:
        return _check_site(report, path, connect=connect, timeout_s=timeout_s)
    scenario = any(k in data for k in ("scenario", "event", "fault", "criterion"))
    report.kind = "scenario" if scenario else "app"
    loader: Any = load_site_scenario if site_scenario else load_scenario if scenario else load_app
    try:
        cfg = loader(path)
    except ConfigProblems as exc:
        report.problems += [str(p) for p in exc.problems]
        return report
    except ConfigError as exc:
        report.problems.append(f"{path}: {exc}")
        return report
    if site_scenario:  # every unit loaded as a scenario of its own; no stack to build here
        report.passed.append(
            "plant-wide scenario: each unit's keys, units, signals, events and criteria against "
            "its own model; [plantwide] against the units' models"
        )
        return report
    report.passed.append(
        "keys, types, units; signals, objectives, MV limits and sample times against the model"
    )
    built = _Builder(report, cfg)
    built.build_offline(scenario)
    if connect:
        from rtompc.config.transport import TransportKind

        if cfg.transport.kind is not TransportKind.OPCUA or scenario:
            report.problems.append(
                f"{path}: --connect: no plant server to connect to "
                f"(transport.kind {cfg.transport.kind.value!r}"
                + (", a scenario's HIL starts with the scenario)" if scenario else ")")
            )
        elif built.settings is None or built.tags is None:
            report.problems.append(f"{path}: --connect skipped: fix the problems above first")
        else:
            built.check_server(timeout_s)
    return report


def _check_site(report: CheckReport, path: Path, *, connect: bool, timeout_s: float) -> CheckReport:
    """A multi-unit file: keys and cross-checks of every unit, then each unit built (and, with
    ``connect``, its server checked); each line names its unit."""
    from rtompc.config.load import load_site
    from rtompc.config.transport import TransportKind

    report.kind = "site"
    try:
        site = load_site(path)
    except ConfigProblems as exc:
        report.problems += [str(p) for p in exc.problems]
        return report
    except ConfigError as exc:
        report.problems.append(f"{path}: {exc}")
        return report
    report.passed.append(
        f"{len(site.units)} units ({', '.join(site.names)}): keys, types, units; signals, "
        "objectives, MV limits and sample times against each unit's model"
    )
    for unit in site.units:
        n_passed = len(report.passed)
        built = _Builder(report, unit)
        built.build_offline(False)
        if connect and unit.transport.kind is TransportKind.OPCUA:
            if built.settings is None or built.tags is None:
                report.problems.append(f"{path}: unit {unit.name}: --connect skipped")
            else:
                built.check_server(timeout_s)
        report.passed[n_passed:] = [
            f"unit {unit.name}: {line}" for line in report.passed[n_passed:]
        ]
    if site.historian is not None:
        _Builder(report, site)._historian_path(site.historian.path)
    return report


class _Builder:
    """Builds the parts of the stack one by one, turning failures into report lines."""

    def __init__(self, report: CheckReport, cfg: Any) -> None:
        self.report = report
        self.cfg = cfg
        self.models: Any = None
        self.settings: Any = None
        self.tags: Any = None

    def step(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            out = fn()
        except ConfigProblems as exc:
            self.report.problems += [str(p) for p in exc.problems]
            return None
        except EngineError as exc:
            self.report.problems.append(f"{self.report.file}: {what}: {exc}")
            return None
        self.report.passed.append(what)
        return out

    def build_offline(self, scenario: bool) -> None:
        from rtompc.config import build
        from rtompc.config.transport import TransportKind

        cfg = self.cfg
        ms = self.models = self.step("models built", lambda: build.models(cfg))
        if ms is None:
            return
        if cfg.estimator is not None:
            self.step(
                f"estimator built ({cfg.estimator.kind.value})",
                lambda: build.estimator(cfg, ms.model),
            )
        if cfg.mpc is not None:
            self.step(
                f"controller built ({cfg.mpc.solver.value}, {cfg.mpc.horizon_steps} steps, "
                "no solve)",
                lambda: build.controller(cfg, ms.model),
            )
        if cfg.rto is not None:
            self.step(
                f"RTO stage built ({cfg.rto.method.value})", lambda: build.rto_source(cfg, ms)
            )
        self.step("MV rate limits", lambda: build.move_limits(cfg, ms.plant))
        if cfg.transport.kind is TransportKind.OPCUA and not scenario:
            self.report.has_server = True
            self.tags = self.step("tag map fits the model", lambda: build.tag_map(cfg, ms.plant))
            self.settings = self.step(
                "OPC UA settings (secrets found in the environment)",
                lambda: build.opcua_settings(cfg),
            )
            self._security_files()
        hist = getattr(cfg, "historian", None)  # app-level in a multi-unit file
        if hist is not None:
            self._historian_path(hist.path)

    def _security_files(self) -> None:
        from plant_models.certificates import CERT_SUFFIXES, certificate_uris, load_certificate
        from rtompc.config.transport import Security

        t = self.cfg.transport
        if t.security is Security.NONE:
            return
        bad = len(self.report.problems)
        file = self.report.file
        if t.certificate is not None:
            try:
                cert = load_certificate(t.certificate)
            except ConfigError as exc:
                self.report.problems.append(f"{file}: transport.certificate: {exc}")
            else:
                uris = certificate_uris(cert)
                if t.application_uri not in uris:
                    self.report.problems.append(
                        f"{file}: transport.application_uri: {t.application_uri!r} is not the "
                        f"URI in the certificate {t.certificate} ({', '.join(uris) or 'none'}); "
                        "servers refuse such a client (make them equal, or `rtompc certs create "
                        "--uri ...`)"
                    )
        if t.private_key is not None and not Path(t.private_key).is_file():
            self.report.problems.append(
                f"{file}: transport.private_key: {t.private_key} does not exist"
            )
        for i, entry in enumerate(t.trust_list):
            p = Path(entry)
            certs = (
                [q for q in p.iterdir() if q.suffix.lower() in CERT_SUFFIXES]
                if p.is_dir()
                else [p]
                if p.is_file()
                else []
            )
            if not certs:
                self.report.problems.append(
                    f"{file}: transport.trust_list[{i}]: {p} holds no certificate (.der/.pem); "
                    "put the server's certificate there"
                )
        if len(self.report.problems) == bad:
            self.report.passed.append(
                "certificate, key and trust list readable; application URI matches the certificate"
            )

    def _historian_path(self, path: Path) -> None:
        folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
        if folder is None or not os.access(folder, os.W_OK):
            self.report.problems.append(
                f"{self.report.file}: historian.path: {path} cannot be "
                f"written (folder {folder} is not writable)"
            )
        else:
            self.report.passed.append(f"historian {path} writable")

    def check_server(self, timeout_s: float) -> None:
        from interfaces.node_checks import check_endpoint

        ms, cfg = self.models, self.cfg
        limits = _mv_limits(cfg, ms.plant)
        try:
            problems = asyncio.run(
                asyncio.wait_for(check_endpoint(self.settings, self.tags, limits), timeout_s)
            )
        except TimeoutError:
            self.report.problems.append(
                f"{self.report.file}: transport.endpoint: "
                f"{self.settings.endpoint} did not answer within "
                f"{timeout_s:g} s"
            )
            return
        except EngineError as exc:
            self.report.problems.append(f"{self.report.file}: transport: {exc}")
            return
        n = len(self.tags.measurements) + len(self.tags.setpoints) + len(self.tags.actuators)
        if problems:
            self.report.problems += [f"{self.report.file}: transport.tags.{p}" for p in problems]
        else:
            self.report.passed.append(
                f"server {self.settings.endpoint}: {n} tags found; data "
                "types, write access of setpoints and EURange fit"
            )


def _mv_limits(cfg: Any, model: Any) -> Any:
    """The MV limits the controller may write: ``[[mpc.mvs]]`` lower/upper, else the model's."""
    from interfaces.limits import MoveLimits

    lower = [float(s.lower) for s in model.u]
    upper = [float(s.upper) for s in model.u]
    for mv in cfg.mpc.mvs if cfg.mpc is not None else ():
        if mv.name in model.u:
            i = model.u.index(mv.name)
            lower[i] = mv.lower if mv.lower is not None else lower[i]
            upper[i] = mv.upper if mv.upper is not None else upper[i]
    return MoveLimits(
        model.u.names, np.array(lower), np.array(upper), np.full(len(lower), math.inf)
    )
