"""Run a HIL server as a child process (``rtompc hil serve``) and secure the link to it.

:class:`HilProcess` starts ``python -m rtompc hil serve BENCH.toml``, waits for
its ``READY <endpoint>`` line (a multi-unit bench: its ``UNIT <name> <endpoint>``
lines first), and stops it with SIGTERM (then SIGKILL) on exit.
:func:`make_secure_bench` prepares what a secured loopback bench needs: the
server certificate (generated up front so the client can trust it), a client
certificate placed in the server's trust list, and a users file with a random
password for the ``controller`` role. Nothing secret is logged or printed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from hil.security import (
    SERVER_CERT,
    TRUSTED_DIR,
    ensure_server_certificate,
    hash_password,
    make_self_signed,
)
from interfaces.opcua_settings import OpcUaSecurity, SecurityMode, SecurityPolicy
from plant_models.errors import PlantIOError

logger = logging.getLogger(__name__)

SERVER_URI = "urn:rtompc:hil:server"
CLIENT_URI = "urn:rtompc:client"


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class SecureBench:
    """Files of a secured loopback bench and the client's credentials."""

    cert_dir: Path
    """Server certificate directory (with ``trusted/`` client certificates)."""
    users_file: Path
    """Users file of the server (PBKDF2 hashes)."""
    client: OpcUaSecurity
    """Client security settings (certificate, key, trusted server certificate)."""
    username: str
    """User name of the controller role."""
    password: str
    """Random password of that user (kept in memory only)."""


def make_secure_bench(root: Path) -> SecureBench:
    """Certificates, trust lists and a users file under ``root`` for a secured bench."""
    cert_dir = root / "server"
    ensure_server_certificate(cert_dir, SERVER_URI, ("127.0.0.1",))
    client_dir = root / "client"
    trusted_servers = client_dir / "trusted-servers"
    trusted_servers.mkdir(parents=True, exist_ok=True)
    (trusted_servers / SERVER_CERT).write_bytes((cert_dir / SERVER_CERT).read_bytes())
    key, cert = make_self_signed(CLIENT_URI, "rtompc engine", ("localhost", socket.gethostname()),
                                 server=False)
    cert_path, key_path = client_dir / "client_cert.der", client_dir / "client_key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    (cert_dir / TRUSTED_DIR).mkdir(exist_ok=True)
    (cert_dir / TRUSTED_DIR / "rtompc_engine.der").write_bytes(cert_path.read_bytes())
    password = secrets.token_urlsafe(18)
    users = root / "users.toml"
    users.write_text(
        "[users.engine]\nrole = \"controller\"\n"
        f"password_hash = \"{hash_password(password, iterations=20000)}\"\n"
    )
    users.chmod(0o600)
    client = OpcUaSecurity(
        mode=SecurityMode.SIGN_AND_ENCRYPT, policy=SecurityPolicy.BASIC256SHA256,
        certificate=cert_path, private_key=key_path, trusted_server_certificates=trusted_servers,
        application_uri=CLIENT_URI,
    )
    return SecureBench(cert_dir, users, client, "engine", password)


def bench_text(plant: str, params: dict[str, Any], *, endpoint: str,
                sample_time_s: float, speed: float | None, secure: SecureBench | None,
                noise_std: dict[str, float] | None = None, seed: int = 0,
                watchdog_timeout_s: float | None = None,
                initial_state: dict[str, float] | None = None,
                initial_inputs: dict[str, float] | None = None) -> str:
    """The TOML text of a one-plant HIL bench (see :mod:`hil.config`)."""
    lines = ["[plant]", f"name = \"{plant}\""]
    if params:
        inner = ", ".join(f"{k} = {_toml(v)}" for k, v in params.items())
        lines.append(f"params = {{ {inner} }}")
    lines += ["", "[simulator]", f"sample_time_s = {sample_time_s!r}", f"seed = {seed}"]
    for key, table in (("noise_std", noise_std), ("initial_state", initial_state),
                       ("initial_inputs", initial_inputs)):
        if table:
            inner = ", ".join(f"{k} = {float(v)!r}" for k, v in table.items())
            lines.append(f"{key} = {{ {inner} }}")
    if watchdog_timeout_s is not None:
        lines += ["[simulator.watchdog]", f"timeout_s = {watchdog_timeout_s!r}",
                  "fallback = \"hold_last\""]
    lines += ["", "[server]", f"endpoint = \"{endpoint}\""]
    lines.append(f"speed = {speed!r}" if speed is not None else "lockstep = true")
    if secure is not None:
        lines += ["security = \"sign-encrypt\"", f"cert_dir = \"{secure.cert_dir}\"",
                  f"users = \"{secure.users_file}\""]
    return "\n".join(lines) + "\n"


