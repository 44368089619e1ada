"""Cost of the engine's OPC UA namespace to the control loop (not a test).

A Van de Vusse closed loop (do-mpc parameters, in-process plant advanced one sample per
cycle, EKF + NMPC RTI, live parameters), paced at ``--period`` (0.1 s: 10 Hz), runs the same
number of cycles three ways, interleaved round by round:

- ``bare``: no view (the peer);
- ``view``: the EngineView fed after each cycle;
- ``served``: the view plus the engine namespace (SignAndEncrypt, users) with K asyncua
  clients each subscribed to every variable of the unit (publishing interval 50 ms).

Prints per variant the median cycle time (``CycleRecord.cycle_time_s``), wall time per cycle
and process CPU time per cycle, and their ratios to ``bare``; then the direct cost per frame
of building the frame (``UnitView.publish``) and of writing it into the address space
(``frame_values`` + ``EngineServer.update`` of a frame after its predecessor, i.e. the
values that changed). The clients run in a child process (as an HMI would): CPU figures are
this process's (loop + server).

    .venv/bin/python benchmarks/bench_engine_namespace.py [--cycles 200] [--rounds 3] [--clients 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography.hazmat.primitives import serialization

from interfaces.engine_server import NAMESPACE_URI, EngineServerSettings
from interfaces.inprocess import InProcessPlantIO
from mpc import CvSpec, MpcConfig, MvSpec, NmpcController
from mpc.estimation import DisturbanceModel, EstimatorConfig, ExtendedKalmanFilter
from plant_models.certificates import make_self_signed
from plant_models.library import load
from plant_models.samples import Mode, OperatingTarget
from plant_models.server_auth import TRUSTED_DIR, hash_password, parse_user_table
from rtompc.engine_namespace import EngineNamespace, frame_values
from rtompc.live import LiveParameters
from rtompc.live.view import EngineViews, UnitView
from rtompc.runtime import ControlLoop, LoopSettings

DT = 18.0
CLIENT_URI = "urn:rtompc:bench:client"


def make_loop(model: Any) -> ControlLoop:
    cfg = MpcConfig(
        horizon_steps=20,
        sample_time_s=DT,
        cvs=(CvSpec("c_b", weight=1.0, target=700.0), CvSpec("t_r", upper=413.15, l1_penalty=1e3)),
        mvs=(MvSpec("f_dil", move_weight=0.01), MvSpec("q_k", move_weight=0.01)),
    )
    est = ExtendedKalmanFilter(
        model,
        EstimatorConfig(
            sample_time_s=DT,
            measured=("c_b", "t_r", "t_k"),
            disturbances=DisturbanceModel(outputs=("c_b",)),
            measurement_std={"c_b": 5.0, "t_r": 0.1, "t_k": 0.1},
        ),
    )
    return ControlLoop(
        model,
        InProcessPlantIO(model, DT, start_remote=False),
        est,
        NmpcController(model, cfg),
        LoopSettings(sample_time_s=DT, mode=Mode.ON),
        target=OperatingTarget(0.0, y={"c_b": 700.0}),
        live=LiveParameters(model, cfg, mode=Mode.ON),
    )


def pki(tmp: Path) -> tuple[EngineServerSettings, Path, Path]:
    key, cert = make_self_signed(CLIENT_URI, "bench-client", ("localhost",), server=False)
    cert_path, key_path = tmp / "client.der", tmp / "client.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp / "server" / TRUSTED_DIR).mkdir(parents=True)
    (tmp / "server" / TRUSTED_DIR / "client.der").write_bytes(cert_path.read_bytes())
    users = parse_user_table(
        {"view": {"role": "viewer", "password_hash": hash_password("pw", iterations=1000)}},
        ("viewer", "operator", "engineer"),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = EngineServerSettings(
        f"opc.tcp://127.0.0.1:{port}", cert_dir=tmp / "server", users=users
    )
    return settings, cert_path, key_path


class Keep:
    """A Recorder keeping the last cycle record and every cycle time."""

    def __init__(self) -> None:
        self.record: Any = None
        self.times: list[float] = []

    def append(self, record: Any) -> None:
        self.record = record
        self.times.append(record.cycle_time_s)


class Count:
    def __init__(self) -> None:
        self.n = 0

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.n += 1


async def subscribe_all(
    settings: EngineServerSettings, cert: Path, key: Path, keys: list[str]
) -> tuple[Client, Count]:
    client = Client(settings.endpoint, timeout=10)
    client.application_uri = CLIENT_URI
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(cert),
        str(key),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    client.set_user("view")
    client.set_password("pw")
    await client.connect()
    ns = await client.get_namespace_index(NAMESPACE_URI)
    handler = Count()
    sub = await client.create_subscription(50, handler)
    nodes = [client.get_node(ua.NodeId(f"Units.{k}", ns)) for k in keys]
    await sub.subscribe_data_change(nodes, queuesize=1)
    return client, handler


async def run(loop: ControlLoop, cycles: int, period_s: float) -> tuple[float, float, float]:
    """``cycles`` cycles paced at ``period_s`` (the plant advanced one sample per cycle)."""
    keep = next(r for r in loop.recorders if isinstance(r, Keep))
    start_cycle = len(keep.times)
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(cycles):
        await loop.cycle()
        await loop.io.advance(1)
        await asyncio.sleep(max(0.0, t0 + (k + 1) * period_s - time.perf_counter()))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    med = statistics.median(keep.times[start_cycle:])
    return med, wall / cycles, cpu / cycles


async def main(cycles: int, rounds: int, clients: int, period_s: float) -> None:
    model = load("van_de_vusse", parameters="do_mpc")
    tmp = Path(tempfile.mkdtemp(prefix="bench-engine-ns-"))
    settings, cert, key = pki(tmp)
    bare, viewed, served = make_loop(model), make_loop(model), make_loop(model)
    UnitView.for_loop("vdv", viewed)
    views = EngineViews([UnitView.for_loop("vdv", served)])
    for loop in (bare, viewed, served):
        loop.recorders.append(Keep())
    keep = served.recorders[-1]
    results: dict[str, list[tuple[float, float, float]]] = {"bare": [], "view": [], "served": []}
    async with bare.io, viewed.io, served.io, EngineNamespace(views, settings) as ns:
        keys = list(ns.server.variables)
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--clients-for",
            settings.endpoint,
            str(cert),
            str(key),
            str(clients),
            ",".join(keys),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert child.stdout is not None and child.stdin is not None
        while b"ready" not in await child.stdout.readline():
            pass
        for loop in (bare, viewed, served):  # warm-up (first steps build and warm the solver)
            await loop.run(5)
        for _ in range(rounds):
            results["bare"].append(await run(bare, cycles, period_s))
            results["view"].append(await run(viewed, cycles, period_s))
            results["served"].append(await run(served, cycles, period_s))
        # direct cost per frame
        view = views["vdv"]
        frames = view.frames()[-cycles:]
        update_samples, changed = [], []
        for f in frames:  # in order: each one after its predecessor, as in the run
            t = time.perf_counter()
            changed.append(await ns.server.update(frame_values(f), f.wall_time_s))
            update_samples.append(time.perf_counter() - t)
        probe = UnitView("probe", model, view.config, live=view.live)
        publish_samples = []
        for _ in range(200):
            t = time.perf_counter()
            probe.publish(keep.record, served.last_result)
            publish_samples.append(time.perf_counter() - t)
        child.stdin.close()
        out, _ = await child.communicate()
        notifications = int(out.decode().split()[-1])
    print(
        f"Van de Vusse loop paced at {1 / period_s:g} Hz, {cycles} cycles x {rounds} rounds per variant, "
        f"{clients} subscribed clients x {len(keys)} variables; load {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    base = [statistics.median(x[i] for x in results["bare"]) for i in range(3)]
    print(
        f"{'variant':8s} {'cycle median ms':>16s} {'wall/cycle ms':>14s} {'CPU/cycle ms':>13s}   ratios to bare"
    )
    for name, rows in results.items():
        vals = [statistics.median(x[i] for x in rows) for i in range(3)]
        ratios = " / ".join(f"{v / b:.3f}" for v, b in zip(vals, base, strict=True))
        print(
            f"{name:8s} {vals[0] * 1e3:16.2f} {vals[1] * 1e3:14.2f} {vals[2] * 1e3:13.2f}   {ratios}"
        )
    print(
        f"per frame: UnitView.publish median {statistics.median(publish_samples) * 1e3:.3f} ms; "
        f"frame_values + EngineServer.update median (wall, yielding to other tasks) "
        f"{statistics.median(update_samples[1:]) * 1e3:.3f} ms ({statistics.median(changed):.0f} "
        f"of {len(keys)} variables changed per frame); client notifications {notifications}"
    )


async def clients_for(endpoint: str, cert: str, key: str, n: int, keys: str) -> None:
    """Child process: n subscribed clients until stdin closes; prints the notification count."""
    settings = EngineServerSettings(endpoint, secure=False)  # only the endpoint is used
    conns = [
        await subscribe_all(settings, Path(cert), Path(key), keys.split(",")) for _ in range(n)
    ]
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.read)
    for c, _ in conns:
        await c.disconnect()
    print("notifications", sum(h.n for _, h in conns), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--clients-for":
        asyncio.run(clients_for(*sys.argv[2:5], int(sys.argv[5]), sys.argv[6]))
        sys.exit(0)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--period", type=float, default=0.1, help="control period, wall s")
    a = parser.parse_args()
    asyncio.run(main(a.cycles, a.rounds, a.clients, a.period))
