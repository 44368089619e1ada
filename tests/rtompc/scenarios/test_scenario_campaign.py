"""Campaigns: local process pool and a Dask LocalCluster through the same code path."""

from __future__ import annotations

from pathlib import Path

import pytest

from plant_models.errors import ConfigError
from rtompc.scenarios.campaign import discover, run_campaign
from rtompc.scenarios.result import ScenarioStatus

PASS = '\n[[criterion]]\nkpi = "service_factor"\nop = ">="\nthreshold = 0.9\n'
FAIL = '\n[[criterion]]\nkpi = "iae.c_b"\nop = "<="\nthreshold = 0.0\n'


@pytest.fixture
def suite(tmp_path: Path, tiny) -> Path:
    d = tmp_path / "suite"
    (d / "sub").mkdir(parents=True)
    (d / "a_pass.toml").write_text(tiny("a_pass", duration=200.0, extra=PASS))
    (d / "b_fail.toml").write_text(tiny("b_fail", duration=200.0, tags='["nightly"]', extra=FAIL))
    (d / "sub" / "c_broken.toml").write_text("[scenario\n")
    (d / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    return d


def test_discover_and_filter(suite: Path) -> None:
    names = [p.name for p in discover([suite])]
    assert names == ["a_pass.toml", "b_fail.toml", "c_broken.toml"]
    fast = [p.name for p in discover([suite], tags=["fast"])]
    assert fast == ["a_pass.toml", "c_broken.toml"], "an unreadable file is kept to report it"
    with pytest.raises(ConfigError, match="no such scenario"):
        discover([suite / "missing"])


def _check(campaign) -> None:
    by_name = {r.name: r for r in campaign.results}
    assert [r.path.rsplit("/", 1)[-1] for r in campaign.results] == [
        "a_pass.toml",
        "b_fail.toml",
        "c_broken.toml",
    ]
    assert by_name["a_pass"].status is ScenarioStatus.PASSED
    assert by_name["b_fail"].status is ScenarioStatus.FAILED
    assert "iae.c_b" in by_name["b_fail"].message
    assert by_name["c_broken"].status is ScenarioStatus.ERROR
    assert "not valid TOML" in by_name["c_broken"].message
    assert campaign.counts() == {"passed": 1, "failed": 1, "error": 1}
    assert not campaign.passed and campaign.throughput_per_min > 0


@pytest.mark.slow
def test_local_process_pool_runs_everything_despite_failures(suite: Path) -> None:
    seen = []
    campaign = run_campaign([suite], workers=2, progress=lambda d, n, r: seen.append((d, n)))
    _check(campaign)
    assert campaign.backend == "local" and campaign.workers == 2
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.slow
def test_dask_local_cluster_same_code_path(suite: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        campaign = run_campaign([suite], scheduler=cluster.scheduler_address)
    _check(campaign)
    assert campaign.backend.startswith("inproc://") or campaign.backend.startswith("tcp://")
