"""The typed configuration model (issue 12): one security vocabulary, trust lists, documented
weights, JSON Schema, relative paths, secrets from the environment, every problem at once with
file, line, key path and allowed keys, cross-checks against the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtompc.config import (
    AppConfig,
    ConfigProblems,
    CvConfig,
    MvConfig,
    ScenarioConfig,
    Security,
    build,
    load_app,
    load_scenario,
    upgrade,
)

ROOT = Path(__file__).resolve().parents[3]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "app.toml"
    p.write_text(text, encoding="utf-8")
    return p


OPCUA = """
[plant]
name = "van_de_vusse"
[transport]
kind = "opcua"
endpoint = "opc.tcp://127.0.0.1:4840"
security = "{security}"
certificate = "pki/client.der"
private_key = "pki/client_key.pem"
trust_list = ["pki/server_cert.der", "pki/trusted"]
user = "engine"
password_env = "RTOMPC_CFG_TEST_PW"
[loop]
sample_time_s = 10
"""


@pytest.mark.parametrize(("word", "mode"), [("sign", "Sign"), ("sign-encrypt", "SignAndEncrypt")])
def test_one_security_vocabulary_and_a_trust_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, word: str, mode: str
) -> None:
    # seen: the CLI said sign-encrypt, the config SignAndEncrypt plus a separate policy; and
    # trusted_server_certificates was plural but had to be one directory
    monkeypatch.setenv("RTOMPC_CFG_TEST_PW", "s3cret-pw")
    cfg = load_app(_write(tmp_path, OPCUA.format(security=word)))
    assert cfg.transport.security is Security(word)
    assert cfg.transport.trust_list == [tmp_path / "pki/server_cert.der", tmp_path / "pki/trusted"]
    s = build.opcua_settings(cfg)
    assert s.security.mode.value == mode and s.security.policy.value == "Basic256Sha256"
    assert s.security.trust_locations == (
        tmp_path / "pki/server_cert.der",
        tmp_path / "pki/trusted",
    )
    assert s.password == "s3cret-pw"
    assert "s3cret-pw" not in repr(cfg) + repr(s) + cfg.model_dump_json()


def test_security_needs_its_files(tmp_path: Path) -> None:
    text = OPCUA.format(security="sign-encrypt").replace(
        'trust_list = ["pki/server_cert.der", "pki/trusted"]\n', ""
    )
    with pytest.raises(ConfigProblems, match="security 'sign-encrypt' needs trust_list"):
        load_app(_write(tmp_path, text))


def test_old_security_table_is_upgraded_with_notes() -> None:
    data, notes = upgrade(
        {
            "transport": {
                "kind": "opcua",
                "security": {
                    "mode": "SignAndEncrypt",
                    "policy": "Basic256Sha256",
                    "trusted_server_certificates": "pki/trusted",
                },
            }
        }
    )
    assert data["transport"]["security"] == "sign-encrypt"
    assert data["transport"]["trust_list"] == ["pki/trusted"]
    assert any("trust_list" in n for n in notes)


def test_weights_and_penalties_have_a_documented_meaning() -> None:
    # seen: weights silently divided by the signal's nominal, said only in a docstring
    schema = AppConfig.model_json_schema()
    cv = schema["$defs"]["CvConfig"]["properties"]
    for key in ("weight", "l1_penalty", "l2_penalty", "zone_weight"):
        assert "nominal" in cv[key]["description"], key
    assert "Example" in cv["weight"]["description"]
    mv = schema["$defs"]["MvConfig"]["properties"]
    assert (
        "nominal" in mv["weight"]["description"] and "nominal" in mv["move_weight"]["description"]
    )
    assert CvConfig.model_fields["target"].description
    assert MvConfig.model_fields["max_rate_per_s"].description


def test_every_field_of_the_schema_is_described() -> None:
    for cls in (AppConfig, ScenarioConfig):
        schema = cls.model_json_schema()
        for name, d in schema["$defs"].items():
            for key, prop in d.get("properties", {}).items():
                assert prop.get("description"), f"{name}.{key} has no description"
        json.dumps(schema)


def test_every_shipped_scenario_and_the_demo_load() -> None:
    files = sorted((ROOT / "scenarios").glob("*.toml"))
    assert len(files) >= 29
    for f in files:
        load_scenario(f)
    cfg = load_app(ROOT / "rtompc/data/demo_williams_otto.toml")
    assert cfg.transport.security is Security.SIGN_ENCRYPT
    assert cfg.mpc is not None and cfg.mpc.mvs[1].target == pytest.approx(75 + 273.15)
    assert cfg.rto is not None and cfg.rto.model is not None


def test_all_problems_at_once_with_file_line_and_cross_checks(tmp_path: Path) -> None:
    text = """[plant]
