"""Test signals: PRBS is maximum-length and balanced, GBN switches at the asked mean rate,
step doublets follow each other, and specs are validated."""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.errors import ModelError
from plant_models.identification import ExcitationSpec, SignalKind, design_experiment, gbn, prbs
from plant_models.identification.excitation import _LFSR_TAPS


@pytest.mark.parametrize("bits", sorted(_LFSR_TAPS))
def test_lfsr_taps_give_maximum_length_sequences(bits: int) -> None:
    n = 2**bits - 1
    # the generator picks the smallest register covering the request: ask exactly one period
    one = prbs(n, 1.0, 1.0, 1.0, seed=bits)
    assert np.sum(one > 0) == 2 ** (bits - 1)  # one more +1 than -1
    assert np.sum(one < 0) == 2 ** (bits - 1) - 1
    # two-valued periodic autocorrelation: n at lag 0, -1 elsewhere
    r = np.array([np.dot(one, np.roll(one, k)) for k in range(1, min(n, 20))])
    np.testing.assert_allclose(r, -1.0)


def test_prbs_holds_each_value_for_the_switch_time() -> None:
    s = prbs(300, 2.0, 0.5, 10.0, seed=1)
    assert set(np.unique(s)) == {-0.5, 0.5}
    blocks = s.reshape(-1, 5)
    assert np.all(blocks == blocks[:, :1])


def test_gbn_mean_switching_time_matches() -> None:
    s = gbn(200_000, 1.0, 1.0, 20.0, seed=4)
    switches = np.count_nonzero(np.diff(s))
    assert 200_000 / switches == pytest.approx(20.0, rel=0.03)
    assert abs(s.mean()) < 0.05


def test_design_experiment_staggers_step_doublets_after_lead_in() -> None:
    specs = [ExcitationSpec(SignalKind.STEP, 1.0, 50.0), ExcitationSpec(SignalKind.STEP, 2.0, 50.0)]
    u = design_experiment(specs, 60, 5.0, lead_in_samples=10)
    assert np.all(u[:10] == 0)
    np.testing.assert_array_equal(u[10:20, 0], 1.0)
    np.testing.assert_array_equal(u[20:30, 0], -1.0)
    np.testing.assert_array_equal(u[30:40, 1], 2.0)
    np.testing.assert_array_equal(u[40:50, 1], -2.0)
    assert np.all(u[30:, 0] == 0) and np.all(u[:30, 1] == 0)


def test_design_experiment_gives_uncorrelated_random_inputs() -> None:
    specs = [ExcitationSpec(SignalKind.GBN, 1.0, 5.0)] * 2 + [ExcitationSpec(SignalKind.PRBS, 1.0, 3.0)]
    u = design_experiment(specs, 5000, 1.0, seed=2)
    c = np.corrcoef(u.T)
    assert np.all(np.abs(c[np.triu_indices(3, 1)]) < 0.1)


def test_bad_specs_are_rejected() -> None:
    with pytest.raises(ModelError, match="amplitude"):
        ExcitationSpec(SignalKind.PRBS, 0.0, 1.0)
    with pytest.raises(ModelError, match="switch_time_s"):
        ExcitationSpec(SignalKind.GBN, 1.0, -1.0)
    with pytest.raises(ModelError, match="longer"):
        design_experiment([ExcitationSpec(SignalKind.STEP, 1.0, 100.0)], 10, 1.0)
