"""Shared helpers of the scenario tests: small, fast scenario files written to tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

TINY_VDV = """
[scenario]
name = "{name}"
description = "tiny Van de Vusse run for tests"
tags = {tags}
duration_s = {duration}

[plant]
name = "van_de_vusse"

[mpc]
horizon_steps = 10
sample_time_s = 20.0
[[mpc.cvs]]
name = "c_b"
weight = 10.0
target = 1090.0
[[mpc.cvs]]
name = "t_r"
upper = 400.0
l1_penalty = 100.0
l2_penalty = 100.0
[[mpc.mvs]]
name = "f_dil"
move_weight = 0.1
[[mpc.mvs]]
name = "q_k"
move_weight = 0.1

[estimator]
measured = ["c_b", "t_r", "t_k"]
output_disturbances = ["c_b"]
{extra}
"""


def tiny_scenario(
    name: str = "tiny", *, duration: float = 400.0, tags: str = '["fast"]', extra: str = ""
) -> str:
    """Text of a short (20 cycles) Van de Vusse scenario with ``extra`` TOML appended."""
    return TINY_VDV.format(name=name, duration=duration, tags=tags, extra=extra)


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """Write a scenario file into tmp_path: ``write_scenario(filename, text)``."""

    def write(filename: str, text: str) -> Path:
        path = tmp_path / filename
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def tiny() -> Callable[..., str]:
    """The :func:`tiny_scenario` text builder."""
    return tiny_scenario
