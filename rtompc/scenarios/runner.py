"""Runs one scenario: builds plant, model, controller, estimator and RTO, closes the loop.

The loop is :class:`rtompc.runtime.ControlLoop` over the scenario's bench
(:mod:`rtompc.scenarios.bench`): the in-process lockstep plant by default, or
the HIL simulator over OPC UA on loopback, lockstep. This module drives the loop
one cycle at a time so timed events land between cycles: fire events ->
``loop.cycle()`` -> record the plant truth -> advance the plant one period (the
plant keeps running through link outages). At the end it computes the KPIs,
checks the criteria and returns a :class:`~rtompc.scenarios.result.ScenarioResult`.
A plant-wide file (``[[unit]]`` tables or ``[site]``) goes to
:mod:`rtompc.scenarios.site_runner`.

:func:`run_scenario_file` never raises: a bad file or a crash becomes an ERROR
result with the reason, which is what the campaign and the pytest plugin need.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from pathlib import Path

from plant_models.errors import EngineError
from rtompc.scenarios.result import ScenarioResult, ScenarioStatus
from rtompc.scenarios.spec import ScenarioSpec
from rtompc.scenarios.unit_run import UnitRun

logger = logging.getLogger(__name__)


async def run_scenario_async(spec: ScenarioSpec) -> ScenarioResult:
    """Run ``spec`` in-process, lockstep; returns its result (raises only for set-up errors)."""
    run = UnitRun(spec)
    await run.start()
    try:
        for _ in range(spec.n_cycles):
            await run.cycle()
    finally:
        await run.stop()
    return run.result()


def _is_site(path: Path) -> bool:
    from rtompc.config.load import read_toml
    from rtompc.config.site_scenario import is_site_scenario

    return is_site_scenario(read_toml(path)[1])


def load_scenario(path: str | Path) -> ScenarioSpec:
    """Read a scenario file through :mod:`rtompc.config` and describe it for the runner."""
    from rtompc.config import load_scenario as load_scenario_config
    from rtompc.config.build_scenario import scenario_spec

    return scenario_spec(load_scenario_config(path))


def run_scenario(spec: ScenarioSpec | str | Path) -> ScenarioResult:
    """Run a scenario (a spec or a file) to completion; raises for set-up errors."""
    if not isinstance(spec, ScenarioSpec):
        if _is_site(Path(spec)):  # several units: the plant-wide runner
            from rtompc.scenarios.site_runner import run_site_scenario

            return run_site_scenario(spec)
        spec = load_scenario(spec)
    return asyncio.run(run_scenario_async(spec))


def run_scenario_file(path: str | Path) -> ScenarioResult:
    """Load and run one scenario file; never raises (errors become an ERROR result)."""
    t0 = time.perf_counter()
    p = Path(path)
    name: str = p.stem
    tags: tuple[str, ...] = ()
    try:
        if _is_site(p):
            from rtompc.config.site_scenario import load_site_scenario
            from rtompc.scenarios.site_runner import run_site_scenario

            site = load_site_scenario(p)
            name, tags = site.name, site.tags
            return run_site_scenario(site)
        spec = load_scenario(p)
        name, tags = spec.name, spec.tags
        return run_scenario(spec)
    except EngineError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001 - one scenario must never stop a campaign
        message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        logger.exception("scenario %s crashed", p)
    return ScenarioResult(
        name=name,
        path=str(p),
        tags=tuple(tags),
        status=ScenarioStatus.ERROR,
        message=message,
        wall_time_s=time.perf_counter() - t0,
    )
