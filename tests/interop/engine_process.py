"""``rtompc run`` as a child process against the strict PLC stand-in, for the field tests.

:func:`write_app` writes an application config for the stand-in's tank (model
``strict_plc.py:strict_plc_model``, tag map :data:`strict_plc.TAGS`, EKF + NMPC,
historian); :class:`Engine` starts ``python -m rtompc run`` on it, collects its
output lines with their arrival time, and stops it with a signal (or SIGSTOP /
SIGCONT for stalls). :func:`historian_rows` reads one run's cycles back.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from strict_plc import TAGS

HERE = Path(__file__).resolve().parent
SAMPLE_S = 0.5
"""Control period of the field tests, plant seconds (the stand-in runs at speed 1 by default)."""
RATE = {"valve": 0.02, "pump": 1.0, "heater": 4000.0}
"""MV rate limits, SI per second: 1 % valve, 0.5 r/s (30 r/min), 2 kW per period."""
STEP = {k: v * SAMPLE_S for k, v in RATE.items()}
"""Largest move per control period, SI."""


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def _tags_toml() -> str:
    out = [f'[transport.tags]\nnamespace = "{TAGS["namespace"]}"']
    for group in ("measurements", "setpoints", "actuators", "status"):
        out.append(f"[transport.tags.{group}]")
        out.extend(f"{k} = {_toml_value(v)}" for k, v in TAGS[group].items())
    return "\n".join(out)


def write_app(
    path: Path,
    endpoint: str,
    *,
    historian: str | None = "h.sqlite",
    loop: dict[str, Any] | None = None,
    t_target_c: float = 30.0,
    heater_max_kw: float = 80.0,
) -> Path:
    """An application config for the stand-in's tank; ``loop`` adds/overrides ``[loop]`` keys."""
    loop_keys = {"sample_time_s": SAMPLE_S, "mode": "shadow", **(loop or {})}
    hist = f'\n[historian]\npath = "{historian}"\n' if historian else ""
    path.write_text(
        f"""[plant]
name = "{HERE / "strict_plc.py"}:strict_plc_model"
params = {{ heater_max_w = {heater_max_kw * 1e3!r} }}

[transport]
kind = "opcua"
endpoint = "{endpoint}"
lockstep = false
max_rate_per_s = {_toml_value(RATE)}

{_tags_toml()}

[loop]
{chr(10).join(f"{k} = {_toml_value(v)}" for k, v in loop_keys.items())}

[mpc]
horizon_steps = 20
sample_time_s = {SAMPLE_S!r}
[[mpc.cvs]]
name = "level"
weight = 1.0
target = 1.2
[[mpc.cvs]]
name = "t_tank"
weight = 1.0
target = {t_target_c + 273.15!r}
[[mpc.mvs]]
name = "valve"
move_weight = 0.1
max_rate_per_s = {RATE["valve"]!r}
[[mpc.mvs]]
name = "pump"
move_weight = 0.1
max_rate_per_s = {RATE["pump"]!r}
[[mpc.mvs]]
name = "heater"
move_weight = 0.1
max_rate_per_s = {RATE["heater"]!r}

[estimator]
measured = ["level", "t_tank"]
output_disturbances = ["level", "t_tank"]

# the stand-in's actuators lag their setpoints (valve 2 s, pump 3 s, heater 5 s)
[[supervision.mvs]]
name = "valve"
time_constant_s = 2.0
[[supervision.mvs]]
name = "pump"
time_constant_s = 3.0
[[supervision.mvs]]
name = "heater"
time_constant_s = 5.0
{hist}"""
    )
    return path


class Engine:
    """One ``rtompc run`` child process; its stdout lines are kept with their arrival time."""

    def __init__(self, config: Path, *args: str) -> None:
        self.config = config
        self.args = args
        self.lines: list[tuple[float, str]] = []
        self._new: queue.Queue[str] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_path = config.with_suffix(".stderr")

    def start(self) -> Engine:
        """Start ``python -m rtompc run CONFIG ARGS`` in the config's directory."""
        err = open(self.stderr_path, "w", encoding="utf-8")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rtompc", "run", str(self.config), *self.args],
            cwd=self.config.parent,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            bufsize=1,
        )
        err.close()
        threading.Thread(target=self._pump, daemon=True).start()
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.time(), line.rstrip("\n")))
            self._new.put(line)

    def wait_line(self, text: str, timeout_s: float = 60.0, after: float = 0.0) -> float:
        """Wait for a line containing ``text`` that arrived after ``after`` (UNIX time);
        returns its arrival time."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            for t, line in self.lines[seen:]:
                if text in line and t > after:
                    return t
            seen = len(self.lines)
            if self.proc is not None and self.proc.poll() is not None and seen == len(self.lines):
                break
            time.sleep(0.02)
        raise AssertionError(
            f"no line with {text!r} within {timeout_s} s; stdout tail:\n"
            + "\n".join(line for _, line in self.lines[-15:])
            + "\nstderr:\n"
            + self.stderr_path.read_text()[-2000:]
        )

    def signal(self, sig: signal.Signals) -> None:
        """Send a signal to the engine process."""
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def wait(self, timeout_s: float = 60.0) -> int:
        """Wait for the exit; returns the exit code."""
        assert self.proc is not None
        code = self.proc.wait(timeout_s)
        deadline = time.monotonic() + 5
        while self._new.qsize() and time.monotonic() < deadline:  # let the pump finish
            self._new.get_nowait()
        return code

    def kill(self) -> None:
        """SIGKILL (test clean-up)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def stdout(self) -> str:
        """Everything printed so far."""
        return "\n".join(line for _, line in self.lines)

    def summary(self) -> dict[str, float]:
        """The ``summary:`` line as numbers."""
        line = next(line for _, line in self.lines if line.startswith("summary: "))
        return {k: float(v) for k, v in (kv.split("=") for kv in line[9:].split(", "))}


def historian_rows(path: Path, run_id: int) -> list[dict[str, Any]]:
    """One run's cycles, oldest first, as dicts."""
    with sqlite3.connect(path) as con:
        con.row_factory = sqlite3.Row
        return [
            dict(r)
            for r in con.execute("SELECT * FROM cycles WHERE run_id = ? ORDER BY cycle", (run_id,))
        ]


def historian_runs(path: Path) -> list[dict[str, Any]]:
    """The runs table as dicts, oldest first."""
    with sqlite3.connect(path) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM runs ORDER BY run_id")]
