"""Fixtures for the interfaces tests: a plant, a layout-following OPC UA server on loopback,
PlantIO implementations parametrised (in-process and OPC UA), and a small PKI."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.crypto.cert_gen import (
    dump_private_key_as_pem,
    generate_private_key,
    generate_self_signed_app_certificate,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from layout_server import LayoutServer

from interfaces.inprocess import InProcessPlantIO
from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import OpcUaSettings
from interfaces.plantio import PlantIO
from plant_models.library import load
from plant_models.model import PlantModel
from plant_models.samples import Quality

DT = 10.0
"""Sample time of the test plants, s."""


HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this directory's async tests in one event loop, so one OPC UA server (whose
    start-up costs seconds) serves many tests; each test resets the plant."""
    marker = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if pytest_asyncio.is_async_test(item) and HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(marker, append=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def vdv() -> PlantModel:
    return load("van_de_vusse")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_server(vdv: PlantModel) -> AsyncIterator[LayoutServer]:
    srv = LayoutServer(vdv, free_port(), sample_time_s=DT)
    await srv.start()
    yield srv
    await srv.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def server(shared_server: LayoutServer) -> LayoutServer:
    """The shared layout server with its plant reset to the nominal point, LOCAL mode."""
    await shared_server.reset()
    return shared_server


def opcua_settings(endpoint: str, **kw: object) -> OpcUaSettings:
    base: dict[str, object] = {
        "sample_time_s": DT,
        "lockstep": True,
        "watchdog_interval_s": 0.3,
        "reconnect_initial_delay_s": 0.05,
        "reconnect_max_delay_s": 0.5,
    }
    base.update(kw)
    return OpcUaSettings(endpoint, **base)  # type: ignore[arg-type]


@dataclass
class Harness:
    """A connected PlantIO plus plant-side hooks that work the same for every transport."""

    io: PlantIO
    kind: str
    sim: InProcessPlantIO | None = None
    srv: LayoutServer | None = None

    def heartbeat_seen(self) -> int | None:
        if self.sim is not None:
            return self.sim.last_heartbeat
        assert self.srv is not None
        return self.srv.heartbeat

    async def fault(
        self, name: str, *, value: float | None = None, bad_status: bool = False
    ) -> None:
        if self.sim is not None:
            self.sim.inject(name, value=value, quality=Quality.BAD if bad_status else None)
            return
        assert self.srv is not None
        if value is not None:
            self.srv.raw_fault[name] = value
        if bad_status:
            self.srv.status_fault[name] = ua.StatusCodes.BadSensorFailure
        await self.srv.publish()


@pytest_asyncio.fixture(loop_scope="session")
async def inprocess_harness(vdv: PlantModel) -> AsyncIterator[Harness]:
    sim = InProcessPlantIO(vdv, DT)
    async with sim:
        yield Harness(sim, "inprocess", sim=sim)


@pytest_asyncio.fixture(loop_scope="session")
async def opcua_harness(vdv: PlantModel, server: LayoutServer) -> AsyncIterator[Harness]:
    io = OpcUaPlantIO(vdv, opcua_settings(server.endpoint))
    async with io:
        yield Harness(io, "opcua", srv=server)


@pytest.fixture(params=["inprocess", pytest.param("opcua", marks=pytest.mark.opcua)])
def harness(request: pytest.FixtureRequest) -> Harness:
    """A connected PlantIO of each implementation, with plant-side hooks."""
    return request.getfixturevalue(f"{request.param}_harness")


@pytest.fixture(params=["inprocess", pytest.param("opcua", marks=pytest.mark.opcua)])
def make_io(request: pytest.FixtureRequest, vdv: PlantModel) -> Callable[..., PlantIO]:
    """Factory of a not-yet-connected PlantIO of each implementation: ``make_io(limits=...)``."""
    if request.param == "inprocess":
        return lambda **kw: InProcessPlantIO(vdv, DT, **kw)
    endpoint = request.getfixturevalue("server").endpoint
    return lambda **kw: OpcUaPlantIO(vdv, opcua_settings(endpoint), **kw)


@dataclass(frozen=True)
class Pki:
    """Certificates for security tests (DER certs, PEM keys)."""

    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    trusted_servers: Path
    """Holds the server's certificate."""
    other_servers: Path
    """Holds an unrelated server certificate only."""
    trusted_clients: Path
    """Holds the client's certificate."""
    other_clients: Path
    """Holds an unrelated client certificate only."""


def _make(dirpath: Path, name: str, uri: str, use: ExtendedKeyUsageOID) -> tuple[Path, Path]:
    key = generate_private_key()
    cert = generate_self_signed_app_certificate(
        key,
        uri,
        {},
        [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")],
        [use],
        days=30,
    )
    cpath, kpath = dirpath / f"{name}.der", dirpath / f"{name}_key.pem"
    cpath.write_bytes(cert.public_bytes(Encoding.DER))
    kpath.write_bytes(dump_private_key_as_pem(key))
    return cpath, kpath


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    sc, sk = _make(root, "server", "urn:rtompc:test-server", ExtendedKeyUsageOID.SERVER_AUTH)
    cc, ck = _make(root, "client", "urn:rtompc:client", ExtendedKeyUsageOID.CLIENT_AUTH)
    dirs = {}
    for name in ("trusted_servers", "other_servers", "trusted_clients", "other_clients"):
        dirs[name] = root / name
        dirs[name].mkdir()
    (dirs["trusted_servers"] / "server.der").write_bytes(sc.read_bytes())
    (dirs["trusted_clients"] / "client.der").write_bytes(cc.read_bytes())
    oc, _ = _make(root, "rogue_server", "urn:rtompc:test-server", ExtendedKeyUsageOID.SERVER_AUTH)
    (dirs["other_servers"] / "rogue.der").write_bytes(oc.read_bytes())
    occ, _ = _make(root, "other_client", "urn:other:client", ExtendedKeyUsageOID.CLIENT_AUTH)
    (dirs["other_clients"] / "other.der").write_bytes(occ.read_bytes())
    return Pki(sc, sk, cc, ck, **dirs)
