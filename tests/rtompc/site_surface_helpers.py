"""A running two-unit site for the operator-surface tests (web console, engine namespace).

:func:`site_stack` builds a :class:`rtompc.site_run.SiteRun` from a ``[[unit]]`` config (real
models, EKF + NMPC, live parameters journaled in one historian file) and connects it; the
tests drive each unit's loop cycle by cycle. ``tanks_over_opcua``: the tank unit's PLC is a
HIL server in this process (OPC UA over a loopback socket, lockstep), so a test can take its
link away by stopping that server.
"""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from hil.clock import ClockConfig, ClockMode
from hil.server import HilServer, ServerConfig
from hil.simulator import PlantSimulator, SimulatorConfig
from plant_models.library import load
from rtompc.config.load import load_site
from rtompc.lifecycle import RunOutcome
from rtompc.site_run import SiteRun
from tests.rtompc.site_helpers import INPROCESS, TANKS, site_text


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"opc.tcp://127.0.0.1:{s.getsockname()[1]}"


def two_tanks_text(historian: str, b_transport: str = INPROCESS) -> str:
    """Two quadruple-tank units with the same signal names: ``tanks_a`` (h1 target 13 cm) and
    ``tanks_b`` (h1 target 12 cm; ``b_transport``), h1 soft-limited in both: a write routed to
    the wrong unit would be accepted there."""
    tanks = TANKS.replace(  # h1 soft-limited: operators may set its limits
        'name = "h1"\nweight = 10.0\n', 'name = "h1"\nweight = 10.0\nl1_penalty = 100.0\n'
    )
    a = tanks.format(tanks_transport=INPROCESS).replace('name = "tanks"', 'name = "tanks_a"')
    b = (
        tanks.format(tanks_transport=b_transport)
        .replace('name = "tanks"', 'name = "tanks_b"')
        .replace('target = "13 cm"', 'target = "12 cm"')
    )
    return f'[historian]\npath = "{historian}"\n' + a + b


def tanks_hil() -> tuple[HilServer, str]:
    """A quadruple-tank HIL server on a free loopback port (lockstep, security none; not yet
    started) and the ``[unit.transport]`` lines of a unit that controls it."""
    endpoint = free_endpoint()
    sim = PlantSimulator(load("quadruple_tank"), SimulatorConfig(sample_time_s=5.0))
    hil = HilServer(sim, ServerConfig(endpoint, ClockConfig(ClockMode.LOCKSTEP)))
    transport = (
        f'kind = "opcua"\nendpoint = "{endpoint}"\nlockstep = true\n'
        'security = "none"\nreconnect_max_delay_s = 0.5'
    )
    return hil, transport


@dataclass
class SiteStack:
    """A connected site and (optionally) the HIL server of its tank unit."""

    run: SiteRun
    hil: HilServer | None
    outcome: RunOutcome | None = None

    async def close(self) -> RunOutcome:
        """Hand back and close the site (once; the context manager does it otherwise)."""
        if self.outcome is None:
            self.outcome = await self.run.close()
        return self.outcome

    def loop(self, unit: str):  # type: ignore[no-untyped-def]
        return self.run.units[unit].loop


@asynccontextmanager
async def site_stack(
    tmp: Path,
    *,
    text: str | None = None,
    tanks_over_opcua: bool = False,
    hil: HilServer | None = None,
) -> AsyncIterator[SiteStack]:
    """The site (default: reactor + tanks of ``site_helpers``), connected, nothing run yet.
    ``hil``: a server ``text`` connects to (started here, stopped at the end)."""
    if text is None:
        tanks = INPROCESS
        if tanks_over_opcua:
            hil, tanks = tanks_hil()
        text = site_text(str(tmp / "site.sqlite"), tanks_transport=tanks)
    cfg = tmp / "site.toml"
    cfg.write_text(text)
    if hil is not None:
        await hil.start()
    run = SiteRun(load_site(cfg), print_every=0, out=lambda _line: None)
    stack = SiteStack(run, hil)
    try:
        await run.start()
        yield stack
    finally:
        await stack.close()
        if hil is not None:
            await hil.stop()


def js_number(v: float | None, digits: int = 4) -> str:
    """A number as the console page prints it (``fmt`` in console.js)."""
    if v is None or not math.isfinite(v):  # sent as null: no limit, no value
        return "-"
    if abs(v) >= 1e4 or (abs(v) < 1e-3 and v != 0):
        mant, exp = f"{v:.3e}".split("e")
        return f"{mant}e{int(exp):+d}"
    return f"{v:.{digits}f}"
