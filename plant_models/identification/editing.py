"""Model edits an engineer makes after looking at an identification: a reviewable file, applied.

Commercial APC identification tools let the engineer impose what they know
about the unit; :class:`ModelEdits` carries the same choices, per CV and per
(CV, MV) channel, and is read from a TOML file (``rtompc sysid --edits``)::

    [cv.h1]
    order = 2                  # states of this CV's model, or "auto" (default)
    [cv.h1.mv.v2]
    gain = 0                   # no response at all: v2 is left out of h1's model
    [cv.h2.mv.v1]
    sign = "+"                 # the gain must be >= 0 (set to 0 if the data say otherwise)
    dead_time = "10 s"         # rounded to whole samples (a bare number is seconds)

    [[ratio]]                  # gain(cv, mvs[0]) / gain(cv, mvs[1]) = value
    cv = "h2"
    mvs = ["v2", "v1"]
    value = 2.0

:func:`identify_edited` identifies one MISO subspace model per CV (its own
order, the MVs it responds to, a dead time per channel), then imposes sign and
ratio constraints by re-solving that CV's input matrix B by equality-constrained
least squares (the steady-state gain ``c (I - A)^-1 B`` is linear in B for
given A and c); a sign that the data contradict becomes a zero gain, as the
commercial tools do. The CV models are stacked into one
:class:`IdentifiedModel` (block-diagonal A; per-channel dead times become
shift-register states, so the result has no input delays of its own), whose
``info["channels"]`` lists every channel's gain, dead time and the edit applied,
and ``info["edits"]`` the edits themselves, for review.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import scipy.linalg as sla
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from plant_models.errors import ModelError
from plant_models.identification.data import IdData
from plant_models.identification.linear_model import IdentifiedModel, delay_inputs
from plant_models.identification.subspace import _bd_x0, n4sid
from plant_models.units import to_si


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ChannelEdit(_Edit):
    """Edits of one (CV, MV) channel (``[cv.<cv>.mv.<mv>]``)."""

    gain: Literal[0] | None = None
    """0: the CV does not respond to this MV (the channel is removed)."""
    sign: Literal["+", "-"] | None = None
    """Sign the gain must have (a contradicting fit gives gain 0)."""
    dead_time: float | None = None
    """Dead time, s (``"30 s"``, ``"1 min"``); rounded to whole samples."""

    @field_validator("dead_time", mode="before")
    @classmethod
    def _seconds(cls, v: object) -> float | None:
        if v is None:
            return None
        if not isinstance(v, int | float | str) or isinstance(v, bool):
            raise ValueError(f"expected seconds or a time with a unit, got {v!r}")
        s = to_si(v, "s", where="dead_time")
        if not (math.isfinite(s) and s >= 0):
            raise ValueError(f"must be >= 0 s, got {v!r}")
        return s


class CvEdit(_Edit):
    """Edits of one CV's model (``[cv.<cv>]``)."""

    order: int | Literal["auto"] = "auto"
    """States of this CV's model, or "auto" (n4sid's order selection)."""
    mv: dict[str, ChannelEdit] = Field(default_factory=dict)
    """Channel edits by MV name."""

    @field_validator("order")
    @classmethod
    def _positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError(f'must be >= 1 or "auto", got {v}')
        return v


class RatioEdit(_Edit):
    """A fixed gain ratio ``gain(cv, mvs[0]) / gain(cv, mvs[1]) = value`` (``[[ratio]]``)."""

    cv: str
    """CV name."""
    mvs: tuple[str, str]
    """The two MVs."""
    value: float
    """The ratio (finite, non-zero)."""


class ModelEdits(_Edit):
    """Every edit of one identification (a TOML file)."""

    cv: dict[str, CvEdit] = Field(default_factory=dict)
    """Per-CV edits by CV name (CVs not listed: automatic order, no channel edits)."""
    ratio: list[RatioEdit] = Field(default_factory=list)
    """Fixed gain ratios."""

    def check(self, data: IdData) -> None:
        """ModelError naming the edit when a name or value does not fit the data."""
        for cv, e in self.cv.items():
            if cv not in data.y_names:
                raise ModelError(
                    f"edits: cv.{cv}: not a CV of the data ({', '.join(data.y_names)})"
                )
            for mv in e.mv:
                if mv not in data.u_names:
                    raise ModelError(
                        f"edits: cv.{cv}.mv.{mv}: not an MV of the data ({', '.join(data.u_names)})"
                    )
            if all(ch.gain == 0 for ch in e.mv.values()) and len(e.mv) == len(data.u_names):
                raise ModelError(f"edits: cv.{cv}: every gain is zeroed; leave the CV out instead")
        for i, r in enumerate(self.ratio):
            if r.cv not in data.y_names or any(m not in data.u_names for m in r.mvs):
                raise ModelError(f"edits: ratio[{i}]: {r.cv} / {list(r.mvs)} not in the data")
            if r.mvs[0] == r.mvs[1] or not (math.isfinite(r.value) and r.value != 0):
                raise ModelError(
                    f"edits: ratio[{i}]: needs two different MVs and a finite, non-zero value"
                )
            zeroed = [m for m in r.mvs if self.channel(r.cv, m).gain == 0]
            if zeroed:
                raise ModelError(f"edits: ratio[{i}]: gain of {r.cv}/{zeroed[0]} is zeroed")

    def channel(self, cv: str, mv: str) -> ChannelEdit:
        """The edit of one channel (an empty one when there is none)."""
        e = self.cv.get(cv)
        return e.mv.get(mv, ChannelEdit()) if e is not None else ChannelEdit()


