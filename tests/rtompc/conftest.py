"""Shared fixtures of the application tests: an in-process application config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

INPROCESS_APP = """
[plant]
name = "van_de_vusse"
params = {{ parameters = "do_mpc" }}

[transport]
kind = "inprocess"

[loop]
sample_time_s = 18.0
mode = "on"

[mpc]
horizon_steps = 10
sample_time_s = 18.0
[[mpc.cvs]]
name = "c_b"
weight = 1.0
target = 700.0
[[mpc.mvs]]
name = "f_dil"
move_weight = 0.01
[[mpc.mvs]]
name = "q_k"
move_weight = 0.01

[estimator]
measured = ["c_b", "t_r", "t_k"]

[historian]
path = "{historian}"
"""


@pytest.fixture
def app_config() -> Callable[[Path | str], str]:
    """Text of an ``rtompc run`` config (Van de Vusse, in-process plant, NMPC + EKF, ON mode)
    whose historian is the given path."""
    return lambda historian: INPROCESS_APP.format(historian=historian)
