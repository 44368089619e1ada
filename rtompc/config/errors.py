"""Configuration problems a person can act on: all of them at once, each with file, line and key.

A :class:`Problem` names the file, the TOML line where the key (or its table)
was written, the key path (``mpc.cvs[0].weigth``), what is wrong, what was
expected, the keys allowed at that place and a "did you mean" suggestion.
:class:`ConfigProblems` carries every problem of one load and is a
:class:`~plant_models.errors.ConfigError`, so callers that catch config
errors keep working; ``str()`` lists one problem per line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from plant_models.errors import ConfigError


def key_path(loc: Sequence[str | int]) -> str:
    """``("mpc", "cvs", 0, "weight")`` -> ``"mpc.cvs[0].weight"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config file."""

    loc: tuple[str | int, ...]
    """Key path as a tuple (tables, array indices, key)."""
    message: str
    """What is wrong."""
    file: Path | None = None
    """The config file (None for a config built in memory)."""
    line: int | None = None
    """1-based TOML line of the key, or of its table when the key is missing."""
    expected: str = ""
    """What would be accepted (type, unit, range)."""
    allowed: tuple[str, ...] = ()
    """Every key allowed at this place (for unknown and missing keys)."""
    suggestion: str = ""
    """The allowed key closest to a mistyped one ("did you mean")."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Further hints."""

    @property
    def path(self) -> str:
        """Key path as text (``mpc.cvs[0].weight``)."""
        return key_path(self.loc)

    def __str__(self) -> str:
        where = str(self.file) if self.file is not None else "<config>"
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: {self.path}: {self.message}"
        if self.suggestion:
            text += f"; did you mean {self.suggestion!r}?"
        if self.expected:
            text += f" (expected {self.expected})"
        if self.allowed:
            text += f"; allowed keys here: {', '.join(self.allowed)}"
        for note in self.notes:
            text += f"; {note}"
        return text


class ConfigProblems(ConfigError):
    """Every problem found in one config file (a ConfigError)."""

    def __init__(self, problems: Sequence[Problem], file: Path | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.file = file
        head = f"{file or '<config>'}: {len(self.problems)} problem(s)"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))
