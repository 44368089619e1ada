"""``codegen = "auto"`` (the default): compiled where a C compiler is found, unless
``RTOMPC_CODEGEN=off``; gcc in the background at the lowest priority, one at a time, never
outliving the process.

The suite itself runs with ``RTOMPC_CODEGEN=off`` (``tests/conftest.py``): these tests set the
variable themselves.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import casadi as ca
import numpy as np
import pytest

from mpc import CvSpec, MpcConfig, MvSpec, NmpcController, stage_codegen
from mpc.stage_codegen import BackgroundCompiler, resolve_codegen
from plant_models.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
HAS_CC = stage_codegen.compiler() is not None
needs_cc = pytest.mark.skipif(not HAS_CC, reason="no C compiler on this machine")


def _cfg(**kw: object) -> MpcConfig:
    args: dict[str, object] = dict(
        horizon_steps=4,
        sample_time_s=18.0,
        cvs=(CvSpec("c_b", weight=1.0, target=600.0),),
        mvs=(MvSpec("f_dil", move_weight=0.004), MvSpec("q_k", move_weight=1e-3)),
    )
    args.update(kw)
    return MpcConfig(**args)  # type: ignore[arg-type]


def test_default_is_auto_and_a_wrong_value_names_the_key():
    assert MpcConfig.__dataclass_fields__["codegen"].default == "auto"
    with pytest.raises(ConfigError, match=r'codegen: expected true, false or "auto", got \'yes\''):
        _cfg(codegen="yes")


def test_auto_follows_the_environment_and_the_compiler(monkeypatch, caplog):
    monkeypatch.setenv("RTOMPC_CODEGEN", "off")
    assert resolve_codegen("auto") is False
    assert resolve_codegen(True) is True  # an explicit setting wins
    monkeypatch.setenv("RTOMPC_CODEGEN", "on")
    assert resolve_codegen("auto") is HAS_CC
    assert resolve_codegen(False) is False
    monkeypatch.setenv("RTOMPC_CODEGEN", "sometimes")
    with caplog.at_level(logging.WARNING, logger="mpc.stage_codegen"):
        assert resolve_codegen("auto") is HAS_CC
    assert "RTOMPC_CODEGEN='sometimes': expected on or off" in caplog.text
    monkeypatch.delenv("RTOMPC_CODEGEN")
    monkeypatch.setattr(stage_codegen, "compiler", lambda: None)
    with caplog.at_level(logging.INFO, logger="mpc.stage_codegen"):
        assert resolve_codegen("auto") is False
    assert "no C compiler found" in caplog.text


def test_the_controller_shows_what_auto_resolved_to(cstr, monkeypatch):
    monkeypatch.setenv("RTOMPC_CODEGEN", "off")
    ctrl = NmpcController(cstr, _cfg())
    assert ctrl.config.codegen is False and ctrl.base_config.codegen is False
    assert ctrl._rti is not None and ctrl._rti._codegen is None


@needs_cc
def test_auto_compiles_in_the_background_and_steps_as_the_vm(cstr, tmp_path, monkeypatch):
    """With the default and no ``RTOMPC_CODEGEN=off``, the controller compiles its functions
    in the background and swaps them in; the steps equal the interpreted controller's."""
    monkeypatch.setenv("RTOMPC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RTOMPC_CODEGEN", "on")
    auto = NmpcController(cstr, _cfg())
    assert auto.config.codegen is True
    assert auto._rti is not None and auto._rti.wait_compiled(600)
    vm = NmpcController(cstr, _cfg(codegen=False))
    moves = []
    for ctrl in (vm, auto):
        x = cstr.nominal.x.copy()
        us = []
        for k in range(3):
            r = ctrl.step(x, u_prev=cstr.nominal.u if k == 0 else None)
            assert r.usable, r.message
            us.append(r.u)
            x = cstr.simulate(x, [r.u], 18.0).x[-1]
        moves.append(np.array(us))
    assert auto._rti.compiled_functions and not vm._rti.compiled_functions
    np.testing.assert_allclose(moves[1], moves[0], rtol=1e-9)
    assert list(Path(tmp_path).rglob("*.part")) == []