def identify_edited(data: IdData, edits: ModelEdits, *, max_order: int = 6) -> IdentifiedModel:
    """One model from per-CV subspace fits with the edits imposed (module docstring)."""
    edits.check(data)
    dt = data.sample_time_s
    blocks = []
    channels: dict[str, dict[str, dict[str, Any]]] = {}
    for i, cv in enumerate(data.y_names):
        e = edits.cv.get(cv, CvEdit())
        mvs = [m for m in data.u_names if edits.channel(cv, m).gain != 0]
        cols = [data.u_names.index(m) for m in mvs]
        delays = tuple(int(round((edits.channel(cv, m).dead_time or 0.0) / dt)) for m in mvs)
        sub = IdData(
            data.t,
            data.u[:, cols],
            data.y[:, [i]],
            tuple(mvs),
            (cv,),
            dt,
            data.u0[cols],
            data.y0[[i]],
            segments=data.segments,
        )
        order = None if e.order == "auto" else int(e.order)
        fit = n4sid(sub, order=order, max_order=max_order, delays=delays)
        m = fit.model
        b, notes = _constrain(m, sub, delays, cv, mvs, edits)
        blocks.append((cols, m.A, b, m.C, m.D, delays))
        g = m.C @ np.linalg.solve(np.eye(m.nx) - m.A, b) + m.D
        channels[cv] = {}
        for mv in data.u_names:
            ch = edits.channel(cv, mv)
            if mv in mvs:
                j = mvs.index(mv)
                channels[cv][mv] = {
                    "gain": float(g[0, j]),
                    "dead_time_s": delays[j] * dt,
                    "order": m.nx,
                    "edit": notes.get(mv, "identified"),
                }
            else:
                channels[cv][mv] = {
                    "gain": 0.0,
                    "dead_time_s": 0.0,
                    "order": m.nx,
                    "edit": "gain zeroed (channel removed)",
                }
            if ch.dead_time is not None and mv in mvs:
                channels[cv][mv]["edit"] += f"; dead time set to {ch.dead_time:g} s"
    a, bb, c, d = _stack(blocks, len(data.u_names))
    return IdentifiedModel(
        a,
        bb,
        c,
        d,
        dt,
        data.u_names,
        data.y_names,
        data.u0,
        data.y0,
        u_units=data.u_units,
        y_units=data.y_units,
        method="subspace (PO-MOESP) per CV with edits",
        info={
            "order_per_cv": {cv: int(blocks[i][1].shape[0]) for i, cv in enumerate(data.y_names)},
            "channels": channels,
            "edits": edits.model_dump(mode="json"),
        },
    )


