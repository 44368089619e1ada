"""``rtompc sysid``: CSV in, model JSON + report + PNG plots out, summary printed.

The record is a simulated GBN step test of Johansson's quadruple tank at P-
(IEEE TCST 8(3) 2000) with 0.1 mm level noise, written as CSV with ISO
timestamps; the identified gains must match the linearised first-principles
model, and the model file must load through the plant registry.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from plant_models.identification import ExcitationSpec, SignalKind, design_experiment
from plant_models.library import load
from rtompc.cli import main

DT = 5.0
N = 1000


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    plant = load("quadruple_tank")
    du = design_experiment([ExcitationSpec(SignalKind.GBN, 0.3, 60.0)] * 2, N, DT, seed=3,
                           lead_in_samples=20)
    traj = plant.simulate(None, plant.nominal.u + du, DT)
    y = traj.y[:-1] + 1e-4 * np.random.default_rng(0).standard_normal((N, 2))
    start = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    path = tmp_path_factory.mktemp("sysid") / "tank.csv"
    lines = ["timestamp,v1,v2,h1,h2"]
    for k in range(N):
        stamp = (start + timedelta(seconds=DT * k)).isoformat()
        lines.append(f"{stamp},{float(traj.u[k, 0])!r},{float(traj.u[k, 1])!r},{float(y[k, 0])!r},"
                     f"{float(y[k, 1])!r}")
    path.write_text("\n".join(lines) + "\n")
    return plant, path


@pytest.mark.parametrize("method", ["n4sid", "arx"])
def test_sysid_writes_model_report_and_plots(record, tmp_path, capsys, method) -> None:
    plant, path = record
    out = tmp_path / method
    code = main(["sysid", str(path), "--mv", "v1,v2", "--cv", "h1,h2", "--time-column",
                 "timestamp", "--method", method, "--out", str(out), "--json",
                 "--band-samples", "10"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == json.loads((out / "report.json").read_text())
    k = np.array([[summary["gain"][y][u] for u in ("v1", "v2")] for y in ("h1", "h2")])
    np.testing.assert_allclose(k, plant.linearize().gain(), rtol=0.06)
    assert min(summary["fit_percent_held_back"].values()) > 90.0
    assert summary["sample_time_s"] == DT and summary["samples"] == N
    for name in ("fit.png", "step_responses.png", "residuals.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    ident = load(str(out / "model.json"))
    assert ident.u.names == ("v1", "v2") and ident.y.names == ("h1", "h2")
    assert ident.sample_time_s == DT


def test_sysid_text_summary_and_errors(record, tmp_path, capsys) -> None:
    _, path = record
    code = main(["sysid", str(path), "--mv", "v1,v2", "--cv", "h1,h2", "--time-column",
                 "timestamp", "--method", "fopdt", "--band-samples", "0", "--out",
                 str(tmp_path / "f")])
    text = capsys.readouterr().out
    assert code == 0 and "fit on held-back data" in text and "dh1/dv1" in text
    code = main(["sysid", str(path), "--mv", "v1,v3", "--cv", "h1,h2", "--time-column",
                 "timestamp", "--out", str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert code == 2 and "no column for MV 'v3'" in err and "tank.csv" in err
