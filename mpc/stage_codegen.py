"""Compile the per-stage functions to C in the background, within a budget, cached by content.

Only the small per-stage functions are compiled (never a whole horizon). Before
gcc starts, the generated source is measured and the compile time and memory estimated
from its size (:data:`SECONDS_PER_BYTE`, measured here with gcc -O1 on a loaded
2-core machine: 1.0 MB of generated C for column A's RK4 stage took 70 s,
0.56 MB for industrial_poly's collocation stage 45 s; the same 1.0 MB took 6 s on
the quiet machine, peak 214 MB resident: :data:`GCC_BYTES_PER_SOURCE_BYTE`); over the
time budget (``MpcConfig.codegen_budget_s``), over :data:`MEMORY_SHARE` of the
memory available, or above :data:`MAX_SOURCE_BYTES` nothing is compiled and the
interpreter stays in use; gcc's address space is capped as a safety net.
Compilation runs in a daemon thread while the controller steps with the CasADi
VM; the solver swaps the compiled functions in at the start of a later step.
Shared libraries are
cached under ``$RTOMPC_CACHE_DIR`` (default ``~/.cache/rtompc``) by the SHA-256
of source and flags, so a second start loads them at once.

On by default (``MpcConfig.codegen = "auto"``, :func:`resolve_codegen`): gcc runs at
the lowest CPU priority, one at a time per process, and is stopped (its output
removed) when the process exits. Measured per step, compiled vs CasADi VM (quiet
machine, 2026-12-03): column A RK4 x 16, N = 30: 29 vs 124 ms (gcc 6 s); do-mpc's
CSTR (whole-horizon QP data, condensing, update): 0.28 vs 0.53 ms (gcc 13 s);
industrial_poly robust: 29.8 vs 30.4 ms (HPIPM dominates). CSparse's LU cannot be
generated as C: with code generation the collocation solve of large models uses
CasADi's sparse QR.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casadi as ca

log = logging.getLogger(__name__)

ENV = "RTOMPC_CODEGEN"
"""Environment variable deciding ``codegen = "auto"``: ``off`` (also ``0``, ``false``,
``no``) keeps every controller interpreted; ``on`` or unset compiles when a C compiler is
found. Test suites and short scripts set ``off``; an explicit ``codegen = true/false``
wins over it."""
_OFF = ("off", "0", "false", "no")
_ON = ("", "on", "1", "true", "yes", "auto")
NICENESS = 19
"""gcc runs at the lowest CPU priority: the control loop keeps its core."""
_GCC_LOCK = threading.Lock()
"""At most one gcc at a time in this process (several controllers, live rebuilds)."""
_RUNNING: dict[subprocess.Popen[bytes], Path] = {}
"""Running gcc processes and the library each writes."""
_warned_env: list[str] = []

SECONDS_PER_BYTE = 7e-5
"""Estimated gcc -O1 time per byte of generated C (see the module docstring)."""
MAX_SOURCE_BYTES = 4_000_000
"""Never compile a larger source (gcc's memory grows with the one generated function)."""
GCC_BYTES_PER_SOURCE_BYTE = 220.0
GCC_BASE_BYTES = 30e6
"""Estimated peak memory of gcc -O1: base + per byte of generated C (measured: 1.0 MB of C,
column A's RK4 stage, peaked at 214 MB resident)."""
MEMORY_SHARE = 0.5
"""gcc starts only when its estimated memory is below this share of the memory available
(``MemAvailable``): a background compile must never push the control loop into swap or the
out-of-memory killer."""
GCC_AS_LIMIT_FACTOR = 4.0
"""gcc's address space is capped (``prlimit --as``) at this multiple of the estimate (at least
512 MiB): a compile that grows past it fails and the function stays interpreted."""
FLAGS = ("-O1", "-fPIC", "-shared")


def _cache_dir() -> Path:
    """Where compiled libraries are cached (``$RTOMPC_CACHE_DIR`` or the user's cache)."""
    root = os.environ.get("RTOMPC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rtompc"
    )
    return Path(root) / "mpc_codegen"


def compiler() -> str | None:
    """The C compiler used (``gcc``, else ``cc``), or None."""
    return shutil.which("gcc") or shutil.which("cc")


def resolve_codegen(setting: bool | str) -> bool:
    """Whether a controller with ``MpcConfig.codegen = setting`` compiles: ``True`` and
    ``False`` as given; ``"auto"``: on when a C compiler is found, unless :data:`ENV` says
    ``off`` (an unknown value of it is warned about once and read as unset)."""
    if isinstance(setting, bool):
        return setting
    env = os.environ.get(ENV, "").strip().lower()
    if env in _OFF:
        return False
    if env not in _ON and env not in _warned_env:
        _warned_env.append(env)
        log.warning("%s=%r: expected on or off; read as unset (auto)", ENV, env)
    if compiler() is None:
        log.info("codegen auto: no C compiler found; the controller runs interpreted")
        return False
    return True


def _kill_running() -> None:
    """At exit: stop a background gcc (it would outlive the process in its own session) and
    remove the library it was writing (never a half-written file in the cache)."""
    for proc, out in list(_RUNNING.items()):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except (OSError, subprocess.SubprocessError):
            pass
        out.unlink(missing_ok=True)


atexit.register(_kill_running)


def _address_space_cap(memory_bytes: float) -> int:
    """gcc's address-space limit (bytes) for an estimated peak of ``memory_bytes``."""
    return int(max(GCC_AS_LIMIT_FACTOR * memory_bytes, 512 * 2**20))


def _run_compiler(cmd: list[str], out: Path, timeout_s: float, memory_bytes: float = 0.0) -> None:
    """Run the compiler (writing ``out``) at :data:`NICENESS` in its own process group, its
    address space capped (:data:`GCC_AS_LIMIT_FACTOR` times ``memory_bytes``) where
    ``prlimit`` exists; kill the whole group on timeout or when this process exits."""
    nice = shutil.which("nice")
    full = [nice, "-n", str(NICENESS), *cmd] if nice else list(cmd)
    prlimit = shutil.which("prlimit")
    if prlimit and memory_bytes > 0:
        full = [prlimit, f"--as={_address_space_cap(memory_bytes)}", *full]
    proc = subprocess.Popen(
        full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    if not nice:
        try:
            os.setpriority(os.PRIO_PROCESS, proc.pid, NICENESS)
        except OSError:
            pass
    _RUNNING[proc] = out
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        _RUNNING.pop(proc, None)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd, stderr=err)


def gcc_memory_estimate(source_bytes: int) -> float:
    """Estimated peak memory of gcc (bytes) for ``source_bytes`` of generated C."""
    return GCC_BASE_BYTES + GCC_BYTES_PER_SOURCE_BYTE * source_bytes


def _mem_available() -> float | None:
    """``MemAvailable`` of /proc/meminfo in bytes (None where there is none)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    return None


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
    memory_bytes: float = 0.0
    """Estimated peak memory of gcc."""


def prepare(fun: ca.Function, budget_s: float, workdir: Path) -> _Job | None:
    """Generate C for ``fun`` (in the calling thread: CasADi is not thread-safe) and decide
    within the budget; None when nothing will be compiled."""
    cc = compiler()
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
    memory = gcc_memory_estimate(len(source))
    avail = _mem_available()
    if avail is not None and memory > MEMORY_SHARE * avail:
        log.info(
            "codegen: %s is %.2f MB of C, estimated %.0f MB of gcc memory with %.0f MB "
            "available: not compiled",
            name,
            len(source) / 1e6,
            memory / 1e6,
            avail / 1e6,
        )
        return None
    return _Job(name, c_path, so_path, estimate, memory)


def _build(job: _Job) -> bool:
    """Run gcc for one job (any thread); True when the library is in place."""
    if job.source is None:
        return True
    cc = compiler()
    assert cc is not None
    part = job.so_path.with_name(f"{job.so_path.name}.{os.getpid()}.part")
    try:
        with _GCC_LOCK:
            if job.so_path.exists():  # built meanwhile (another controller, same content)
                return True
            try:
                job.so_path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning(
                    "codegen: the compiler cache %s is not usable (%s; set RTOMPC_CACHE_DIR to "
                    "a writable folder); %s stays interpreted",
                    job.so_path.parent,
                    exc,
                    job.name,
                )
                return False
            _run_compiler(
                [cc, *FLAGS, str(job.source), "-o", str(part)],
                part,
                max(2 * job.estimate_s, 30.0),
                job.memory_bytes,
            )
            os.replace(part, job.so_path)
        return True
    except (OSError, subprocess.SubprocessError) as exc:
        part.unlink(missing_ok=True)
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
