"""Registry of reference plants: ``load(name, **params)`` and ``names()``.

Each plant lives in its own module with a ``build(**params) -> PlantModel``
function and its literature source in the module docstring. ``load`` also
accepts ``path/to/module.py:function`` (a user plant written in Python); an
identified-model file is loaded by the identification package when present.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plant_models.errors import ModelError
from plant_models.model import PlantModel

_REGISTRY: dict[str, str] = {
    "van_de_vusse": "plant_models.library.van_de_vusse:build",
    "williams_otto": "plant_models.library.williams_otto:build",
    "williams_otto_2r": "plant_models.library.williams_otto:build_two_reaction",
    "quadruple_tank": "plant_models.library.quadruple_tank:build",
    "slab_furnace": "plant_models.library.slab_furnace:build",
    "reheating_furnace": "plant_models.library.reheating_furnace:build",
    "distillation_column_a": "plant_models.library.distillation_column_a:build",
    "industrial_poly": "plant_models.library.industrial_poly:build",
    "steel_energy": "plant_models.library.steel_energy:build",
    "steel_gasholder": "plant_models.library.steel_gasholder:build",
}


def names() -> list[str]:
    """Names of the registered reference plants that are importable."""
    out = []
    for name, target in _REGISTRY.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module) is not None:
            out.append(name)
    return out


def _call(fn: Callable[..., Any], label: str, params: dict[str, Any]) -> PlantModel:
    sig = inspect.signature(fn)
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    unknown = [k for k in params if k not in sig.parameters and not accepts_any]
    if unknown:
        known = [k for k in sig.parameters if not k.startswith("_")]
        raise ModelError(
            f"plant {label!r}: unknown parameter(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(known) or '(none)'}"
        )
    model = fn(**params)
    if not isinstance(model, PlantModel):
        raise ModelError(
            f"plant {label!r}: builder returned {type(model).__name__}, not PlantModel"
        )
    return model


def _load_from_file(spec: str, params: dict[str, Any]) -> PlantModel:
    path_str, _, func = spec.rpartition(":")
    path = Path(path_str)
    if not path.is_file():
        raise ModelError(f"plant {spec!r}: file {path} does not exist")
    mod_spec = importlib.util.spec_from_file_location(f"rtompc_user_plant_{path.stem}", path)
    if mod_spec is None or mod_spec.loader is None:
        raise ModelError(f"plant {spec!r}: cannot import {path}")
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a user's module: report where it failed, no traceback
        raise ModelError(f"plant {spec!r}: importing {path} failed: {_where(exc, path)}") from exc
    fn = getattr(module, func, None)
    if not callable(fn):
        raise ModelError(f"plant {spec!r}: {path} has no function {func!r}")
    try:
        return _call(fn, spec, params)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's builder raised: name it and the line
        raise ModelError(f"plant {spec!r}: {func}() failed: {_where(exc, path)}") from exc


def _where(exc: BaseException, path: Path) -> str:
    """``Type: message (line N)`` of an exception raised from the user's file."""
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    tb = exc.__traceback__
    while tb is not None:
        if Path(
            tb.tb_frame.f_code.co_filename
        ) == path.resolve() or tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    msg = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    return f"{type(exc).__name__}: {msg}" + (f" (line {line})" if line else "")


def load(name: str, **params: Any) -> PlantModel:
    """Build a plant by registry name, ``file.py:function`` or identified-model file."""
    if name in _REGISTRY:
        module_name, func = _REGISTRY[name].split(":")
        module = importlib.import_module(module_name)
        return _call(getattr(module, func), name, params)
    if name.endswith((".json", ".npz")):
        try:
            ident = importlib.import_module("plant_models.identified")
        except ImportError:
            raise ModelError(
                f"plant {name!r}: identified-model files are not supported yet"
            ) from None
        return ident.load_model(name, **params)
    if ":" in name and name.split(":")[0].endswith(".py"):
        return _load_from_file(name, params)
    raise ModelError(
        f"unknown plant {name!r}; known: {', '.join(names())}, or 'path/to/module.py:function'"
    )
