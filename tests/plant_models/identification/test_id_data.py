"""Data preparation: clear errors for bad data, resampling, outliers, detrending."""

from __future__ import annotations

import numpy as np
import pytest

from plant_models.identification import DataError, Detrend, prepare


def _record(n: int = 200, dt: float = 1.0):
    rng = np.random.default_rng(0)
    t = dt * np.arange(n)
    u = np.column_stack([np.repeat(rng.choice([-1.0, 1.0], n // 10), 10), rng.normal(size=n)])
    y = np.column_stack([np.cumsum(u[:, 0]) * 0.01, u[:, 1] * 2.0])
    return t, u, y


def _prep(t, u, y, **kw):
    return prepare(t, u, y, u_names=("a", "b"), y_names=("p", "q"), **kw)


def test_nan_is_named_with_column_and_row_and_a_fix() -> None:
    t, u, y = _record()
    y[17, 1] = np.nan
    with pytest.raises(DataError, match=r"q \(1 values, first at row 17\).*interpolate"):
        _prep(t, u, y)


def test_unsorted_and_repeated_timestamps_are_rejected() -> None:
    t, u, y = _record()
    t2 = t.copy()
    t2[[5, 6]] = t2[[6, 5]]
    with pytest.raises(DataError, match="decreasing at row 6.*sort"):
        _prep(t2, u, y)
    t3 = t.copy()
    t3[9] = t3[8]
    with pytest.raises(DataError, match="repeated at row 9.*duplicate"):
        _prep(t3, u, y)


def test_too_short_data_says_how_many_samples_are_needed() -> None:
    t, u, y = _record(30)
    with pytest.raises(DataError, match="too few samples: 30.*at least 50"):
        _prep(t, u, y)


def test_unexcited_input_is_named() -> None:
    t, u, y = _record()
    u[:, 1] = 3.0
    with pytest.raises(DataError, match=r"without excitation: b \(std 0\).*PRBS"):
        _prep(t, u, y)


def test_shape_mismatch_is_explained() -> None:
    t, u, y = _record()
    with pytest.raises(DataError, match="3 columns but 2 names"):
        prepare(t, np.column_stack([u, u[:, 0]]), y, u_names=("a", "b"), y_names=("p", "q"))


def test_irregular_timestamps_are_resampled_inputs_by_hold_outputs_linearly() -> None:
    t = np.cumsum(np.r_[0.0, np.full(299, 1.0) + 0.3 * np.sin(np.arange(299))])
    u = np.column_stack([np.sign(np.sin(t / 7.0)) + 0.0, np.cos(t / 3.0)])
    y = np.column_stack([2.0 * t, t**2 / 100.0])
    d = prepare(t, u, y, u_names=("a", "b"), y_names=("p", "q"), sample_time_s=0.5,
                detrend=Detrend.NONE, outlier_sigma=None)
    assert d.sample_time_s == 0.5
    np.testing.assert_allclose(np.diff(d.t), 0.5)
    np.testing.assert_allclose(d.y[:, 0], 2.0 * (d.t + t[0]), rtol=1e-12, atol=1e-9)
    # each resampled input is the last logged value at or before the grid time
    for k in range(0, d.n_samples, 37):
        idx = np.searchsorted(t, d.t[k] + t[0], side="right") - 1
        np.testing.assert_allclose(d.u[k], u[idx])


def test_outliers_are_replaced_and_counted() -> None:
    t, u, y = _record()
    clean = _prep(t, u, y, detrend="none")
    y2 = y.copy()
    y2[50, 0] += 100.0
    y2[120, 1] -= 80.0
    d = _prep(t, u, y2, detrend="none")
    assert d.outliers_replaced >= 2
    assert abs(d.y[50, 0] - clean.y[50, 0]) < 0.1
    assert abs(d.y[120, 1] - clean.y[120, 1]) < 5.0


def test_detrending_modes() -> None:
    t, u, y = _record()
    y = y + 5.0
    d = _prep(t, u, y, detrend="mean", outlier_sigma=None)
    np.testing.assert_allclose(d.y.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(d.y0, y.mean(axis=0))
    d0 = _prep(t, u, y, detrend="initial", initial_samples=5, outlier_sigma=None)
    np.testing.assert_allclose(d0.y0, y[:5].mean(axis=0))
    ramp = np.column_stack([0.3 * t, -0.1 * t]) + 7.0
    dl = prepare(t, u, ramp, u_names=("a", "b"), y_names=("p", "q"), detrend="linear",
                 outlier_sigma=None)
    np.testing.assert_allclose(dl.y, 0.0, atol=1e-9)


def test_split_keeps_offsets() -> None:
    t, u, y = _record()
    d = _prep(t, u, y)
    a, b = d.split(0.75)
    assert a.n_samples == 150 and b.n_samples == 50
    np.testing.assert_array_equal(a.y0, b.y0)


def test_fixed_operating_point_overrides_detrending() -> None:
    t, u, y = _record()
    d = _prep(t, u, y, detrend="mean", operating_point=([1.0, 2.0], [3.0, 4.0]),
              outlier_sigma=None)
    np.testing.assert_allclose(d.u, u - [1.0, 2.0])
    np.testing.assert_allclose(d.y, y - [3.0, 4.0])
    with pytest.raises(DataError, match="operating_point"):
        _prep(t, u, y, operating_point=([1.0], [3.0, 4.0]))
