"""Browser assets shipped with the package, shared by the web console and `rtompc report`.

- ``uPlot.iife.min.js``, ``uPlot.min.css``: uPlot 1.6.32 (MIT, ``uPlot.LICENSE``), taken
  unmodified from the npm registry package ``uplot`` (``dist/``): a small, fast time-series
  chart (tens of thousands of points redrawn in milliseconds), no dependencies.
- ``trends.js``: rtompc's own chart helpers on top of uPlot (``window.RtompcTrends``: CV/MV
  trends with limit, target and prediction styles, journal markers, live append), used by
  ``rtompc report`` and meant for the web console.

:func:`read_asset` returns an asset's text, for pages that inline it (self-contained reports).
"""

from __future__ import annotations

from importlib import resources

UPLOT_VERSION = "1.6.32"
ASSETS = ("uPlot.iife.min.js", "uPlot.min.css")


def read_asset(name: str) -> str:
    """Text of a shipped asset (``uPlot.iife.min.js``, ``uPlot.min.css``, ...)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
