"""Application config (rtompc.config): TOML into typed sections; every problem names the file,
the line, the key path and the expectation; builders make the PlantIO and the historian."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from interfaces.inprocess import InProcessPlantIO
from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import ReadMethod, SecurityMode, SecurityPolicy
from interfaces.tagmap import TagMap
from plant_models.errors import ConfigError
from plant_models.samples import Mode
from plant_models.simulation import Integrator
from rtompc.config import ConfigProblems, Security, TransportKind, build, load_app

OLD_LAYOUT = """
[plant]
name = "van_de_vusse"
params = { parameters = "klatt_engell" }

[transport]
kind = "opcua"
endpoint = "opc.tcp://127.0.0.1:4840/rtompc/"
lockstep = true
username = "operator"
password_env = "RTOMPC_TEST_PW"
read_method = "subscription"
stale_after_s = 30
reconnect_max_delay_s = 1.5

[transport.max_rate_per_s]
f_dil = 1e-4

[transport.security]
mode = "SignAndEncrypt"
policy = "Basic256Sha256"
certificate = "pki/client.der"
private_key = "pki/client_key.pem"
trusted_server_certificates = "pki/trusted"

[loop]
sample_time_s = 10.0
mode = "on"
steps = 100

[mpc]
horizon_steps = 20
[mpc.cvs.c_b]
weight = 1.0
target = "1.09 mol/l"

[estimator]
measured = ["c_b", "t_r"]

[historian]
path = "out/run.sqlite"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "app.toml"
    p.write_text(text)
    return p


def test_old_layout_loads_with_deprecations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RTOMPC_TEST_PW", "pw-from-env")
    with caplog.at_level(logging.WARNING):
        cfg = load_app(write(tmp_path, OLD_LAYOUT))
    assert "deprecated" in caplog.text and "transport.security = 'sign-encrypt'" in caplog.text
    assert cfg.plant.name == "van_de_vusse" and cfg.plant.params == {"parameters": "klatt_engell"}
    t = cfg.transport
    assert t.kind is TransportKind.OPCUA and t.security is Security.SIGN_ENCRYPT
    assert t.trust_list == [tmp_path / "pki/trusted"]  # relative to the config file
    assert t.certificate == tmp_path / "pki/client.der" and t.user == "operator"
    assert cfg.mpc is not None and cfg.mpc.cvs[0].target == pytest.approx(1090.0)
    s = build.opcua_settings(cfg)
    assert s.lockstep and s.read_method is ReadMethod.SUBSCRIPTION
    assert s.sample_time_s == 10.0 and s.stale_after_s == 30.0 and s.reconnect_max_delay_s == 1.5
    assert s.password == "pw-from-env" and "pw-from-env" not in repr(cfg) + repr(s)
    assert s.security.mode is SecurityMode.SIGN_AND_ENCRYPT
    assert s.security.policy is SecurityPolicy.BASIC256SHA256
    assert cfg.loop.mode is Mode.ON and cfg.loop.steps == 100
    with pytest.raises(ValueError):
        cfg.loop.steps = 5  # frozen
    assert cfg.historian is not None and cfg.historian.path == tmp_path / "out/run.sqlite"
    model = build.models(cfg).plant
    io = build.plantio(cfg, model)
    assert isinstance(io, OpcUaPlantIO)
    assert io.tags == TagMap.for_hil(model)


def test_inprocess_config_builds_a_working_plantio(tmp_path: Path) -> None:
    cfg = load_app(
        write(
            tmp_path,
            """
[plant]
name = "van_de_vusse"
integrator = "rk"
d = { t_in = "106.85 degC" }
[transport]
kind = "inprocess"
[loop]
sample_time_s = 5
""",
        )
    )
    assert cfg.loop.mode is None and cfg.historian is None
    assert cfg.plant.integrator is Integrator.RK4 and cfg.plant.d["t_in"] == pytest.approx(380.0)
    assert build.loop_settings(cfg, default_mode=Mode.SHADOW).mode is Mode.SHADOW
    model = build.models(cfg).plant
    io = build.plantio(cfg, model)
    assert isinstance(io, InProcessPlantIO) and io.sample_time_s == 5.0
    assert build.historian(cfg, model) is None


BASE = "[plant]\nname='van_de_vusse'\n[transport]\nkind='inprocess'\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE, r"loop.sample_time_s: missing: no control period"),
        (BASE + "[loop]\nsample_time_s=-1\n", "loop.sample_time_s: Input should be greater than 0"),
        (
            BASE + "[loop]\nsample_time_s=1\nmode='auto'\n",
            "loop.mode: 'auto' is not one of the choices .expected one of 'off', 'shadow' or 'on'",
        ),
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='modbus'\n[loop]\nsample_time_s=1\n",
            "transport.kind: 'modbus' is not one of the choices",
        ),
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='opcua'\nendpoint='http://x'\n"
            "[loop]\nsample_time_s=1\n",
            "transport.endpoint: String should match pattern",
        ),
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='opcua'\nendpoint='opc.tcp://h:1'\n"
            "speeed=3\n[loop]\nsample_time_s=1\n",
            "transport.speeed: unknown key; did you mean 'speed'",
        ),
        (
            BASE + "[transport.max_rate_per_s]\nf_dil='fast'\n[loop]\nsample_time_s=1\n",
            "transport.max_rate_per_s.f_dil: .*'fast'",
        ),
        (BASE + "[loop]\nsample_time_s=1\n[extra]\n", "extra: unknown key"),
        ("[plant\nname=1", "not valid TOML"),
        (
            BASE + "password='secret'\n[loop]\nsample_time_s=1\n",
            "transport.password: unknown key.*name it in password_env",
        ),
    ],
    ids=[
        "no-period",
        "negative-dt",
        "bad-mode",
        "bad-kind",
        "bad-endpoint",
        "unknown-key",
        "bad-rate",
        "unknown-section",
        "bad-toml",
        "inline-password",
    ],
)
def test_errors_name_file_line_key_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as err:
        load_app(path)
    assert str(err.value).startswith(str(path))
    assert isinstance(err.value, ConfigProblems) and err.value.problems


def test_unset_password_env_is_named_at_build(tmp_path: Path) -> None:
    cfg = load_app(
        write(
            tmp_path,
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='opcua'\n"
            "endpoint='opc.tcp://h:1'\npassword_env='RTOMPC_SURELY_UNSET'\nuser='u'\n"
            "[loop]\nsample_time_s=1\n",
        )
    )
    with pytest.raises(
        ConfigError,
        match="transport.password_env: environment variable RTOMPC_SURELY_UNSET is not set",
    ):
        build.opcua_settings(cfg)


def test_all_problems_at_once_with_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """[plant]
name = "van_de_vusse"
[transport]
kind = "inprocess"
max_rate_per_s = { f_dill = 1.0 }
[loop]
sample_time_s = 10
rto_every_n = 5
[mpc]
horizon_step = 20
""",
    )
    with pytest.raises(ConfigProblems) as err:
        load_app(path)
    text = str(err.value)
    assert f"{path}:10: mpc.horizon_step: unknown key; did you mean 'horizon_steps'?" in text
    assert "mpc.horizon_steps: missing required key" in text
    assert "'horizon_step' written here looks like a typo of 'horizon_steps'" in text
    assert len(err.value.problems) == 2  # cross-checks wait until the file validates
