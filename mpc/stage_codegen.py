"""Compile the per-stage functions to C in the background, within a budget, cached by content.

Only the small per-stage functions are compiled (never a whole horizon). Before
gcc starts, the generated source is measured and the compile time estimated
from its size (:data:`SECONDS_PER_BYTE`, measured here with gcc -O1 on a loaded
2-core machine: 1.0 MB of generated C for column A's RK4 stage took 70 s,
0.56 MB for industrial_poly's collocation stage 45 s); over the budget
(``MpcConfig.codegen_budget_s``) or above :data:`MAX_SOURCE_BYTES` nothing is
compiled and the interpreter stays in use. Compilation runs in a daemon
thread while the controller steps with the CasADi VM; the solver swaps the
compiled functions in at the start of a later step. Shared libraries are
cached under ``$RTOMPC_CACHE_DIR`` (default ``~/.cache/rtompc``) by the SHA-256
of source and flags, so a second start loads them at once.

Measured gains (VM vs compiled, same machine): industrial_poly collocation
stage 5x, column A RK4 stage 1.6x; functions using a sparse linear solver
(collocation of large models) cannot be generated and stay interpreted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casadi as ca

from mpc.solvers import _cache_dir, _run_compiler

log = logging.getLogger(__name__)

SECONDS_PER_BYTE = 7e-5
"""Estimated gcc -O1 time per byte of generated C (see the module docstring)."""
MAX_SOURCE_BYTES = 4_000_000
"""Never compile a larger source (gcc's memory grows with the one generated function)."""
FLAGS = ("-O1", "-fPIC", "-shared")


def _plain(fun: ca.Function) -> ca.Function:
    """``fun`` re-wrapped under its own name (codegen of a Function with its name)."""
    ins: Any = fun.mx_in() if fun.is_a("MXFunction") else fun.sx_in()
    return ca.Function(fun.name(), ins, fun.call(ins), fun.name_in(), fun.name_out())


@dataclass
class _Job:
    name: str
    source: Path | None
    """Generated C (None: the library is in the cache already)."""
    so_path: Path
    estimate_s: float


def prepare(fun: ca.Function, budget_s: float, workdir: Path) -> _Job | None:
    """Generate C for ``fun`` (in the calling thread: CasADi is not thread-safe) and decide
    within the budget; None when nothing will be compiled."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        log.info("codegen: no C compiler; %s stays interpreted", fun.name())
        return None
    name = fun.name()
    try:
        cg = ca.CodeGenerator(f"{name}.c", {"with_header": False})
        cg.add(_plain(fun))
        cg.generate(str(workdir) + os.sep)
    except RuntimeError as exc:
        log.info("codegen: %s cannot be generated (%s); it stays interpreted", name, exc)
        return None
    c_path = workdir / f"{name}.c"
    source = c_path.read_bytes()
    key = hashlib.sha256(source + " ".join([cc, *FLAGS]).encode()).hexdigest()[:24]
    so_path = _cache_dir() / f"{name}_{key}.so"
    estimate = len(source) * SECONDS_PER_BYTE
    if so_path.exists():
        return _Job(name, None, so_path, 0.0)
    if len(source) > MAX_SOURCE_BYTES or estimate > budget_s:
        log.info(
            "codegen: %s is %.2f MB of C, estimated %.0f s of gcc (budget %.0f s): not compiled",
            name,
            len(source) / 1e6,
            estimate,
            budget_s,
        )
        return None
    return _Job(name, c_path, so_path, estimate)


def _build(job: _Job) -> bool:
    """Run gcc for one job (any thread); True when the library is in place."""
    if job.source is None:
        return True
    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc is not None
    try:
        job.so_path.parent.mkdir(parents=True, exist_ok=True)
        part = job.so_path.with_name(f"{job.so_path.name}.{os.getpid()}.part")
        _run_compiler([cc, *FLAGS, str(job.source), "-o", str(part)], max(2 * job.estimate_s, 30.0))
        os.replace(part, job.so_path)
        return True
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("codegen of %s failed (%s); it stays interpreted", job.name, exc)
        return False


class BackgroundCompiler:
    """Generate C now, run gcc in a daemon thread; ``ready()`` loads the libraries once done."""

    def __init__(self, funs: dict[str, ca.Function], budget_s: float) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="rtompc_stage_")
        self._jobs: dict[str, _Job] = {}
        for key, fun in funs.items():
            job = prepare(fun, budget_s, Path(self._tmp.name))
            if job is not None:
                self._jobs[key] = job
        self._built: dict[str, bool] = {}
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtompc-codegen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for key, job in self._jobs.items():
                self._built[key] = _build(job)
        finally:
            self._finished.set()

    def ready(self) -> dict[str, ca.Function] | None:
        """The compiled functions (possibly none) once gcc is done, else None."""
        if not self._finished.is_set():
            return None
        out: dict[str, ca.Function] = {}
        for key, ok in self._built.items():
            if ok:
                try:
                    out[key] = ca.external(self._jobs[key].name, str(self._jobs[key].so_path))
                except RuntimeError as exc:
                    log.warning("codegen: loading %s failed (%s)", key, exc)
        self._tmp.cleanup()
        return out

    def wait(self, timeout: float | None = None) -> bool:
        """Block until gcc is done (tests and benchmarks); True when finished."""
        return self._finished.wait(timeout)
