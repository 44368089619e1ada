"""One write, MV by MV: limits, integer rounding, deadband, per-node outcome, what the plant holds.

Every PlantIO transport judges a move the same way through these two steps:

- :func:`plan_write` clamps the move to the absolute and rate limits around what the plant
  holds, leaves out MVs that are out of service or have no finite value, rounds MVs whose
  node holds an integer (in the tag's unit, kept inside the limits) and skips changes
  inside the tag's deadband. What is left is sent, in one batch.
- :func:`judge_write` turns the plant's answer (one status code per node sent, then the
  read-back) into a :class:`~interfaces.plantio.WriteResult`: a status per MV (a PLC
  accepts or refuses each node of a batch on its own), the requested, written (after
  rounding) and read-back values kept apart, and ``held``, what the plant holds now: the
  read-back where there is one, the written value of an accepted MV, else the value
  held before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from interfaces.limits import LimitedMove, MoveLimits, limit_move
from interfaces.plantio import MvWriteStatus, WriteResult, WriteStatus
from interfaces.tagmap import Tag


@dataclass(frozen=True)
class MvRule:
    """How one MV is written, in the unit of its plant tag (``model = raw * scale + offset``)."""

    scale: float = 1.0
    """Raw (tag unit) to SI scale."""
    offset: float = 0.0
    """Raw (tag unit) to SI offset."""
    integer: bool = False
    """Round to whole tag units before writing."""
    deadband: float = 0.0
    """Smallest change worth sending, tag unit."""
    tolerance: float | None = None
    """Largest written/read-back difference that counts as held, tag unit (None: default)."""

    @classmethod
    def from_tag(cls, tag: Tag, integer_node: bool = False) -> MvRule:
        """The rule of a setpoint tag; ``integer_node``: the node's DataType is an integer."""
        integer = tag.integer if tag.integer is not None else integer_node
        conv = tag.conversion
        return cls(conv.scale, conv.offset, integer, tag.deadband, tag.readback_tolerance)

    def to_raw(self, value: float) -> float:
        """SI -> tag unit."""
        return (value - self.offset) / self.scale

    def to_model(self, raw: float) -> float:
        """Tag unit -> SI."""
        return raw * self.scale + self.offset

    def holds(self, written: float, readback: float, rel_tol: float, abs_tol: float) -> bool:
        """True when ``readback`` (SI) counts as the plant holding ``written`` (SI)."""
        if not math.isfinite(readback):
            return False
        if self.tolerance is None:
            return math.isclose(written, readback, rel_tol=rel_tol, abs_tol=abs_tol)
        w, r = self.to_raw(written), self.to_raw(readback)
        return abs(w - r) <= self.tolerance + 1e-9 * max(1.0, abs(w))


@dataclass(frozen=True)
class WritePlan:
    """What will be sent, per MV."""

    limited: LimitedMove
    """The move after absolute and rate limits."""
    raw: NDArray[np.float64]
    """Values to send in the tag's unit (rounded where integer); NaN where nothing is sent."""
    written: NDArray[np.float64]
    """The same in SI; NaN where nothing is sent."""
    skipped: tuple[MvWriteStatus | None, ...]
    """Why an MV is not sent (OUT_OF_SERVICE, NOT_WRITTEN, DEADBAND); None: sent."""
    rounded: tuple[bool, ...]
    """Changed by integer rounding by more than the tag's read-back tolerance."""

    @property
    def send(self) -> list[int]:
        """Indices of the MVs to send."""
        return [i for i, s in enumerate(self.skipped) if s is None]


def _round_inside(raw: float, lo: float, hi: float) -> float:
    r = float(math.floor(raw + 0.5))
    if r > hi:
        r = float(math.floor(hi))
    if r < lo:
        r = float(math.ceil(lo))
    return r


