"""Engineering units table and the actuator model (limits, rate limit, first-order lag)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from asyncua import ua

from hil.actuators import ActuatorBank, ActuatorSpec, resolve_specs
from hil.units import engineering_unit, unece_unit_id
from plant_models.errors import ConfigError


def test_unece_unit_id_packs_ascii_per_opc_ua_part8() -> None:
    # OPC UA Part 8, 5.6.3: "KEL" -> 0x4B454C; "C62" -> 0x433632.
    assert unece_unit_id("KEL") == 0x4B454C
    assert unece_unit_id("C62") == 0x433632
    assert engineering_unit("K").unit_id == 0x4B454C
    assert engineering_unit("mol/m^3").unit_id == unece_unit_id("C36")
    assert engineering_unit("t/h").unit_id == unece_unit_id("TNH")
    assert engineering_unit("r/min").unit_id == unece_unit_id("RPM")
    fallback = engineering_unit("W/(m^2 K)")
    assert (fallback.unit_id, fallback.display_name) == (-1, "W/(m^2 K)")


def test_status_code_table_matches_asyncua() -> None:
    from hil.faults import STATUS_CODES

    for name, code in STATUS_CODES.items():
        assert getattr(ua.StatusCodes, name) == code, name


def test_lag_follows_exponential_and_rate_limit_is_linear() -> None:
    tau, dt = 20.0, 1.0
    bank = ActuatorBank((ActuatorSpec(0.0, 10.0, math.inf, tau),), np.array([0.0]))
    pos = [bank.advance(np.array([4.0]), dt)[0] for _ in range(30)]
    expected = 4.0 * (1 - np.exp(-dt * np.arange(1, 31) / tau))
    np.testing.assert_allclose(pos, expected, rtol=1e-12)

    bank = ActuatorBank((ActuatorSpec(0.0, 10.0, 0.5, 0.0),), np.array([1.0]))
    pos = [bank.advance(np.array([3.0]), dt)[0] for _ in range(6)]
    np.testing.assert_allclose(pos, [1.5, 2.0, 2.5, 3.0, 3.0, 3.0])


def test_clamp_and_stuck() -> None:
    bank = ActuatorBank((ActuatorSpec(0.0, 2.0), ActuatorSpec(-1.0, 1.0)), np.array([1.0, 0.0]))
    out = bank.advance(np.array([5.0, -3.0]), 1.0)
    np.testing.assert_allclose(out, [2.0, -1.0])
    out = bank.advance(np.array([0.5, 0.5]), 1.0, stuck=np.array([True, False]))
    np.testing.assert_allclose(out, [2.0, 0.5])


def test_resolve_specs_narrows_to_signal_bounds_and_names_errors(vdv) -> None:
    specs = resolve_specs(vdv.u, {"q_k": ActuatorSpec(lower=-1e9, upper=-100.0)})
    assert specs[1].lower == vdv.u["q_k"].lower and specs[1].upper == -100.0
    assert specs[0].lower == vdv.u["f_dil"].lower
    with pytest.raises(ConfigError, match="unknown MV.*bogus"):
        resolve_specs(vdv.u, {"bogus": ActuatorSpec()})
    with pytest.raises(ConfigError, match="rate_limit_per_s"):
        ActuatorSpec(rate_limit_per_s=0.0)


def test_pacing_stats_percentile_and_realtime_factor() -> None:
    from hil.clock import ClockConfig, PacingStats

    stats = PacingStats(window=1000)
    assert stats.jitter_p99_s() == 0.0 and stats.realtime_factor() == 0.0
    for k in range(200):
        late = 0.05 if k % 100 == 0 else 0.001  # 2 slow steps in 200
        stats.record(late, wall_s=0.01 * k, sim_s=1.0 * k)
    assert stats.realtime_factor() == pytest.approx(100.0)
    assert 0.001 < stats.jitter_p99_s() < 0.05  # the 99th percentile sits between the two levels
    with pytest.raises(ConfigError, match="speed"):
        ClockConfig(speed=0.0)
