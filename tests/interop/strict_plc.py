"""The strict PLC stand-in (node/strict_plc.js) from Python: process control, model, tag map.

:class:`StrictPlc` starts ``node strict_plc.js`` as a child process on a free loopback
port, waits for its ``READY`` line and drives it through its stdin JSON commands
(refuse REMOTE, trip the watchdog, restart the PLC program, stick an actuator). The
process itself can be killed and started again on the same port (a PLC power cycle:
sessions drop, defaults, clock at 0).

:func:`strict_plc_model` is the engine's model of the process behind it (same equations,
SI units); :data:`TAGS` is its tag map as it would stand in ``[transport.tags]`` of an
application config (valve in %, pump speed in r/min on an Int16 node, heater in kW).
A config can name the model as ``tests/interop/strict_plc.py:strict_plc_model``.

The fixtures ``strict_plc`` (defaults) and ``strict_plc_factory`` (options) are in
``conftest.py`` next to this file.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from plant_models.builder import build_model
from plant_models.model import PlantModel
from plant_models.signals import Signal, SignalSet

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE = shutil.which("node")
NAMESPACE = "urn:rtompc:strict-plc"
"""Namespace URI of the stand-in's address space."""
C0 = 273.15
AREA, K_PUMP, K_VALVE, RHO_CP, T_AMB = 0.1, 7.2e-5, 2.4e-3, 4.18e6, 20.0 + C0
"""Process constants of strict_plc.js (SI)."""

SKIP_REASON = (
    "Node.js ('node') is not on PATH"
    if NODE is None
    else "node-opcua-server is not installed: run `npm ci --prefix tests/interop/node`"
    if not (NODE_DIR / "node_modules" / "node-opcua-server").is_dir()
    else ""
)
"""Why the stand-in cannot run here ("" when it can)."""


def node(ident: str) -> str:
    """The string node id of a PLC variable, e.g. ``node("DB2.P100_SP")`` -> ``s=PLC.DB2.P100_SP``."""
    return f"s=PLC.{ident}"


TAGS: dict[str, Any] = {
    "namespace": NAMESPACE,
    "measurements": {
        "level": {"node": node("DB1.LT100"), "unit": "cm", "valid": [0.0, 250.0]},
        "t_tank": {"node": node("DB1.TT100"), "unit": "degC", "valid": [0.0, 100.0]},
        "t_in": {"node": node("DB1.TT101"), "unit": "degC", "valid": [0.0, 100.0]},
    },
    "setpoints": {
        "valve": {"node": node("DB2.XV100_SP"), "unit": "%"},
        "pump": {"node": node("DB2.P100_SP"), "unit": "r/min"},
        "heater": {"node": node("DB2.JH100_SP"), "unit": "kW"},
    },
    "actuators": {
        "valve": {"node": node("DB3.XV100_POS"), "unit": "%"},
        "pump": {"node": node("DB3.P100_PV"), "unit": "r/min"},
        "heater": {"node": node("DB3.JH100_PV"), "unit": "kW"},
    },
    "status": {
        "heartbeat": node("DB4.HEARTBEAT"),
        "mode": node("DB4.MODE"),
        "mode_request": node("DB4.MODE_REQ"),
        "sim_time": node("DB4.T_PLANT"),
        "watchdog_tripped": node("DB4.WD_TRIPPED"),
        "status_text": node("DB4.STATUS"),
    },
}
"""Tag map of the stand-in (the ``[transport.tags]`` table of an application config)."""


def strict_plc_model(heater_max_w: float = 80e3) -> PlantModel:
    """The process of strict_plc.js in SI: level and temperature of a pumped, heated tank.

    ``heater_max_w`` is the heater MV's upper limit (the PLC's EURange is 0-80 kW).
    """
    x = SignalSet(
        (
            Signal("level", "m", 0.01, 2.5, 1.0, "tank level"),
            Signal("t_tank", "K", C0, C0 + 100, 296.0, "tank temperature"),
        ),
        kind="x",
    )
    u = SignalSet(
        (
            Signal("valve", "1", 0.0, 1.0, 0.5, "outlet valve opening"),
            Signal("pump", "1/s", 0.0, 25.0, 1000.0 / 60, "feed pump speed"),
            Signal("heater", "W", 0.0, heater_max_w, 40e3, "heater power"),
        ),
        kind="u",
    )
    d = SignalSet((Signal("t_in", "K", C0, C0 + 100, 288.15, "inlet temperature"),), kind="d")
    p = SignalSet((Signal("ua_loss", "W/K", 0.0, 1e4, 200.0, "heat loss to ambient"),), kind="p")
    y = SignalSet(
        (
            Signal("level", "m", 0.0, 2.5, 1.0, "measured level"),
            Signal("t_tank", "K", C0, C0 + 100, 296.0, "measured temperature"),
        ),
        kind="y",
    )

    def rhs(s: Any) -> dict[str, Any]:
        f_in = K_PUMP * s.pump
        return {
            "level": (f_in - K_VALVE * s.valve * s.level**0.5) / AREA,
            "t_tank": (
                f_in * (s.t_in - s.t_tank) + (s.heater - s.ua_loss * (s.t_tank - T_AMB)) / RHO_CP
            )
            / (AREA * s.level),
        }

    u0 = {"valve": 0.5, "pump": 1000.0 / 60, "heater": 40e3}
    f_in = K_PUMP * u0["pump"]
    t0 = (RHO_CP * f_in * (15 + C0) + 200.0 * T_AMB + u0["heater"]) / (RHO_CP * f_in + 200.0)
    return build_model(
        "strict_plc_tank",
        x=x,
        u=u,
        d=d,
        p=p,
        y=y,
        rhs=rhs,
        output=lambda s: {"level": s.level, "t_tank": s.t_tank},
        nominal={
            "x": {"level": 1.0, "t_tank": t0},
            "u": u0,
            "d": {"t_in": 15.0 + C0},
            "p": {"ua_loss": 200.0},
        },
        description="pumped, heated tank behind the strict PLC stand-in (tests/interop)",
    )


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StrictPlcError(RuntimeError):
    """The stand-in did not start or did not answer a command."""


