"""Holder EMPC in closed loop over a day-ahead price profile (forecast shifted every sample).

Against the steady policy a two-layer RTO gives a holder (burn the COG surplus as
it comes), the EMPC must earn clearly more by storing gas for the evening peak,
keep the holder inside its 10-90 % safety levels, and burn above the surplus in
the peak. Figures (24 h, 300 s sample): README case study.
"""

from __future__ import annotations

import numpy as np

from rtompc.steel_empc import run_holder_empc


def day_price(t: float) -> float:
    h = (t / 3600.0) % 24.0
    return 35.0 if h < 6 else 70.0 if h < 17 else 140.0 if h < 21 else 45.0


def test_holder_empc_stores_for_the_peak_and_beats_the_steady_policy() -> None:
    res = run_holder_empc(day_price, hours=24.0, sample_time_s=600.0)
    assert res.revenue_usd > 1.05 * res.steady_revenue_usd
    assert res.level.min() >= 0.1 - 1e-6 and res.level.max() <= 0.9 + 1e-6
    h = res.t / 3600.0
    assert res.level[(h > 15.0) & (h < 17.0)].max() > 0.85  # full before the peak
    assert np.mean(res.burn[(h >= 17.0) & (h < 21.0)]) > 12.0  # surplus is 10 m^3/s
