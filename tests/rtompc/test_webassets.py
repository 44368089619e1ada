"""The vendored browser assets ship with the package and are the unmodified uPlot release."""

from __future__ import annotations

from rtompc.webassets import ASSETS, UPLOT_VERSION, read_asset


def test_uplot_assets_ship_with_the_package() -> None:
    js = read_asset("uPlot.iife.min.js")
    assert "uPlot" in js and len(js) > 30_000  # the minified library, not a stub
    assert ".uplot" in read_asset("uPlot.min.css")
    assert "MIT License" in read_asset("uPlot.LICENSE")
    assert UPLOT_VERSION == "1.6.32" and len(ASSETS) == 2
