"""``rtompc demo --case steel-energy``: the steel works as two units on two HIL "PLCs" (gas
network 60 s, three-zone reheating furnace 300 s; one bench process, lockstep, SignAndEncrypt,
the furnace's fuel draw linked to the network's furnace demand), each with its own EKF and
NMPC, plant-wide RTO built from the config's ``[plantwide]`` section. Through a blast-furnace
stop the holders stay inside their safety levels, the slab discharge temperature stays within
5 K of its 1200 degC target, no write fails, both units get plant-wide targets, and the site
KPIs, trend plot and historian runs (units ``steel`` and ``furnace``) are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plant_models.library import steel_energy as se
from rtompc.cli import main
from rtompc.historian import Historian

pytestmark = [pytest.mark.opcua, pytest.mark.slow]  # ~80 s at load 6-10 (HIL process start)


def test_steel_energy_demo_through_a_bf_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "steel"
    code = main(["demo", "--case", "steel-energy", "--out", str(out), "--hours", "1.5"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "steel-energy (bf_stop, plant-wide RTO): 1.5 h, 90 cycles" in text
    assert "power sold" in text and "flared" in text and "natural gas" in text
    assert "furnace median" in text and "per 300 s sample" in text
    k = json.loads((out / "kpis.json").read_text())
    assert k["exit_code"] == 0
    assert k["fallbacks"] == {"steel": 0, "furnace": 0}
    assert k["write_failures"] == {"steel": 0, "furnace": 0}
    for g in se.HOLDERS:  # limits respected through the BF stop (from 0.5 h on)
        assert se.LEVEL_SAFETY[0] <= k[f"level_{g}_min"] <= k[f"level_{g}_max"]
        assert k[f"level_{g}_max"] <= se.LEVEL_SAFETY[1]
    assert k["level_bfg_min"] < 0.45  # the stop drained the BFG holder: the event happened
    assert k["discharge_error_max_k"] < 5.0  # the furnace unit held its discharge target
    # the network covers the furnace's draw: within 2 % of it for one 60 s sample after a
    # furnace step (the draw jumps every 300 s; the network sees it at its next sample)
    assert k["furnace_heat_shortfall_max_mw"] < 2.0
    assert k["rto_runs"] >= 4
    assert k["rto_issued"]["steel"] >= 2 and k["rto_issued"]["furnace"] >= 1
    assert k["furnace_cycles"] == 18
    assert (out / "steel_trends.png").stat().st_size > 10_000
    with Historian(out / "steel.sqlite") as h:
        runs = {r.unit: r for r in h.runs()}
    assert set(runs) == {"steel", "furnace"}
    assert runs["steel"].cycles == 90 and runs["furnace"].cycles == 18
    assert all(r.exit_code == 0 for r in runs.values())
