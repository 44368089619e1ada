"""The ``rtompc`` command line: one sub-command per module in ``rtompc.commands``.

Each command module defines ``register(subparsers)``, which adds its parser and
sets ``func`` (``args -> exit code``). Logging handlers are set up here only.

Start-up stays light: the command table below names each command and its
one-line help, so ``rtompc --help`` lists them without importing any command
module. Only the module of the command on the command line is imported (with
its solvers, OPC UA stack and plotting), when its parser is built.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from rtompc.logs import configure_logging


@dataclass(frozen=True)
class Command:
    """One sub-command: its name, the module that registers it, its line in ``rtompc --help``."""

    name: str
    """Name on the command line."""
    module: str
    """Module with ``register(subparsers)``; imported only when the command is used."""
    help: str
    """One line for the command list."""


COMMANDS: tuple[Command, ...] = (
    Command(
        "demo",
        "rtompc.commands.demo",
        "closed loop over OPC UA against the HIL simulator (main job)",
    ),
    Command(
        "simulate",
        "rtompc.commands.simulate",
        "run one scenario file (lockstep, in-process by default), print KPIs",
    ),
    Command("plants", "rtompc.commands.plants", "list reference plants or describe one"),
    Command("hil", "rtompc.commands.hil", "hardware-in-the-loop plant simulator over OPC UA"),
    Command(
        "run",
        "rtompc.commands.run",
        "run the closed loop from an application config (OPC UA or in-process)",
    ),
    Command("config", "rtompc.commands.config", "configuration tools: check, init, schema, docs"),
    Command(
        "certs",
        "rtompc.commands.certs",
        "make an OPC UA client certificate, key and trust-list folders",
    ),
    Command("export", "rtompc.commands.export", "export a historian file to CSV or Parquet"),
    Command(
        "report",
        "rtompc.commands.report",
        "write a self-contained HTML report of a historian run (trends, KPIs, journal)",
    ),
    Command(
        "campaign",
        "rtompc.commands.campaign",
        "run a directory of scenarios in parallel, write reports",
    ),
    Command(
        "steptest",
        "rtompc.commands.steptest",
        "step-test a unit: plan in engineering units, CV back-off, historian run",
    ),
    Command(
        "calibrate",
        "rtompc.commands.calibrate",
        "fit first-principles model parameters to a historian run, write them into the config",
    ),
    Command(
        "sysid",
        "rtompc.commands.sysid",
        "identify a linear model from a historian run or logged data (CSV)",
    ),
    Command("bench", "rtompc.commands.bench", "run a benchmark script (median timings and ratios)"),
)
"""Every sub-command, in the order ``rtompc --help`` lists them."""

COMMAND_MODULES = tuple(c.module for c in COMMANDS)
"""The command modules (kept for callers that list them)."""


def _selected(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the first argument that is not an option)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(
    argv: Sequence[str] | None = None, *, load_all: bool = False
) -> argparse.ArgumentParser:
    """The top-level parser.

    The command named in ``argv`` (or every command with ``load_all``) gets its full
    parser from its module; the others get a placeholder that only carries the help line,
    so building the parser imports nothing heavy.
    """
    parser = argparse.ArgumentParser(
        prog="rtompc",
        description="Nonlinear MPC and real-time optimisation for process plants over OPC UA.",
        epilog="Every command has --help. Configuration reference: docs/configuration.md "
        "(or `rtompc config schema`); commissioning a unit: docs/commissioning.md.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    selected = _selected(argv or ())
    for cmd in COMMANDS:
        if load_all or cmd.name == selected:
            try:
                module = importlib.import_module(cmd.module)
            except ModuleNotFoundError as exc:
                if exc.name == cmd.module:
                    continue  # command not built yet
                raise
            module.register(sub)
        else:
            sub.add_parser(cmd.name, help=cmd.help, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from plant_models.errors import EngineError  # after parsing: plant_models loads CasADi

    try:
        return int(args.func(args) or 0)
    except EngineError as exc:
        print(f"rtompc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
