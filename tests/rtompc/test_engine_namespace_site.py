"""The engine's OPC UA namespace of a two-unit site, read and written by an asyncua client over
a real secured socket.

The site: two quadruple-tank units with the same signal names (``tanks_a``, h1 target 13 cm,
in-process; ``tanks_b``, 12 cm, over OPC UA to a loopback HIL server), lockstep, EKF + NMPC,
live parameters journaled in one
historian file (:func:`tests.rtompc.site_surface_helpers.two_tanks_text`). Checked: both unit
objects browse under ``Units`` with their CVs and MVs, EngineeringUnits and EURange; each
unit's values are its own frame's; an operator's writes to ``tanks_b``'s h1 (CV) and v1 (MV)
high limits are accepted, journaled in ``tanks_b``'s run only and reaches ``tanks_b``'s controller at its next
cycle, while ``tanks_a``'s live parameters, controller and journal stay as they were; when
``tanks_b``'s PLC goes away its ``connected`` turns false while ``tanks_a`` keeps updating.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from asyncua import ua
from test_engine_namespace import _client, secure_settings

from interfaces.engine_server import NAMESPACE_URI
from rtompc.engine_namespace import EngineNamespace
from rtompc.historian.journal import read_journal
from tests.rtompc.site_surface_helpers import site_stack, tanks_hil, two_tanks_text

pytestmark = [pytest.mark.opcua, pytest.mark.timeout(120)]


async def test_both_units_browse_and_a_write_changes_only_its_unit(tmp_path: Path) -> None:
    settings, cert, key = secure_settings(tmp_path)
    hil, b_transport = tanks_hil()
    text = two_tanks_text(str(tmp_path / "site.sqlite"), b_transport)
    async with site_stack(tmp_path, text=text, hil=hil) as site:
        views = site.run.views
        a, b = site.loop("tanks_a"), site.loop("tanks_b")
        a_live, b_live = views["tanks_a"].live, views["tanks_b"].live
        assert a_live is not None and b_live is not None
        a_before = {k: a_live.value(k) for k in a_live.keys()}
        async with EngineNamespace(views, settings, max_rate_hz=100.0):
            await a.run(3)
            await b.run(5)
            async with await _client(settings.endpoint, cert, key, "op1") as op:
                ns = await op.get_namespace_index(NAMESPACE_URI)
                units = await op.get_node(ua.NodeId("Units", ns)).get_children()
                names = [(await u.read_browse_name()).Name for u in units]
                assert sorted(names) == ["tanks_a", "tanks_b"]
                for unit in units:
                    children = [
                        (await c.read_browse_name()).Name for c in await unit.get_children()
                    ]
                    assert sorted(children) == ["CVs", "Controller", "MVs"]

                def node(path: str):  # type: ignore[no-untyped-def]
                    return op.get_node(ua.NodeId(f"Units.{path}", ns))

                for unit, n_cycle in (("tanks_a", 2), ("tanks_b", 4)):
                    frame = views[unit].latest
                    assert frame is not None and frame.cycle == n_cycle
                    assert await node(f"{unit}.Controller.cycle").read_value() == n_cycle
                    for cv in ("h1", "h2"):
                        got = await node(f"{unit}.CVs.{cv}.measured").read_value()
                        assert got == frame.cv(cv).measured
                        assert await node(f"{unit}.CVs.{cv}.target").read_value() == (
                            frame.cv(cv).target
                        )
                    h1 = await node(f"{unit}.CVs.h1.high.EngineeringUnits").read_value()
                    rng = await node(f"{unit}.CVs.h1.measured.EURange").read_value()
                    assert h1.DisplayName.Text == "m" and (rng.Low, rng.High) == (0.0, 0.2)
                    v1 = await node(f"{unit}.MVs.v1.high.EngineeringUnits").read_value()
                    rng = await node(f"{unit}.MVs.v1.high.EURange").read_value()
                    assert v1.DisplayName.Text == "V" and (rng.Low, rng.High) == (0.0, 10.0)
                # the two units' targets differ (13 cm, 12 cm): each node has its unit's own
                t_a = await node("tanks_a.CVs.h1.target").read_value()
                t_b = await node("tanks_b.CVs.h1.target").read_value()
                assert abs(t_a - 0.13) < 1e-9 and abs(t_b - 0.12) < 1e-9
                # the operator lowers tanks_b's v1 high limit below where it runs
                held = views["tanks_b"].latest.mv("v1").value  # type: ignore[union-attr]
                new_high = round(0.9 * held, 3)
                dv = ua.DataValue(ua.Variant(new_high, ua.VariantType.Double))
                [res] = await op.write_values([node("tanks_b.MVs.v1.high")], [dv])
                assert ua.StatusCode(res.value).is_good()
                assert b_live.value("mv.v1.high") == new_high
                assert await node("tanks_b.MVs.v1.high").read_value() == new_high
                assert await node("tanks_a.MVs.v1.high").read_value() == 10.0
                # ... and its h1 (CV) high limit, between its target and where tanks_a runs
                h1_high = 0.125
                dv = ua.DataValue(ua.Variant(h1_high, ua.VariantType.Double))
                [res] = await op.write_values([node("tanks_b.CVs.h1.high")], [dv])
                assert ua.StatusCode(res.value).is_good()
                assert await node("tanks_a.CVs.h1.high").read_value() == math.inf
            await a.run(2)
            await b.run(2)
            # tanks_b's PLC goes away: its object says so, tanks_a carries on
            await hil.stop()
            await b.run(2)
            await a.run(1)
            async with await _client(settings.endpoint, cert, key, "view1") as viewer:

                def seen(path: str):  # type: ignore[no-untyped-def]
                    return viewer.get_node(ua.NodeId(f"Units.{path}", ns)).read_value()

                assert await seen("tanks_b.Controller.connected") is False
                assert await seen("tanks_a.Controller.connected") is True
                assert await seen("tanks_a.Controller.cycle") == 5
                assert await seen("tanks_b.Controller.cycle") == 8
        assert b.controller.config.mv("v1").upper == new_high
        assert all(f.mv("v1").value <= new_high + 1e-9 for f in views["tanks_b"].frames()[-1:])
        assert a.controller.config.mv("v1").upper != new_high
        assert b.controller.config.cv("h1").upper == h1_high
        assert a.controller.config.cv("h1").upper == math.inf
        assert {k: a_live.value(k) for k in a_live.keys()} == a_before
        hist_a, hist_b = site.run.units["tanks_a"].historian, site.run.units["tanks_b"].historian
        rows_b = [(r.user, r.source, r.key, r.new) for r in read_journal(hist_b, hist_b.run_id)]
        assert rows_b == [
            ("op1", "opcua", "mv.v1.high", new_high),
            ("op1", "opcua", "cv.h1.high", h1_high),
        ]
        assert read_journal(hist_a, hist_a.run_id) == []
