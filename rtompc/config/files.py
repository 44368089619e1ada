"""Writing config files safely: whole or not at all, never over a file by accident."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from plant_models.errors import ConfigError


def write_text_atomic(path: Path, text: str, *, force: bool = False) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename.

    An existing file is kept (a :class:`ConfigError`) unless ``force``; an interrupted
    write leaves the old file (or none), never a half-written one.
    """
    if path.exists() and not force:
        raise ConfigError(f"{path}: exists; use --force to replace it (or choose another --out)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
