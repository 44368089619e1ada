"""CSV import: plain logs (seconds or ISO timestamps), historian exports, and clear errors.

Every error must name the file, the column and what would fix it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plant_models.identification import DataError, read_csv


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join(str(c) for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _table(n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = 2.0 * np.arange(n)
    u = np.where((np.arange(n) // 7) % 2 == 0, 1.0, -1.0)
    y = np.cumsum(u) * 0.1
    return t, u, y


def test_seconds_and_iso_timestamps_give_the_same_data(tmp_path) -> None:
    t, u, y = _table()
    plain = _write(tmp_path / "a.csv", ["time", "pump", "level"],
                   [[tk, uk, yk] for tk, uk, yk in zip(t, u, y, strict=True)])
    iso = [f"2026-11-26T16:{int(tk) // 60:02d}:{int(tk) % 60:02d}Z" for tk in t]
    stamped = _write(tmp_path / "b.csv", ["stamp", "pump", "level"],
                     [[s, uk, yk] for s, uk, yk in zip(iso, u, y, strict=True)])
    a = read_csv(plain, time_column="time", mv=["pump"], cv=["level"])
    b = read_csv(stamped, time_column="stamp", mv=["pump"], cv=["level"])
    np.testing.assert_allclose(a.t, t)
    np.testing.assert_allclose(b.t, t)
    np.testing.assert_allclose(b.u[:, 0], u)
    np.testing.assert_allclose(b.y[:, 0], y)
    assert b.start_time == "2026-11-26T16:00:00Z"
    data = b.prepare(detrend="none", outlier_sigma=None)
    assert data.sample_time_s == 2.0 and data.n_samples == t.size


def test_historian_export_columns_and_quality(tmp_path) -> None:
    """Historian layout: meas__/qual__/written__ columns; bad-quality rows dropped, empty
    written cells (nothing written in that cycle) hold the previous value."""
    t, u, y = _table()
    rows = []
    for k in range(t.size):
        q = "bad" if k in (10, 11) else "good"
        written = "" if k == 20 else u[k]
        rows.append([k, t[k], y[k], q, written, "verified"])
    path = _write(tmp_path / "hist.csv",
                  ["cycle", "time_s", "meas__h1", "qual__h1", "written__v1", "write_status"], rows)
    logged = read_csv(path, time_column="time_s", mv=["v1"], cv=["h1"])
    assert logged.columns == {"v1": "written__v1", "h1": "meas__h1"}
    assert logged.dropped_rows == 2 and logged.t.size == t.size - 2
    keep = np.setdiff1d(np.arange(t.size), [10, 11])
    np.testing.assert_allclose(logged.y[:, 0], y[keep])
    expected_u = u.copy()
    expected_u[20] = u[19]
    np.testing.assert_allclose(logged.u[:, 0], expected_u[keep])


@pytest.mark.parametrize(
    ("case", "pattern"),
    [
        ("no_time", r"no time column 'time'.*columns are: t, pump, level.*--time-column"),
        ("missing_cv", r"no column for CV 'flow'.*columns are.*--mv/--cv"),
        ("unsorted", r"column 't' is not strictly increasing: row 5 goes back.*sort the file"),
        ("repeated", r"row 5 repeats.*drop duplicate rows"),
        ("nan", r"column 'level' has 1 empty/NaN values \(first at row 4\).*interpolate"),
        ("text", r"row 3, column 'pump': 'on' is not a number"),
        ("short", r"only 5 data rows; identification needs at least 20"),
        ("bad_time", r"row 2, column 't': cannot read time 'yesterday'.*ISO 8601"),
    ],
)
def test_errors_name_file_column_and_fix(tmp_path, case, pattern) -> None:
    t, u, y = _table(40)
    rows = [[tk, uk, yk] for tk, uk, yk in zip(t, u, y, strict=True)]
    time_col, cv = "t", ["level"]
    if case == "no_time":
        time_col = "time"
    elif case == "missing_cv":
        cv = ["flow"]
    elif case == "unsorted":
        rows[3][0] = 1.0
    elif case == "repeated":
        rows[3][0] = rows[2][0]
    elif case == "nan":
        rows[2][2] = "nan"
    elif case == "text":
        rows[1][1] = "on"
    elif case == "short":
        rows = rows[:5]
    elif case == "bad_time":
        rows[0][0] = "yesterday"
    path = _write(tmp_path / f"{case}.csv", ["t", "pump", "level"], rows)
    with pytest.raises(DataError, match=pattern) as err:
        read_csv(path, time_column=time_col, mv=["pump"], cv=cv)
    assert str(path) in str(err.value)


def test_prepare_errors_name_the_file(tmp_path) -> None:
    t, _, y = _table(40)
    path = _write(tmp_path / "flat.csv", ["t", "pump", "level"],
                  [[tk, 1.0, yk] for tk, yk in zip(t, y, strict=True)])
    with pytest.raises(DataError, match=r"flat.csv: inputs without excitation: pump"):
        read_csv(path, time_column="t", mv=["pump"], cv=["level"]).prepare(min_samples=20)


def test_step_test_quality_columns_drop_rows(tmp_path) -> None:
    """A step-test CSV (plain value columns plus quality__<cv>) drops the non-good rows."""
    t, u, y = _table()
    rows = [[tk, uk, yk, "uncertain" if k == 7 else "good"]
            for k, (tk, uk, yk) in enumerate(zip(t, u, y, strict=True))]
    path = _write(tmp_path / "st.csv", ["t", "pump", "level", "quality__level"], rows)
    logged = read_csv(path, time_column="t", mv=["pump"], cv=["level"])
    assert logged.dropped_rows == 1 and 14.0 not in logged.t