def _fun(name: str, n: int) -> ca.Function:
    """A function whose C takes gcc a moment (``n`` nonlinear outputs)."""
    x = ca.SX.sym("x", n)
    y = ca.vertcat(
        *[ca.sin(x[i]) * ca.exp(x[(i * 7 + 3) % n]) + x[(i * 5 + 1) % n] ** 3 for i in range(n)]
    )
    return ca.Function(name, [x], [ca.jacobian(y, x)])


@needs_cc
def test_gcc_runs_niced_and_one_at_a_time(tmp_path, monkeypatch):
    """Three controllers' compilers at once start one gcc at a time, each under ``nice -n 19``
    (the control loop keeps its core)."""
    monkeypatch.setenv("RTOMPC_CACHE_DIR", str(tmp_path))
    real_popen = subprocess.Popen
    commands: list[list[str]] = []
    active, peak = [0], [0]
    lock = threading.Lock()

    class Counting(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, cmd, *a, **kw):
            commands.append(list(cmd))
            super().__init__(cmd, *a, **kw)
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])

        def communicate(self, *a, **kw):
            try:
                return super().communicate(*a, **kw)
            finally:
                with lock:
                    active[0] -= 1

    monkeypatch.setattr(stage_codegen.subprocess, "Popen", Counting)
    compilers = [BackgroundCompiler({"f": _fun(f"f{i}", 12 + i)}, 120.0) for i in range(3)]
    for c in compilers:
        assert c.wait(600)
    done = [c.ready() for c in compilers]
    assert all(d is not None and "f" in d for d in done)
    assert len(commands) == 3 and peak[0] == 1
    which = stage_codegen.shutil.which
    for cmd in commands:
        if which("prlimit"):  # address space capped at 4x the estimated gcc memory
            assert cmd[0] == which("prlimit") and cmd[1].startswith("--as=")
            assert int(cmd[1][5:]) >= 512 * 2**20
            cmd = cmd[2:]
        if which("nice"):
            assert cmd[:3] == [which("nice"), "-n", "19"]
        assert cmd[3 if which("nice") else 0] == stage_codegen.compiler()
    # the compiled function answers as the interpreted one
    x0 = np.linspace(0.1, 1.2, 12)
    assert done[0] is not None
    np.testing.assert_allclose(
        np.asarray(done[0]["f"](x0)), np.asarray(_fun("f0", 12)(x0)), rtol=1e-12
    )


@needs_cc
def test_no_gcc_outlives_the_process(tmp_path):
    """A process that exits while its background gcc still runs takes the gcc with it (it
    ran in its own session: before, it went on compiling after the exit) and leaves no
    half-written library in the cache."""
    cache = tmp_path / "cache"
    script = textwrap.dedent(
        f"""
        import casadi as ca, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from mpc.stage_codegen import BackgroundCompiler
        x = ca.SX.sym("x", 90)
        y = ca.vertcat(*[ca.sin(x[i]) * ca.exp(x[(i * 7 + 3) % 90]) for i in range(90)])
        f = ca.Function("big", [x], [ca.jacobian(ca.jacobian(ca.sumsqr(y), x), x)])
        from mpc import stage_codegen
        BackgroundCompiler({{"big": f}}, 1e6)
        t0 = time.monotonic()
        while not stage_codegen._RUNNING and time.monotonic() - t0 < 60:
            time.sleep(0.01)
        time.sleep(0.3)
        print("exiting, gcc running:", bool(stage_codegen._RUNNING), flush=True)
        """
    )
    env = {**os.environ, "RTOMPC_CACHE_DIR": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "exiting, gcc running: True" in out.stdout
    time.sleep(1.0)
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    left = [line for line in ps.splitlines() if str(cache) in line]
    assert left == [], left
    assert list(cache.rglob("*.so")) == []
    assert [p for p in cache.rglob("*") if p.is_file()] == []


_APP = """[plant]
name = "van_de_vusse"
[transport]
kind = "inprocess"
[loop]
sample_time_s = 10
[mpc]
horizon_steps = 5
{line}
[mpc.cvs.c_b]
weight = 1.0
target = "1.09 mol/l"
"""


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("", "auto"),
        ("codegen = true", True),
        ("codegen = false", False),
        ('codegen = "auto"', "auto"),
    ],
)
def test_app_config_codegen(tmp_path, line, want):
    from rtompc.config import build, load_app

    path = tmp_path / "app.toml"
    path.write_text(_APP.format(line=line), encoding="utf-8")
    cfg, _ = build.mpc_config(load_app(path))
    assert cfg.codegen == want and type(cfg.codegen) is type(want)


