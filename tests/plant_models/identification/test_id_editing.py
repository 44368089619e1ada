"""Model edits: zeroed gains, fixed signs and ratios, dead times, order per CV.

Truth: the quadruple tank (Johansson 2000, P-) linearised and discretised (ZOH,
5 s), with a 3-sample (15 s) dead time added on v1 in both channels, simulated
with PRBS inputs and 0.05 mm noise. Each edit must show in the result exactly
as asked: a zeroed channel has an identically zero step response; a fixed
ratio holds to 1e-9; a sign the data contradict gives a zero gain; the dead
time delays the response by the given samples and the fit stays > 99 %; the
order per CV is as given; the reviewable info lists every channel's edit.
"""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.errors import ModelError
from plant_models.identification import (
    ExcitationSpec,
    SignalKind,
    design_experiment,
    prepare,
    validate,
)
from plant_models.identification.editing import ModelEdits, identify_edited
from plant_models.identification.uncertainty import step_response
from plant_models.library import load

DT = 5.0


@pytest.fixture(scope="module")
def case():
    plant = load("quadruple_tank")
    lin = plant.linearize(sample_time_s=DT)
    n = 1500
    u = design_experiment([ExcitationSpec(SignalKind.PRBS, 0.3, 40.0)] * 2, n, DT, seed=5)
    ud = u.copy()
    ud[3:, 0] = u[:-3, 0]
    ud[:3, 0] = 0.0
    x = np.zeros(4)
    y = np.empty((n, 2))
    for k in range(n):
        y[k] = lin.C @ x
        x = lin.A @ x + lin.B @ ud[k]
    y += 5e-5 * np.random.default_rng(5).standard_normal(y.shape)
    data = prepare(
        DT * np.arange(n),
        u,
        y,
        u_names=("v1", "v2"),
        y_names=("h1", "h2"),
        detrend="none",
        outlier_sigma=None,
    )
    return data, lin


def test_dead_time_and_order_per_cv(case) -> None:
    data, lin = case
    edits = ModelEdits.model_validate(
        {
            "cv": {
                "h1": {"order": 2, "mv": {"v1": {"dead_time": "15 s"}}},
                "h2": {"mv": {"v1": {"dead_time": 15.0}}},
            }
        }
    )
    model = identify_edited(data, edits)
    assert model.info["order_per_cv"]["h1"] == 2  # as asked (plus 3 dead-time buffer states)
    np.testing.assert_allclose(model.gain(), lin.gain(), rtol=0.02)
    step = step_response(model, 10)  # (steps, ny, nu)
    assert np.all(np.abs(step[:4, :, 0]) < 1e-12)  # v1 acts after 3 samples (+1 for the ZOH)
    assert np.abs(step[5, 0, 0]) > 1e-4
    assert min(validate(model, data).fit_percent) > 99.0
    ch = model.info["channels"]["h1"]["v1"]
    assert ch["dead_time_s"] == 15.0 and "dead time set to 15 s" in ch["edit"]


def test_zero_gain_sign_and_ratio(case) -> None:
    data, _ = case
    edits = ModelEdits.model_validate(
        {
            "cv": {
                "h1": {"mv": {"v2": {"gain": 0}, "v1": {"dead_time": 15.0}}},
                "h2": {"mv": {"v1": {"sign": "-", "dead_time": 15.0}}},
            },
        }
    )
    model = identify_edited(data, edits)
    step = step_response(model, 60)
    assert np.all(step[:, 0, 1] == 0.0)  # h1 does not respond to v2 at all
    k = model.gain()
    assert k[1, 0] == pytest.approx(0.0, abs=1e-12)  # + in the data, "-" asked: gain 0
    assert "contradicted" in model.info["channels"]["h2"]["v1"]["edit"]
    assert model.info["channels"]["h1"]["v2"]["edit"].startswith("gain zeroed")

    ratio = ModelEdits.model_validate(
        {
            "cv": {
                "h1": {"mv": {"v1": {"dead_time": 15.0}}},
                "h2": {"mv": {"v1": {"dead_time": 15.0}}},
            },
            "ratio": [{"cv": "h2", "mvs": ["v2", "v1"], "value": 2.0}],
        }
    )
    k = identify_edited(data, ratio).gain()
    assert k[1, 1] / k[1, 0] == pytest.approx(2.0, rel=1e-9)


def test_bad_edits_name_the_edit(case) -> None:
    data, _ = case
    with pytest.raises(ModelError, match="cv.h9"):
        identify_edited(data, ModelEdits.model_validate({"cv": {"h9": {}}}))
    with pytest.raises(ModelError, match=r"ratio\[0\]"):
        identify_edited(
            data,
            ModelEdits.model_validate({"ratio": [{"cv": "h1", "mvs": ["v1", "v1"], "value": 1.0}]}),
        )
    with pytest.raises(ValueError, match="dead_time"):
        ModelEdits.model_validate({"cv": {"h1": {"mv": {"v1": {"dead_time": "-5 s"}}}}})


def test_sysid_writes_a_reviewable_edits_file_that_applies(case, tmp_path) -> None:
    import tomllib

    from plant_models.identification.workflow import SysIdSettings, identify_to_directory

    data, _ = case
    summary = identify_to_directory(data, SysIdSettings(band_samples=0), tmp_path / "a")
    text = (tmp_path / "a" / "edits_template.toml").read_text()
    assert summary["files"]["edits_template"].endswith("edits_template.toml")
    for cv in ("h1", "h2"):
        for mv in ("v1", "v2"):
            assert f"# [cv.{cv}.mv.{mv}]  # gain {summary['gain'][cv][mv]:.4g}" in text
    # the engineer uncomments one edit: v2 does not act on h1
    edited = text.replace("# [cv.h1.mv.v2]", "[cv.h1.mv.v2]").replace(
        '# gain = 0\n# sign = "+"\n# dead_time = "0 s"\n\n[cv.h2]', "gain = 0\n\n[cv.h2]", 1
    )
    edits = ModelEdits.model_validate(tomllib.loads(edited))
    assert edits.cv["h1"].mv["v2"].gain == 0
    out = identify_to_directory(data, SysIdSettings(band_samples=0, edits=edits), tmp_path / "b")
    assert out["gain"]["h1"]["v2"] == 0.0 and out["channels"]["h1"]["v2"]["edit"].startswith(
        "gain zeroed"
    )
