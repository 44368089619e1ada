"""The ``rtompc`` command line: a light start-up, and a command table that matches the modules.

``rtompc --help`` must not load the solvers, the OPC UA stack or plotting: the
check is structural (which modules a fresh interpreter holds after building the
parser), not a timing. Every command of the table registers itself under its name.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("casadi", "asyncua", "do_mpc", "matplotlib", "scipy", "numpy", "cryptography", "pydantic")

_PROBE = """
import json, sys
import rtompc.cli as cli
parser = cli.build_parser({argv!r}) if {argv!r} else cli.build_parser()
text = parser.format_help()
print(json.dumps({{"help": text, "modules": sorted(sys.modules)}}))
"""


def _probe(argv: list[str]) -> tuple[str, set[str]]:
    """Build the parser in a fresh interpreter; the help text and the top-level packages loaded."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=argv)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    data = json.loads(out)
    return data["help"], {m.split(".")[0] for m in data["modules"]}


def test_top_level_help_imports_no_heavy_package() -> None:
    text, loaded = _probe([])
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert not {m for m in loaded if m in ("plant_models", "mpc", "rto", "interfaces", "hil")}
    from rtompc.cli import COMMANDS

    for cmd in COMMANDS:
        assert cmd.name in text and cmd.help.split()[0] in text


def test_light_commands_stay_light() -> None:
    """``certs`` and ``config`` parse their arguments without loading CasADi or asyncua."""
    for argv in (["certs", "create"], ["config", "schema"]):
        _, loaded = _probe(argv)
        assert not loaded & {"casadi", "asyncua", "do_mpc", "matplotlib"}, (argv, loaded)


def test_every_command_module_registers_its_name() -> None:
    from rtompc.cli import COMMANDS, build_parser

    parser = build_parser(load_all=True)
    sub = next(a for a in parser._actions if a.dest == "command")
    registered = set(sub.choices)  # type: ignore[arg-type]
    assert registered == {c.name for c in COMMANDS}
    for cmd in COMMANDS:
        sub_parser = sub.choices[cmd.name]  # type: ignore[index]
        assert sub_parser.add_help, f"{cmd.module} did not register a full parser"


def test_run_help_points_at_the_configuration_reference() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rtompc", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    flat = " ".join(out.split())
    assert "docs/configuration.md" in flat
    assert "rtompc config schema" in flat
    assert "rtompc config check" in flat
