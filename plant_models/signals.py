"""Signals and ordered signal sets: names, SI units, bounds and scaling.

A :class:`Signal` is one named quantity of a plant (state, manipulated input,
measured disturbance, uncertain parameter or output). A :class:`SignalSet` is an
ordered, immutable collection of signals; vectors inside the engine are ordered
like their set, and conversion by name happens only at the edges through
:meth:`SignalSet.vector` and :meth:`SignalSet.mapping`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ModelError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Signal:
    """One named plant quantity in SI units."""

    name: str
    """Stable snake_case identifier used in configs, tag maps and reports."""
    unit: str
    """SI unit symbol, e.g. ``"K"``, ``"mol/m^3"``, ``"1/s"``; ``"1"`` for dimensionless."""
    lower: float = -math.inf
    """Lower bound (physical or operating limit) in SI units."""
    upper: float = math.inf
    """Upper bound in SI units."""
    nominal: float = 1.0
    """Typical magnitude, used for scaling solver variables; positive and finite."""
    description: str = ""
    """Human-readable description for reports and the OPC UA address space."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ModelError(
                f"signal name {self.name!r}: expected snake_case (lowercase letters, digits, '_')"
            )
        if not isinstance(self.unit, str) or not self.unit.strip():
            raise ModelError(f"signal {self.name!r}: missing unit (use '1' for dimensionless)")
        for attr in ("lower", "upper", "nominal"):
            value = getattr(self, attr)
            try:
                fvalue = float(value)
            except (TypeError, ValueError):
                raise ModelError(f"signal {self.name!r}: {attr} must be a number, got {value!r}") from None
            if math.isnan(fvalue):
                raise ModelError(f"signal {self.name!r}: {attr} is NaN")
            object.__setattr__(self, attr, fvalue)
        if self.lower > self.upper:
            raise ModelError(
                f"signal {self.name!r}: lower bound {self.lower} is above upper bound {self.upper}"
            )
        if not (math.isfinite(self.nominal) and self.nominal > 0):
            raise ModelError(
                f"signal {self.name!r}: nominal must be positive and finite, got {self.nominal}"
            )


@dataclass(frozen=True)
class SignalSet(Sequence[Signal]):
    """An ordered, immutable set of signals with unique names."""

    signals: tuple[Signal, ...] = ()
    """The signals, in vector order."""
    kind: str = "signals"
    """What the set is (``"x"``, ``"u"``, ``"d"``, ``"p"``, ``"y"``), used in error messages."""
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sigs = tuple(self.signals)
        for s in sigs:
            if not isinstance(s, Signal):
                raise ModelError(f"{self.kind}: expected Signal objects, got {type(s).__name__}")
        object.__setattr__(self, "signals", sigs)
        index: dict[str, int] = {}
        for i, s in enumerate(sigs):
            if s.name in index:
                raise ModelError(f"{self.kind}: duplicate signal name {s.name!r}")
            index[s.name] = i
        object.__setattr__(self, "_index", index)

    # Sequence protocol -------------------------------------------------
    def __len__(self) -> int:
        return len(self.signals)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, str):
            return self.signals[self.index(i)]
        return self.signals[i]

    def __iter__(self) -> Iterator[Signal]:
        return iter(self.signals)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, Signal):
            return name in self.signals
        return name in self._index

    # Names and arrays ---------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Signal names in vector order."""
        return tuple(s.name for s in self.signals)

    @property
    def lower(self) -> NDArray[np.float64]:
        """Lower bounds as a vector."""
        return np.array([s.lower for s in self.signals], dtype=float)

    @property
    def upper(self) -> NDArray[np.float64]:
        """Upper bounds as a vector."""
        return np.array([s.upper for s in self.signals], dtype=float)

    @property
    def nominal(self) -> NDArray[np.float64]:
        """Nominal magnitudes (scaling) as a vector."""
        return np.array([s.nominal for s in self.signals], dtype=float)

    def index(self, name: str) -> int:  # type: ignore[override]
        """Position of ``name``; raises :class:`ModelError` naming the known signals."""
        try:
            return self._index[name]
        except KeyError:
            raise ModelError(
                f"unknown {self.kind} signal {name!r}; known: {', '.join(self.names) or '(none)'}"
            ) from None

    def indices(self, names: Iterable[str]) -> list[int]:
        """Positions of several names."""
        return [self.index(n) for n in names]

    def vector(
        self, values: Mapping[str, float] | ArrayLike | None, *, default: ArrayLike | None = None,
        what: str | None = None,
    ) -> NDArray[np.float64]:
        """Convert a mapping by name (or an array) to a validated float vector.

        A mapping may omit names only when ``default`` provides them. Arrays must
        have the set's length. NaN and inf are rejected with the signal's name.
        """
        label = what or self.kind
        n = len(self)
        if values is None:
            if default is None:
                if n == 0:
                    return np.zeros(0)
                raise ModelError(f"{label}: values required for {', '.join(self.names)}")
            return self.vector(default, what=label)
        if isinstance(values, Mapping):
            base = (
                np.full(n, np.nan) if default is None else self.vector(default, what=label).copy()
            )
            for key, val in values.items():
                base[self.index(key)] = _to_float(val, f"{label}[{key!r}]")
            missing = [self.names[i] for i in range(n) if np.isnan(base[i])]
            if missing:
                raise ModelError(f"{label}: missing values for {', '.join(missing)}")
            out = base
        else:
            out = np.asarray(values, dtype=float).reshape(-1) if np.ndim(values) else np.asarray(
                [values], dtype=float
            )
            if out.shape != (n,):
                raise ModelError(
                    f"{label}: expected {n} values ({', '.join(self.names)}), got shape "
                    f"{np.shape(values)}"
                )
        self.check_finite(out, label)
        return out

    def check_finite(self, vec: NDArray[np.float64], what: str | None = None) -> None:
        """Raise :class:`ModelError` naming each non-finite entry."""
        bad = [self.names[i] for i in np.flatnonzero(~np.isfinite(vec))] if vec.size else []
        if bad:
            raise ModelError(f"{what or self.kind}: non-finite value (NaN or inf) for {', '.join(bad)}")

    def mapping(self, vec: ArrayLike) -> dict[str, float]:
        """Convert a vector in set order to a ``{name: value}`` dict."""
        arr = np.asarray(vec, dtype=float).reshape(-1)
        if arr.shape != (len(self),):
            raise ModelError(f"{self.kind}: expected {len(self)} values, got {arr.shape}")
        return {n: float(v) for n, v in zip(self.names, arr, strict=True)}

    def subset(self, names: Iterable[str]) -> SignalSet:
        """A new set with the named signals, in the given order."""
        return SignalSet(tuple(self[n] for n in names), kind=self.kind)


def signal_set(kind: str, *signals: Signal) -> SignalSet:
    """Shorthand: ``signal_set("x", Signal(...), ...)``."""
    return SignalSet(tuple(signals), kind=kind)


def _to_float(val: object, label: str) -> float:
    try:
        return float(val)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ModelError(f"{label}: expected a number, got {val!r}") from None
