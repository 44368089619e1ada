"""Step-test plans in engineering units, pause/resume/stop, and identification data from the
historian, on the in-process quadruple tank (Johansson, IEEE TCST 8(3) 2000, P-).

- A plan file in engineering units resolves to SI deviations: "300 mV" is 0.3 V,
  "5 cm" is 0.05 m; one-at-a-time plans move each MV only in its own slot; a GBN
  holds every value at least the minimum switch time; problems name file, line
  and key.
- :class:`StepTestControl`: a pause returns the MVs to their start values and
  freezes the plan position; resume continues where it stopped; stop ends the
  test (status STOPPED) and the MVs are back at their start values.
- ``historian_data`` reads a step-test run with back-offs from the historian,
  skips exactly the back-off rows and cuts the record there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from interfaces.inprocess import InProcessPlantIO
from plant_models.errors import ConfigError
from plant_models.library import load
from rtompc.historian import Historian, HistorianLayout
from rtompc.step_plan import load_plan
from rtompc.step_test import StepTestControl, StepTestProgress, StepTestStatus, run_step_test
from rtompc.sysid_source import historian_data

DT = 5.0

PLAN = """
duration = "{duration}"
lead_in = "50 s"
moves = "{moves}"
seed = 2

[[mv]]
name = "v1"
signal = "gbn"
amplitude = "300 mV"
min_switch_time = "30 s"

[[mv]]
name = "v2"
signal = "prbs"
amplitude = 0.3
min_switch_time = "0.5 min"

