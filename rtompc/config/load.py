"""TOML file -> typed config, with every problem of the file reported at once.

:func:`load_app` and :func:`load_scenario` read a file, bring older layouts up
to date (:func:`rtompc.config.upgrade.upgrade`, each change logged as a
deprecation), load the plant model(s) so that values with units can be
converted to each signal's SI unit, validate the whole file against the
pydantic model and then cross-check it against the model
(:mod:`rtompc.config.checks`). Every problem found is collected into one
:class:`~rtompc.config.errors.ConfigProblems` with file, line, key path,
expectation, allowed keys and a "did you mean".
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import logging
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

from pydantic import BaseModel, ValidationError

from plant_models.errors import EngineError
from plant_models.model import PlantModel
from rtompc.config.checks import LoadedModels, cross_check
from rtompc.config.errors import ConfigProblems, Problem
from rtompc.config.lines import LineIndex
from rtompc.config.model import AppConfig
from rtompc.config.scenario import ScenarioConfig
from rtompc.config.site import UNIT_SECTIONS, SiteConfig, attach_source
from rtompc.config.upgrade import upgrade

logger = logging.getLogger(__name__)

C = TypeVar("C", bound=AppConfig)


def load_app(path: str | Path) -> AppConfig:
    """Read, validate and cross-check an application config (``rtompc run``)."""
    return _load(Path(path), AppConfig)


def load_scenario(path: str | Path) -> ScenarioConfig:
    """Read, validate and cross-check a scenario file."""
    return _load(Path(path), ScenarioConfig)


def load_site(path: str | Path) -> SiteConfig:
    """Read a multi-unit application (``[[unit]]`` tables), or a single-unit one as a site of
    one unit named ``unit.name`` or the file stem; every problem at once (ConfigProblems)."""
    path = Path(path)
    text, data = read_toml(path)
    if isinstance(data.get("unit"), list):
        return validate_site(data, file=path, text=text)
    return SiteConfig.from_app(validate(AppConfig, data, file=path, text=text))


def is_multi_unit(data: Mapping[str, Any]) -> bool:
    """Whether a parsed config table is a multi-unit application (has ``[[unit]]`` tables)."""
    return isinstance(data.get("unit"), list)


def validate_site(
    data: Mapping[str, Any], *, file: Path | None = None, text: str = ""
) -> SiteConfig:
    """Validate a parsed multi-unit table: each unit against its own models, all problems at
    once with the key path ``unit[i]....`` and the line."""
    index = LineIndex(text)
    problems: list[Problem] = []
    data = dict(data)
    misplaced = [k for k in data if k in UNIT_SECTIONS]
    for key in misplaced:
        problems.append(
            Problem(
                (key,),
                f"[{key}] at the top level of a multi-unit file",
                file,
                expected=f"each unit's sections in its [[unit]] table: [unit.{key}]",
                allowed=tuple(SiteConfig.model_fields),
            )
        )
        del data[key]
    raw_units = data.get("unit", [])
    units: list[Any] = []
    models: list[LoadedModels | None] = []
    unit_units: dict[int, dict[str, str]] = {}
    for i, raw in enumerate(raw_units):
        if not isinstance(raw, Mapping):
            units.append(raw)
            models.append(None)
            continue
        upgraded, notes = upgrade(dict(raw))
        for note in notes:
            logger.warning("%s: unit[%d]: deprecated: %s", file or "<config>", i, note)
        found: list[Problem] = []
        loaded = LoadedModels.load(upgraded, file, found)
        problems.extend(_prefixed(p, ("unit", i)) for p in found)
        unit_units[id(upgraded)] = loaded.units()
        units.append(upgraded)
        models.append(loaded)
    data["unit"] = units
    base = file.parent if file is not None else Path(".")
    # the plant-wide section checks its names against every unit's steady-state model
    site_models: dict[str, Any] = {}
    for raw, loaded_models in zip(units, models, strict=True):
        rto_model = loaded_models.rto_model if loaded_models is not None else None
        if (
            not isinstance(raw, Mapping)
            or not isinstance(raw.get("name"), str)
            or rto_model is None
        ):
            site_models = {}
            break
        site_models[raw["name"]] = rto_model
    context = {"units": {}, "unit_units": unit_units, "base": base, "site_models": site_models}
    cfg: SiteConfig | None = None
    try:
        cfg = SiteConfig.model_validate(data, context=context)
        checked: SiteConfig | None = cfg
    except ValidationError as exc:
        problems.extend(_problems(exc, SiteConfig, data, file))
        checked = _without_unknown_keys(SiteConfig, data, exc, context)
    if checked is not None:
        for i, (unit, unit_models) in enumerate(zip(checked.unit, models, strict=True)):
            if unit_models is not None and unit_models.complete:
                found = cross_check(unit, unit_models, file)
                problems.extend(_prefixed(p, ("unit", i)) for p in found)
    problems = [_with_line(p, index) for p in problems]
    if problems:
        raise ConfigProblems(_dedupe(problems), file)
    assert cfg is not None  # noqa: S101 - no problems means validation succeeded
    attach_source(cfg, file)
    return cfg


def _prefixed(p: Problem, prefix: tuple[str | int, ...]) -> Problem:
    return dataclasses.replace(p, loc=(*prefix, *p.loc))


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The text and the parsed table of a TOML file (ConfigProblems when unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigProblems([Problem((), "config file not found", file=path)], path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigProblems(
            [Problem((), f"cannot read the file: {exc}", file=path)], path
        ) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigProblems(
            [Problem((), f"not valid TOML: {exc}", file=path, line=int(m.group(1)) if m else None)],
            path,
        ) from None


def _load(path: Path, cls: type[C]) -> C:
    text, data = read_toml(path)
    return validate(cls, data, file=path, text=text)


def validate(
    cls: type[C], data: Mapping[str, Any], *, file: Path | None = None, text: str = ""
) -> C:
    """Validate a parsed config table as ``cls`` (all problems at once, ConfigProblems)."""
    index = LineIndex(text)
    data, notes = upgrade(dict(data))
    for note in notes:
        logger.warning("%s: deprecated: %s", file or "<config>", note)
    problems: list[Problem] = []
    models = LoadedModels.load(data, file, problems)
    context = {"units": models.units(), "base": file.parent if file is not None else Path(".")}
    checked: C | None = None
    try:
        cfg = cls.model_validate(data, context=context)
        checked = cfg
    except ValidationError as exc:
        problems.extend(_problems(exc, cls, data, file))
        cfg = None
        checked = _without_unknown_keys(cls, data, exc, context)
    if checked is not None and models.complete:
        problems.extend(cross_check(checked, models, file))
    problems = [_with_line(p, index) for p in problems]
    if problems:
        raise ConfigProblems(_dedupe(problems), file)
    assert cfg is not None  # noqa: S101 - no problems means validation succeeded
    cfg._source = file
    return cfg


def _without_unknown_keys(
    cls: type[Any], data: Mapping[str, Any], exc: ValidationError, context: dict[str, Any]
) -> Any:
    """The config validated with its unknown keys left out, when unknown keys were its only
    problems (None otherwise), so that the cross-checks still report in the same pass: a typo
    in one key must not hide an unknown signal name elsewhere."""
    errors = exc.errors(include_url=False)
    if not errors or any(err["type"] != "extra_forbidden" for err in errors):
        return None
    pruned = copy.deepcopy(dict(data))
    for err in errors:
        loc = _clean_loc(pruned, err["loc"])
        parent = _raw_at(pruned, loc[:-1]) if loc else None
        if isinstance(parent, dict):
            parent.pop(loc[-1], None)
    try:
        return cls.model_validate(pruned, context=context)
    except ValidationError:
        return None


def source_of(cfg: AppConfig) -> Path | None:
    """The file a config was loaded from (None when built in memory)."""
    return cfg.source


def _with_line(p: Problem, index: LineIndex) -> Problem:
    if p.line is not None:
        return p
    return Problem(
        p.loc, p.message, p.file, index.line(p.loc), p.expected, p.allowed, p.suggestion, p.notes
    )


def _dedupe(problems: Sequence[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


# pydantic errors -> problems --------------------------------------------------


def _unwrap(ann: Any) -> list[Any]:
    """The member types of an annotation (Annotated, Optional and unions flattened)."""
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(ann)[0])
    if origin in (Union, types.UnionType):
        out = []
        for a in typing.get_args(ann):
            out.extend(_unwrap(a))
        return out
    return [ann]


def _step(ann: Any, part: str | int) -> Any:
    for member in _unwrap(ann):
        origin = typing.get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            if isinstance(part, str) and part in member.model_fields:
                return member.model_fields[part].annotation
        elif origin in (list, tuple) and isinstance(part, int):
            return typing.get_args(member)[0]
        elif origin is dict and isinstance(part, str):
            return typing.get_args(member)[1]
    return None


def model_at(cls: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The section class at a key path (None when the path leaves the model)."""
    ann: Any = cls
    for part in loc:
        ann = _step(ann, part)
        if ann is None:
            return None
    for member in _unwrap(ann):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _raw_at(data: Any, loc: Sequence[str | int]) -> Any:
    for part in loc:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        elif isinstance(data, Mapping) and isinstance(part, int):
            items = list(data.values())  # a table keyed by name read as a list
            data = items[part] if part < len(items) else None
        else:
            return None
    return data