def test_app_config_codegen_wrong_value_is_named(tmp_path):
    from rtompc.config import load_app

    path = tmp_path / "app.toml"
    path.write_text(_APP.format(line='codegen = "sometimes"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"app.toml:9: mpc.codegen: .*auto"):
        load_app(path)


def test_no_gcc_when_its_memory_would_not_fit(tmp_path, monkeypatch, caplog):
    """gcc's memory is estimated from the generated C before it starts: above half of the
    memory available, nothing is compiled (a background compile must not push the control
    loop into the out-of-memory killer)."""
    monkeypatch.setenv("RTOMPC_CACHE_DIR", str(tmp_path))
    fun = _fun("g", 12)
    src = tmp_path / "probe"
    src.mkdir()
    assert stage_codegen.prepare(fun, 120.0, src) is not None  # fits on this machine
    monkeypatch.setattr(stage_codegen, "_mem_available", lambda: 40e6)
    with caplog.at_level(logging.INFO, logger="mpc.stage_codegen"):
        assert stage_codegen.prepare(fun, 120.0, src) is None
    assert "MB of gcc memory with 40 MB available: not compiled" in caplog.text


@needs_cc
@pytest.mark.skipif(not stage_codegen.shutil.which("prlimit"), reason="no prlimit (util-linux)")
def test_gcc_over_its_memory_cap_fails_and_the_function_stays_interpreted(
    tmp_path, monkeypatch, caplog
):
    """gcc runs under ``prlimit --as``: when a compile grows past the cap (lowered here to
    20 MB) it fails, the function stays interpreted with a warning, and no half-written
    library is left."""
    monkeypatch.setenv("RTOMPC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(stage_codegen, "_address_space_cap", lambda memory_bytes: 20_000_000)
    with caplog.at_level(logging.WARNING, logger="mpc.stage_codegen"):
        comp = BackgroundCompiler({"f": _fun("capped", 12)}, 120.0)
        assert comp.wait(120)
        assert comp.ready() == {}
    assert "codegen of capped failed" in caplog.text
    assert [p for p in tmp_path.rglob("*") if p.suffix in (".so", ".part")] == []


@needs_cc
def test_an_unusable_cache_folder_is_named_and_the_controller_steps(
    cstr, tmp_path, monkeypatch, caplog
):
    """A cache folder that cannot be created (read-only home of a service account) leaves
    the controller interpreted, with a warning naming the folder and RTOMPC_CACHE_DIR."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RTOMPC_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setenv("RTOMPC_CODEGEN", "on")
    with caplog.at_level(logging.WARNING, logger="mpc.stage_codegen"):
        ctrl = NmpcController(cstr, _cfg())
        assert ctrl._rti is not None and ctrl._rti.wait_compiled(120)
        r = ctrl.step(cstr.nominal.x, u_prev=cstr.nominal.u)
        r = ctrl.step(cstr.nominal.x)
    assert r.usable and ctrl._rti.compiled_functions == []
    assert f"the compiler cache {blocker / 'cache' / 'mpc_codegen'} is not usable" in caplog.text
    assert "set RTOMPC_CACHE_DIR to a writable folder" in caplog.text