name = "van_de_vusse"
[transport]
kind = "inprocess"
[loop]
sample_time_s = 10
rto_every_n = 3
[mpc]
horizon_steps = 10
sample_time_s = 20
[[mpc.cvs]]
name = "c_bb"
weight = 1.0
target = 1.0
[[mpc.mvs]]
name = "f_dil"
upper = "1 1/s"
[estimator]
measured = ["c_b", "t_q"]
"""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigProblems) as err:
        load_app(path)
    msgs = [str(p) for p in err.value.problems]
    joined = "\n".join(msgs)
    assert f"{path}:12: mpc.cvs[0].name: unknown CV 'c_bb'; did you mean 'c_b'?" in joined
    assert "mpc.sample_time_s: 20 s differs from loop.sample_time_s 10 s" in joined
    assert "mpc.mvs[0].upper: 1 1/s is above the plant's upper limit" in joined
    assert "estimator.measured: unknown measured output 't_q'" in joined
    assert f"{path}:7: loop.rto_every_n: needs an [rto] section" in joined
    assert len(msgs) == 5


def test_a_typo_in_one_key_does_not_hide_an_unknown_signal_elsewhere(tmp_path: Path) -> None:
    # An unknown key fails pydantic's validation; the cross-checks against the model must
    # still run in the same pass (the user should not fix one problem to learn of the next).
    text = """[plant]
name = "van_de_vusse"
[transport]
kind = "inprocess"
[loop]
sample_time_s = 20
[mpc]
horizon_steps = 10
[[mpc.cvs]]
name = "c_bb"
weight = 1.0
target = "1.0 mol/l"
[[mpc.cvs]]
name = "t_r"
upper = "130 degC"
l1_penalty = 10
l2_penalty = 10
weigth = 2
[[mpc.mvs]]
name = "f_dil"
move_weight = 1.0
"""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigProblems) as err:
        load_app(path)
    joined = "\n".join(str(p) for p in err.value.problems)
    assert f"{path}:18: mpc.cvs[1].weigth: unknown key; did you mean 'weight'?" in joined
    assert f"{path}:10: mpc.cvs[0].name: unknown CV 'c_bb'; did you mean 'c_b'?" in joined
    assert len(err.value.problems) == 2


def test_relative_paths_and_model_modules_resolve_against_the_file(tmp_path: Path) -> None:
    sub = tmp_path / "site"
    sub.mkdir()
    (sub / "my_plant.py").write_text(
        "from plant_models.library import load\n\ndef build():\n    return load('van_de_vusse')\n"
    )
    p = sub / "app.toml"
    p.write_text(
        '[plant]\nname = "my_plant.py:build"\n[loop]\nsample_time_s = 5\n'
        '[historian]\npath = "data/h.sqlite"\n'
    )
    cfg = load_app(p)
    assert cfg.plant.name == f"{sub / 'my_plant.py'}:build"
    assert cfg.historian is not None and cfg.historian.path == sub / "data/h.sqlite"
    assert build.models(cfg).plant.name == "van_de_vusse"


def test_every_mpc_config_option_is_reachable_from_a_file(tmp_path: Path) -> None:
    """Every field of mpc.config.MpcConfig/CvSpec/MvSpec that a file can hold has a key."""
    import dataclasses

    from mpc.config import CvSpec as MpcCv
    from mpc.config import MpcConfig
    from mpc.config import MvSpec as MpcMv
    from rtompc.config import MpcSection

    python_only = {"economic_stage_cost", "economic_terminal_cost", "sample_time_s"}
    for spec, section, renamed in (
        (MpcConfig, MpcSection, {"robust": "robust"}),
        (MpcCv, CvConfig, {}),
        (MpcMv, MvConfig, {}),
    ):
        for f in dataclasses.fields(spec):
            if f.name in python_only:
                continue
            assert renamed.get(f.name, f.name) in section.model_fields, f"{spec.__name__}.{f.name}"
    text = """[plant]
