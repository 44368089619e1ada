"""``rtompc config init --from-server`` against the strict PLC stand-in (node-opcua, S7-like).

A PLC names its variables after its data blocks (``DB2.P100_SP``), not after the
model's signals: without a map the starter lists every variable (data type, unit,
writable) and marks each unmapped signal TODO (exit 2); with ``--map`` it writes a
tag map in the PLC's units (cm, °C, %, r/min on an Int16 node, kW) that passes
``config check``. Status nodes are found by the last part of their names
(``DB4.HEARTBEAT``, ``DB4.MODE_REQ``, ``DB4.STATUS``).
"""

from __future__ import annotations

import contextlib
import io
import tomllib
from pathlib import Path

import pytest
from strict_plc import NAMESPACE, StrictPlc

from rtompc.cli import main

pytestmark = [pytest.mark.interop, pytest.mark.opcua, pytest.mark.timeout(180)]

MODEL = f"{Path(__file__).resolve().parent / 'strict_plc.py'}:strict_plc_model"
MAP = (
    "level=DB1.LT100",
    "t_tank=DB1.TT100",
    "t_in=DB1.TT101",
    "valve=DB2.XV100_SP",
    "valve=DB3.XV100_POS",
    "pump=DB2.P100_SP",
    "pump=DB3.P100_PV",
    "heater=DB2.JH100_SP",
    "heater=DB3.JH100_PV",
)


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_init_lists_the_plcs_variables_and_marks_unmapped_signals(
    strict_plc: StrictPlc, tmp_path: Path
) -> None:
    out_file = tmp_path / "plc.toml"
    code, _, err = _run(
        ["config", "init", MODEL, "--from-server", strict_plc.endpoint, "--out", str(out_file)]
    )
    assert code == 2, err
    assert "TODO  setpoints pump" in err and "TODO  measurements level" in err
    text = out_file.read_text()
    assert "#   s=PLC.DB2.P100_SP  Int16 [r/min]  writable" in text
    assert "#   s=PLC.DB3.P100_PV  Int16 [r/min]\n" in text
    assert "# TODO setpoints heater" in text
    status = tomllib.loads(text)["transport"]["tags"]["status"]
    assert status["mode_request"] == {"node": "s=PLC.DB4.MODE_REQ"}
    assert status["status_text"] == {"node": "s=PLC.DB4.STATUS"}


def test_init_with_a_map_writes_the_plc_tag_map_in_its_units(
    strict_plc: StrictPlc, tmp_path: Path
) -> None:
    out_file = tmp_path / "plc.toml"
    argv = ["config", "init", MODEL, "--from-server", strict_plc.endpoint, "--out", str(out_file)]
    for m in MAP:
        argv += ["--map", m]
    code, out, err = _run(argv)
    assert code == 0, out + err
    text = out_file.read_text()
    tags = tomllib.loads(text)["transport"]["tags"]
    assert tags["namespace"] == NAMESPACE
    assert tags["setpoints"]["pump"] == {"node": "s=PLC.DB2.P100_SP", "unit": "r/min"}
    assert tags["setpoints"]["heater"]["unit"] == "kW"
    assert tags["actuators"]["valve"] == {"node": "s=PLC.DB3.XV100_POS", "unit": "%"}
    assert tags["measurements"]["level"]["unit"] == "cm"
    assert "Int16 node: written values are rounded" in text
    assert set(tags["status"]) >= {
        "heartbeat",
        "mode",
        "mode_request",
        "sim_time",
        "watchdog_tripped",
        "status_text",
    }
    code, out, _ = _run(["config", "check", str(out_file)])
    assert code == 0, out
    base = argv[:7]
    no_pump = [a for m in MAP if not m.startswith("pump=") for a in ("--map", m)]
    code, _, err = _run([*base, *no_pump, "--map", "pump=NO_SUCH", "--force"])
    assert code == 2 and "TODO  setpoints pump" in err
    code, _, err = _run([*argv, "--force", "--map", "speed=DB2.P100_SP"])
    assert code == 2 and "'speed' is not a signal" in err


def test_check_connect_finds_what_the_plc_would_refuse_at_run_time(
    strict_plc: StrictPlc, tmp_path: Path
) -> None:
    """A heater limit of 100 kW against the PLC's EURange 0-80 kW, and a setpoint mapped to
    the read-back node: both are found before anything runs, with the node named."""
    out_file = tmp_path / "plc.toml"
    argv = ["config", "init", MODEL, "--from-server", strict_plc.endpoint, "--out", str(out_file)]
    for m in MAP:
        argv += ["--map", m]
    assert _run(argv)[0] == 0
    code, out, err = _run(["config", "check", str(out_file), "--connect"])
    assert code == 0, out + err
    text = out_file.read_text()
    text = text.replace("[plant]\n", "[plant]\nparams = { heater_max_w = 100000.0 }\n", 1)
    text = text.replace("upper = 80000.0", "upper = 100000.0")
    text = text.replace(
        'valve = { node = "s=PLC.DB2.XV100_SP"', 'valve = { node = "s=PLC.DB3.XV100_POS"'
    )
    out_file.write_text(text)
    code, out, _ = _run(["config", "check", str(out_file), "--connect"])
    assert code == 2, out
    problems = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert any("setpoints.heater" in p and "EURange" in p and "80" in p for p in problems), out
    assert any("setpoints.valve" in p and "CurrentWrite" in p for p in problems), out