def write_bench(path: Path, plant: str, params: dict[str, Any], **kw: Any) -> Path:
    """Write a HIL bench TOML file (:func:`bench_text`)."""
    path.write_text(bench_text(plant, params, **kw))
    return path


def write_site_bench(path: Path, units: dict[str, tuple[str, dict[str, Any], dict[str, Any]]]) -> Path:
    """Write a multi-unit HIL bench: unit name -> (plant, params, :func:`bench_text` keywords);
    one ``[[unit]]`` table per unit, each with its own endpoint, clock and security."""
    out: list[str] = []
    for name, (plant, params, kw) in units.items():
        out += ["[[unit]]", f"name = \"{name}\""]
        for line in bench_text(plant, params, **kw).splitlines():
            out.append(f"[unit.{line[1:]}" if line.startswith("[") else line)
        out.append("")
    path.write_text("\n".join(out))
    return path


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f"\"{value}\""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


class HilProcess:
    """``rtompc hil serve`` in a child process; ``async with`` starts and stops it."""

    def __init__(self, bench: Path, *, ready_timeout_s: float = 90.0,
                 log_path: Path | None = None) -> None:
        self.bench = bench
        self.ready_timeout_s = ready_timeout_s
        self.log_path = log_path
        self.endpoint = ""
        self.endpoints: dict[str, str] = {}
        """Unit name -> endpoint of a multi-unit bench (empty for a single plant)."""
        self._proc: asyncio.subprocess.Process | None = None
        self._log: Any = None

    async def start(self) -> str:
        """Start the server and return its (first) endpoint once it prints READY; a multi-unit
        bench's endpoints by unit are in :attr:`endpoints`."""
        self._log = open(self.log_path, "wb") if self.log_path else asyncio.subprocess.DEVNULL  # noqa: SIM115
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rtompc", "hil", "serve", str(self.bench),
            stdout=asyncio.subprocess.PIPE, stderr=self._log,
        )
        if self._proc.stdout is None:  # pragma: no cover - stdout=PIPE always gives a stream
            raise PlantIOError("HIL server started without a stdout pipe")
        try:
            while True:
                line = await asyncio.wait_for(self._proc.stdout.readline(), self.ready_timeout_s)
                if not line:
                    raise PlantIOError(
                        f"HIL server exited with code {await self._proc.wait()} before READY"
                        + (f"; see {self.log_path}" if self.log_path else "")
                    )
                text = line.decode(errors="replace").strip()
                if text.startswith("UNIT "):
                    _, name, url = text.split(" ", 2)
                    self.endpoints[name] = url
                elif text.startswith("READY "):
                    self.endpoint = text.split(" ", 2)[1]
                    return self.endpoint
        except TimeoutError:
            await self.stop()
            raise PlantIOError(f"HIL server not ready within {self.ready_timeout_s} s") from None

    @property
    def pid(self) -> int | None:
        """Process id of the server."""
        return self._proc.pid if self._proc else None

    async def kill(self) -> None:
        """Kill the server without a clean shutdown (fault tests)."""
        if self._proc and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()

    async def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                logger.warning("HIL server did not stop within %s s: killing it", timeout_s)
                proc.kill()
                await proc.wait()
        if self._log not in (None, asyncio.subprocess.DEVNULL):
            self._log.close()
            self._log = None
        return proc.returncode

    async def __aenter__(self) -> HilProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
