"""``rtompc hil``: serve a plant as a HIL OPC UA server; make password hashes for its users file.

``rtompc hil serve PLANT|CONFIG [--endpoint URL] [--speed X | --lockstep] [--sample-time S]
[--security none|sign|sign-encrypt] [--cert-dir DIR] [--users FILE] [--faults FILE]``
serves until SIGINT/SIGTERM and shuts down cleanly. When the server listens it
prints one line ``READY <endpoint>`` on stdout (flushed), so a parent process
can start it as a subprocess and wait for that line; ``STOPPED`` follows on
shutdown. A multi-unit CONFIG (``[[unit]]`` tables, :func:`hil.config.load_benches`)
serves one endpoint per unit (several PLCs, each with its own clock, watchdog,
faults and security) from one process: it prints ``UNIT <name> <endpoint>`` per
unit, then ``READY <endpoint> <endpoint> ...``. Its ``[[link]]`` tables (``from =
"unit.output"``, ``to = "unit.disturbance"``) are streams between the units' plants:
after every step of the source unit its output sets the sink unit's disturbance.

``rtompc hil hash-password [--iterations N]`` reads a password (prompt, or
stdin when piped) and prints the ``password_hash`` value for the users file.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hil.config import (
    BenchConfig,
    LinkConfig,
    bench_from_mapping,
    load_bench,
    load_benches,
    load_links,
)
from hil.security import DEFAULT_ITERATIONS, hash_password
from hil.server import HilServer
from hil.simulator import PlantSimulator
from interfaces.engine_server import is_loopback
from plant_models.errors import ConfigError
from plant_models.library import load

DEFAULT_CERT_DIR = Path.home() / ".rtompc" / "hil-certs"
"""Certificate directory used when security is on and no --cert-dir is given."""


def _abs(value: str | None) -> str | None:
    return str(Path(value).expanduser().resolve()) if value else None


def _bench_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's settings over a bench file's, for one bench or each unit's."""
    return {
        "speed": None if args.lockstep else args.speed,
        "lockstep": True if args.lockstep else None,
        "security": args.security,
        "cert_dir": _abs(args.cert_dir),
        "users": _abs(args.users),
        "faults": _abs(args.faults),
    }


def bench_from_args(args: argparse.Namespace) -> BenchConfig:
    """The bench described by the command line (a config file or a plant name plus flags)."""
    overrides = {"endpoint": args.endpoint, **_bench_overrides(args)}
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
        bench = BenchConfig(
            bench.plant, bench.plant_params, type(bench.simulator)(**sim), bench.server
        )
    return bench


def benches_from_args(args: argparse.Namespace) -> dict[str, BenchConfig]:
    """Unit name -> bench: a multi-unit HIL config (``[[unit]]`` tables) or one plant."""
    if args.target.endswith(".toml"):
        data = (
            tomllib.loads(Path(args.target).read_text(encoding="utf-8"))
            if Path(args.target).is_file()
            else {}
        )
        if "unit" in data:
            if args.sample_time is not None or args.seed is not None or args.endpoint:
                raise ConfigError(
                    "--endpoint, --sample-time and --seed are per unit in a "
                    "multi-unit bench: set them in its [[unit]] tables"
                )
            return load_benches(args.target, **_bench_overrides(args))
    bench = bench_from_args(args)
    return {bench.plant.rsplit(":", 1)[-1]: bench}


def connect_links(sims: dict[str, PlantSimulator], links: tuple[LinkConfig, ...]) -> None:
    """After every step of a link's source plant, set its sink plant's disturbance to the
    source output's noise-free value (and once now, so the sink starts linked)."""
    for link in links:
        src, dst = sims[link.source[0]], sims[link.sink[0]]

        def hook(
            sim: PlantSimulator,
            dst: PlantSimulator = dst,
            out: str = link.source[1],
            d: str = link.sink[1],
        ) -> None:
            dst.link_disturbance(d, sim.true_output(out))

        src.after_step.append(hook)
        hook(src)


