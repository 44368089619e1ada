"""Campaigns: run many scenario files in parallel and collect their results.

One code path for both back ends: scenarios are submitted to a
``concurrent.futures.Executor`` — a local process pool by default, or the
executor of a Dask distributed client when a scheduler address is given
(``distributed.Client(address).get_executor()``, whose futures are standard
``concurrent.futures.Future`` objects). Each task is
:func:`~rtompc.scenarios.runner.run_scenario_file`, which never raises; a lost
worker or any other failure of a future becomes an ERROR result, so one bad
scenario never stops a campaign.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plant_models.errors import ConfigError
from rtompc.scenarios.result import ScenarioResult, ScenarioStatus
from rtompc.scenarios.runner import run_scenario_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignResult:
    """Results of a campaign, in the order of the scenario files."""

    results: tuple[ScenarioResult, ...]
    """One result per scenario."""
    wall_time_s: float
    """Wall-clock time of the whole campaign, seconds."""
    workers: int
    """Number of parallel workers used."""
    backend: str
    """``local`` (process pool) or the Dask scheduler address."""

    @property
    def passed(self) -> bool:
        """True when every scenario passed."""
        return all(r.passed for r in self.results)

    def counts(self) -> dict[str, int]:
        """Number of scenarios per status."""
        return {s.value: sum(r.status is s for r in self.results) for s in ScenarioStatus}

    @property
    def throughput_per_min(self) -> float:
        """Scenarios per minute of wall time."""
        return 60.0 * len(self.results) / self.wall_time_s if self.wall_time_s > 0 else 0.0


def _tags_of(path: Path) -> tuple[str, ...]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        tags = data.get("scenario", {}).get("tags", [])
        return tuple(str(t) for t in tags) if isinstance(tags, list) else ()
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return ()  # the run reports the broken file


def discover(paths: Iterable[str | Path], tags: Sequence[str] = ()) -> list[Path]:
    """Scenario files under the given files/directories (sorted), optionally with any of ``tags``.

    Under a directory, a TOML file without a ``[scenario]`` table (a site config that
    plant-wide scenarios name) is left out. A file that cannot be read is kept, so its run
    reports why.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():  # TOML files that parse without a [scenario] table (site configs) are not
            found = sorted(f for f in p.rglob("*.toml") if f.name != "pyproject.toml")
            files.extend(f for f in found if _unreadable(f) or _has_scenario(f))
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"{p}: no such scenario file or directory")
    if tags:
        files = [f for f in files if _unreadable(f) or set(_tags_of(f)) & set(tags)]
    return files


def _has_scenario(path: Path) -> bool:
    try:
        return isinstance(tomllib.loads(path.read_text(encoding="utf-8")).get("scenario"), dict)
    except (OSError, tomllib.TOMLDecodeError):
        return True


def _unreadable(path: Path) -> bool:
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
        return False
    except (OSError, tomllib.TOMLDecodeError):
        return True


def _error(path: Path, message: str) -> ScenarioResult:
    return ScenarioResult(
        name=path.stem,
        path=str(path),
        tags=_tags_of(path),
        status=ScenarioStatus.ERROR,
        message=message,
    )


def _run_on(
    executor: cf.Executor,
    files: Sequence[Path],
    progress: Callable[[int, int, ScenarioResult], None] | None,
) -> list[ScenarioResult]:
    futures: dict[cf.Future[Any], int] = {
        executor.submit(run_scenario_file, str(f)): i for i, f in enumerate(files)
    }
    results: list[ScenarioResult | None] = [None] * len(files)
    done = 0
    for fut in cf.as_completed(futures):
        i = futures[fut]
        try:
            res = fut.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker fails one scenario only
            res = _error(files[i], f"worker failed: {type(exc).__name__}: {exc}")
        results[i] = res
        done += 1
        if progress is not None:
            progress(done, len(files), res)
    return [r if r is not None else _error(files[i], "no result") for i, r in enumerate(results)]


def run_campaign(
    paths: Iterable[str | Path],
    *,
    workers: int = 1,
    scheduler: str | None = None,
    tags: Sequence[str] = (),
    progress: Callable[[int, int, ScenarioResult], None] | None = None,
    worker_init: Callable[..., None] | None = None,
    worker_init_args: tuple[Any, ...] = (),
) -> CampaignResult:
    """Run every scenario under ``paths`` on ``workers`` processes or on a Dask cluster.

    ``progress(done, total, result)`` is called as results arrive; ``worker_init`` (a
    module-level function, e.g. the CLI's logging set-up) runs once in each local worker.
    """
    if workers < 1:
        raise ConfigError(f"workers: expected >= 1, got {workers}")
    files = discover(paths, tags)
    t0 = time.perf_counter()
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError(
                "--scheduler needs the 'distributed' package (pip install dask distributed)"
            ) from None
        with Client(scheduler) as client:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            results = _run_on(client.get_executor(pure=False), files, progress)
        backend = scheduler
    else:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=worker_init, initargs=worker_init_args
        ) as pool:
            results = _run_on(pool, files, progress)
        backend = "local"
    return CampaignResult(tuple(results), time.perf_counter() - t0, workers, backend)
