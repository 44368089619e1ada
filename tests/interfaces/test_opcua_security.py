"""Client security over loopback: user/password, server certificate checked against a trust
list, a server that does not trust the client, secrets kept out of messages and logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from conftest import DT, Pki, free_port, opcua_settings
from layout_server import LayoutServer

from interfaces.opcua_client import OpcUaPlantIO
from interfaces.opcua_settings import OpcUaSecurity, OpcUaSettings, SecurityMode, SecurityPolicy
from plant_models.errors import ConfigError, PlantIOError
from plant_models.model import PlantModel
from plant_models.samples import Quality

pytestmark = pytest.mark.opcua
SECRET = "s3cret-Pa55word"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def secure_server(vdv: PlantModel, pki: Pki) -> AsyncIterator[LayoutServer]:
    srv = LayoutServer(
        vdv,
        free_port(),
        sample_time_s=DT,
        certificate=pki.server_cert,
        private_key=pki.server_key,
        trusted_clients=pki.trusted_clients,
        users={"operator": SECRET},
    )
    await srv.start()
    yield srv
    await srv.stop()


def secure(
    endpoint: str,
    pki: Pki,
    *,
    trust: str = "trusted_servers",
    user: str = "operator",
    password: str = SECRET,
) -> OpcUaSettings:
    sec = OpcUaSecurity(
        SecurityMode.SIGN_AND_ENCRYPT,
        SecurityPolicy.BASIC256SHA256,
        pki.client_cert,
        pki.client_key,
        trusted_server_certificates=getattr(pki, trust),
    )
    return opcua_settings(endpoint, security=sec, username=user, password=password)


async def test_secure_channel_with_user_and_trusted_server(
    secure_server: LayoutServer, vdv: PlantModel, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with OpcUaPlantIO(vdv, secure(secure_server.endpoint, pki)) as io:
        m = await io.read()
        assert all(q is Quality.GOOD for q in m.quality)
        await io.heartbeat(3)
    assert secure_server.heartbeat == 3
    assert SECRET not in caplog.text


async def test_wrong_password_is_rejected_without_leaking_it(
    secure_server: LayoutServer, vdv: PlantModel, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-" + SECRET
    io = OpcUaPlantIO(vdv, secure(secure_server.endpoint, pki, password=wrong))
    with pytest.raises(PlantIOError, match="user 'operator' was rejected") as err:
        await io.connect()
    assert wrong not in str(err.value) and wrong not in caplog.text
    assert wrong not in repr(io.settings)


async def test_untrusted_server_certificate_is_refused(
    secure_server: LayoutServer, vdv: PlantModel, pki: Pki
) -> None:
    io = OpcUaPlantIO(vdv, secure(secure_server.endpoint, pki, trust="other_servers"))
    with pytest.raises(PlantIOError, match="not in the trust list"):
        await io.connect()
    assert not io.connected


async def test_server_that_does_not_trust_the_client(vdv: PlantModel, pki: Pki) -> None:
    srv = LayoutServer(
        vdv,
        free_port(),
        sample_time_s=DT,
        certificate=pki.server_cert,
        private_key=pki.server_key,
        trusted_clients=pki.other_clients,
        users={"operator": SECRET},
    )
    await srv.start()
    try:
        io = OpcUaPlantIO(vdv, secure(srv.endpoint, pki))
        with pytest.raises(
            PlantIOError, match="refused the client certificate|rejected the secure channel"
        ):
            await io.connect()
    finally:
        await srv.stop()


def test_security_settings_are_validated(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="trusted_server_certificates"):
        OpcUaSecurity(
            SecurityMode.SIGN_AND_ENCRYPT,
            SecurityPolicy.BASIC256SHA256,
            pki.client_cert,
            pki.client_key,
        )
    with pytest.raises(ConfigError, match="do not fit"):
        OpcUaSecurity(SecurityMode.SIGN, SecurityPolicy.NONE)
    with pytest.raises(ConfigError, match="together"):
        OpcUaSettings("opc.tcp://127.0.0.1:4840", 1.0, username="u")
    settings = OpcUaSettings("opc.tcp://127.0.0.1:4840", 1.0, username="u", password=SECRET)
    assert SECRET not in repr(settings)
