"""Engineering units, tag maps (HIL layout and config tables), quality assessment, move limits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interfaces.limits import MoveLimits, limit_move
from interfaces.opcua_security import connect_error
from interfaces.opcua_settings import OpcUaSettings
from interfaces.quality import Issue, assess, severity
from interfaces.tagmap import HIL_NAMESPACE_URI, IdType, NodeRef, TagGroup, TagMap
from interfaces.units import conversion, same_unit
from plant_models.errors import ConfigError, PlantIOError
from plant_models.model import PlantModel
from plant_models.samples import Quality


@pytest.mark.parametrize(
    ("unit", "si_unit", "raw", "si"),
    [
        ("degC", "K", 25.0, 298.15),
        ("°C", "K", -273.15, 0.0),
        ("degF", "K", 212.0, 373.15),
        ("bar", "Pa", 1.01325, 101325.0),
        ("t/h", "kg/s", 3.6, 1.0),
        ("kJ/h", "W", 3600.0, 1000.0),
        ("1/h", "1/s", 14.19, 14.19 / 3600),
        ("l", "m^3", 10.0, 0.01),
        ("%", "1", 55.0, 0.55),
        ("mol/l", "mol/m^3", 5.1, 5100.0),
        ("m^3/h", "m^3/s", 36.0, 0.01),
    ],
)
def test_conversions_to_si_and_back(unit: str, si_unit: str, raw: float, si: float) -> None:
    c = conversion(unit, si_unit)
    assert c.to_model(raw) == pytest.approx(si, rel=1e-12, abs=1e-12)
    assert c.to_raw(si) == pytest.approx(raw, rel=1e-12, abs=1e-12)


def test_conversion_between_engineering_units_and_errors() -> None:
    assert conversion("degC", "degF").to_model(100.0) == pytest.approx(212.0)
    assert conversion("bar", "kPa").to_model(1.0) == pytest.approx(100.0)
    assert conversion("furlong", "furlong").identity  # same text: identity even if unknown
    assert same_unit("degC", "°C") and same_unit("K", "K") and not same_unit("K", "degC")
    with pytest.raises(ConfigError, match="unknown unit .furlongs_per_fortnightx."):
        conversion("furlongs_per_fortnightx", "m")
    with pytest.raises(ConfigError, match="cannot convert 'bar'"):
        conversion("bar", "K")


def test_hil_tag_map_follows_the_layout_contract(vdv: PlantModel) -> None:
    tags = TagMap.for_hil(vdv)
    assert [t.signal for t in tags.measurements] == [*vdv.y.names, *vdv.d.names]
    assert tags.measurements[0].node == NodeRef(HIL_NAMESPACE_URI, "van_de_vusse.Measurements.c_a")
    assert tags.setpoints[1].node.nodeid_string(3) == "ns=3;s=van_de_vusse.Setpoints.q_k"
    assert tags.actuators[0].node.identifier == "van_de_vusse.Actuators.f_dil"
    assert tags.status.step_method == NodeRef(HIL_NAMESPACE_URI, "van_de_vusse.step")
    assert tags.status.sim_time.identifier == "van_de_vusse.Status.sim_time_s"
    assert all(
        t.group is TagGroup.SETPOINT and t.direction.value == "write" for t in tags.setpoints
    )
    t_r = tags.measurements[2]
    assert (t_r.lower, t_r.upper) == (273.15, 573.15) and t_r.conversion.identity


def test_tag_table_errors_name_the_key(vdv: PlantModel) -> None:
    with pytest.raises(ConfigError, match=r"tags.measurements.t_x: unknown signal 't_x'"):
        TagMap.from_mapping({"namespace": "urn:p", "measurements": {"t_x": "s=A"}}, vdv)
    with pytest.raises(ConfigError, match="names a namespace index"):
        TagMap.from_mapping({"namespace": "urn:p", "measurements": {"t_r": "ns=2;s=A"}}, vdv)
    with pytest.raises(ConfigError, match="no namespace URI"):
        TagMap.from_mapping({"measurements": {"t_r": "s=A"}}, vdv)
    with pytest.raises(ConfigError, match="setpoints must list the MVs"):
        TagMap.from_mapping({"namespace": "urn:p", "setpoints": {"q_k": "s=Q"}}, vdv)
    with pytest.raises(ConfigError, match=r"tags.measurements.t_r.valid: expected \[low, high\]"):
        TagMap.from_mapping(
            {
                "namespace": "urn:p",
                "measurements": {"t_r": {"node": "s=A", "valid": [1]}},
                "setpoints": {"f_dil": "s=F", "q_k": "s=Q"},
            },
            vdv,
        )
    with pytest.raises(ConfigError, match="cannot convert 'bar'"):
        TagMap.from_mapping(
            {
                "namespace": "urn:p",
                "measurements": {"t_r": {"node": "s=A", "unit": "bar"}},
                "setpoints": {"f_dil": "s=F", "q_k": "s=Q"},
            },
            vdv,
        )
    ref = NodeRef.parse("i=85", "http://opcfoundation.org/UA/")
    assert ref.id_type is IdType.NUMERIC and ref.nodeid_string(0) == "ns=0;i=85"


def test_quality_assessment() -> None:
    assert severity(0) is Quality.GOOD
    assert severity(0x408F0000) is Quality.UNCERTAIN  # UncertainLastUsableValue
    assert severity(0x808C0000) is Quality.BAD  # BadSensorFailure
    ok = assess(25.0, 0, to_model=lambda r: r + 273.15, lower=273.15, upper=573.15)
    assert ok.quality is Quality.GOOD and ok.value == 298.15 and ok.issues == ()
    assert assess(None, 0).issues == (Issue.NO_VALUE,)
    assert assess("12", 0).quality is Quality.BAD
    assert assess(math.inf, 0).issues == (Issue.NOT_FINITE,)
    assert assess(1e4, 0, upper=600.0).issues == (Issue.OUT_OF_VALIDITY,)
    stale = assess(1.0, 0, age_s=12.0, stale_after_s=10.0)
    assert stale.quality is Quality.UNCERTAIN and stale.issues == (Issue.STALE,)
    worst = assess(math.nan, 0x80000000, age_s=12.0, stale_after_s=10.0)
    assert worst.quality is Quality.BAD
    assert set(worst.issues) == {Issue.STATUS_BAD, Issue.NOT_FINITE, Issue.STALE}


def test_limit_move_clamps_rates_and_holds() -> None:
    lim = MoveLimits(
        ("a", "b", "c"),
        np.array([0.0, -1.0, 0.0]),
        np.array([10.0, 1.0, 5.0]),
        np.array([0.5, math.inf, 1.0]),
    )
    res = limit_move(lim, np.array([20.0, -3.0, math.nan]), np.array([9.8, 0.0, 2.0]), 2.0)
    # a: rate limit 0.5/s * 2 s = 1 around 9.8 -> 10.8, then clamped to 10
    np.testing.assert_allclose(res.applied, [10.0, -1.0, 2.0])
    assert res.rate_limited == (True, False, False)
    assert res.clamped == (True, True, False)
    assert res.held == (False, False, True)
    res = limit_move(lim, np.array([5.0, 0.5, 4.5]), np.array([9.8, np.nan, 2.0]), 2.0)
    np.testing.assert_allclose(res.applied, [8.8, 0.5, 4.0])
    assert res.rate_limited == (True, False, True)
    with pytest.raises(ConfigError, match="max_rate must be > 0"):
        MoveLimits(("a",), np.array([0.0]), np.array([1.0]), np.array([0.0]))


def test_connect_errors_are_mapped_to_clear_messages() -> None:
    s = OpcUaSettings("opc.tcp://127.0.0.1:4840", 1.0, username="op", password="pw-123")
    err = connect_error(AssertionError(), s)
    assert isinstance(err, PlantIOError) and "rejected the secure channel" in str(err)
    err = connect_error(ConnectionRefusedError(111, "refused"), s)
    assert "cannot reach the server" in str(err)
    from asyncua import ua

    err = connect_error(ua.UaStatusCodeError(ua.StatusCodes.BadUserAccessDenied), s)
    assert "user 'op' was rejected" in str(err) and "pw-123" not in str(err)
