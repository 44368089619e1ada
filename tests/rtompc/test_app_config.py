"""Application config: TOML into typed sections; errors name file, key path and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from interfaces.inprocess import InProcessPlantIO
from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import ReadMethod, SecurityMode, SecurityPolicy
from interfaces.tagmap import TagMap
from plant_models.errors import ConfigError
from plant_models.samples import Mode
from plant_models.simulation import Integrator
from rtompc.config import TransportKind, load_config

OPCUA = """
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
rto_every_n = 30
steps = 100

[mpc]
horizon_steps = 20
[mpc.cvs.c_b]
weight = 1.0

[historian]
path = "out/run.sqlite"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "app.toml"
    p.write_text(text)
    return p


def test_full_opcua_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTOMPC_TEST_PW", "pw-from-env")
    cfg = load_config(write(tmp_path, OPCUA))
    assert cfg.plant.name == "van_de_vusse" and cfg.plant.params == {"parameters": "klatt_engell"}
    assert cfg.transport.kind is TransportKind.OPCUA
    s = cfg.transport.opcua
    assert s is not None and s.lockstep and s.read_method is ReadMethod.SUBSCRIPTION
    assert s.sample_time_s == 10.0 and s.stale_after_s == 30.0 and s.reconnect_max_delay_s == 1.5
    assert s.password == "pw-from-env" and "pw-from-env" not in repr(cfg)
    assert s.security.mode is SecurityMode.SIGN_AND_ENCRYPT
    assert s.security.policy is SecurityPolicy.BASIC256SHA256
    assert s.security.certificate == tmp_path / "pki/client.der"  # relative to the config file
    assert cfg.loop.mode is Mode.ON and cfg.loop.rto_every_n == 30 and cfg.loop.steps == 100
    assert cfg.mpc["horizon_steps"] == 20 and cfg.mpc["cvs"]["c_b"]["weight"] == 1.0
    with pytest.raises(TypeError):
        cfg.mpc["horizon_steps"] = 5  # type: ignore[index]
    plain = cfg.section("mpc")
    assert (
        plain == {"horizon_steps": 20, "cvs": {"c_b": {"weight": 1.0}}}
        and type(plain["cvs"]) is dict
    )
    assert cfg.historian == tmp_path / "out/run.sqlite"
    model = cfg.load_plant()
    io = cfg.build_plantio(model)
    assert isinstance(io, OpcUaPlantIO)
    assert io.tags == TagMap.for_hil(model)


def test_inprocess_config_builds_a_working_plantio(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
[plant]
name = "van_de_vusse"
[transport]
kind = "inprocess"
integrator = "rk"
d = { t_in = 380.0 }
[loop]
sample_time_s = 5
""",
        )
    )
    assert cfg.loop.mode is Mode.SHADOW and cfg.historian is None
    assert cfg.transport.inprocess.integrator is Integrator.RK4
    io = cfg.build_plantio(cfg.load_plant())
    assert isinstance(io, InProcessPlantIO) and io.sample_time_s == 5.0
    assert cfg.open_historian(cfg.load_plant()) is None


def test_historian_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTOMPC_TEST_PW", "x")
    cfg = load_config(write(tmp_path, OPCUA))
    model = cfg.load_plant()
    hist = cfg.open_historian(model)
    assert hist is not None and hist.path == tmp_path / "out/run.sqlite"
    assert hist.layout.measured == model.y.names + model.d.names
    hist.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='inprocess'\n",
            r"\[loop\]: missing section",
        ),
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='inprocess'\n[loop]\nsample_time_s=-1\n",
            "loop.sample_time_s: expected a positive number, got -1",
        ),
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='inprocess'\n[loop]\nsample_time_s=1\nmode='auto'\n",
            "loop.mode: expected one of 'off', 'shadow', 'on', got 'auto'",
        ),
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='modbus'\n[loop]\nsample_time_s=1\n",
            "transport.kind: expected one of 'inprocess', 'opcua'",
        ),
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='opcua'\nendpoint='http://x'\n[loop]\nsample_time_s=1\n",
            "transport: endpoint: expected 'opc.tcp://",
        ),
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='opcua'\nendpoint='opc.tcp://h:1'\nspeed=3\n"
            "[loop]\nsample_time_s=1\n",
            "unknown key.*transport.speed",
        ),
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='opcua'\nendpoint='opc.tcp://h:1'\n"
            "password_env='RTOMPC_SURELY_UNSET'\nusername='u'\n[loop]\nsample_time_s=1\n",
            "RTOMPC_SURELY_UNSET is not set",
        ),
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='inprocess'\n[transport.max_rate_per_s]\n"
            "f_dil='fast'\n[loop]\nsample_time_s=1\n",
            "transport.max_rate_per_s.f_dil: expected a finite number",
        ),
        (
            "[plant]\nname='van_de_vusse'\n[transport]\nkind='inprocess'\n[loop]\nsample_time_s=1\n[extra]\n",
            "unknown key.*extra",
        ),
        ("[plant\nname=1", "not valid TOML"),
    ],
    ids=[
        "no-loop",
        "negative-dt",
        "bad-mode",
        "bad-kind",
        "bad-endpoint",
        "unknown-key",
        "unset-env",
        "bad-rate",
        "unknown-section",
        "bad-toml",
    ],
)
def test_errors_name_file_key_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(err.value).startswith(str(path))


def test_errors_at_build_time_name_the_key(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
[plant]
name = "no_such_plant"
[transport]
kind = "inprocess"
[transport.max_rate_per_s]
nope = 1.0
[loop]
sample_time_s = 1
""",
        )
    )
    with pytest.raises(ConfigError, match=r"app.toml: plant.name: unknown plant 'no_such_plant'"):
        cfg.load_plant()
    from plant_models.library import load

    with pytest.raises(ConfigError, match=r"transport.max_rate_per_s: .*unknown MV 'nope'"):
        cfg.build_plantio(load("van_de_vusse"))


def test_tag_table_in_config(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
[plant]
name = "van_de_vusse"
[transport]
kind = "opcua"
endpoint = "opc.tcp://plc:4840"
[transport.tags]
namespace = "urn:plc"
[transport.tags.measurements]
t_r = { node = "s=DB1.T_R", unit = "degC", valid = [0.0, 250.0] }
[transport.tags.setpoints]
f_dil = { node = "s=DB2.F", unit = "1/h" }
q_k = { node = "i=1234", unit = "kJ/h" }
[loop]
sample_time_s = 1
""",
        )
    )
    tags = cfg.tag_map(cfg.load_plant())
    (t_r,) = tags.measurements
    assert t_r.node.nodeid_string(4) == "ns=4;s=DB1.T_R"
    assert (t_r.lower, t_r.upper) == pytest.approx((273.15, 523.15))
    assert tags.setpoints[1].to_raw(1.0) == pytest.approx(3.6)  # 1 W = 3.6 kJ/h
