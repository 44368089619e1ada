"""Where a key was written: a key path -> TOML line index over the file's text.

Parses table headers (``[a.b]``, ``[[a.b]]`` with their running index) and
``key = value`` lines (dotted and quoted keys) with a few regular expressions;
inline tables and multi-line values map to the line of their key. Good enough
to point a person at the line; the TOML itself is parsed by ``tomllib``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_ARRAY = re.compile(r"^\[\[\s*(.+?)\s*\]\]")
_TABLE = re.compile(r"^\[\s*(.+?)\s*\]")
_KEY = re.compile(
    r"""^((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*="""
)
_PART = re.compile(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_\-]+)""")

Loc = tuple[str | int, ...]


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(next(g for g in m.groups() if g is not None) for m in _PART.finditer(text))


class LineIndex:
    """Key path -> 1-based line number of a TOML text."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Loc, int] = {}
        counters: dict[tuple[str, ...], int] = {}
        current: Loc = ()
        in_multiline = False
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if in_multiline:
                if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                    in_multiline = False
                continue
            if not line or line.startswith("#"):
                continue
            m = _ARRAY.match(line)
            if m:
                path = _dotted(m.group(1))
                counters[path] = counters.get(path, -1) + 1
                for nested in [
                    k for k in counters if len(k) > len(path) and k[: len(path)] == path
                ]:
                    del counters[nested]  # [[unit.mpc.cvs]] counts again in the next [[unit]]
                current = self._with_indices(path[:-1], counters) + (path[-1], counters[path])
                self.lines.setdefault(current[:-1], lineno)
                self.lines[current] = lineno
                continue
            m = _TABLE.match(line)
            if m:
                current = self._with_indices(_dotted(m.group(1)), counters)
                self.lines.setdefault(current, lineno)
                continue
            m = _KEY.match(line)
            if m:
                key = current + _dotted(m.group(1))
                self.lines.setdefault(key, lineno)
                if line.count('"""') == 1 or line.count("'''") == 1:
                    in_multiline = True

    @staticmethod
    def _with_indices(path: tuple[str, ...], counters: dict[tuple[str, ...], int]) -> Loc:
        out: list[str | int] = []
        for i, part in enumerate(path):
            out.append(part)
            prefix = path[: i + 1]
            if prefix in counters:
                out.append(counters[prefix])
        return tuple(out)

    def line(self, loc: Sequence[str | int]) -> int | None:
        """Line of ``loc``, or of its closest written parent (None when nothing matches)."""
        key = tuple(loc)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return None
