"""``rtompc demo --case steel-energy``: the steel works gas network on a HIL "PLC" over
SignAndEncrypt OPC UA (child process, lockstep), EKF + NMPC, plant-wide RTO through the
coordinator. Through a blast-furnace stop the holders stay inside their safety levels, the
slab discharge temperature stays on target, no write fails, and the site KPIs, trend plot and
historian run (unit ``steel``) are written."""

from __future__ import annotations

from pathlib import Path

import pytest

from plant_models.library import steel_energy as se
from rtompc.cli import main
from rtompc.historian import Historian

pytestmark = [pytest.mark.opcua, pytest.mark.slow]  # ~60 s at load 10-20 (HIL process start)


def test_steel_energy_demo_through_a_bf_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "steel"
    code = main(["demo", "--case", "steel-energy", "--out", str(out), "--hours", "1.5"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "steel-energy (bf_stop, plant-wide RTO): 1.5 h, 90 cycles" in text
    assert "power sold" in text and "flared" in text and "natural gas" in text
    import json

    k = json.loads((out / "kpis.json").read_text())
    assert k["fallbacks"] == 0 and k["write_failures"] == 0 and k["exit_code"] == 0
    for g in se.HOLDERS:  # limits respected through the BF stop (from 0.5 h on)
        assert se.LEVEL_SAFETY[0] <= k[f"level_{g}_min"] <= k[f"level_{g}_max"]
        assert k[f"level_{g}_max"] <= se.LEVEL_SAFETY[1]
    assert k["level_bfg_min"] < 0.45  # the stop drained the BFG holder: the event happened
    assert k["discharge_error_max_k"] < 10.0
    assert k["rto_runs"] >= 4 and k["rto_issued"] >= 2  # plant-wide targets handed over
    assert (out / "steel_trends.png").stat().st_size > 10_000
    with Historian(out / "steel.sqlite") as h:
        (run,) = h.runs()
        assert run.unit == "steel" and run.cycles == 90 and run.exit_code == 0
