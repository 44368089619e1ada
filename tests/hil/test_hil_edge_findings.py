"""HIL side of issue 13: its clock is readable by clients (finding 7), its own events are
logged at INFO while asyncua stays quiet, and a port in use is one clear line (finding 8)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys

import numpy as np
import pytest

from hil.clock import ClockConfig, ClockMode
from hil.plc import WatchdogConfig
from hil.server import HilServer, ServerConfig
from hil.simulator import PlantSimulator, SimulatorConfig
from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import OpcUaSettings
from interfaces.plantio import PlantMode, ServerClock, WriteStatus
from plant_models.model import PlantModel
from plant_models.samples import ControlMove

pytestmark = pytest.mark.opcua
DT = 2.0


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        (ClockConfig(ClockMode.LOCKSTEP), ServerClock(True, DT, None)),
        (ClockConfig(ClockMode.REALTIME, speed=20.0), ServerClock(False, DT, 20.0)),
    ],
    ids=["lockstep", "speed-20"],
)
async def test_server_clock_is_read_from_the_hil(
    vdv: PlantModel, endpoint: str, clock: ClockConfig, expected: ServerClock
) -> None:
    """A run can compare its sample time and pacing with what the HIL really does."""
    srv = HilServer(
        PlantSimulator(vdv, SimulatorConfig(sample_time_s=DT)), ServerConfig(endpoint, clock)
    )
    async with srv:
        lockstep = clock.mode is ClockMode.LOCKSTEP
        settings = OpcUaSettings(endpoint, sample_time_s=20.0, lockstep=lockstep)
        async with OpcUaPlantIO(vdv, settings) as io:
            assert await io.server_clock() == expected
            lockstep_s, step_s, speed = await io.server_clock()  # a plain tuple too
            assert (lockstep_s, step_s) == (lockstep, DT)
            assert io.node_problems == []


async def test_hil_logs_its_own_events_and_asyncua_stays_quiet(
    vdv: PlantModel, endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    from rtompc.logs import configure_logging, reset_logging

    sim = PlantSimulator(
        vdv, SimulatorConfig(sample_time_s=DT, watchdog=WatchdogConfig(timeout_s=3 * DT))
    )
    configure_logging(verbosity=1)  # `rtompc -v hil serve`
    caplog.set_level(logging.INFO)
    try:
        srv = HilServer(sim, ServerConfig(endpoint, ClockConfig(ClockMode.LOCKSTEP)))
        async with srv:
            settings = OpcUaSettings(endpoint, sample_time_s=DT, lockstep=True)
            async with OpcUaPlantIO(vdv, settings) as io:
                move = ControlMove(0.0, vdv.nominal.u * np.array([1.1, 1.0]), vdv.u.names)
                for _ in range(3):  # refused three times in LOCAL: logged once
                    assert (await io.write(move)).status is WriteStatus.REJECTED
                assert await io.request_mode(True) is PlantMode.REMOTE
                assert (await io.write(move)).ok
                await io.advance(5)  # no heartbeat: the watchdog trips after 3 steps
                assert await io.mode() is PlantMode.LOCAL
                assert "watchdog tripped" in await io.status_text()
    finally:
        reset_logging()
    hil = [r.getMessage() for r in caplog.records if r.name.startswith("hil")]
    refused = [m for m in hil if "refused" in m]
    assert len(refused) == 2, hil  # f_dil and q_k, once each
    assert all("BadInvalidState" in m for m in refused)
    assert any("mode REMOTE: REMOTE requested by client" in m for m in hil), hil
    assert any("mode LOCAL: watchdog tripped" in m for m in hil), hil
    assert sum("accepted again" in m for m in hil) == 2
    asyncua = [r for r in caplog.records if r.name.startswith("asyncua")]
    assert asyncua == [], [f"{r.name}: {r.getMessage()}" for r in asyncua[:5]]


def test_hil_serve_on_a_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "rtompc",
                "hil",
                "serve",
                "van_de_vusse",
                "--endpoint",
                f"opc.tcp://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert lines == [
        f"rtompc hil: error: endpoint opc.tcp://127.0.0.1:{port}: port {port} on 127.0.0.1 is "
        "already in use (another server running there? choose another --endpoint)"
    ], run.stderr