[[cv]]
name = "h1"
lower = "5 cm"
upper = "{upper}"
guard_band = "3 mm"
"""


@pytest.fixture(scope="module")
def tank():
    return load("quadruple_tank")


def _write(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_plan_units_slots_and_switch_times(tank, tmp_path: Path) -> None:
    p = _write(tmp_path, PLAN.format(duration="50 min", moves="one_at_a_time", upper="19 cm"))
    plan = load_plan(p, tank, sample_time_s=DT)
    dev = plan.deviations
    assert dev.shape == (600, 2) and plan.duration_s == 3000.0
    assert set(np.unique(np.abs(dev[10:])).round(12)) == {0.0, 0.3}
    assert np.all(dev[:10] == 0.0)  # 50 s lead-in
    half = 10 + (600 - 10) // 2
    assert np.all(dev[half:, 0] == 0.0) and np.all(dev[:half, 1] == 0.0)
    assert np.any(dev[10:half, 0] != 0.0) and np.any(dev[half:, 1] != 0.0)
    for j in range(2):  # every hold lasts a multiple of the 6-sample minimum switch time
        col = dev[10:half, 0] if j == 0 else dev[half:, 1]
        edges = np.flatnonzero(np.diff(col)) + 1
        assert np.all(np.diff(edges) >= 6)
    (lim,) = plan.settings.limits
    assert (lim.name, lim.lower, lim.upper, lim.margin) == ("h1", 0.05, 0.19, pytest.approx(3e-3))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('name = "v2"', 'name = "v9"'), r"plan.toml:\d+: mv\[1\].name: 'v9' is not an MV"),
        (('amplitude = "300 mV"', 'amplitude = "300 mm"'), r"mv\[0\].amplitude"),
        (('lead_in = "50 s"', 'lead_in = "50 kg"'), r"lead_in"),
        (('guard_band = "3 mm"', 'gard_band = "3 mm"'), "did you mean 'guard_band'"),
        (('min_switch_time = "30 s"', 'min_switch_time = "1 s"'), "at least the sample time"),
    ],
    ids=["unknown-mv", "wrong-unit", "time-unit", "typo", "switch-too-fast"],
)
def test_plan_errors_name_file_line_and_key(tank, tmp_path: Path, edit, message) -> None:
    text = PLAN.format(duration="50 min", moves="simultaneous", upper="19 cm")
    p = _write(tmp_path, text.replace(*edit))
    with pytest.raises(ConfigError, match=message):
        load_plan(p, tank, sample_time_s=DT)


async def test_pause_resume_and_stop(tank, tmp_path: Path) -> None:
    plan = load_plan(
        _write(tmp_path, PLAN.format(duration="50 min", moves="simultaneous", upper="19 cm")),
        tank,
        sample_time_s=DT,
    )
    control = StepTestControl()
    seen: list[StepTestProgress] = []

    def steer(p: StepTestProgress) -> None:
        seen.append(p)
        if p.sample == 40:
            control.pause()
        elif p.sample == 70:
            control.resume()
        elif p.sample == 120:
            control.stop("test asked")

    io = InProcessPlantIO(tank, DT)
    async with io:
        data = await run_step_test(
            io, plan.deviations, plan.settings, control=control, on_sample=steer
        )
        held = await io.read_actuators()
    assert data.status is StepTestStatus.STOPPED and data.message == "test asked"
    assert data.n_samples == 120
    assert np.all(data.paused[40:70]) and not np.any(data.paused[:40]) and not data.paused[70]
    np.testing.assert_allclose(data.u_held[40:70], np.tile(tank.nominal.u, (30, 1)))
    # the plan position froze while paused: 120 samples, 30 of them paused
    assert data.plan_samples_done == 90
    np.testing.assert_allclose(held.values, tank.nominal.u)  # back at the start values
    assert seen[-1].remaining_s == pytest.approx((600 - 90) * DT)


async def test_historian_run_skips_back_off(tank, tmp_path: Path) -> None:
    plan = load_plan(
        _write(tmp_path, PLAN.format(duration="60 min", moves="simultaneous", upper="13.2 cm")),
        tank,
        sample_time_s=DT,
    )
    io = InProcessPlantIO(tank, DT)
    hist = Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(tank, io.measurement_names))
    run = hist.begin_run(
        "steptest",
        mode="on",
        meta={
            "mvs_in_test": ["v1", "v2"],
            "cvs": ["h1", "h2"],
            "units": {"v1": "V", "v2": "V", "h1": "m", "h2": "m"},
        },
    )
    async with io:
        data = await run_step_test(io, plan.deviations, plan.settings, historian=hist)
    hist.end_run("done")
    hist.close()
    assert data.back_off_events >= 2
    got = historian_data(tmp_path / "h.sqlite", [run], min_record_samples=20)
    assert got.backing_off == int(np.sum(data.backing_off)) > 0
    assert got.bad_quality == 0
    assert got.data.n_samples + got.backing_off + got.short_records == data.n_samples
    assert len(got.data.segments) >= 1
    assert got.data.u_units == ("V", "V") and got.data.y_names == ("h1", "h2")
    # the merged data are deviations from the run's start, in SI
    np.testing.assert_allclose(got.data.u0, tank.nominal.u, atol=1e-12)
    with pytest.raises(ConfigError, match="no run 99"):
        historian_data(tmp_path / "h.sqlite", [99])


def test_the_guides_plan_and_edits_load(tank, tmp_path: Path) -> None:
    """docs/commissioning.md's step-test chapter shows files that work."""
    import tomllib

    from plant_models.identification.editing import ModelEdits

    guide = (Path(__file__).parents[2] / "docs" / "commissioning.md").read_text(encoding="utf-8")
    chapter = guide.split("## 7. Step tests and identification", 1)[1]
    plan_text = chapter.split("```toml\n# plan.toml\n", 1)[1].split("```", 1)[0]
    plan = load_plan(_write(tmp_path, plan_text), tank, sample_time_s=DT)
    assert plan.duration_s == 6000.0 and plan.in_test == (True, True)
    assert [lim.upper for lim in plan.settings.limits] == [pytest.approx(0.14), 0.19]
    edits_text = chapter.split("```toml\n# edits.toml\n", 1)[1].split("```", 1)[0]
    edits = ModelEdits.model_validate(tomllib.loads(edits_text))
    assert edits.cv["h1"].mv["v2"].gain == 0 and edits.cv["h2"].mv["v1"].dead_time == 10.0


async def test_two_step_tests_merge_into_one_identification(tank, tmp_path: Path) -> None:
    """Two 60-minute tests (other seeds) in one historian file, identified together."""
    from plant_models.identification import n4sid

    io = InProcessPlantIO(tank, DT)
    hist = Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(tank, io.measurement_names))
    runs = []
    for seed in (5, 6):
        text = PLAN.format(duration="60 min", moves="simultaneous", upper="19 cm")
        plan = load_plan(
            _write(tmp_path, text.replace("seed = 2", f"seed = {seed}")), tank, sample_time_s=DT
        )
        runs.append(
            hist.begin_run(
                "steptest", mode="on", meta={"mvs_in_test": ["v1", "v2"], "cvs": ["h1", "h2"]}
            )
        )
        async with io:
            await run_step_test(io, plan.deviations, plan.settings, historian=hist)
        hist.end_run("done")
    hist.close()
    one = historian_data(tmp_path / "h.sqlite", runs[:1])
    both = historian_data(tmp_path / "h.sqlite", runs)
    assert both.runs == tuple(runs) and both.data.segments == (one.data.n_samples,)
    assert both.data.n_samples == 2 * one.data.n_samples == 1440
    fit = n4sid(both.data)
    assert fit.order == 4
    np.testing.assert_allclose(fit.model.gain(), tank.linearize().gain(), rtol=0.05)
