"""Typed access to a parsed TOML table with errors that name the file and the key path.

:class:`TableReader` wraps one table; every getter checks the type and range
of a value and raises :class:`~plant_models.errors.ConfigError` with
``"<file>: <key.path>: expected ..., got ..."``. :meth:`TableReader.done`
rejects keys nobody asked for, so typos do not pass silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import EnumMeta
from pathlib import Path
from typing import Any

from plant_models.errors import ConfigError


class TableReader:
    """Reads typed values from one TOML table and remembers which keys were used."""

    def __init__(self, file: Path, data: Mapping[str, Any], path: str = "") -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{file}: {path or '(top level)'}: expected a table, got {type(data).__name__}"
            )
        self.file = file
        self.data = data
        self.path = path
        self._used: set[str] = set()

    def where(self, key: str | None = None) -> str:
        """Key path of ``key`` inside this table."""
        if key is None:
            return self.path or "(top level)"
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, message: str) -> ConfigError:
        """A ConfigError naming the file and the key path."""
        return ConfigError(f"{self.file}: {self.where(key)}: {message}")

    def has(self, key: str) -> bool:
        """True when the table holds ``key``."""
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        """The untyped value (marks the key as used)."""
        self._used.add(key)
        return self.data.get(key, default)

    def table(self, key: str, *, required: bool = False) -> TableReader | None:
        """A sub-table reader (None when absent and not required)."""
        self._used.add(key)
        if key not in self.data:
            if required:
                raise self.error(key, "missing table")
            return None
        value = self.data[key]
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a table, got {type(value).__name__}")
        return TableReader(self.file, value, self.where(key))

    def section(self, key: str) -> TableReader:
        """A required sub-table."""
        sub = self.table(key, required=True)
        if sub is None:  # pragma: no cover - table(required=True) raised already
            raise self.error(key, "missing table")
        return sub

    def tables(self, key: str) -> list[TableReader]:
        """Readers of an array of tables (``[[key]]``), empty when absent."""
        self._used.add(key)
        value = self.data.get(key, [])
        if isinstance(value, Mapping) or not isinstance(value, list):
            raise self.error(
                key, f"expected an array of tables ([[{key}]]), got {type(value).__name__}"
            )
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise ConfigError(
                    f"{self.file}: {self.where(key)}[{i}]: expected a table, got "
                    f"{type(item).__name__}"
                )
            out.append(TableReader(self.file, item, f"{self.where(key)}[{i}]"))
        return out

    def string(self, key: str, default: str | None = None, *, choices: Any = None) -> str:
        """A string value; ``choices`` is an Enum class or a collection of allowed strings."""
        self._used.add(key)
        if key not in self.data:
            if default is None:
                raise self.error(key, "missing value (expected a string)")
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        if choices is not None:
            members: list[Any] = list(choices)
            allowed = [m.value for m in members] if isinstance(choices, EnumMeta) else members
            if value not in allowed:
                raise self.error(key, f"expected one of {allowed}, got {value!r}")
        return value

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        lower: float | None = None,
        upper: float | None = None,
        strict_lower: bool = False,
        allow_inf: bool = False,
    ) -> float:
        """A float value (ints accepted) within optional bounds."""
        self._used.add(key)
        if key not in self.data:
            if default is None:
                raise self.error(key, "missing value (expected a number)")
            return default
        return self._check_number(key, self.data[key], lower, upper, strict_lower, allow_inf)

    def _check_number(
        self,
        label: str,
        value: Any,
        lower: float | None,
        upper: float | None,
        strict_lower: bool,
        allow_inf: bool,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(label, f"expected a number, got {value!r}")
        out = float(value)
        if math.isnan(out) or (math.isinf(out) and not allow_inf):
            raise self.error(label, f"expected a finite number, got {value!r}")
        if lower is not None and (out < lower or (strict_lower and out == lower)):
            raise self.error(
                label, f"expected {'>' if strict_lower else '>='} {lower:g}, got {out:g}"
            )
        if upper is not None and out > upper:
            raise self.error(label, f"expected <= {upper:g}, got {out:g}")
        return out

    def integer(self, key: str, default: int | None = None, *, lower: int | None = None) -> int:
        """An integer value."""
        self._used.add(key)
        if key not in self.data:
            if default is None:
                raise self.error(key, "missing value (expected an integer)")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {value!r}")
        if lower is not None and value < lower:
            raise self.error(key, f"expected >= {lower}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """A boolean value."""
        self._used.add(key)
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def strings(self, key: str, default: tuple[str, ...] | None = ()) -> tuple[str, ...] | None:
        """A list of strings."""
        self._used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of strings, got {value!r}")
        if len(set(value)) != len(value):
            raise self.error(key, f"duplicate names in {value}")
        return tuple(value)

    def numbers_by_name(self, key: str, *, allow_inf: bool = False) -> dict[str, float]:
        """A table ``{name = number}``."""
        sub = self.table(key)
        if sub is None:
            return {}
        out = {}
        for name in sub.data:
            out[str(name)] = sub.number(name, allow_inf=allow_inf)
        return out

    def pairs_by_name(self, key: str) -> dict[str, tuple[float, float]]:
        """A table ``{name = [lower, upper]}`` (``inf`` allowed for an open side)."""
        sub = self.table(key)
        if sub is None:
            return {}
        out: dict[str, tuple[float, float]] = {}
        for name, value in sub.data.items():
            sub._used.add(name)
            if not isinstance(value, list) or len(value) != 2:
                raise sub.error(name, f"expected [lower, upper], got {value!r}")
            lo = sub._check_number(f"{name}[0]", value[0], None, None, False, True)
            hi = sub._check_number(f"{name}[1]", value[1], None, None, False, True)
            if lo > hi:
                raise sub.error(name, f"lower {lo:g} is above upper {hi:g}")
            out[str(name)] = (lo, hi)
        return out

    def done(self) -> None:
        """Raise for keys that were never read (typos, unsupported settings)."""
        unknown = [k for k in self.data if k not in self._used]
        if unknown:
            raise self.error(
                unknown[0],
                f"unknown key; this table accepts {', '.join(sorted(self._used)) or '(nothing)'}",
            )
