"""The ``[supervision]`` section: keys with units reach the supervision settings and the
estimator; a wrong name is a problem naming the key path and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtompc.config import build, load_app
from rtompc.config.errors import ConfigProblems

APP = """
[plant]
name = "van_de_vusse"
[loop]
sample_time_s = 20.0
[mpc]
horizon_steps = 10
[[mpc.cvs]]
name = "c_b"
weight = 10.0
target = 1090.0
[[mpc.mvs]]
name = "f_dil"
[[mpc.mvs]]
name = "q_k"
[estimator]
measured = ["c_b", "t_r", "t_k"]
measurement_std = { t_r = 0.2 }
"""

SECTION = """
[supervision]
frozen_samples = 15
cusum_h = 8.0
[[supervision.measurements]]
name = "{measured}"
max_rate_per_s = "2 K/min"
frozen = false
[[supervision.mvs]]
name = "{mv}"
time_constant_s = 30.0
deadband = "0.05 kW"
retry_after_s = "10 min"
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "app.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_without_the_section_are_all_on(tmp_path: Path) -> None:
    cfg = load_app(_write(tmp_path, APP))
    ms = build.models(cfg)
    s = build.supervision(cfg, ms.model)
    assert s.sensors.enabled and s.actuators.enabled and s.sensors.frozen_samples == 10
    v = build.estimator(cfg, ms.model).config
    assert set(v.validation.limits) == {"c_b", "t_r", "t_k"}
    assert v.innovation.signals == ("t_r",)  # its noise is declared


def test_section_keys_with_units_reach_settings_and_estimator(tmp_path: Path) -> None:
    cfg = load_app(_write(tmp_path, APP + SECTION.format(measured="t_r", mv="q_k")))
    ms = build.models(cfg)
    s = build.supervision(cfg, ms.model)
    assert s.sensors.frozen_samples == 15 and s.sensors.innovation.cusum_h == 8.0
    assert s.sensors.signals["t_r"].max_rate_per_s == pytest.approx(2.0 / 60.0)
    q = s.actuators.check("q_k")
    assert (q.time_constant_s, q.deadband, q.retry_after_s) == (30.0, pytest.approx(50.0), 600.0)
    est = build.estimator(cfg, ms.model).config
    assert est.validation.frozen_exempt == ("t_r",)
    assert est.validation.max_rate_per_s["t_r"] == pytest.approx(2.0 / 60.0)


@pytest.mark.parametrize(
    ("measured", "mv", "where", "expected"),
    [
        ("x_q", "q_k", "supervision.measurements[0].name", "one of c_b, t_k, t_r"),
        ("t_r", "q_x", "supervision.mvs[0].name", "one of f_dil, q_k"),
    ],
)
def test_unknown_names_are_problems_at_their_key(tmp_path, measured, mv, where, expected) -> None:
    cfg = load_app(_write(tmp_path, APP + SECTION.format(measured=measured, mv=mv)))
    ms = build.models(cfg)
    with pytest.raises(ConfigProblems) as info:
        build.supervision(cfg, ms.model)
    text = str(info.value)
    assert where in text and expected in text and "app.toml" in text
