"""A small asyncua server that follows the HIL address-space contract, for client tests.

It is a test double of the plant side, independent of ``hil`` (which is built
separately): one object per plant in namespace ``urn:rtompc:hil`` with folders
Measurements, Actuators, Setpoints and Status, a lockstep ``step`` method that
advances the plant with :func:`plant_models.simulation.step`, setpoint writes
accepted only in REMOTE mode and clamped to the MV bounds, and PLC-like strict
writes: a DataValue carrying a source or server timestamp is refused with
``BadWriteNotSupported`` (as open62541 servers and S7 PLCs do). The plant state
lives in the object, so the server can be stopped and restarted on the same
port while the "plant" keeps its state. Faults can be injected per measurement
(status code, raw value, source-timestamp age). Optional: raw engineering units
per signal (``raw = si * scale + offset``), declared setpoint types, security
(certificate, trusted client certificates) and user/password.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.address_space import AttributeService

from plant_models.model import PlantModel
from plant_models.simulation import step

NS = "urn:rtompc:hil"
_log = logging.getLogger(__name__)


class _Users:
    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)

    def get_user(self, iserver, username=None, password=None, certificate=None):  # noqa: ANN001
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User)
        return None


class _StrictWrites(AttributeService):
    """Refuses timestamped writes and routes plant semantics through the LayoutServer."""

    def __init__(self, aspace, plant: LayoutServer) -> None:  # noqa: ANN001
        super().__init__(aspace)
        self.plant = plant

    async def write(self, params: ua.WriteParameters, user: User = User(role=UserRole.Admin)):  # noqa: B008
        if user.role is UserRole.Admin:  # the server's own internal writes
            return await super().write(params, user=user)
        results: list[ua.StatusCode | None] = []
        passed = []
        for wv in params.NodesToWrite:
            dv = wv.Value
            if dv.SourceTimestamp is not None or dv.ServerTimestamp is not None:
                self.plant.refused_timestamped += 1
                results.append(ua.StatusCode(ua.StatusCodes.BadWriteNotSupported))
                continue
            status, dv = self.plant.before_write(wv.NodeId, dv)
            if status is not None:
                results.append(ua.StatusCode(status))
                continue
            results.append(None)
            passed.append(dataclasses.replace(wv, Value=dv))
        base = (
            await super().write(ua.WriteParameters(NodesToWrite=passed), user=user)
            if passed
            else []
        )
        it = iter(base)
        out = []
        for wv_result, wv in zip(results, params.NodesToWrite, strict=True):
            if wv_result is None:
                code = next(it)
                if code.is_good():
                    await self.plant.after_write(wv.NodeId)
                out.append(code)
            else:
                out.append(wv_result)
        return out


class LayoutServer:
    """Plant + OPC UA server following the HIL layout contract."""

    def __init__(
        self,
        model: PlantModel,
        port: int,
        *,
        sample_time_s: float = 10.0,
        raw_units: Mapping[str, tuple[float, float]] | None = None,
        setpoint_types: Mapping[str, ua.VariantType] | None = None,
        certificate: Path | None = None,
        private_key: Path | None = None,
        trusted_clients: Path | None = None,
        users: Mapping[str, str] | None = None,
        app_uri: str = "urn:rtompc:test-server",
        extra_namespaces: tuple[str, ...] = (),
    ) -> None:
        self.model = model
        self.plant = model.name
        self.port = port
        self.dt = sample_time_s
        self.raw = dict(raw_units or {})
        self.setpoint_types = dict(setpoint_types or {})
        self.certificate, self.private_key, self.trusted_clients = (
            certificate,
            private_key,
            trusted_clients,
        )
        self.users = users
        self.app_uri = app_uri
        self.extra_namespaces = extra_namespaces
        self.x = model.nominal.x.copy()
        self.u = model.nominal.u.copy()
        self.d = model.nominal.d.copy()
        self.p = model.nominal.p.copy()
        self.sim_time = 0.0
        self.mode = 0
        self.heartbeat = 0
        self.writes: list[tuple[str, float]] = []
        self.refused_timestamped = 0
        self.status_fault: dict[str, int] = {}
        self.raw_fault: dict[str, float] = {}
        self.age_fault: dict[str, float] = {}
        self.server: Server | None = None
        self.idx = 0

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/rtompc/"

    def nid(self, path: str) -> ua.NodeId:
        return ua.NodeId(f"{self.plant}.{path}" if path else self.plant, self.idx)

    def to_raw(self, name: str, si: float) -> float:
        scale, offset = self.raw.get(name, (1.0, 0.0))
        return si * scale + offset

    def to_si(self, name: str, raw: float) -> float:
        scale, offset = self.raw.get(name, (1.0, 0.0))
        return (raw - offset) / scale

    # Server lifecycle -------------------------------------------------------
    async def start(self) -> None:
        server = Server(user_manager=_Users(self.users) if self.users else None)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("rtompc layout test server")
        await server.set_application_uri(self.app_uri)
        if self.certificate is not None:
            await server.load_certificate(str(self.certificate))
            await server.load_private_key(str(self.private_key))
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            if self.trusted_clients is not None:
                store = TrustStore([self.trusted_clients], [])
                await store.load()
                server.set_certificate_validator(
                    CertificateValidator(
                        CertificateValidatorOptions.TRUSTED
                        | CertificateValidatorOptions.PEER_CLIENT,
                        store,
                    )
                )
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if self.users:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        for uri in self.extra_namespaces:  # shifts our index: clients must resolve by URI
            await server.register_namespace(uri)
        self.idx = await server.register_namespace(NS)
        obj = await server.nodes.objects.add_object(
            self.nid(""), ua.QualifiedName(self.plant, self.idx)
        )
        folders = {}
        for name in ("Measurements", "Actuators", "Setpoints", "Status"):
            folders[name] = await obj.add_folder(self.nid(name), ua.QualifiedName(name, self.idx))

        async def var(
            folder: str, name: str, value: object, vtype: ua.VariantType, writable: bool = False
        ):
            node = await folders[folder].add_variable(
                self.nid(f"{folder}.{name}"),
                ua.QualifiedName(name, self.idx),
                ua.Variant(value, vtype),
            )
            if writable:
                await node.set_writable()
            return node

        for name in (*self.model.y.names, *self.model.d.names):
            await var("Measurements", name, 0.0, ua.VariantType.Double)
        for i, name in enumerate(self.model.u.names):
            await var("Actuators", name, float(self.to_raw(name, self.u[i])), ua.VariantType.Double)
            vtype = self.setpoint_types.get(name, ua.VariantType.Double)
            await var("Setpoints", name, float(self.to_raw(name, self.u[i])), vtype, writable=True)
        await var("Status", "sim_time_s", 0.0, ua.VariantType.Double)
        await var("Status", "heartbeat", 0, ua.VariantType.UInt32, writable=True)
        await var("Status", "mode", self.mode, ua.VariantType.Int32)
        await var("Status", "mode_request", self.mode, ua.VariantType.Int32, writable=True)
        await var("Status", "watchdog_tripped", False, ua.VariantType.Boolean)
        await var("Status", "status_text", "", ua.VariantType.String)

        async def step_method(parent: ua.NodeId, n: ua.Variant) -> list[ua.Variant]:
            await self.advance(int(n.Value))
            return [ua.Variant(self.sim_time, ua.VariantType.Double)]

        await obj.add_method(
            self.nid("step"),
            ua.QualifiedName("step", self.idx),
            step_method,
            [ua.VariantType.UInt32],
            [ua.VariantType.Double],
        )
        server.iserver.attribute_service = _StrictWrites(server.iserver.aspace, self)
        await server.start()
        self.server = server
        await self.publish()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    # Plant --------------------------------------------------------------------
    async def advance(self, n: int) -> None:
        for _ in range(n):
            self.x = step(self.model, self.x, self.u, self.d, self.p, self.dt)
            self.sim_time += self.dt
        await self.publish()

    def outputs(self) -> dict[str, float]:
        y = np.asarray(self.model.h(self.x, self.u, self.d, self.p), dtype=float).reshape(-1)
        return {
            **dict(zip(self.model.y.names, y, strict=True)),
            **dict(zip(self.model.d.names, self.d, strict=True)),
        }

    async def _put(
        self,
        nodeid: ua.NodeId,
        value: object,
        vtype: ua.VariantType,
        status: int = 0,
        age_s: float = 0.0,
    ) -> None:
        if self.server is None:
            return
        now = datetime.now(UTC)
        dv = ua.DataValue(
            ua.Variant(value, vtype),
            StatusCode=ua.StatusCode(status),
            SourceTimestamp=now - timedelta(seconds=age_s),
            ServerTimestamp=now,
        )
        await self.server.write_attribute_value(nodeid, dv)

    async def publish(self) -> None:
        for name, si in self.outputs().items():
            raw = self.raw_fault.get(name, self.to_raw(name, si))
            await self._put(
                self.nid(f"Measurements.{name}"),
                float(raw),
                ua.VariantType.Double,
                self.status_fault.get(name, 0),
                self.age_fault.get(name, 0.0),
            )
        for i, name in enumerate(self.model.u.names):
            await self._put(
                self.nid(f"Actuators.{name}"),
                float(self.to_raw(name, self.u[i])),
                ua.VariantType.Double,
            )
        await self._put(self.nid("Status.sim_time_s"), self.sim_time, ua.VariantType.Double)
        await self._put(self.nid("Status.mode"), self.mode, ua.VariantType.Int32)

    async def reset(self) -> None:
        """Back to the nominal point, LOCAL mode, no faults, empty write log."""
        m = self.model
        self.x, self.u, self.d, self.p = (
            m.nominal.x.copy(),
            m.nominal.u.copy(),
            m.nominal.d.copy(),
            m.nominal.p.copy(),
        )
        self.sim_time, self.mode, self.heartbeat, self.refused_timestamped = 0.0, 0, 0, 0
        self.writes.clear()
        self.status_fault.clear()
        self.raw_fault.clear()
        self.age_fault.clear()
        for name in m.u.names:
            await self.set_actuator(name, float(m.nominal.u[m.u.index(name)]))
        await self._put(self.nid("Status.mode_request"), 0, ua.VariantType.Int32)
        await self._put(self.nid("Status.heartbeat"), 0, ua.VariantType.UInt32)
        await self.publish()

    async def set_actuator(self, name: str, si: float) -> None:
        """Operator/base-layer change of an MV (e.g. in LOCAL mode)."""
        i = self.model.u.index(name)
        self.u[i] = si
        if self.server is not None:
            vtype = self.setpoint_types.get(name, ua.VariantType.Double)
            raw = self.to_raw(name, si)
            await self._put(self.nid(f"Setpoints.{name}"), raw, vtype)
            await self.publish()

    # Write semantics ------------------------------------------------------------
    def _setpoint(self, nodeid: ua.NodeId) -> str | None:
        prefix = f"{self.plant}.Setpoints."
        if (
            nodeid.NamespaceIndex == self.idx
            and isinstance(nodeid.Identifier, str)
            and nodeid.Identifier.startswith(prefix)
        ):
            return nodeid.Identifier[len(prefix) :]
        return None

    def before_write(self, nodeid: ua.NodeId, dv: ua.DataValue) -> tuple[int | None, ua.DataValue]:
        name = self._setpoint(nodeid)
        if name is not None:
            if self.mode != 1:
                return ua.StatusCodes.BadUserAccessDenied, dv
            raw = dv.Value.Value if dv.Value is not None else None
            if not isinstance(raw, int | float):
                return None, dv  # let the type check answer
            sig = self.model.u[name]
            si = min(max(self.to_si(name, float(raw)), sig.lower), sig.upper)
            clamped = self.to_raw(name, si)
            return None, dataclasses.replace(
                dv, Value=ua.Variant(type(raw)(clamped), dv.Value.VariantType)
            )
        return None, dv

    async def after_write(self, nodeid: ua.NodeId) -> None:
        assert self.server is not None
        value = (await self.server.get_node(nodeid).read_data_value()).Value.Value
        name = self._setpoint(nodeid)
        if name is not None:
            self.u[self.model.u.index(name)] = self.to_si(name, float(value))
            self.writes.append((name, float(value)))
            await self.publish()
        elif nodeid == self.nid("Status.heartbeat"):
            self.heartbeat = int(value)
        elif nodeid == self.nid("Status.mode_request"):
            self.mode = 1 if int(value) == 1 else 0
            await self.publish()
