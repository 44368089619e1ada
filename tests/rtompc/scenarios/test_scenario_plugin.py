"""The pytest plugin collects scenario TOML files and reports failed criteria with margins."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

# once the pytest11 entry point is installed the plugin loads by itself; else load it by name
_REGISTERED = any(ep.value == "rtompc.pytest_plugin" for ep in entry_points(group="pytest11"))
PLUGIN_ARGS = () if _REGISTERED else ("-p", "rtompc.pytest_plugin")

CRIT = '\n[[criterion]]\nkpi = "{kpi}"\nop = "{op}"\nthreshold = {thr}\n'


@pytest.mark.slow
def test_plugin_collects_runs_and_explains_failures(pytester: pytest.Pytester, tiny) -> None:
    d = pytester.mkdir("scenarios")
    (d / "ok.toml").write_text(
        tiny("ok_case", duration=100.0, extra=CRIT.format(kpi="service_factor", op=">=", thr=0.9))
    )
    (d / "bad.toml").write_text(
        tiny(
            "bad_case",
            duration=100.0,
            tags='["nightly"]',
            extra=CRIT.format(kpi="iae.c_b", op="<=", thr=0.0),
        )
    )
    (d / "broken.toml").write_text(
        tiny("broken_case", duration=100.0).replace('name = "c_b"\nweight', 'name = "c_zz"\nweight')
    )
    (d / "notes.toml").write_text("[other]\nx = 1\n")  # not a scenario: not collected
    result = pytester.runpytest_subprocess(*PLUGIN_ARGS, "-p", "no:cacheprovider", str(d), "-rA")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert "iae.c_b =" in out and "<= 0: FAILED by" in out
    assert "1 of 1 criteria failed" in out
    assert "mpc.cvs[0].name" in out and "c_zz" in out
    fast = pytester.runpytest_subprocess(
        *PLUGIN_ARGS, "-p", "no:cacheprovider", str(d), "-m", "fast", "--collect-only", "-q"
    )
    listing = fast.stdout.str()
    assert "ok_case" in listing and "bad_case" not in listing
