"""Per-tag write semantics in the tag map and the application config (issue 13, finding 3):
deadband, read-back tolerance and integer rounding per setpoint, in the tag's unit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from interfaces.limits import MoveLimits
from interfaces.mv_writes import MvRule, judge_write, plan_write
from interfaces.plantio import MvWriteStatus, WriteStatus
from interfaces.tagmap import TagMap
from plant_models.errors import ConfigError
from plant_models.library import load

TABLE = """
[plant]
name = "van_de_vusse"
[transport]
kind = "opcua"
endpoint = "opc.tcp://127.0.0.1:4840"
[transport.tags]
namespace = "urn:plc"
measurements = {{ t_r = "s=TR" }}
[transport.tags.setpoints]
f_dil = {{ node = "s=F_SP", unit = "1/h", {extra} }}
q_k = "s=Q_SP"
[loop]
sample_time_s = 10
"""


def test_config_keys_reach_the_tag(tmp_path: Path) -> None:
    from rtompc.config import build, load_app

    path = tmp_path / "app.toml"
    path.write_text(
        TABLE.format(extra="deadband = 0.5, readback_tolerance = 0.01, integer = true"),
        encoding="utf-8",
    )
    cfg = load_app(path)
    model = load("van_de_vusse")
    tag = build.tag_map(cfg, model).setpoints[0]
    assert (tag.deadband, tag.readback_tolerance, tag.integer) == (0.5, 0.01, True)
    path.write_text(TABLE.format(extra="deadband = -1"), encoding="utf-8")
    with pytest.raises(Exception, match="deadband"):
        load_app(path)


def test_write_keys_only_on_setpoints_and_checked() -> None:
    vdv = load("van_de_vusse")
    base = {"namespace": "urn:plc", "setpoints": {"f_dil": "s=F", "q_k": "s=Q"}}
    with pytest.raises(ConfigError, match=r"measurements.t_r: unknown key\(s\) deadband"):
        TagMap.from_mapping({**base, "measurements": {"t_r": {"node": "s=T", "deadband": 1}}}, vdv)
    with pytest.raises(ConfigError, match=r"setpoints.f_dil.readback_tolerance: expected a number"):
        TagMap.from_mapping(
            {
                **base,
                "setpoints": {"f_dil": {"node": "s=F", "readback_tolerance": "x"}, "q_k": "s=Q"},
            },
            vdv,
        )


def test_rounding_stays_inside_limits_and_deadband_in_tag_units() -> None:
    vdv = load("van_de_vusse")
    tags = TagMap.from_mapping(
        {
            "namespace": "urn:plc",
            "setpoints": {
                "f_dil": {"node": "s=F", "unit": "1/h", "integer": True, "deadband": 2},
                "q_k": {"node": "s=Q", "unit": "kW"},
            },
        },
        vdv,
    )
    rules = [MvRule.from_tag(t) for t in tags.setpoints]
    limits = MoveLimits(
        vdv.u.names,
        np.array([5.0, -8500.0]) / 3600 * [1, 1e3],
        np.array([20.4 / 3600, 0.0]),
        np.full(2, np.inf),
    )
    reference = np.array([10.0 / 3600, -1000e3 / 3600])
    # 20.3 1/h rounds to 20 (20.4 is the upper limit: never rounded up past it)
    plan = plan_write(limits, rules, np.array([20.3 / 3600, -1200e3 / 3600]), reference, 10.0)
    assert plan.raw[0] == 20.0 and plan.skipped == (None, None)
    plan = plan_write(limits, rules, np.array([25.0 / 3600, -1200e3 / 3600]), reference, 10.0)
    assert plan.raw[0] == 20.0  # clamped to 20.4, rounded down inside the limit
    # 11.4 1/h rounds to 11: a change of 1 1/h < deadband 2: not sent
    plan = plan_write(limits, rules, np.array([11.4 / 3600, -1200e3 / 3600]), reference, 10.0)
    assert plan.skipped[0] is MvWriteStatus.DEADBAND and np.isnan(plan.written[0])
    res = judge_write(
        plan,
        time_s=0.0,
        names=vdv.u.names,
        requested=np.array([11.4 / 3600, -1200e3 / 3600]),
        reference=reference,
        rules=rules,
        codes=["", "Good"],
        readback=np.array([10.0 / 3600, -1200e3 / 3600]),
    )
    assert res.status is WriteStatus.VERIFIED
    assert res.mv_status == (MvWriteStatus.DEADBAND, MvWriteStatus.ACCEPTED)
    np.testing.assert_allclose(res.held, [10.0 / 3600, -1200e3 / 3600])
