"""From a unit to a controller through the command line only (issue 18's end-to-end test).

1. ``rtompc hil serve`` runs the nonlinear quadruple tank (Johansson, IEEE TCST
   8(3) (2000) 456-465, P-) in a child process on loopback, lockstep, 5 s
   samples, 0.1 mm level noise.
2. ``rtompc steptest APP.toml PLAN.toml`` plays GBN +-0.3 V on both pumps for
   100 min over OPC UA; the plan caps h1 at 14 cm with a 3 mm guard band, which
   the levels reach when both pumps are high for a while: the test must back off
   at least once (3 times at this seed) and still complete. Every sample is in
   the historian as a run of kind "steptest", back-off samples flagged.
   ``--preview`` first draws the plan and predicts the guard-band entries from
   the first-principles model without touching the plant (the plant time does
   not move).
3. ``rtompc sysid --historian H --run ID`` identifies from that run, skipping the
   back-off samples: order 4, gains within 5 % of the linearised first-principles
   model (at 0.3 V the levels move +-2 cm, so the nonlinear plant's gains differ a
   little from the linearisation), both zeros within 8e-3 1/s of the model's
   -0.0597 / -0.0175 1/s, and an HTML report with gains, intervals and RGA.
4. ``rtompc run`` with the identified model file named in ``[plant]`` (NMPC +
   EKF with output disturbances on h1, h2) tracks two level setpoint steps on
   the nonlinear plant: the mean over the last 10 samples of each step is within
   0.3 mm of the setpoint.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plant_models.library import load
from rtompc.hil_process import HilProcess, free_port, write_bench

DT = 5.0
OFFSET_TOL = 3e-4  # m

APP = """
[plant]
name = "{plant}"

[transport]
kind = "opcua"
endpoint = "{endpoint}"
lockstep = true
hil_plant = "quadruple_tank"

[loop]
sample_time_s = 5.0
mode = "on"

[historian]
path = "{historian}"
"""

CONTROL = """
[mpc]
horizon_steps = 30
sample_time_s = 5.0
[[mpc.cvs]]
name = "h1"
weight = 100.0
target = {h1}
[[mpc.cvs]]
name = "h2"
weight = 100.0
target = {h2}
[[mpc.mvs]]
name = "v1"
move_weight = 10.0
lower = 0.0
upper = 6.0
[[mpc.mvs]]
name = "v2"
move_weight = 10.0
lower = 0.0
upper = 6.0

[estimator]
measured = ["h1", "h2"]
output_disturbances = ["h1", "h2"]
measurement_std = {{ h1 = 1e-4, h2 = 1e-4 }}
"""

PLAN = """
duration = "100 min"
lead_in = "100 s"
moves = "simultaneous"
seed = 3

[[mv]]
name = "v1"
signal = "gbn"
amplitude = "0.3 V"
min_switch_time = "30 s"
mean_switch_time = "60 s"

[[mv]]
name = "v2"
signal = "gbn"
amplitude = "300 mV"
min_switch_time = "30 s"
mean_switch_time = "1 min"

[[cv]]
name = "h1"
lower = "5 cm"
upper = "14 cm"
guard_band = "3 mm"

[[cv]]
name = "h2"
lower = "5 cm"
upper = "19 cm"
guard_band = "5 mm"
"""


def _rtompc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [sys.executable, "-m", "rtompc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, f"rtompc {' '.join(args)}: {res.stdout[-2000:]}{res.stderr[-3000:]}"
    return res


@pytest.mark.slow
@pytest.mark.opcua
async def test_steptest_sysid_run_over_opcua(tmp_path: Path) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    bench = write_bench(
        tmp_path / "bench.toml",
        "quadruple_tank",
        {},
        endpoint=endpoint,
        sample_time_s=DT,
        speed=None,
        secure=None,
        noise_std={"h1": 1e-4, "h2": 1e-4},
        seed=1,
    )
    (tmp_path / "plan.toml").write_text(PLAN)
    (tmp_path / "app.toml").write_text(
        APP.format(plant="quadruple_tank", endpoint=endpoint, historian="test.sqlite")
    )
    plant = load("quadruple_tank")
    lin = plant.linearize()
    async with HilProcess(bench, log_path=tmp_path / "hil.log"):
        pre = _rtompc("steptest", "app.toml", "plan.toml", "--preview", "plan.png", cwd=tmp_path)
        assert "h1: predicted" in pre.stdout and "guard-band entries 3" in pre.stdout
        assert (tmp_path / "plan.png").stat().st_size > 10_000
        assert not (tmp_path / "test.sqlite").exists()  # the preview touched nothing

        res = _rtompc(
            "steptest", "app.toml", "plan.toml", "--json", "--print-every", "0", cwd=tmp_path
        )
        summary = json.loads(res.stdout[res.stdout.index("{") :])
        assert summary["status"] == "completed"
        assert summary["back_offs"] >= 1
        run_id = summary["run_id"]
        with sqlite3.connect(tmp_path / "test.sqlite") as con:
            kind, reason = con.execute(
                "SELECT kind, exit_reason FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            flagged = con.execute(
                "SELECT COUNT(*) FROM cycles WHERE run_id = ? AND "
                "json_extract(extra, '$.backing_off')",
                (run_id,),
            ).fetchone()[0]
            top = con.execute(
                "SELECT MAX(meas__h1) FROM cycles WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
        assert kind == "steptest" and reason.startswith("step test completed")
        assert flagged > 0
        assert top < 0.14  # the limit held (the guard band is 3 mm)

        ident = _rtompc(
            "sysid",
            "--historian",
            "test.sqlite",
            "--run",
            str(run_id),
            "--out",
            "ident",
            "--json",
            cwd=tmp_path,
        )
        report = json.loads(ident.stdout)
        assert report["order"] == 4
        assert report["rows_backing_off_skipped"] == flagged
        gain = np.array([[report["gain"][y][u] for u in ("v1", "v2")] for y in ("h1", "h2")])
        np.testing.assert_allclose(gain, lin.gain(), rtol=0.05)
        zeros = np.sort([z[0] for z in report["zeros_continuous_1_per_s"]])
        np.testing.assert_allclose(zeros, np.sort(lin.transmission_zeros().real), atol=8e-3)
        page = (tmp_path / "ident" / "report.html").read_text()
        assert "Relative gain array" in page and "Condition number" in page

        y0 = np.array([report["operating_point"]["y"][n] for n in ("h1", "h2")])
        setpoints = [y0 + [0.010, 0.005], y0 + [-0.005, 0.010]]
        for k, sp in enumerate(setpoints):
            cfg = tmp_path / f"run{k}.toml"
            cfg.write_text(
                APP.format(plant="ident/model.json", endpoint=endpoint, historian=f"run{k}.sqlite")
                + CONTROL.format(h1=sp[0], h2=sp[1])
            )
            _rtompc("run", cfg.name, "--steps", "100", "--print-every", "0", cwd=tmp_path)
            with sqlite3.connect(tmp_path / f"run{k}.sqlite") as con:
                h = np.array(
                    con.execute("SELECT meas__h1, meas__h2 FROM cycles ORDER BY cycle").fetchall(),
                    dtype=float,
                )
                status = {r[0] for r in con.execute("SELECT DISTINCT write_status FROM cycles")}
            assert status == {"verified"}
            offset = np.abs(h[-10:].mean(axis=0) - sp)
            print(f"setpoint {k}: offset {offset * 1e3} mm")
            assert np.all(offset < OFFSET_TOL), f"setpoint {k}: offset {offset * 1e3} mm"
