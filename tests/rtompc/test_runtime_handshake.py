"""The loop's side of the plant: REMOTE/LOCAL handshake, drops to LOCAL, per-MV write results.

In-process (lockstep) with the real EKF and NMPC of ``test_runtime.py``:

- the plant drops to LOCAL mid-run (the operator's key switch): the loop stops writing
  and stops the heartbeat, follows the plant's MVs, asks again after ``retry_cycles``
  (policy ``auto``, backing off while refused) or only on an operator's request (policy
  ``operator``) (issue 14, finding 5);
- a PLC refuses one MV of a batch (BadOutOfRange on q_k above its EURange) and accepts
  the other: the loop's idea of what the plant holds follows the plant per MV, and the
  record has the per-MV status (issue 13, finding 2: the whole batch counted as
  rejected, the held values froze).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_runtime import _stack

from interfaces.inprocess import InProcessPlantIO
from interfaces.plantio import MvWriteStatus, PlantMode, WriteResult, WriteStatus, move_vector
from plant_models.errors import PlantIOError
from plant_models.library import load
from plant_models.model import PlantModel
from plant_models.samples import ControlMove
from rtompc.handshake import HandshakeSettings, RemotePolicy
from rtompc.lifecycle import ExitCode, RunOutcome, decide_exit
from rtompc.runtime import LoopSettings


@pytest.fixture(scope="module")
def cstr() -> PlantModel:
    return load("van_de_vusse", parameters="do_mpc")


class KeySwitchPlant(InProcessPlantIO):
    """In-process plant with an operator key switch: while ``key_local``, REMOTE is refused."""

    key_local = False
    status = "REMOTE"

    async def request_mode(self, remote: bool) -> PlantMode:
        if remote and self.key_local:
            raise PlantIOError("mode request refused: BadInvalidState")
        return await super().request_mode(remote)

    async def status_text(self) -> str:
        return self.status


def _with_policy(loop, policy: RemotePolicy, retry: int) -> None:
    loop.settings = LoopSettings(
        **{**loop.settings.__dict__, "handshake": HandshakeSettings(policy, retry, 4 * retry)}
    )
    loop.handshake.settings = loop.settings.handshake


async def _switch_to_local(io: KeySwitchPlant, why: str) -> None:
    io.key_local = True
    io.status = why
    await InProcessPlantIO.request_mode(io, remote=False)


@pytest.mark.parametrize(
    "policy", [RemotePolicy.AUTO, RemotePolicy.OPERATOR], ids=lambda p: p.value
)
async def test_drop_to_local_stops_heartbeat_and_writes(
    cstr: PlantModel, policy: RemotePolicy
) -> None:
    io, loop, probe = _stack(cstr)
    io.__class__ = KeySwitchPlant  # same plant, with the key switch
    assert isinstance(io, KeySwitchPlant)
    _with_policy(loop, policy, retry=3)
    async with io:
        await loop.run(5)
        hb_before = io.last_heartbeat
        held = (await io.read_actuators()).values.copy()
        await _switch_to_local(io, "LOCAL by key switch")
        await loop.run(8)  # key still LOCAL: refused
        hb_local = io.last_heartbeat
        io.key_local = False
        io.status = "key switch REMOTE allowed"
        await loop.run(8)
        if policy is RemotePolicy.OPERATOR:
            assert loop.handshake.requests == 1  # only the start of the run asked
            loop.request_remote()
            await loop.run(3)
    recs = probe.records
    local = recs[5:13]
    assert all(r.plant_mode == "LOCAL" for r in local), "\n".join(
        f"{r.cycle} {r.plant_mode} {r.events}" for r in recs
    )
    assert (
        "plant dropped to LOCAL" in local[0].events[-1]
        and "LOCAL by key switch" in local[0].events[-1]
    )
    assert all(
        r.write_status == "held: plant LOCAL" and np.all(np.isnan(r.u_written)) for r in local
    )
    for r in local:
        np.testing.assert_array_equal(r.u_plant, held)
    assert hb_local == hb_before, "heartbeat went on while the plant was LOCAL"
    back = next(r for r in recs[13:] if r.plant_mode == "REMOTE")
    assert any("granted REMOTE" in e for e in back.events)
    assert back.write_status == "verified"
    assert io.last_heartbeat > hb_local
    if policy is RemotePolicy.AUTO:
        # asked at cycles 8 and 11 (refused: BadInvalidState, logged once), then backed off
        # to 6 cycles: asked at 17, granted
        refusals = [r.cycle for r in recs if any("REMOTE refused" in e for e in r.events)]
        assert refusals == [8]
        assert back.cycle == 17 and loop.handshake.requests == 1 + 3
    else:
        assert back.cycle == 21 and loop.handshake.requests == 2


class RangePlc(InProcessPlantIO):
    """In-process plant behind a PLC whose q_k node has an EURange up to ``q_max`` W: a value
    above it is refused for that node (BadOutOfRange); the other nodes of the batch are written."""

    q_max = -1230.0
    held_after_write: list[np.ndarray]

    async def write(self, move: ControlMove) -> WriteResult:
        u = move_vector(move, self.mv_names)
        i = self.mv_names.index("q_k")
        if not u[i] > self.q_max:
            wr = await super().write(move)
        else:
            keep = u.copy()
            keep[i] = (await self.read_actuators()).values[i]
            wr = await super().write(ControlMove(move.time_s, keep, move.names))
            written = wr.written.copy()
            written[i] = np.nan
            status = tuple(
                MvWriteStatus.REJECTED if k == i else MvWriteStatus.ACCEPTED for k in range(len(u))
            )
            wr = replace(
                wr,
                status=WriteStatus.REJECTED,
                written=written,
                message="rejected: q_k: BadOutOfRange",
                mv_status=status,
                codes=tuple("BadOutOfRange" if k == i else "Good" for k in range(len(u))),
            )
        self.held_after_write.append((await self.read_actuators()).values.copy())
        return wr


async def test_partly_rejected_batch_tracked_per_mv(cstr: PlantModel) -> None:
    io, loop, probe = _stack(cstr)
    io.__class__ = RangePlc
    assert isinstance(io, RangePlc)
    io.held_after_write = []
    async with io:
        await loop.run(20)
    recs = probe.records
    partial = [r for r in recs if r.write_status == "rejected"]
    assert len(partial) >= 10
    for k, r in enumerate(recs[1:], start=1):
        # what the loop thinks the plant holds = what it holds, MV by MV
        np.testing.assert_allclose(r.u_plant, io.held_after_write[k - 1], rtol=1e-12)
    for r in partial:
        assert r.mv_status == ("accepted", "rejected")
        assert np.isfinite(r.u_written[0]) and np.isnan(r.u_written[1])
        assert r.u_readback is not None and r.u_readback[1] <= io.q_max
    # f_dil kept moving while q_k was refused
    assert np.ptp([r.u_plant[0] for r in partial]) > 1e-4
    assert loop.stats.write_failures == len(partial) and loop.stats.writes == len(recs)
    # one line each time the refusals start, not one per cycle
    starts = sum(
        b.write_status == "rejected" and a.write_status != "rejected"
        for a, b in zip(recs, recs[1:], strict=False)
    )
    assert sum(any("BadOutOfRange" in e for e in r.events) for r in recs) == starts < len(partial)


async def test_write_failures_above_the_share_give_exit_code_4(cstr: PlantModel) -> None:
    io, loop, probe = _stack(cstr)
    io.__class__ = RangePlc
    assert isinstance(io, RangePlc)
    io.held_after_write = []
    async with io:
        await loop.run(20)

    def outcome(share: float) -> RunOutcome:  # as rtompc run decides it
        return decide_exit(
            on=True,
            connected=loop.connected,
            in_control=loop.handshake.in_control,
            writes=loop.write_attempts - loop.stats.write_failures,
            write_failures=loop.stats.write_failures,
            max_write_failure_share=share,
            stopped_by="normal end",
        )

    refused = loop.stats.write_failures / loop.write_attempts
    assert loop.write_attempts == 20 and 0.5 < refused < 1.0
    assert outcome(0.1).code is ExitCode.WRITE_FAILURES
    assert f"{loop.stats.write_failures} of 20 writes failed" in outcome(0.1).reason
    assert outcome(1.0).code is ExitCode.OK


@pytest.mark.parametrize(
    ("why", "comes_back", "code"),
    [
        ("LOCAL: heartbeat watchdog tripped (2.0 s)", True, ExitCode.WATCHDOG_TRIPPED),
        ("LOCAL: heartbeat watchdog tripped (2.0 s)", False, ExitCode.NOT_IN_CONTROL),
        ("LOCAL by key switch", True, ExitCode.OK),
    ],
    ids=["watchdog-back", "watchdog-stays-local", "key-switch-back"],
)
async def test_a_watchdog_trip_during_the_run_has_its_own_exit_code(
    cstr: PlantModel, why: str, comes_back: bool, code: ExitCode
) -> None:
    """A nightly job or a supervisor learns that the PLC's watchdog tripped even when the
    engine took control back: exit 6 with what the PLC said (before: 0, the trip was only in
    the log). Still LOCAL at the end stays 3, now naming the PLC's text; a drop that was not the
    watchdog (key switch) and came back is a normal end."""
    io, loop, _ = _stack(cstr)
    io.__class__ = KeySwitchPlant
    assert isinstance(io, KeySwitchPlant)
    _with_policy(loop, RemotePolicy.AUTO, retry=2)
    async with io:
        await loop.run(4)
        await _switch_to_local(io, why)
        await loop.run(3)
        if comes_back:
            io.key_local = False
            io.status = "REMOTE: granted"
            await loop.run(6)
    assert loop.handshake.drops == 1
    assert loop.handshake.in_control is comes_back
    out = decide_exit(
        on=True,
        connected=loop.connected,
        in_control=loop.handshake.in_control,
        writes=loop.write_attempts - loop.stats.write_failures,
        write_failures=loop.stats.write_failures,
        max_write_failure_share=0.1,
        stopped_by="normal end",
        watchdog_trips=loop.handshake.watchdog_trips,
        last_drop=loop.handshake.last_drop,
    )
    assert out.code is code, out
    if code is not ExitCode.OK:
        assert why in out.reason, out.reason
    assert int(ExitCode.WATCHDOG_TRIPPED) == 6
