"""The JSON Schema of the config files, shaped for editors (``rtompc config schema``).

pydantic's ``model_json_schema()`` is the source. Two things are changed so that
TOML editors (taplo, Even Better TOML) read it and give useful messages:

- TOML has no ``null``: ``anyOf: [X, {"type": "null"}]`` becomes ``X`` (an
  optional key is simply left out), and ``default: null`` is dropped;
- JSON has no infinity: a default of ``-inf``/``inf`` ("no limit") is dropped
  (the reference, ``docs/configuration.md``, still states it).

Use in an editor: put ``#:schema ./rtompc-app.schema.json`` on the first line
of a config (after ``rtompc config schema > rtompc-app.schema.json``), or map
files to the schema in ``.taplo.toml``::

    [[rule]]
    include = ["configs/**/*.toml"]
    [rule.schema]
    path = "./rtompc-app.schema.json"
"""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect pydantic writes."""


class SchemaKind(Enum):
    """Which file format a schema describes."""

    APP = "app"
    """An application config (``rtompc run``)."""
    SCENARIO = "scenario"
    """A scenario file (``rtompc simulate``, campaigns): an app config plus events, faults and
    criteria."""
    SITE = "site"
    """A multi-unit application (``[[unit]]`` tables, ``rtompc run``)."""


def model_schema(kind: SchemaKind = SchemaKind.APP) -> dict[str, Any]:
    """pydantic's JSON Schema of the config model (unchanged; may hold ``inf`` and ``null``)."""
    if kind is SchemaKind.SCENARIO:
        from rtompc.config.scenario import ScenarioConfig

        return ScenarioConfig.model_json_schema()
    if kind is SchemaKind.SITE:
        from rtompc.config.site import SiteConfig

        return SiteConfig.model_json_schema()
    from rtompc.config.model import AppConfig

    return AppConfig.model_json_schema()


def editor_schema(kind: SchemaKind = SchemaKind.APP) -> dict[str, Any]:
    """The schema for editors: no ``null`` alternatives, finite defaults, with ``$schema``."""
    raw = _clean(model_schema(kind))
    title = {
        SchemaKind.SCENARIO: "rtompc scenario file",
        SchemaKind.SITE: "rtompc multi-unit application",
    }.get(kind, "rtompc application config")
    out: dict[str, Any] = {"$schema": SCHEMA_DIALECT, "title": title}
    out.update({k: v for k, v in raw.items() if k != "title"})
    return out


def schema_text(kind: SchemaKind = SchemaKind.APP) -> str:
    """:func:`editor_schema` as JSON text (strict JSON: no NaN or Infinity)."""
    return json.dumps(editor_schema(kind), indent=2, allow_nan=False) + "\n"


def _clean(node: Any) -> Any:
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _clean(v) for k, v in node.items()}
    if "default" in out and (out["default"] is None or _non_finite(out["default"])):
        del out["default"]
    alts = out.get("anyOf")
    if isinstance(alts, list):
        kept = [a for a in alts if a != {"type": "null"}]
        if len(kept) == 1:
            del out["anyOf"]
            merged = dict(kept[0])
            merged.update(out)  # the outer description and default win
            out = merged
        else:
            out["anyOf"] = kept
    return out


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    return False
