"""The ``rtompc`` command line: one sub-command per module in ``rtompc.commands``.

Each command module defines ``register(subparsers)``, which adds its parser and
sets ``func`` (``args -> exit code``). Logging handlers are set up here only.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from plant_models.errors import EngineError

COMMAND_MODULES = (
    "rtompc.commands.demo",
    "rtompc.commands.simulate",
    "rtompc.commands.plants",
    "rtompc.commands.hil",
    "rtompc.commands.run",
    "rtompc.commands.export",
    "rtompc.commands.campaign",
    "rtompc.commands.sysid",
    "rtompc.commands.bench",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="rtompc",
        description="Nonlinear MPC and real-time optimisation for process plants over OPC UA.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EngineError as exc:
        print(f"rtompc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
