"""Historian retention (finding 14.6): by age, by size, downsampling of old cycles, in the writer.

On aebdd36 the historian had no retention: it grew by about 513 bytes per cycle
without limit.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from plant_models.errors import ConfigError
from plant_models.library import load
from plant_models.samples import ControlMove, Measurement, Mode, Quality
from rtompc.historian import Historian, HistorianLayout, HistorianRow

VDV = load("van_de_vusse")
DAY = 86400.0
T0 = 1.7e9


def _row(k: int, wall: float) -> HistorianRow:
    names = VDV.y.names + VDV.d.names
    meas = Measurement(18.0 * k, names, np.full(len(names), 1.0 + k), (Quality.GOOD,) * len(names))
    return HistorianRow(
        k,
        18.0 * k,
        Mode.ON,
        measurement=meas,
        wall_time_s=wall,
        move=ControlMove(0.0, np.array([0.004, -300.0])),
        written=[0.004, -300.0],
    )


def _fill(h: Historian, n: int, start: float, step: float, first_cycle: int = 0) -> None:
    from rtompc.historian import row_values

    rid = h.begin_run("run", mode=Mode.ON)
    rows = [row_values(_row(first_cycle + k, start + k * step), h.layout, rid) for k in range(n)]
    for i in range(0, n, 5000):
        h.insert_values(rows[i : i + 5000])
    h.end_run("done", 0)


def test_age_and_downsampling(tmp_path: Path) -> None:
    from rtompc.historian import RetentionSettings

    settings = RetentionSettings(
        max_age_s=7 * DAY, downsample_after_s=1 * DAY, downsample_keep_every=10
    )
    with Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(VDV), retention=settings) as h:
        _fill(h, 1000, T0 - 10 * DAY, 10 * DAY / 1000)  # 10 days, one cycle every 864 s
        now = T0
        report = h.apply_retention(now)
        cycles = [(r["cycle"], r["wall_time_s"]) for r in h.rows()]
        again = h.apply_retention(now)  # idempotent
        assert h.count() == len(cycles)
    walls = np.array([w for _, w in cycles])
    # nothing older than 7 days; older than 1 day only every 10th cycle; the last day complete
    assert walls.min() >= now - 7 * DAY
    old = [c for c, w in cycles if w < now - DAY]
    recent = [c for c, w in cycles if w >= now - DAY]
    assert old and all(c % 10 == 0 for c in old)
    assert recent == list(range(recent[0], 1000)) and len(recent) == 100
    assert report.deleted_by_age == 300 and report.deleted_by_downsampling == 600 - 60
    assert (again.deleted_by_age, again.deleted_by_downsampling) == (0, 0)


def test_size_limit_keeps_the_newest_and_the_file_shrinks(tmp_path: Path) -> None:
    from rtompc.historian import RetentionSettings

    path = tmp_path / "h.sqlite"
    limit = 300_000
    h = Historian(
        path, HistorianLayout.for_model(VDV), retention=RetentionSettings(max_size_bytes=limit)
    )
    _fill(h, 6000, T0, 1.0)
    with h._lock:
        h.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size_before = path.stat().st_size
    report = h.apply_retention(T0 + 6000)
    with h._lock:
        h.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cycles = [r["cycle"] for r in h.rows()]
    h.close()
    assert size_before > 2 * limit
    assert report.used_bytes <= limit and report.deleted_by_size == 6000 - len(cycles)
    assert cycles == list(range(6000 - len(cycles), 6000)) and len(cycles) > 1000
    assert path.stat().st_size <= limit  # pages handed back (auto_vacuum=INCREMENTAL)


def test_writer_applies_retention_while_recording(tmp_path: Path) -> None:
    from rtompc.historian import RetentionSettings

    settings = RetentionSettings(max_age_s=2.0, check_every_s=0.05)
    with Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(VDV), retention=settings) as h:
        h.begin_run("run", mode=Mode.ON)
        rec = h.recorder()
        now = time.time()
        for k in range(50):  # 50 cycles, the first 40 "written" 100 s ago
            rec.append(_row(k, now - 100.0 if k < 40 else now))
        deadline = time.monotonic() + 10.0
        while h.count() != 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r["cycle"] for r in h.rows()] == list(range(40, 50))
        assert rec.health().dropped == 0


def test_settings_are_checked() -> None:
    from rtompc.historian import RetentionSettings

    with pytest.raises(ConfigError, match="historian.retention_max_age_s: expected a number > 0"):
        RetentionSettings(max_age_s=-1.0)
    with pytest.raises(
        ConfigError, match="retention_downsample_keep_every: expected an integer >= 2"
    ):
        RetentionSettings(downsample_after_s=10.0, downsample_keep_every=1)
    assert not RetentionSettings().enabled and RetentionSettings(max_size_bytes=10**6).enabled
