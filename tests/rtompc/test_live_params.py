"""Live parameters: validation by type, range and role, the journal in the historian, replay.

No loop here (see test_live_loop.py): these check what is refused and why, and
that every submission lands in the historian's journal with who/when/old/new/source.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from live_helpers import T_R_HIGH, vdv_config

from plant_models.library import load
from plant_models.model import PlantModel
from plant_models.samples import Mode
from rtompc.historian import Historian, HistorianLayout
from rtompc.historian.journal import HistorianJournal, last_run_changes, read_journal
from rtompc.live import LiveChangeRefused, LiveParameters, Refusal, Role, Source, replay
from rtompc.live.config import controller_config
from rtompc.live.startup import live_for_run


@pytest.fixture(scope="module")
def cstr() -> PlantModel:
    return load("van_de_vusse", parameters="do_mpc")


_config = vdv_config


def test_operator_cannot_change_a_weight(cstr: PlantModel) -> None:
    live = LiveParameters(cstr, _config())
    with pytest.raises(LiveChangeRefused, match="needs role engineer, user has operator") as exc:
        live.submit("cv.c_b.weight", 5.0, role=Role.OPERATOR, user="op1")
    assert exc.value.reason is Refusal.ROLE
    assert live.value("cv.c_b.weight") == 1.0
    assert live.take_pending() == []
    ch = live.submit("cv.c_b.weight", 5.0, role=Role.ENGINEER, user="eng1")
    assert ch.old == 1.0 and ch.new == 5.0
    assert controller_config(live.base_config, live.snapshot()).cv("c_b").weight == 5.0  # type: ignore[union-attr]


def test_limit_outside_validity_is_refused(cstr: PlantModel) -> None:
    live = LiveParameters(cstr, _config())
    vhi = live.value("cv.t_r.validity_high")
    assert isinstance(vhi, float) and math.isfinite(vhi)
    with pytest.raises(LiveChangeRefused, match="outside the validity limits") as exc:
        live.submit("cv.t_r.high", vhi + 1.0, role=Role.OPERATOR)
    assert exc.value.reason is Refusal.RANGE
    # the engineer widens nothing for the operator: a tighter validity below the operator
    # limit is refused too
    with pytest.raises(LiveChangeRefused, match="outside the validity limits"):
        live.submit("cv.t_r.validity_high", 400.0, role=Role.ENGINEER)
    # MV limits inside the configured bounds only
    with pytest.raises(LiveChangeRefused, match="outside the MV bounds"):
        live.submit("mv.q_k.low", -1e9, role=Role.OPERATOR)
    live.submit("mv.f_dil.high", 0.01, role=Role.OPERATOR)
    with pytest.raises(LiveChangeRefused, match="low limit .* above high limit"):
        live.submit("mv.f_dil.low", 0.02, role=Role.OPERATOR)
    assert live.value("mv.f_dil.low") == pytest.approx(5.0 / 3600)


def test_type_read_only_unknown_and_viewer(cstr: PlantModel) -> None:
    live = LiveParameters(cstr, _config())
    cases = [
        ("cv.t_r.high", "hot", Role.OPERATOR, Refusal.TYPE),
        ("mv.q_k.in_service", 1.0, Role.OPERATOR, Refusal.TYPE),
        ("controller.mode_request", "auto", Role.OPERATOR, Refusal.TYPE),
        ("controller.mode", "on", Role.ENGINEER, Refusal.READ_ONLY),
        ("cv.c_a.high", 1.0, Role.ENGINEER, Refusal.UNKNOWN),
        ("cv.t_r.colour", 1.0, Role.ENGINEER, Refusal.UNKNOWN),
        ("cv.t_r.high", 400.0, Role.VIEWER, Refusal.ROLE),
        ("cv.t_r.high", math.nan, Role.OPERATOR, Refusal.RANGE),
    ]
    for key, value, role, reason in cases:
        with pytest.raises(LiveChangeRefused) as exc:
            live.submit(key, value, role=role)
        assert exc.value.reason is reason, (key, value, exc.value)
    # a CV without a limit penalty cannot be given a limit: the controller's own check says why
    with pytest.raises(LiveChangeRefused, match="soft limits need a positive penalty"):
        live.submit("cv.c_b.high", 800.0, role=Role.OPERATOR)
    live.submit("controller.mode_request", "shadow", role=Role.OPERATOR)
    assert live.value("controller.mode_request") is Mode.SHADOW


def test_journal_rows_and_restart_replay(cstr: PlantModel, tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    layout = HistorianLayout.for_model(cstr)
    with Historian(path, layout) as hist:
        run1 = hist.begin_run("run", mode=Mode.ON, config_hash="abc")
        live = LiveParameters(cstr, _config(), journal=HistorianJournal(hist))
        live.submit("cv.t_r.high", 400.0, role=Role.OPERATOR, user="op1", source=Source.OPCUA)
        with pytest.raises(LiveChangeRefused):
            live.submit("cv.c_b.weight", 2.0, role=Role.OPERATOR, user="op1", source=Source.WEB)
        live.submit("mv.q_k.in_service", False, role=Role.OPERATOR, user="op2")
        live.submit("controller.mode_request", "shadow", role=Role.OPERATOR, user="op2")
        hist.end_run("stopped", 0)
        rows = read_journal(hist, run1)
        assert [(r.key, r.user, r.source, r.old, r.new) for r in rows] == [
            ("cv.t_r.high", "op1", "opcua", T_R_HIGH, 400.0),
            ("cv.c_b.weight", "op1", "web", 1.0, 2.0),
            ("mv.q_k.in_service", "op2", "api", True, False),
            ("controller.mode_request", "op2", "api", "on", "shadow"),
        ]
        assert rows[0].outcome == "accepted" and rows[0].role == "operator"
        assert rows[1].outcome.startswith("refused: role:")
        assert all(r.wall_time_s > 1.7e9 for r in rows)
        # restart with the same configuration: limits and in-service come back, the mode not
        hist.begin_run("run", mode=Mode.ON, config_hash="abc")
        fresh = LiveParameters(cstr, _config(), journal=HistorianJournal(hist))
        assert replay(fresh, last_run_changes(hist, "abc")) == 2
        assert fresh.value("cv.t_r.high") == 400.0
        assert fresh.value("mv.q_k.in_service") is False
        assert fresh.value("controller.mode_request") is Mode.ON
        assert [r.source for r in read_journal(hist, hist.run_id)] == ["replay", "replay"]
        # a changed configuration replays nothing
        hist.begin_run("run", mode=Mode.ON, config_hash="other")
        assert last_run_changes(hist, "other") == []


def test_run_startup_replays_the_last_run_with_the_same_config(
    cstr: PlantModel, tmp_path: Path
) -> None:
    """What ``rtompc run`` does at start-up (rtompc.live.startup.live_for_run)."""
    with Historian(tmp_path / "h.sqlite", HistorianLayout.for_model(cstr)) as hist:

        def start(config_hash: str) -> LiveParameters:
            hist.begin_run("run", mode=Mode.SHADOW, config_hash=config_hash)
            return live_for_run(
                cstr,
                _config(),
                mode=Mode.SHADOW,
                rto_enable=False,
                historian=hist,
                config_hash=config_hash,
            )

        first = start("h1")
        first.submit("mv.q_k.low", -2000.0, role=Role.OPERATOR, user="op1", source=Source.WEB)
        first.submit("controller.mode_request", "on", role=Role.OPERATOR, user="op1")
        second = start("h1")  # a restart with the same file
        assert second.value("mv.q_k.low") == -2000.0
        assert second.value("controller.mode_request") is Mode.SHADOW
        third = start("h2")  # an edited file
        assert third.value("mv.q_k.low") == pytest.approx(cstr.u["q_k"].lower)
