"""Paths in a config: relative ones resolve against the config file's directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema


def base_dir(info: ValidationInfo) -> Path:
    """Directory of the config file (from the validation context; cwd when in memory)."""
    ctx = info.context or {}
    base = ctx.get("base")
    return Path(base) if base is not None else Path(".")


def _resolve(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str) and value:
        p = Path(value).expanduser()
        return p if p.is_absolute() else base_dir(info) / p
    return value


def base_dir_of(file: Path | None) -> Path:
    """Directory of a config file (cwd for a config built in memory)."""
    return file.parent if file is not None else Path(".")


def resolve_name(name: str, base: Path) -> str:
    """``path/to/module.py:function`` and ``model.json`` resolve against ``base``;
    registry names stay as they are."""
    if ":" in name and name.split(":")[0].endswith(".py"):
        file, func = name.rsplit(":", 1)
        p = Path(file)
        return name if p.is_absolute() else f"{base / p}:{func}"
    if name.endswith((".json", ".npz")) and not Path(name).is_absolute():
        return str(base / name)
    return name


def resolve_model_name(name: Any, info: ValidationInfo) -> Any:
    """A model name in a config, resolved against the config file (see :func:`resolve_name`)."""
    return resolve_name(name, base_dir(info)) if isinstance(name, str) else name


FilePath = Annotated[
    Path,
    BeforeValidator(_resolve),
    WithJsonSchema(
        {"type": "string", "description": "a path; relative paths resolve against the config file"}
    ),
]
"""A file or directory path (relative to the config file)."""
