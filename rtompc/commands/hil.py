"""``rtompc hil``: serve a plant as a HIL OPC UA server; make password hashes for its users file.

``rtompc hil serve PLANT|CONFIG [--endpoint URL] [--speed X | --lockstep] [--sample-time S]
[--security none|sign|sign-encrypt] [--cert-dir DIR] [--users FILE] [--faults FILE]``
serves until SIGINT/SIGTERM and shuts down cleanly. When the server listens it
prints one line ``READY <endpoint>`` on stdout (flushed), so a parent process
can start it as a subprocess and wait for that line; ``STOPPED`` follows on
shutdown.

``rtompc hil hash-password [--iterations N]`` reads a password (prompt, or
stdin when piped) and prints the ``password_hash`` value for the users file.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import ipaddress
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hil.config import BenchConfig, bench_from_mapping, load_bench
from hil.security import DEFAULT_ITERATIONS, hash_password
from hil.server import HilServer
from hil.simulator import PlantSimulator
from plant_models.errors import ConfigError
from plant_models.library import load

DEFAULT_CERT_DIR = Path.home() / ".rtompc" / "hil-certs"
"""Certificate directory used when security is on and no --cert-dir is given."""


def _abs(value: str | None) -> str | None:
    return str(Path(value).expanduser().resolve()) if value else None


def bench_from_args(args: argparse.Namespace) -> BenchConfig:
    """The bench described by the command line (a config file or a plant name plus flags)."""
    overrides: dict[str, Any] = {
        "endpoint": args.endpoint, "speed": args.speed, "lockstep": True if args.lockstep else None,
        "security": args.security, "cert_dir": _abs(args.cert_dir), "users": _abs(args.users),
        "faults": _abs(args.faults),
    }
    if args.lockstep:
        overrides["speed"] = None
    if args.target.endswith(".toml"):
        bench = load_bench(args.target, **overrides)
    else:
        data: dict[str, Any] = {"plant": {"name": args.target}}
        bench = bench_from_mapping(data, **overrides)
    if args.sample_time is not None or args.seed is not None:
        sim = bench.simulator.__dict__.copy()
        if args.sample_time is not None:
            sim["sample_time_s"] = args.sample_time
        if args.seed is not None:
            sim["seed"] = args.seed
        bench = BenchConfig(bench.plant, bench.plant_params, type(bench.simulator)(**sim), bench.server)
    return bench


async def _serve(bench: BenchConfig) -> None:
    model = load(bench.plant, **bench.plant_params)
    server = HilServer(PlantSimulator(model, bench.simulator), bench.server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        print(f"READY {server.endpoint}", flush=True)
        await stop.wait()
    finally:
        await server.stop()
        print("STOPPED", flush=True)


def _run_serve(args: argparse.Namespace) -> int:
    bench = bench_from_args(args)
    host = (urlparse(bench.server.endpoint).hostname or "").strip("[]")
    if bench.server.security.value == "none" and not _is_loopback(host) and not args.allow_insecure:
        raise ConfigError(
            f"endpoint {bench.server.endpoint}: serving on a non-loopback address needs "
            "--security sign|sign-encrypt with --users (or --allow-insecure on an isolated network)"
        )
    if bench.server.security.value != "none" and bench.server.cert_dir is None:
        bench = BenchConfig(bench.plant, bench.plant_params, bench.simulator,
                            type(bench.server)(**{**bench.server.__dict__, "cert_dir": DEFAULT_CERT_DIR}))
    asyncio.run(_serve(bench))
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run_hash(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("hash-password: the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise ConfigError("hash-password: empty password")
    print(hash_password(password, iterations=args.iterations))
    return 0


def register(sub: Any) -> None:
    """Add the ``hil`` command with ``serve`` and ``hash-password``."""
    p = sub.add_parser("hil", help="hardware-in-the-loop plant simulator over OPC UA")
    hsub = p.add_subparsers(dest="hil_command", metavar="SUBCOMMAND")
    s = hsub.add_parser("serve", help="serve a plant as an OPC UA server (like a PLC)",
                        description="Serve PLANT (registry name or module.py:function) or a HIL "
                        "CONFIG (.toml) until SIGINT/SIGTERM; prints 'READY <endpoint>' when listening.")
    s.add_argument("target", metavar="PLANT|CONFIG", help="plant registry name or HIL config file (.toml)")
    s.add_argument("--endpoint", help="URL to listen on (default opc.tcp://127.0.0.1:4840)")
    clock = s.add_mutually_exclusive_group()
    clock.add_argument("--speed", type=float, help="real-time factor (default 1)")
    clock.add_argument("--lockstep", action="store_true", help="advance only through the 'step' method")
    s.add_argument("--sample-time", type=float, help="simulation step in seconds (default 1)")
    s.add_argument("--seed", type=int, help="seed of the measurement noise")
    s.add_argument("--security", choices=["none", "sign", "sign-encrypt"], help="endpoint security")
    s.add_argument("--cert-dir", help=f"server certificate and trusted/ client certificates "
                   f"(default {DEFAULT_CERT_DIR} when security is on)")
    s.add_argument("--users", help="users file (TOML, PBKDF2 password hashes)")
    s.add_argument("--faults", help="fault scenario file (TOML)")
    s.add_argument("--allow-insecure", action="store_true",
                   help="allow security none on a non-loopback endpoint (isolated test networks only)")
    s.set_defaults(func=_run_serve)
    h = hsub.add_parser("hash-password", help="print a password hash for the users file")
    h.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, help="PBKDF2 iterations")
    h.set_defaults(func=_run_hash)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