def _clean_loc(data: Any, loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """Drop pydantic's union-member and validator tags from a location."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list | tuple) and isinstance(part, int):
            out.append(part)
            node = node[part] if part < len(node) else None
        elif isinstance(node, Mapping) and isinstance(part, int):
            out.append(part)
            items = list(node.values())
            node = items[part] if part < len(items) else None
        elif isinstance(part, str) and (
            part[:1].isupper()
            or "[" in part
            or part in ("str", "int", "float", "bool", "list", "dict", "tuple")
        ):
            continue
        else:
            out.append(part)
            node = None
    return tuple(out)


def _allowed(cls: type[BaseModel] | None) -> tuple[str, ...]:
    return tuple(cls.model_fields) if cls is not None else ()


def _expected(cls: type[BaseModel] | None, key: str | int) -> str:
    if cls is None or not isinstance(key, str) or key not in cls.model_fields:
        return ""
    desc = (cls.model_fields[key].description or "").replace("``", "").replace("\n", " ")
    return desc.split(". ")[0].strip().rstrip(".")


_REMOVED = {
    "password": "secrets never sit in a config file: put the password in an environment "
    "variable and name it in password_env",
    "historian": "the historian is app-level in a multi-unit file: one [historian] table at "
    "the top holds every unit's runs",
    "private_key_password": "put the key's password in an environment variable and name it in "
    "private_key_password_env",
}
"""Keys that were dropped on purpose, with what to do instead."""


def _problems(
    exc: ValidationError, root: type[BaseModel], data: Mapping[str, Any], file: Path | None
) -> list[Problem]:
    out: list[Problem] = []
    errors = exc.errors(include_url=False)
    for err in errors:
        loc = _clean_loc(data, err["loc"])
        kind = err["type"]
        parent_loc, key = loc[:-1], (loc[-1] if loc else "")
        parent = model_at(root, parent_loc)
        allowed = _allowed(parent)
        if kind == "extra_forbidden":
            near = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = _REMOVED.get(str(key))
            out.append(
                Problem(
                    loc,
                    "unknown key",
                    file,
                    allowed=allowed,
                    suggestion=near[0] if near and hint is None else "",
                    notes=(hint,) if hint else (),
                )
            )
        elif kind == "missing":
            raw = _raw_at(data, parent_loc)
            typed = [k for k in (raw if isinstance(raw, Mapping) else {}) if k not in allowed]
            near = difflib.get_close_matches(str(key), typed, n=1, cutoff=0.6)
            notes = (
                (f"the key {near[0]!r} written here looks like a typo of {key!r}",) if near else ()
            )
            out.append(
                Problem(
                    loc,
                    "missing required key",
                    file,
                    expected=_expected(parent, key),
                    allowed=allowed,
                    notes=notes,
                )
            )
        elif kind == "enum":
            out.append(
                Problem(
                    loc,
                    f"{err.get('input')!r} is not one of the choices",
                    file,
                    expected="one of " + str(err.get("ctx", {}).get("expected", "")),
                )
            )
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            value = err.get("input")
            got = ""
            if isinstance(value, str | int | float | bool) and kind not in ("value_error",):
                got = f", got {value!r}"
            out.append(Problem(loc, msg + got, file, expected=_expected(parent, key)))
    return out


def model_problem(loc: Sequence[str | int], exc: EngineError, file: Path | None) -> Problem:
    """A problem from an error raised while loading or building (plant model, solver, ...)."""
    return Problem(tuple(loc), str(exc), file)


__all__ = [
    "PlantModel",
    "load_app",
    "load_scenario",
    "load_site",
    "model_at",
    "read_toml",
    "source_of",
    "validate",
    "validate_site",
]
