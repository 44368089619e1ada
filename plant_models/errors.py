"""The engine's exception tree, in one place.

Every error the engine raises on purpose derives from :class:`EngineError` and
mixes in the builtin a caller would naturally catch:

- :class:`ConfigError` (``ValueError``): a config file or config object is wrong;
  the message names the file, the key path and what was expected.
- :class:`ModelError` (``ValueError``): a model or a call on it is inconsistent:
  wrong dimensions, unknown signal names, non-finite values, inverted bounds.
- :class:`SolverFailed` (``RuntimeError``): a numerical solve did not give a usable
  answer and the caller asked for an exception (``raise_for_status()``).
- :class:`PlantIOError` (``ConnectionError``): the link to the plant failed.

The hot control loop never raises on a bad solve: it gets a result object with a
status and applies a fallback.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error raised on purpose by rtompc."""


class ConfigError(EngineError, ValueError):
    """A configuration file or object is invalid (names file, key path, expectation)."""


class ModelError(EngineError, ValueError):
    """A plant model, signal definition or a call on a model is inconsistent."""


class SolverFailed(EngineError, RuntimeError):
    """A numerical solve failed and the caller asked for an exception."""


class PlantIOError(EngineError, ConnectionError):
    """Reading from or writing to the plant failed."""
