"""Import logged plant data from CSV files (plain logs and historian exports).

:func:`read_csv` reads a time column (seconds, or ISO 8601 timestamps such as
``2026-11-26T16:40:00Z``) and the named MV and CV columns into a
:class:`LoggedData`, which :meth:`LoggedData.prepare` turns into identification
data. A signal ``name`` is looked up as the column ``name`` and, for historian
exports (:func:`rtompc.historian.export`), as ``meas__name`` (CVs, MVs) or
``written__name`` (MVs). Historian quality columns (``qual__name``, or
``quality__name`` from a step test) are honoured: rows whose CV quality is not
``good`` are dropped; MV cells left empty (nothing written in that cycle) hold
the previous value.

Every problem is a :class:`~plant_models.identification.data.DataError` naming
the file, the column and what would fix it: missing columns, unparsable or
unsorted times, NaN/empty values, too few rows.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from plant_models.identification.data import DataError, IdData, prepare


@dataclass(frozen=True)
class LoggedData:
    """Columns read from a CSV file, in file order, times in seconds from the first row."""

    path: Path
    """File the data came from."""
    t: NDArray[np.float64]
    """Time, s from the first kept row (N,)."""
    u: NDArray[np.float64]
    """MV values (N, nu)."""
    y: NDArray[np.float64]
    """CV values (N, ny)."""
    mv_names: tuple[str, ...]
    """MV names."""
    cv_names: tuple[str, ...]
    """CV names."""
    columns: dict[str, str]
    """Signal name -> CSV column it was read from."""
    start_time: str = ""
    """The first row's time as written in the file (ISO timestamp or seconds)."""
    dropped_rows: int = 0
    """Rows dropped for non-good CV quality."""

    def prepare(self, **kwargs: Any) -> IdData:
        """Identification data; keyword arguments go to :func:`prepare`."""
        try:
            return prepare(self.t, self.u, self.y, u_names=self.mv_names, y_names=self.cv_names,
                           **kwargs)
        except DataError as exc:
            raise DataError(f"{self.path}: {exc}") from None


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _find(header: list[str], name: str, prefixes: Sequence[str]) -> str | None:
    for cand in (name, *(p + name for p in prefixes)):
        if cand in header:
            return cand
    return None


def read_csv(
    path: str | Path,
    *,
    time_column: str,
    mv: Sequence[str],
    cv: Sequence[str],
    min_rows: int = 20,
    delimiter: str | None = None,
) -> LoggedData:
    """Read ``time_column``, the ``mv`` and the ``cv`` columns of a CSV file (see module doc)."""
    p = Path(path)
    mv, cv = tuple(mv), tuple(cv)
    if not mv or not cv:
        raise DataError(f"{p}: name at least one MV and one CV column (got mv={mv}, cv={cv})")
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    text = p.read_text(encoding="utf-8-sig")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", ",;\t").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataError(f"{p}: the file is empty; expected a header row with column names") from None
    rows = [r for r in reader if any(c.strip() for c in r)]
    available = ", ".join(header)
    if time_column not in header:
        raise DataError(f"{p}: no time column {time_column!r}; columns are: {available}. "
                        f"Pass the right name with --time-column / time_column=")
    cols: dict[str, str] = {}
    missing = []
    for name in mv:
        col = _find(header, name, ("written__", "meas__"))
        cols[name] = col or ""
        if col is None:
            missing.append(f"MV {name!r}")
    for name in cv:
        col = _find(header, name, ("meas__",))
        cols[name] = col or ""
        if col is None:
            missing.append(f"CV {name!r}")
    if missing:
        raise DataError(f"{p}: no column for {', '.join(missing)}; columns are: {available}. "
                        f"Fix the names given with --mv/--cv (or rename the columns)")
    if len(rows) < min_rows:
        raise DataError(f"{p}: only {len(rows)} data rows; identification needs at least "
                        f"{min_rows} (record longer)")
    it = header.index(time_column)
    t = np.empty(len(rows))
    first = ""
    for k, r in enumerate(rows):
        cell = r[it].strip() if it < len(r) else ""
        try:
            t[k] = _parse_time(cell)
        except ValueError:
            raise DataError(
                f"{p}: row {k + 2}, column {time_column!r}: cannot read time {cell!r}; expected "
                f"seconds (e.g. 12.5) or an ISO 8601 timestamp (e.g. 2026-11-26T16:40:00Z)"
            ) from None
        if k == 0:
            first = cell
    if not np.all(np.isfinite(t)):
        k = int(np.flatnonzero(~np.isfinite(t))[0])
        raise DataError(f"{p}: row {k + 2}, column {time_column!r}: time is not finite")
    steps = np.diff(t)
    if np.any(steps <= 0):
        k = int(np.flatnonzero(steps <= 0)[0])
        kind = "repeats" if steps[k] == 0 else "goes back"
        raise DataError(f"{p}: column {time_column!r} is not strictly increasing: row {k + 3} "
                        f"{kind} (t={rows[k + 1][it]!r} after {rows[k][it]!r}); sort the file by "
                        f"time and drop duplicate rows")

    def column(name: str, hold: bool, part: list[list[str]]) -> NDArray[np.float64]:
        j = header.index(cols[name])
        out = np.empty(len(part))
        for k, r in enumerate(part):
            cell = r[j].strip() if j < len(r) else ""
            try:
                out[k] = float(cell) if cell else math.nan
            except ValueError:
                raise DataError(f"{p}: row {k + 2}, column {cols[name]!r}: {cell!r} is not a "
                                f"number") from None
        bad = ~np.isfinite(out)
        if hold and bad.any() and not bad.all():
            idx = np.where(~bad, np.arange(out.size), 0)
            np.maximum.accumulate(idx, out=idx)
            out = out[idx]
            bad = ~np.isfinite(out)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{p}: column {cols[name]!r} has {int(bad.sum())} empty/NaN values (first at row "
                f"{k + 2}); drop or interpolate those rows, or cut the record around the gap"
            )
        return out

    keep = np.ones(len(rows), dtype=bool)
    for name in cv:
        qcol = next((c for c in (f"qual__{name}", f"quality__{name}") if c in header), None)
        if qcol is not None:
            j = header.index(qcol)
            keep &= np.array([(r[j].strip().lower() if j < len(r) else "") in ("good", "")
                              for r in rows])
    u = np.column_stack([column(n, True, rows) for n in mv])
    good_rows = [r for r, k in zip(rows, keep, strict=True) if k]
    y = np.column_stack([column(n, False, good_rows) for n in cv])
    dropped = int((~keep).sum())
    if int(keep.sum()) < min_rows:
        raise DataError(f"{p}: only {int(keep.sum())} rows with good CV quality ({dropped} dropped); "
                        f"identification needs at least {min_rows}")
    tk = t[keep]
    return LoggedData(p, tk - tk[0], u[keep], y, mv, cv, cols, first, dropped)
