"""A Williams-Otto application config written the way the docs describe it (units in degC and
kg/s, security on, EKF + NMPC + RTO) runs with `rtompc run` against the HIL server in a child
process over loopback, lockstep: SHADOW writes nothing, then ON moves the plant toward its
economic optimum (Marchetti et al. 2009: F_B 4.787 kg/s, T_R 89.70 degC)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from plant_models.library import load
from plant_models.library.williams_otto import C0, PUBLISHED_OPTIMUM
from rtompc.hil_process import HilProcess, free_port, make_secure_bench, write_bench

CONFIG = """
[plant]
name = "williams_otto"

[transport]
kind = "opcua"
endpoint = "{endpoint}"
security = "sign-encrypt"
certificate = "{cert}"
private_key = "{key}"
trust_list = ["{server_cert}"]      # a single certificate file is a trust list too
application_uri = "{uri}"
user = "{user}"
password_env = "RTOMPC_IT_PASSWORD"
lockstep = true
max_rate_per_s = {{ f_b = "0.05 kg/s/min", t_r = "2 degC/min" }}

[loop]
sample_time_s = "1 min"

[mpc]
horizon_steps = 20
[[mpc.cvs]]
name = "x_p"
weight = 10.0
target = 0.1
[[mpc.cvs]]
name = "x_g"
weight = 1.0
target = 0.1
upper = 0.11
l1_penalty = 100.0
[[mpc.mvs]]
name = "f_b"
weight = 1.0
target = "4 kg/s"
move_weight = 1.0
max_rate_per_s = "0.05 kg/s/min"
[[mpc.mvs]]
name = "t_r"
weight = 1.0
target = "75 degC"
move_weight = 1.0
max_rate_per_s = "2 degC/min"

[estimator]
measured = ["x_a", "x_b", "x_c", "x_e", "x_g", "x_p"]
output_disturbances = ["x_p", "x_g"]
measurement_std = {{ x_a = 1e-4, x_b = 1e-4, x_c = 1e-4, x_e = 1e-4, x_g = 1e-4, x_p = 1e-4 }}

[economics]
prices = {{ f_p = 1143.38, f_e = 25.92, f_a = -76.23, f_b = -114.34 }}

[rto]
method = "economic"
every_n = 1
handoff_cvs = ["x_p", "x_g"]
max_rate = {{ f_b = "0.05 kg/s/min", t_r = "2 degC/min" }}
"""

_U = re.compile(r"\| f_b ([-0-9.e+]+) \S+ t_r ([-0-9.e+]+) (\S+) \|")
"""The MVs the plant holds, in a status line of ``rtompc run`` (engineering units)."""


async def _run(cfg: Path, mode: str, steps: int, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtompc",
        "run",
        str(cfg),
        "--mode",
        mode,
        "--steps",
        str(steps),
        "--print-every",
        "1",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    return int(proc.returncode or 0), out.decode()


@pytest.mark.opcua
async def test_williams_otto_config_runs_shadow_then_on_against_the_hil(tmp_path: Path) -> None:
    plant = load("williams_otto")
    u0 = plant.u.vector({"f_b": 4.0, "t_r": 75.0 + C0})
    x0 = plant.steady_state(u=u0).x
    assert x0 is not None
    secure = make_secure_bench(tmp_path / "pki")
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    bench = write_bench(
        tmp_path / "bench.toml",
        "williams_otto",
        {},
        endpoint=endpoint,
        sample_time_s=60.0,
        speed=None,
        secure=secure,
        watchdog_timeout_s=600.0,
        initial_state=plant.x.mapping(x0),
        initial_inputs=plant.u.mapping(u0),
    )
    sec = secure.client
    trusted = Path(str(sec.trusted_server_certificates))
    server_cert = next(trusted.glob("*.der")) if trusted.is_dir() else trusted
    cfg = tmp_path / "wo_app.toml"
    cfg.write_text(
        CONFIG.format(
            endpoint=endpoint,
            cert=sec.certificate,
            key=sec.private_key,
            server_cert=server_cert,
            uri=sec.application_uri,
            user=secure.username,
        )
    )
    env = {**os.environ, "RTOMPC_IT_PASSWORD": secure.password}
    async with HilProcess(bench, log_path=tmp_path / "hil.log"):
        code, shadow = await _run(cfg, "shadow", 4, env)
        assert code == 0, shadow[-3000:]
        assert "writes=0" in shadow, shadow[-1500:]
        code, on = await _run(cfg, "on", 30, env)
        assert code == 0, on[-3000:]
    assert "secret" not in shadow + on and secure.password not in shadow + on
    moves = [
        (float(a), float(b) + (C0 if unit == "degC" else 0.0)) for a, b, unit in _U.findall(on)
    ]
    assert len(moves) == 30
    f_b, t_r = moves[-1]
    opt_f_b, opt_t_r = PUBLISHED_OPTIMUM["f_b"], PUBLISHED_OPTIMUM["t_r"]
    # from (4 kg/s, 75 degC) to (4.787 kg/s, 89.70 degC) in 30 minutes (seen: 4.788, 89.61)
    assert abs(moves[0][1] - opt_t_r) > 10.0
    assert abs(t_r - opt_t_r) < 0.5, moves[-5:]
    assert abs(f_b - opt_f_b) < 0.05, moves[-5:]
    writes = re.search(r"writes=(\d+)", on)
    assert writes is not None and int(writes.group(1)) == 30
