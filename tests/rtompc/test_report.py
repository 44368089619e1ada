"""``rtompc report``: the HTML report of a historian run, checked against the historian itself.

The historian comes from a real closed loop (Van de Vusse, in-process lockstep, real EKF
and NMPC, live parameters journaled): run 1 with a tightened CV limit, a refused weight
change and an MV out of service and back; run 2 a short second run. The report's embedded
JSON is compared with the rows read straight from SQLite, and its KPIs with the same
KPIs recomputed here in plain Python.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_helpers import T_R_HIGH, live_stack

from plant_models.library import load
from plant_models.samples import ControlMove, Measurement, Mode, Quality
from rtompc.cli import main
from rtompc.historian import Historian, HistorianLayout, HistorianRow, row_values
from rtompc.live import LiveChangeRefused, Role, Source
from rtompc.live.startup import record_initial
from rtompc.report import collect as collect_mod
from rtompc.report import make_report

NEW_HIGH = 126.0 + 273.15
CYCLES = (20, 25, 5, 5)  # before the limit change, after it, f_dil out of service, back


@pytest.fixture(scope="module")
def hist_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import asyncio

    tmp = tmp_path_factory.mktemp("report")
    model = load("van_de_vusse", parameters="do_mpc")
    s = live_stack(model, tmp)
    record_initial(s.hist, s.live)
    s.loop.recorders.append(s.hist.recorder())

    async def drive() -> None:
        async with s.io:
            await s.loop.run(CYCLES[0])
            s.live.submit(
                "cv.t_r.high", NEW_HIGH, role=Role.OPERATOR, user="op1", source=Source.WEB
            )
            with pytest.raises(LiveChangeRefused):
                s.live.submit("cv.c_b.weight", 2.0, role=Role.OPERATOR, user="op1")
            await s.loop.run(CYCLES[1])
            s.live.submit("mv.f_dil.in_service", False, role=Role.OPERATOR, user="op2")
            await s.loop.run(CYCLES[2])
            s.live.submit("mv.f_dil.in_service", True, role=Role.OPERATOR, user="op2")
            await s.loop.run(CYCLES[3])
            s.hist.end_run("normal end", 0)
            s.hist.begin_run("simulate", mode=Mode.ON)
            await s.loop.run(3)

    asyncio.run(drive())
    s.hist.close()
    return tmp / "live.sqlite"


def _payload(html: str) -> dict[str, Any]:
    m = re.search(
        r'<script type="application/json" id="rtompc-report-data">(.*?)</script>', html, re.S
    )
    assert m is not None
    return json.loads(m.group(1))


def _rows(path: Path, run_id: int) -> list[dict[str, Any]]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    rows = [
        dict(r)
        for r in con.execute("SELECT * FROM cycles WHERE run_id=? ORDER BY cycle", (run_id,))
    ]
    con.close()
    return rows


def _trapz(t: list[float], v: list[float]) -> float:
    return sum(0.5 * (v[i] + v[i - 1]) * (t[i] - t[i - 1]) for i in range(1, len(t)))


def _journal(path: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    rows = con.execute(
        "SELECT wall_time_s, user, source, key, old, new, outcome FROM journal ORDER BY id"
    ).fetchall()
    con.close()
    return rows


def test_report_trends_limits_and_journal_match_the_historian(
    hist_path: Path, tmp_path: Path
) -> None:
    info, out = make_report(hist_path, tmp_path / "r1.html", run_id=1)
    p = _payload(out.read_text())
    rows = _rows(hist_path, 1)
    assert info.run_id == 1 and p["run"]["kind"] == "run" and p["run"]["config_hash"] == "live-test"
    assert p["run"]["cycles"] == len(rows) == sum(CYCLES) and p["bucket_rows"] == 1
    t0 = rows[0]["time_s"]
    assert p["x"] == pytest.approx([r["time_s"] - t0 for r in rows], abs=1e-9)
    titles = [c["title"] for c in p["charts"]]
    assert titles[:3] == ["output c_a [mol/m^3]", "CV c_b [mol/m^3]", "CV t_r [K]"], titles
    assert [c["prefix"] for c in p["charts"][:3]] == ["cv.c_a.", "cv.c_b.", "cv.t_r."]
    for sid, col in (
        ("cv.t_r.meas", "meas__t_r"),
        ("cv.c_b.target", "target_y__c_b"),
        ("mv.f_dil.written", "written__f_dil"),
        ("mv.q_k.move", "move__q_k"),
    ):
        want = [r[col] for r in rows]
        assert p["series"][sid] == pytest.approx(want, nan_ok=True), sid
    # the t_r high limit steps where the loop applied the change (its event names the cycle)
    applied = next(
        i for i, r in enumerate(rows) if "live change cv.t_r.high" in (r["message"] or "")
    )
    high = p["series"]["cv.t_r.high"]
    assert high[:applied] == [T_R_HIGH] * applied
    assert high[applied:] == [NEW_HIGH] * (len(rows) - applied)
    oos = next(
        i for i, r in enumerate(rows) if "live change mv.f_dil.in_service" in (r["message"] or "")
    )
    assert p["mv_kpis"]["f_dil"]["out_of_service_cycles"] == CYCLES[2] and oos == sum(CYCLES[:2])
    # journal: who, what, old, new, source, outcome, and where on the time axis
    j = [
        (e["user"], e["source"], e["key"], e["old"], e["new"], e["outcome"][:7])
        for e in p["journal"]
    ]
    assert j == [
        ("op1", "web", "cv.t_r.high", T_R_HIGH, NEW_HIGH, "accepte"),
        ("op1", "api", "cv.c_b.weight", 1.0, 2.0, "refused"),
        ("op2", "api", "mv.f_dil.in_service", True, False, "accepte"),
        ("op2", "api", "mv.f_dil.in_service", False, True, "accepte"),
    ]
    assert p["journal"][0]["x"] == pytest.approx(rows[applied]["time_s"] - t0)
    assert len(_journal(hist_path)) == 4  # run 2 changed nothing
    text = out.read_text()
    assert "op2" in text and "cv.t_r.high" in text and "needs role engineer" in text


def test_report_kpis_equal_an_independent_recomputation(hist_path: Path, tmp_path: Path) -> None:
    _, out = make_report(hist_path, tmp_path / "r1.html", run_id=1)
    p = _payload(out.read_text())
    rows = _rows(hist_path, 1)
    walls = [w for w, *_ in _journal(hist_path)]
    t = [r["time_s"] for r in rows]
    ok = [r["qual__c_b"] == "good" and r["target_y__c_b"] is not None for r in rows]
    iae = _trapz(
        [x for x, o in zip(t, ok, strict=False) if o],
        [abs(r["meas__c_b"] - r["target_y__c_b"]) for r, o in zip(rows, ok, strict=False) if o],
    )
    assert p["cv_kpis"]["c_b"]["iae"] == pytest.approx(iae, rel=1e-12) and iae > 0
    # t_r above its high limit in force (T_R_HIGH, then NEW_HIGH after the change)
    lim = [T_R_HIGH if r["wall_time_s"] <= walls[0] else NEW_HIGH for r in rows]
    dist = [max(0.0, r["meas__t_r"] - h) for r, h in zip(rows, lim, strict=False)]
    outside = [d > 0 for d in dist]
    assert any(outside)  # the tightened limit is violated while t_r comes down
    k = p["cv_kpis"]["t_r"]
    assert k["violation"] == pytest.approx(_trapz(t, dist), rel=1e-12)
    assert k["max_violation"] == pytest.approx(max(dist))
    assert k["time_outside_s"] == pytest.approx(
        sum(t[i + 1] - t[i] for i in range(len(t) - 1) if outside[i])
    )
    assert k["violations"] == sum(
        1 for i, o in enumerate(outside) if o and (i == 0 or not outside[i - 1])
    )
    service = sum(r["mode"] == "on" and r["write_status"] in ("verified", "mismatch") for r in rows)
    extra = [json.loads(r["extra"]) for r in rows]
    g = p["kpis"]
    assert g["cycles"] == len(rows) and g["service_factor"] == pytest.approx(service / len(rows))
    assert g["fallbacks"] == sum(bool(e["fallback"]) for e in extra)
    assert g["overruns"] == sum(r["overrun"] for r in rows)
    assert g["write_failures"] == sum(
        r["write_status"] in ("rejected", "nothing_to_write") for r in rows
    )
    solve = np.array([r["solve_time_s"] for r in rows], dtype=float) * 1e3
    assert g["solve_ms_max"] == pytest.approx(np.nanmax(solve))
    assert g["solve_ms_median"] == pytest.approx(np.nanmedian(solve), rel=0.02)
    w = [r["written__f_dil"] for r in rows if r["written__f_dil"] is not None]
    assert p["mv_kpis"]["f_dil"]["moves"] == sum(
        1 for a, b in zip(w, w[1:], strict=False) if a != b
    )
    assert p["mv_kpis"]["f_dil"]["travel"] == pytest.approx(
        sum(abs(b - a) for a, b in zip(w, w[1:], strict=False))
    )
    assert p["counts"]["mode"] == {"on": len(rows)}


def test_default_run_is_the_last_and_list_names_both(
    hist_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "last.html"
    assert main(["report", str(hist_path), "-o", str(out)]) == 0
    p = _payload(out.read_text())
    assert p["run"]["run_id"] == 2 and p["run"]["kind"] == "simulate" and len(p["x"]) == 3
    assert p["journal"] == []
    assert main(["report", str(hist_path), "--list", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert [(r["run_id"], r["kind"], r["cycles"]) for r in runs] == [
        (1, "run", sum(CYCLES)),
        (2, "simulate", 3),
    ]


def test_report_is_self_contained(hist_path: Path, tmp_path: Path) -> None:
    _, out = make_report(hist_path, tmp_path / "r.html", run_id=1)
    html = out.read_text()
    assert not re.search(r"<script[^>]+src=", html) and "<link" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html) and "@import" not in html
    assert "RtompcTrends" in html and "uPlot" in html and len(html) > 50_000


def test_errors_name_the_input_and_exit_2(
    hist_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keep.html"
    out.write_text("an older report")
    notdb = tmp_path / "notes.sqlite"
    notdb.write_text("not sqlite at all " * 100)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.close()
    cases = [
        ([str(tmp_path / "missing.sqlite")], "missing.sqlite: file not found"),
        ([str(notdb)], "notes.sqlite: not a historian file"),
        ([str(other)], "other.sqlite: not a historian file"),
        ([str(hist_path), "--run", "9"], "no run 9; runs: 1, 2"),
        ([str(hist_path), "--max-points", "10"], "--max-points 10: expected at least 100"),
    ]
    for args, msg in cases:
        assert main(["report", *args, "-o", str(out)]) == 2, args
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err, err
    assert out.read_text() == "an older report"  # never touched by a failed report
    assert sorted(q.name for q in tmp_path.iterdir()) == [
        "keep.html",
        "notes.sqlite",
        "other.sqlite",
    ]


def test_a_failed_write_leaves_no_partial_file(
    hist_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "busy.html"
    target.mkdir()
    (target / "x").write_text("occupied")  # renaming over a non-empty directory fails
    assert main(["report", str(hist_path), "-o", str(target)]) == 2
    assert "busy.html: cannot write" in capsys.readouterr().err
    assert sorted(q.name for q in tmp_path.iterdir()) == ["busy.html"]


def _synthetic(
    path: Path, n: int, config_text: str = "", meta: dict[str, str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One run of ``n`` cycles of the Van de Vusse layout with two spikes in c_b."""
    model = load("van_de_vusse")
    names = model.y.names
    layout = HistorianLayout.for_model(model, names)
    rng = np.random.default_rng(1)
    t = 1.0 * np.arange(n)
    cb = 700 + rng.normal(0, 3, n)
    cb[n // 3], cb[2 * n // 3 + 1] = 900.0, 450.0
    with Historian(path, layout) as h:
        rid = h.begin_run("simulate", mode=Mode.ON, config_text=config_text, meta=meta)
        rows = []
        for k in range(n):
            vals = np.array([cb[k] if nm == "c_b" else 400.0 for nm in names])
            u = np.array([0.004, -300.0 + k * 1e-3])
            rec = HistorianRow(
                k,
                t[k],
                Mode.ON,
                measurement=Measurement(t[k], names, vals, (Quality.GOOD,) * len(names)),
                move=ControlMove(t[k], u, model.u.names),
                written=u,
                requested=u,
                write_status="verified",
                solve_time_s=1e-3 * (1 + k % 7),
                wall_time_s=1e9 + t[k],
                extra={"connected": True, "fallback": k % 100 == 0},
            )
            rows.append(row_values(rec, layout, rid))
        h.insert_values(rows)
    return t, cb


def test_downsampling_keeps_extremes_and_chunks_do_not_change_kpis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.sqlite"
    t, cb = _synthetic(path, 6_001)
    _, out = make_report(path, tmp_path / "a.html", max_points=400)
    p = _payload(out.read_text())
    assert len(p["x"]) <= 400 and p["bucket_rows"] == math.ceil(6_001 / 200)
    s = p["series"]["cv.c_b.meas"]
    assert max(s) == 900.0 and min(s) == 450.0 and p["x"][0] == 0.0 and p["x"][-1] == t[-1]
    assert all(b >= a for a, b in zip(p["x"], p["x"][1:], strict=False))
    assert any("downsampled" in n for n in p["notes"])
    monkeypatch.setattr(collect_mod, "CHUNK_ROWS", 350)  # many chunks: carries across boundaries
    _, out2 = make_report(path, tmp_path / "b.html", max_points=100_000)
    q = _payload(out2.read_text())
    assert q["bucket_rows"] == 1 and q["series"]["cv.c_b.meas"] == pytest.approx(cb.tolist())
    assert q["kpis"]["fallbacks"] == p["kpis"]["fallbacks"] == 61
    assert q["mv_kpis"]["q_k"] == pytest.approx(p["mv_kpis"]["q_k"])
    assert q["mv_kpis"]["q_k"]["moves"] == 6_000
    assert q["kpis"]["solve_ms_max"] == pytest.approx(7.0)


def test_a_run_without_cycles_still_reports(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    with Historian(path, HistorianLayout.for_model(load("van_de_vusse"))) as h:
        h.begin_run("run", mode=Mode.SHADOW)
        h.end_run("startup check failed", 2)
    info, out = make_report(path)
    p = _payload(out.read_text())
    assert out == tmp_path / "empty-run1.html" and info.cycles == 0
    assert p["run"]["exit_code"] == 2 and p["kpis"]["cycles"] == 0 and p["charts"] == []


def test_a_schema1_file_reports_its_single_run_unchanged(tmp_path: Path) -> None:
    from test_historian_runs import _schema1_file

    path = tmp_path / "old.sqlite"
    _schema1_file(path, 5)
    before = path.read_bytes()
    info, out = make_report(path)
    p = _payload(out.read_text())
    assert info.run_id == 1 and p["run"]["cycles"] == 5 and p["x"] == [18.0 * k for k in range(5)]
    assert p["series"]["mv.q_k.move"] == [-300.0 - k for k in range(5)]
    assert p["kpis"]["service_factor"] == 0.0 and path.read_bytes() == before  # read-only


def test_run_startup_records_initial_live_values_before_replay(tmp_path: Path) -> None:
    """``rtompc run``'s start-up (live_for_run) stores what the report's limits start from."""
    from live_helpers import vdv_config

    from rtompc.historian.reader import HistorianReader
    from rtompc.live.startup import live_for_run

    model = load("van_de_vusse", parameters="do_mpc")
    path = tmp_path / "h.sqlite"
    with Historian(path, HistorianLayout.for_model(model)) as hist:
        for _ in range(2):
            hist.begin_run("run", mode=Mode.SHADOW, config_hash="same")
            live = live_for_run(
                model,
                vdv_config(),
                mode=Mode.SHADOW,
                rto_enable=False,
                historian=hist,
                config_hash="same",
            )
            if hist.run_id == 1:
                live.submit("cv.t_r.high", NEW_HIGH, role=Role.OPERATOR, user="op1")
    with HistorianReader(path) as reader:
        first, second = reader.runs()
        replayed = reader.journal(2)
    assert first.meta["live_initial"]["cv.t_r.high"] == T_R_HIGH
    assert first.meta["live_initial"]["controller.mode"] == "shadow"
    assert second.meta["live_initial"]["cv.t_r.high"] == T_R_HIGH  # before the replay ...
    assert [(r.key, r.source, r.new) for r in replayed] == [("cv.t_r.high", "replay", NEW_HIGH)]
    assert live.value("cv.t_r.high") == NEW_HIGH  # ... which the journal of run 2 then holds


@pytest.mark.parametrize(
    ("text", "meta"),
    [
        ("[economics]\nprices = { c_b = 0.001, f_dil = -10.0 }\n", None),
        (
            '[[unit]]\nname = "r0"\n[unit.economics]\nprices = { c_b = 5.0 }\n'
            '[[unit]]\nname = "r1"\n[unit.economics]\nprices = { c_b = 0.001, f_dil = -10.0 }\n',
            {"unit": "r1"},
        ),
    ],
    ids=["single-unit", "multi-unit"],
)
def test_profit_from_the_runs_economics_prices(
    tmp_path: Path, text: str, meta: dict[str, str] | None
) -> None:
    t, cb = _synthetic(tmp_path / "p.sqlite", 50, text, meta)
    _, out = make_report(tmp_path / "p.sqlite")
    p = _payload(out.read_text())
    rate = 0.001 * cb - 10.0 * 0.004  # c_b measured, f_dil as written
    assert p["series"]["profit_rate"] == pytest.approx(rate.tolist())
    assert p["kpis"]["profit"] == pytest.approx(_trapz(t.tolist(), rate.tolist()))


def test_report_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for word in ("--run", "--out", "--list", "--max-points", "self-contained", "Exit codes: 0"):
        assert word in text, word


def test_report_charts_render_in_headless_chromium(hist_path: Path, tmp_path: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver")
    if chromium is None or driver_bin is None:
        pytest.skip("Debian chromium / chromedriver not installed")
    _, out = make_report(hist_path, tmp_path / "r.html", run_id=1)
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    from selenium.webdriver.chrome.service import Service

    drv = webdriver.Chrome(service=Service(driver_bin), options=opts)
    try:
        drv.get(out.as_uri())
        n_charts = len(_payload(out.read_text())["charts"])
        drawn = drv.find_element("tag name", "body").get_attribute("data-charts-drawn")
        assert drawn == str(n_charts)
        assert len(drv.find_elements("css selector", ".uplot canvas")) == n_charts
        # one x zoom for all charts: zooming the first zooms the last
        drv.execute_script("window.rtompcCharts[0].setScale('x', {min: 100, max: 400});")
        last_min = drv.execute_script(  # uPlot commits scale changes in a microtask
            "var c = window.rtompcCharts; return c[c.length - 1].scales.x.min;"
        )
        assert last_min == 100
        severe = [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []
    finally:
        drv.quit()