def _constrain(
    m: IdentifiedModel,
    sub: IdData,
    delays: tuple[int, ...],
    cv: str,
    mvs: list[str],
    edits: ModelEdits,
) -> tuple[NDArray, dict[str, str]]:
    """B of one CV's model with its sign and ratio edits imposed."""
    n = m.nx
    w = np.linalg.solve((np.eye(n) - m.A).T, m.C[0])  # gain_j = w @ B[:, j]
    rows: list[NDArray] = []
    notes: dict[str, str] = {}
    for r in edits.ratio:
        if r.cv == cv:
            g = np.zeros(n * len(mvs))
            ja, jb = mvs.index(r.mvs[0]), mvs.index(r.mvs[1])
            g[ja * n : (ja + 1) * n] = w
            g[jb * n : (jb + 1) * n] = -r.value * w
            rows.append(g)
            notes[r.mvs[0]] = f"ratio to {r.mvs[1]} fixed at {r.value:g}"
    signs = {mv: edits.channel(cv, mv).sign for mv in mvs}
    if not rows and not any(signs.values()):
        return m.B, notes
    bounds = sub.bounds()
    u = np.vstack([delay_inputs(sub.u[lo:hi], delays) for lo, hi in bounds])
    b = m.B
    for _ in range(len(mvs) + 1):
        con = np.array(rows) if rows else None
        b, _, _ = _bd_x0(m.A, m.C, u, sub.y, False, bounds, con)
        wrong = [
            j
            for j, mv in enumerate(mvs)
            if signs[mv]
            and mv not in notes
            and np.sign(w @ b[:, j]) == (-1.0 if signs[mv] == "+" else 1.0)
        ]
        if not wrong:
            break
        for j in wrong:  # a sign the data contradict: gain 0, dynamics kept
            g = np.zeros(n * len(mvs))
            g[j * n : (j + 1) * n] = w
            rows.append(g)
            notes[mvs[j]] = f"sign {signs[mvs[j]]} contradicted by the data: gain set to 0"
    for mv in mvs:
        if signs[mv] and mv not in notes:
            notes[mv] = f"sign {signs[mv]} imposed (the fit agreed)"
    return b, notes


def _stack(
    blocks: list[tuple[list[int], NDArray, NDArray, NDArray, NDArray, tuple[int, ...]]], nu: int
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Block-diagonal MIMO model from MISO blocks; dead times as shift-register states."""
    a_list, b_list, c_list, d_rows = [], [], [], []
    for cols, a, b, c, d, delays in blocks:
        n = a.shape[0]
        n_buf = sum(delays)
        aa = np.zeros((n + n_buf, n + n_buf))
        aa[:n, :n] = a
        bb = np.zeros((n + n_buf, nu))
        pos = n
        for j, dl in enumerate(delays):
            if dl == 0:
                bb[:n, cols[j]] = b[:, j]
                continue
            bb[pos, cols[j]] = 1.0  # first buffer state takes the input
            for k in range(1, dl):
                aa[pos + k, pos + k - 1] = 1.0
            aa[:n, pos + dl - 1] = b[:, j]  # the dynamics see the input dl samples late
            pos += dl
        cc = np.zeros((1, n + n_buf))
        cc[0, :n] = c[0]
        if np.any(d):
            raise ModelError("edits: feed-through models are not supported")
        a_list.append(aa)
        b_list.append(bb)
        c_list.append(cc)
        d_rows.append(np.zeros((1, nu)))
    return (sla.block_diag(*a_list), np.vstack(b_list), sla.block_diag(*c_list), np.vstack(d_rows))


def template(
    model: IdentifiedModel, gain_lower: NDArray | None = None, gain_upper: NDArray | None = None
) -> str:
    """A reviewable edits file for ``model``: what the identification chose, every channel's
    gain (with its interval) and dead time, the edits commented out; it parses as it is."""
    raw_orders, raw_chans = model.info.get("order_per_cv"), model.info.get("channels")
    per_cv: dict[str, Any] = raw_orders if isinstance(raw_orders, dict) else {}
    chans: dict[str, Any] = raw_chans if isinstance(raw_chans, dict) else {}
    k = model.gain()
    lines = [
        "# Model edits for `rtompc sysid ... --edits THIS_FILE`: the choices of the identification",
        f"# ({model.method}); uncomment and change what you know better, then identify again.",
        "",
    ]
    for i, cv in enumerate(model.y_names):
        order = per_cv.get(cv)
        lines += [
            f"[cv.{cv}]",
            f"order = {order if order is not None else chr(34) + 'auto' + chr(34)}"
            + ("" if order is not None else f"  # chosen: {model.nx} states for all CVs"),
        ]
        for j, mv in enumerate(model.u_names):
            ch = chans.get(cv, {}).get(mv, {})
            ci = ""
            if gain_lower is not None and gain_upper is not None:
                ci = f", interval [{gain_lower[i, j]:.4g}, {gain_upper[i, j]:.4g}]"
            dead = ch.get("dead_time_s", model.delays[j] * model.sample_time_s)
            lines += [
                f"# [cv.{cv}.mv.{mv}]  # gain {k[i, j]:.4g}{ci}, dead time {dead:g} s",
                "# gain = 0",
                f'# sign = "{"+" if k[i, j] >= 0 else "-"}"',
                f'# dead_time = "{dead:g} s"',
            ]
        lines.append("")
    lines += [
        "# [[ratio]]   gain(cv, mvs[0]) / gain(cv, mvs[1]) = value",
        '# cv = "..."',
        '# mvs = ["...", "..."]',
        "# value = 1.0",
        "",
    ]
    return "\n".join(lines)
