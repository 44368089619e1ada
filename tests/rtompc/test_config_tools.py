"""``rtompc config schema|docs|check|init``, offline: the tools a person writes a config with.

The reference ``docs/configuration.md`` must equal what the model generates (a
drift test) and must document the keys a commissioning engineer needs; the JSON
Schema must be strict JSON an editor can load; ``check`` lists every problem with
exit code 2 and builds the stack without a solve; ``init`` writes an annotated
file that passes ``check`` and never overwrites or half-writes one.
"""

from __future__ import annotations

import contextlib
import io
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from rtompc.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "configuration.md"


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _strict_json(text: str) -> dict:
    def no_constant(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=no_constant)


def test_configuration_reference_is_generated_from_the_model() -> None:
    from rtompc.config.docs import reference_markdown

    assert DOCS.is_file(), "docs/configuration.md is missing: run `rtompc config docs --out ...`"
    assert DOCS.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/configuration.md differs from the config model: regenerate it with "
        "`rtompc config docs --out docs/configuration.md`"
    )
    code, _, err = _run(["config", "docs", "--check", str(DOCS)])
    assert code == 0, err


def test_reference_documents_the_transport_keys_a_commissioning_engineer_needs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    transport = text.split("### `[transport]`", 1)[1].split("\n### ", 1)[0]
    for key in (
        "check_units",
        "readback_rel_tol",
        "readback_abs_tol",
        "mode_timeout_s",
        "request_timeout_s",
        "security",
        "trust_list",
        "password_env",
        "endpoint",
    ):
        row = next((r for r in transport.splitlines() if r.startswith(f"| `{key}` |")), None)
        assert row is not None, f"transport.{key} is not documented"
        assert row.count("|") >= 6 and row.rstrip(" |").split("|")[-1].strip(), row
    tags = text.split("### `[transport.tags.measurements.<name>]`", 1)[1].split("\n### ", 1)[0]
    assert "| `valid` |" in tags and "| `unit` |" in tags
    status = text.split("### `[transport.tags]`", 1)[1].split("\n### ", 1)[0]
    for key in ("heartbeat", "mode_request", "status_text"):
        assert key in status, f"status tag {key} is not documented"
    assert "`sign-encrypt`" in transport and "#:schema" in text


def test_status_tags_of_the_config_are_those_of_the_tag_map() -> None:
    """Every status node the tag map knows can be written in the config (and documented)."""
    from interfaces.tagmap import StatusTags
    from rtompc.config.transport import StatusTagsConfig

    assert list(StatusTagsConfig.model_fields) == list(StatusTags.__dataclass_fields__)


def test_docs_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(DOCS.read_text(encoding="utf-8").replace("check_units", "check_unit"))
    code, _, err = _run(["config", "docs", "--check", str(stale)])
    assert code == 2 and "out of date" in err


@pytest.mark.parametrize("scenario", [False, True], ids=["app", "scenario"])
def test_schema_is_strict_json_without_nulls_for_editors(scenario: bool) -> None:
    code, out, _ = _run(["config", "schema", *(["--scenario"] if scenario else [])])
    assert code == 0
    schema = _strict_json(out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"plant", "transport", "mpc", "estimator", "rto"} <= set(schema["properties"])
    assert ("event" in schema["properties"]) is scenario
    assert '"type": "null"' not in out
    transport = schema["$defs"]["TransportConfig"]["properties"]
    security = schema["$defs"][transport["security"]["$ref"].rsplit("/", 1)[-1]]
    assert security["enum"] == ["none", "sign", "sign-encrypt"]
    assert schema["$defs"]["CvConfig"]["additionalProperties"] is False


def test_schema_out_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "rtompc-app.schema.json"
    assert _run(["config", "schema", "--out", str(target)])[0] == 0
    assert _strict_json(target.read_text())["title"] == "rtompc application config"


BAD = """\
[plant]
name = "williams_otto"

[loop]
sample_time_s = 60

[mpc]
horizon_step = 20
qp_solver = "hpipm"

[[mpc.cvs]]
name = "x_p"
weigth = 1.0
target = 0.1
"""


