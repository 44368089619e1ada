"""``rtompc config init --from-server`` over real loopback OPC UA.

A HIL server (williams_otto, lockstep) is browsed; the proposed tag map must name
the HIL's namespace URI and nodes with their units and data types, the plant must be
recognised from the HIL's plant object, and the written file must pass ``check``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from hil.clock import ClockConfig, ClockMode
from hil.server import HilServer, ServerConfig
from hil.simulator import PlantSimulator, SimulatorConfig
from plant_models.library import load
from rtompc.cli import main

pytestmark = [pytest.mark.opcua, pytest.mark.timeout(180)]

PASSWORD_ENV = "RTOMPC_TEST_HIL_PASSWORD"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _cli(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI in a worker thread (it starts its own event loop)."""

    def run() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        return code, out.getvalue(), err.getvalue()

    return await asyncio.to_thread(run)


@pytest_asyncio.fixture
async def hil() -> AsyncIterator[str]:
    endpoint = f"opc.tcp://127.0.0.1:{_free_port()}"
    sim = PlantSimulator(load("williams_otto"), SimulatorConfig(sample_time_s=60.0))
    async with HilServer(sim, ServerConfig(endpoint, ClockConfig(ClockMode.LOCKSTEP))):
        yield endpoint


async def test_init_from_server_proposes_the_hil_tag_map_and_passes_check_connect(
    hil: str, tmp_path: Path
) -> None:
    out_file = tmp_path / "wo.toml"
    code, out, err = await _cli(["config", "init", "--from-server", hil, "--out", str(out_file)])
    assert code == 0, out + err
    data = tomllib.loads(out_file.read_text())
    tr = data["transport"]
    assert tr["kind"] == "opcua" and tr["endpoint"] == hil and tr["lockstep"] is True
    tags = tr["tags"]
    assert tags["namespace"] == "urn:rtompc:hil"
    assert tags["setpoints"]["f_b"] == {"node": "s=williams_otto.Setpoints.f_b", "unit": "kg/s"}
    assert tags["setpoints"]["t_r"]["unit"] == "K"
    assert tags["actuators"]["t_r"]["node"] == "s=williams_otto.Actuators.t_r"
    assert set(tags["measurements"]) == {
        "x_a",
        "x_b",
        "x_c",
        "x_e",
        "x_g",
        "x_p",
        "f_out",
        "f_p",
        "f_e",
        "f_a",
    }
    assert tags["status"]["step_method"] == {"node": "s=williams_otto.step"}
    assert tags["status"]["mode_request"] == {"node": "s=williams_otto.Status.mode_request"}
    assert data["plant"]["name"] == "williams_otto"  # found from the HIL's plant object
    # the HIL publishes its clock: the control period is a whole number of its 60 s steps
    assert tags["status"]["clock_step_s"] == {"node": "s=williams_otto.Status.step_size_s"}
    assert data["loop"]["sample_time_s"] == 60.0
    assert "Double, SI kg/s" in out_file.read_text()  # data types and units annotated
    code, out, err = await _cli(["config", "check", str(out_file)])
    assert code == 0, out + err
    assert "tag map fits the model" in out