name = "van_de_vusse"
[loop]
sample_time_s = 20
[mpc]
horizon_steps = 10
transcription = "stagewise"
robust_horizon = 2
ipopt_fallback = false
robust = { beta = [0.9, 1.1] }
robust_probabilities = { beta = [0.25, 0.75] }
[[mpc.cvs]]
name = "t_r"
hard_upper = "126.85 degC"
cost_scale = "1 degC"
linear_cost = 0.1
"""
    cfg = load_app(_write(tmp_path, text))
    mc, _ = build.mpc_config(cfg)
    assert mc.cvs[0].hard_upper == pytest.approx(400.0) and mc.cvs[0].cost_scale == 1.0
    assert mc.robust is not None and mc.robust.probabilities == ((0.25, 0.75),)
    assert mc.robust_horizon == 2 and not mc.ipopt_fallback


def test_historian_keys_reach_the_historian(tmp_path: Path) -> None:
    from rtompc.historian.store import Durability

    cfg = load_app(
        _write(
            tmp_path,
            """[plant]
name = "van_de_vusse"
[loop]
sample_time_s = 10
[historian]
path = "h.sqlite"
durability = "FULL"
retention_max_age_s = "30 d"
retention_downsample_after_s = "1 d"
retention_downsample_keep_every = 6
""",
        )
    )
    model = build.models(cfg).plant
    hist = build.historian(cfg, model)
    assert hist is not None
    try:
        assert hist.durability is Durability.FULL
        assert hist.retention.max_age_s == 30 * 86400.0
        assert hist.retention.downsample_after_s == 86400.0
        assert hist.retention.downsample_keep_every == 6
    finally:
        hist.close()


def test_faults_table_becomes_events(tmp_path: Path) -> None:
    from rtompc.config.build_scenario import scenario_spec
    from rtompc.scenarios.spec import EventKind

    text = """[scenario]
duration_s = 400
[plant]
name = "van_de_vusse"
[mpc]
horizon_steps = 10
sample_time_s = 20
[[mpc.cvs]]
name = "c_b"
weight = 1.0
target = "1.09 mol/l"
[estimator]
measured = ["c_b", "t_r"]
[[event]]
t_s = 200
kind = "setpoint"
signal = "c_b"
value = "1.0 mol/l"
[[fault]]
t_s = 100
fault = "bias"
signal = "t_r"
magnitude = "2 degC"
[[fault]]
t_s = 300
fault = "link_loss"
duration_s = "1 min"
"""
    p = tmp_path / "s.toml"
    p.write_text(text)
    spec = scenario_spec(load_scenario(p))
    kinds = [(e.t_s, e.kind, e.signal) for e in spec.events]
    assert kinds == [
        (100.0, EventKind.SENSOR_FAULT, "t_r"),
        (200.0, EventKind.SETPOINT, "c_b"),
        (300.0, EventKind.COMM_FAULT, ""),
    ]
    assert spec.events[0].magnitude == pytest.approx(2.0)  # a bias is a difference: 2 K
    assert spec.events[1].value == pytest.approx(1000.0)
    assert spec.events[2].duration_s == 60.0


def test_scenarios_run_the_rto_method_of_the_file(tmp_path: Path) -> None:
    """[rto] method and model mean the same in a scenario as in `rtompc run`."""
    from rtompc.scenarios.runner import run_scenario

    text = (ROOT / "scenarios" / "wo_rto_mismatch.toml").read_text()
    text = text.replace("duration_s = 3600.0", "duration_s = 600.0").replace(
        "[rto]\nevery_s = 600.0",
        '[rto]\nmethod = "modifier_adaptation"\nevery_n = 1\nmodel = { name = "williams_otto_2r" }'
        '\nhandoff_mvs = ["f_b", "t_r"]\nsteady_signals = ["x_p", "x_g"]\nwindow_samples = 12',
    )
    text = text.replace('handoff_mvs = ["f_b", "t_r"]\n\n[[criterion]]', "\n[[criterion]]", 1)
    p = tmp_path / "ma.toml"
    p.write_text(text)
    result = run_scenario(p)
    assert any("waiting for steady state" in e for e in result.events), result.events[:5]