def test_check_lists_every_problem_with_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD)
    code, out, _ = _run(["config", "check", str(bad)])
    assert code == 2
    problems = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert len(problems) >= 3, out
    assert any(
        f"{bad}:8: mpc.horizon_step: unknown key; did you mean 'horizon_steps'" in p
        for p in problems
    ), out
    assert any(
        "mpc.cvs[0].weigth: unknown key; did you mean 'weight'" in p and "l1_penalty" in p
        for p in problems
    ), out
    assert not any(": mpc.qp_solver:" in p for p in problems), 'qp_solver = "hpipm" is valid'
    code, out, _ = _run(["config", "check", str(bad), "--json"])
    report = json.loads(out)
    assert code == 2 and not report["ok"] and len(report["problems"]) == len(problems)


def test_check_builds_the_controller_and_reports_what_only_building_finds(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    text = BAD.replace("horizon_step =", "horizon_steps =").replace("weigth", "weight")
    good.write_text(
        text + '\n[estimator]\nmeasured = ["x_p", "x_a"]\noutput_disturbances = ["x_p"]\n'
    )
    code, out, _ = _run(["config", "check", str(good)])
    assert code == 0, out
    assert "controller built (rti, 20 steps, no solve)" in out and "estimator built" in out
    # a file that loads but whose estimator cannot be built: more disturbance states than
    # measurements is not detectable, found by building it (offline), not by the loader
    good.write_text(
        text + '\n[estimator]\nmeasured = ["x_p"]\noutput_disturbances = ["x_p", "x_a", "x_b"]\n'
    )
    code, out, _ = _run(["config", "check", str(good)])
    assert code == 2 and "detectab" in out, out
    assert "controller built" in out  # the other parts are still built and reported


@pytest.mark.parametrize("plant", ["williams_otto", "van_de_vusse", "quadruple_tank"])
def test_init_from_a_library_plant_passes_check(tmp_path: Path, plant: str) -> None:
    out_file = tmp_path / "unit" / f"{plant}.toml"
    code, out, err = _run(["config", "init", plant, "--out", str(out_file)])
    assert code == 0, err
    text = out_file.read_text()
    data = tomllib.loads(text)
    assert data["plant"]["name"] == plant and data["loop"]["mode"] == "shadow"
    assert "# " in text.splitlines()[1] and "docs/configuration.md" in text
    code, out, _ = _run(["config", "check", str(out_file)])
    assert code == 0, out


def test_init_refuses_to_overwrite_and_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "app.toml"
    target.write_text("# mine\n")
    code, _, err = _run(["config", "init", "williams_otto", "--out", str(target)])
    assert code == 2 and "exists" in err and "--force" in err
    assert target.read_text() == "# mine\n"
    code, _, err = _run(["config", "init", "no_such_plant", "--out", str(tmp_path / "x.toml")])
    assert code == 2 and "no_such_plant" in err
    assert not (tmp_path / "x.toml").exists()
    assert _run(["config", "init", "williams_otto", "--out", str(target), "--force"])[0] == 0
    assert target.read_text().startswith("# rtompc application config for williams_otto")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.toml"]  # no temporary files


def test_init_from_an_identified_model_and_a_model_module(tmp_path: Path) -> None:
    from plant_models.identification import IdentifiedModel

    ident = IdentifiedModel(
        np.array([[0.9, 0.05], [0.0, 0.7]]),
        np.array([[0.2, 0.0], [0.1, 0.4]]),
        np.array([[1.0, 0.0], [0.5, 1.0]]),
        np.zeros((2, 2)),
        2.0,
        ("valve", "pump"),
        ("level", "flow"),
        np.array([0.4, 3.0]),
        np.array([0.12, 1e-4]),
        delays=(2, 0),
        u_units=("1", "V"),
        y_units=("m", "m^3/s"),
        method="test",
    )
    (tmp_path / "models").mkdir()
    model_file = ident.save(tmp_path / "models" / "unit.json")
    out_file = tmp_path / "configs" / "unit.toml"
    code, _, err = _run(["config", "init", "--from-model", str(model_file), "--out", str(out_file)])
    assert code == 0, err
    data = tomllib.loads(out_file.read_text())
    assert data["plant"]["name"] == "../models/unit.json"  # relative to the config file
    assert data["loop"]["sample_time_s"] == 2.0  # the identified model's sample time
    assert _run(["config", "check", str(out_file)])[0] == 0
    module = tmp_path / "my_plant.py"
    module.write_text(
        "from plant_models.library import load\n\ndef build():\n    return load('van_de_vusse')\n"
    )
    out_file = tmp_path / "own.toml"
    code, _, err = _run(["config", "init", f"{module}:build", "--out", str(out_file)])
    assert code == 0, err
    assert tomllib.loads(out_file.read_text())["plant"]["name"] == "my_plant.py:build"
    assert _run(["config", "check", str(out_file)])[0] == 0


def test_readme_and_guide_link_the_docs_and_name_only_real_commands() -> None:
    import re

    from rtompc.cli import build_parser

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    guide = (ROOT / "docs" / "commissioning.md").read_text(encoding="utf-8")
    assert "(docs/configuration.md)" in readme and "(docs/commissioning.md)" in readme
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e . && "
        ".venv/bin/rtompc demo"
        in readme
        and "\n./run-tests.sh\n" in readme
    )
    for cmd in (
        "rtompc config check",
        "rtompc config init",
        "rtompc config schema",
        "rtompc certs create",
    ):
        assert f"| `{cmd}" in readme, f"README's CLI table lacks {cmd}"
    assert "## 7. Step tests and identification" in guide  # the step-test chapter goes there
    for text in (
        "rtompc certs create",
        "config check unit.toml --connect",
        "--mode shadow",
        "--mode on",
        "mv_in_service",
        "| 3 |",
        "| 5 |",
        "(configuration.md)",
    ):
        assert text in guide, text
    # every `rtompc <command> [<sub-command>]` the guide shows parses
    used = set(
        re.findall(r"(?:^|`)rtompc ((?:config|certs|hil) [a-z-]+|[a-z]+)\b", guide, re.MULTILINE)
    )
    assert {"run", "config check", "config init", "certs create"} <= used
    for words in sorted(used):
        argv = words.split()
        parser = build_parser(argv)
        with pytest.raises(SystemExit) as exc, contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args([*argv, "--help"])
        assert exc.value.code == 0, words


