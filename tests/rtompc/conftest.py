"""Shared fixtures of the application tests: an in-process application config."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def _mount_tmpfs(where: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (a real small or read-only file system);
    skips the test unless it runs as root and may mount."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir()
    opts = f"size={size}" + (",ro" if read_only else "")
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, f"rtompc-{uuid.uuid4().hex[:8]}", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def tmpfs() -> Callable[..., contextlib.AbstractContextManager[Path]]:
    """``tmpfs(path, "2m", read_only=False)``: a context manager mounting a small tmpfs."""
    return _mount_tmpfs