def plan_write(
    limits: MoveLimits,
    rules: Sequence[MvRule],
    requested: NDArray[np.float64],
    reference: NDArray[np.float64],
    sample_time_s: float,
    in_service: Sequence[bool] | None = None,
) -> WritePlan:
    """Limit, round and filter a move (``reference``: what the plant holds, SI, NaN unknown)."""
    lim = limit_move(limits, requested, reference, sample_time_s)
    n = len(rules)
    if in_service is not None and len(in_service) != n:
        raise ValueError(f"in_service has {len(in_service)} entries, the plant has {n} MVs")
    raw = np.full(n, np.nan)
    written = np.full(n, np.nan)
    skipped: list[MvWriteStatus | None] = []
    rounded: list[bool] = []
    for i, rule in enumerate(rules):
        value = float(lim.applied[i])
        rounded.append(False)
        if in_service is not None and not in_service[i]:
            skipped.append(MvWriteStatus.OUT_OF_SERVICE)
            continue
        if not math.isfinite(value):
            skipped.append(MvWriteStatus.NOT_WRITTEN)
            continue
        r = rule.to_raw(value)
        if rule.integer:
            lo, hi = sorted((rule.to_raw(limits.lower[i]), rule.to_raw(limits.upper[i])))
            whole = _round_inside(r, lo, hi)
            rounded[i] = rule.tolerance is not None and abs(whole - r) > rule.tolerance
            r = whole
        ref = float(reference[i])
        if rule.deadband > 0 and math.isfinite(ref) and abs(r - rule.to_raw(ref)) < rule.deadband:
            skipped.append(MvWriteStatus.DEADBAND)
            continue
        skipped.append(None)
        raw[i] = r
        written[i] = rule.to_model(r)
    return WritePlan(lim, raw, written, tuple(skipped), tuple(rounded))


def judge_write(
    plan: WritePlan,
    *,
    time_s: float,
    names: tuple[str, ...],
    requested: NDArray[np.float64],
    reference: NDArray[np.float64],
    rules: Sequence[MvRule],
    codes: Sequence[str],
    readback: NDArray[np.float64] | None,
    nodes: Sequence[str] = (),
    rel_tol: float = 1e-6,
    abs_tol: float = 1e-9,
    failure: WriteStatus | None = None,
    note: str = "",
) -> WriteResult:
    """The WriteResult of a planned write.

    ``codes``: per MV the status code name the plant answered ("" where nothing was sent);
    ``readback``: per MV the value read back after the write, SI (None: the read-back
    failed); ``failure``: the batch never got an answer (NOT_CONNECTED or REJECTED), so
    nothing sent counts as written; ``nodes``: node ids for messages.
    """
    n = len(names)
    rb = np.full(n, np.nan) if readback is None else np.asarray(readback, dtype=float)
    written = np.full(n, np.nan)
    held = np.where(np.isfinite(rb), rb, reference).astype(float)
    status: list[MvWriteStatus] = []
    rejected: list[str] = []
    mismatched: list[str] = []
    lim = plan.limited
    for i in range(n):
        code = codes[i] if i < len(codes) else ""
        skip = plan.skipped[i]
        if skip is not None:
            status.append(skip)
            continue
        if failure is not None:
            status.append(MvWriteStatus.NOT_WRITTEN)
            continue
        if not code.startswith("Good"):
            where = f" ({nodes[i]})" if i < len(nodes) and nodes[i] else ""
            rejected.append(f"{names[i]}: {code or 'no answer'}{where}")
            status.append(MvWriteStatus.REJECTED)
            continue
        w = float(plan.written[i])
        written[i] = w
        changed = lim.clamped[i] or lim.rate_limited[i] or plan.rounded[i]
        if code == "GoodClamped":
            status.append(MvWriteStatus.CLAMPED)
        elif readback is not None and not rules[i].holds(w, float(rb[i]), rel_tol, abs_tol):
            mismatched.append(f"{names[i]} wrote {w:.6g}, plant holds {rb[i]:.6g}")
            status.append(MvWriteStatus.MISMATCH)
        else:
            status.append(MvWriteStatus.CLAMPED if changed else MvWriteStatus.ACCEPTED)
        if not math.isfinite(held[i]) or readback is None:
            held[i] = w
    sent = plan.send
    if failure is not None:
        overall, message = failure, note
    elif not sent and all(s is MvWriteStatus.NOT_WRITTEN for s in status):
        overall, message = WriteStatus.NOTHING_TO_WRITE, note or "no finite MV value"
    elif rejected:
        overall, message = WriteStatus.REJECTED, "rejected: " + "; ".join(rejected)
    elif sent and readback is None:
        overall, message = WriteStatus.UNVERIFIED, note
    elif mismatched:
        overall, message = WriteStatus.MISMATCH, "read-back differs: " + "; ".join(mismatched)
    else:
        overall, message = WriteStatus.VERIFIED, note
    if rejected and mismatched:
        message += "; read-back differs: " + "; ".join(mismatched)
    if note and note not in message:
        message = f"{message} ({note})" if message else note
    return WriteResult(
        time_s,
        names,
        overall,
        np.asarray(requested, dtype=float),
        written,
        rb,
        lim.clamped,
        lim.rate_limited,
        message,
        tuple(status),
        tuple(codes[i] if i < len(codes) else "" for i in range(n)),
        held,
    )
