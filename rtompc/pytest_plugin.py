"""pytest plugin: ``pytest scenarios/`` collects scenario TOML files as test items.

Registered through the ``pytest11`` entry point ``rtompc``. A ``.toml`` file is
a scenario when it has a top-level ``[scenario]`` table (``pyproject.toml`` and
other TOML files are ignored). Each scenario becomes one item named after the
scenario, marked with its tags (so ``pytest scenarios/ -m fast`` runs the CI
subset); the item runs the scenario in-process and fails with every failed
criterion, its value, threshold and the margin it missed by. A file that does
not load fails with the loader's message (file and key path).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

_TAG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ScenarioFailure(Exception):
    """A scenario ran but missed one or more criteria (or could not run)."""


def _is_scenario(path: Path) -> dict[str, Any] | None:
    if path.suffix != ".toml" or path.name == "pyproject.toml":
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        # a broken file under a scenarios directory is still reported as a failing item
        return {} if "scenario" in path.parts[-2].lower() else None
    return data if isinstance(data.get("scenario"), dict) else None


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    """Collect scenario TOML files."""
    data = _is_scenario(file_path)
    if data is None:
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioFile(pytest.File):
    """One scenario file: one item."""

    def collect(self) -> Any:
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
            sc = data.get("scenario", {})
        except tomllib.TOMLDecodeError:
            sc = {}
        name = str(sc.get("name", self.path.stem)) if isinstance(sc, dict) else self.path.stem
        item = ScenarioItem.from_parent(self, name=name)
        tags = sc.get("tags", []) if isinstance(sc, dict) else []
        for tag in tags if isinstance(tags, list) else []:
            if isinstance(tag, str) and _TAG.match(tag):
                self.config.addinivalue_line("markers", f"{tag}: scenario tag")
                item.add_marker(tag)
        yield item


class ScenarioItem(pytest.Item):
    """Runs one scenario and checks its criteria."""

    def runtest(self) -> None:
        from rtompc.scenarios.result import ScenarioStatus
        from rtompc.scenarios.runner import run_scenario_file

        result = run_scenario_file(self.path)
        self.user_properties.extend(sorted(result.kpis.items()))
        if result.status is ScenarioStatus.ERROR:
            raise ScenarioFailure(f"scenario could not run: {result.message}")
        if result.status is ScenarioStatus.FAILED:
            lines = [f"{len(result.failed_criteria)} of {len(result.criteria)} criteria failed:"]
            lines += [f"  {c.describe()}" for c in result.failed_criteria]
            raise ScenarioFailure("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return f"{self.path}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.name}"