class StrictPlc:
    """One strict PLC stand-in process (see node/strict_plc.js for the address space)."""

    def __init__(self, log_dir: Path, port: int | None = None, **options: Any) -> None:
        self.port = port or free_port()
        self.options = {"port": self.port, **options}
        self.log_path = log_dir / f"strict_plc_{self.port}.log"
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self.starts = 0
        """How many times the process was started."""

    @property
    def endpoint(self) -> str:
        """``opc.tcp://127.0.0.1:<port>``."""
        return f"opc.tcp://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the node process (None when not running)."""
        return self._proc.pid if self.running and self._proc is not None else None

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the process and wait for ``READY`` (the port is the same on every start)."""
        if self.running:
            return
        if NODE is None:
            raise StrictPlcError("Node.js is not on PATH")
        log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - handed to the child
        self._lines = queue.Queue()
        self._proc = subprocess.Popen(
            [NODE, str(NODE_DIR / "strict_plc.js"), json.dumps(self.options)],
            cwd=str(NODE_DIR),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            bufsize=1,
        )
        log.close()
        threading.Thread(target=self._pump, args=(self._proc, self._lines), daemon=True).start()
        self.starts += 1
        self._expect("READY ", timeout_s)

    @staticmethod
    def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put("")  # EOF marker

    def _expect(self, prefix: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise StrictPlcError(
                    f"strict PLC: no {prefix.strip()} within {timeout_s} s"
                ) from None
            if line.startswith(prefix):
                return line[len(prefix) :]
            if line == "" and not self.running:
                tail = self.log_path.read_text(encoding="utf-8")[-2000:]
                raise StrictPlcError(f"strict PLC exited: {tail}")

    def command(self, cmd: str, timeout_s: float = 10.0, **args: Any) -> dict[str, Any]:
        """Send one command; returns the PLC state after it (raises on an error reply)."""
        if not self.running or self._proc is None or self._proc.stdin is None:
            raise StrictPlcError(f"strict PLC: not running (command {cmd!r})")
        self._proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self._proc.stdin.flush()
        reply = json.loads(self._expect("REPLY ", timeout_s))
        if not reply["ok"]:
            raise StrictPlcError(f"strict PLC: {cmd}: {reply['error']}")
        return dict(reply["state"])

    def state(self) -> dict[str, Any]:
        """Mode, status text, plant time, setpoints, positions, counters."""
        return self.command("state")

    def refuse_remote(
        self, how: str | bool = "silent", reason: str | None = None
    ) -> dict[str, Any]:
        """Refuse REMOTE ("silent": stay LOCAL and say why; "status": BadInvalidState; False: grant)."""
        args: dict[str, Any] = {"how": how}
        if reason:
            args["reason"] = reason
        return self.command("refuse_remote", **args)

    def take_local(self, reason: str = "taken by the operator") -> dict[str, Any]:
        """The operator switches the plant to LOCAL."""
        return self.command("local", reason=reason)

    def trip_watchdog(self) -> dict[str, Any]:
        """Trip the heartbeat watchdog now."""
        return self.command("trip_watchdog")

    def reset(self) -> dict[str, Any]:
        """PLC program restart: defaults, LOCAL, plant clock at 0 (sessions stay up)."""
        return self.command("reset")

    def stick(self, mv: str, on: bool = True) -> dict[str, Any]:
        """Freeze (or free) the actuator of ``mv`` ("valve", "pump", "heater")."""
        return self.command("stick", mv=mv, on=on)

    def kill(self) -> None:
        """Kill the process (SIGKILL): the link drops at once, as on a PLC power loss."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGKILL)
            self._proc.wait(10)

    def stop(self) -> None:
        """Stop the process gracefully (SIGTERM, then SIGKILL)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def restart(self, timeout_s: float = 60.0) -> None:
        """Power cycle: kill, start again on the same port at defaults with the clock at 0."""
        self.kill()
        self.start(timeout_s)