async def _serve(benches: dict[str, BenchConfig], links: tuple[LinkConfig, ...] = ()) -> None:
    sims = {
        name: PlantSimulator(load(b.plant, **b.plant_params), b.simulator)
        for name, b in benches.items()
    }
    connect_links(sims, links)
    servers = [HilServer(sims[name], b.server) for name, b in benches.items()]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[HilServer] = []
    try:
        for server in servers:
            await server.start()
            started.append(server)
        if len(servers) > 1:  # one line per unit, then READY with every endpoint
            for name, server in zip(benches, servers, strict=True):
                print(f"UNIT {name} {server.endpoint}", flush=True)
        print("READY " + " ".join(s.endpoint for s in servers), flush=True)
        await stop.wait()
    finally:
        for server in started:
            await server.stop()
        if started:  # nothing on stdout when no server came up (the error goes to stderr)
            print("STOPPED", flush=True)


def _run_serve(args: argparse.Namespace) -> int:
    benches = benches_from_args(args)
    for name, bench in list(benches.items()):
        host = (urlparse(bench.server.endpoint).hostname or "").strip("[]")
        if (
            bench.server.security.value == "none"
            and not is_loopback(host)
            and not args.allow_insecure
        ):
            raise ConfigError(
                f"endpoint {bench.server.endpoint}: serving on a non-loopback address needs "
                "--security sign|sign-encrypt with --users (or --allow-insecure on an isolated network)"
            )
        if bench.server.security.value != "none" and bench.server.cert_dir is None:
            benches[name] = BenchConfig(
                bench.plant,
                bench.plant_params,
                bench.simulator,
                type(bench.server)(**{**bench.server.__dict__, "cert_dir": DEFAULT_CERT_DIR}),
            )
    links = load_links(args.target) if args.target.endswith(".toml") else ()
    asyncio.run(_serve(benches, links))
    return 0


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
    s = hsub.add_parser(
        "serve",
        help="serve a plant as an OPC UA server (like a PLC)",
        description="Serve PLANT (registry name or module.py:function) or a HIL "
        "CONFIG (.toml) until SIGINT/SIGTERM; prints 'READY <endpoint>' when listening. "
        "A CONFIG with [[unit]] tables serves one endpoint per unit (several PLCs): "
        "'UNIT <name> <endpoint>' per unit, then 'READY <endpoints>'.",
    )
    s.add_argument(
        "target", metavar="PLANT|CONFIG", help="plant registry name or HIL config file (.toml)"
    )
    s.add_argument("--endpoint", help="URL to listen on (default opc.tcp://127.0.0.1:4840)")
    clock = s.add_mutually_exclusive_group()
    clock.add_argument("--speed", type=float, help="real-time factor (default 1)")
    clock.add_argument(
        "--lockstep", action="store_true", help="advance only through the 'step' method"
    )
    s.add_argument("--sample-time", type=float, help="simulation step in seconds (default 1)")
    s.add_argument("--seed", type=int, help="seed of the measurement noise")
    s.add_argument("--security", choices=["none", "sign", "sign-encrypt"], help="endpoint security")
    s.add_argument(
        "--cert-dir",
        help=f"server certificate and trusted/ client certificates "
        f"(default {DEFAULT_CERT_DIR} when security is on)",
    )
    s.add_argument("--users", help="users file (TOML, PBKDF2 password hashes)")
    s.add_argument("--faults", help="fault scenario file (TOML)")
    s.add_argument(
        "--allow-insecure",
        action="store_true",
        help="allow security none on a non-loopback endpoint (isolated test networks only)",
    )
    s.set_defaults(func=_run_serve)
    h = hsub.add_parser("hash-password", help="print a password hash for the users file")
    h.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, help="PBKDF2 iterations")
    h.set_defaults(func=_run_hash)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