def test_the_guides_model_module_passes_init_and_check(tmp_path: Path) -> None:
    import textwrap

    guide = (ROOT / "docs" / "commissioning.md").read_text(encoding="utf-8")
    code = textwrap.dedent(guide.split("```python\n", 1)[1].split("```", 1)[0])
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tank.py").write_text(code)
    cfg = tmp_path / "unit.toml"
    code_, _, err = _run(["config", "init", f"{tmp_path}/models/tank.py:build", "--out", str(cfg)])
    assert code_ == 0, err
    assert tomllib.loads(cfg.read_text())["plant"]["name"] == "models/tank.py:build"
    code_, out, _ = _run(["config", "check", str(cfg)])
    assert code_ == 0, out


def test_a_broken_model_module_is_a_problem_with_its_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad_plant.py").write_text("def build():\n    return 1 +\n")
    (tmp_path / "app.toml").write_text('[plant]\nname = "bad_plant.py:build"\n')
    code, out, _ = _run(["config", "check", str(tmp_path / "app.toml")])
    assert code == 2
    assert "importing" in out and "SyntaxError" in out and "(line 2)" in out, out
    (tmp_path / "bad_plant.py").write_text("def build():\n    raise ValueError('no data')\n")
    code, out, _ = _run(["config", "check", str(tmp_path / "app.toml")])
    assert code == 2 and "build() failed: ValueError: no data (line 2)" in out, out
