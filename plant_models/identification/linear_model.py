"""An identified discrete-time linear model, its PlantModel and its JSON file.

:class:`IdentifiedModel` is the common result of every method (FOPDT, ARX,
subspace): a discrete state-space model in deviation variables

    x[k+1] = A x[k] + B du[k - delay],   dy[k] = C x[k] + D du[k - delay]
    du = u - u0,  y = y0 + dy

with an integer dead time per input (samples). :meth:`to_plant_model` gives a
discrete-time :class:`PlantModel` with the sample time, whose states are x
followed by the dead-time buffers (state augmentation: one state per input
and sample of delay, holding past input deviations). Files are JSON (never
pickle), written by :meth:`save` and read by :func:`plant_models.identified.load_model`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import casadi as ca
import numpy as np
import scipy.linalg as sla
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ModelError
from plant_models.model import OperatingPoint, PlantModel, TimeDomain
from plant_models.signals import Signal, SignalSet

FORMAT = "rtompc.identified_model"
"""Value of the ``format`` key of an identified-model file."""
VERSION = 1
"""File format version."""


@dataclass(frozen=True)
class IdentifiedModel:
    """Discrete-time linear model from data, in deviation variables."""

    A: NDArray[np.float64]
    """State matrix (nx, nx)."""
    B: NDArray[np.float64]
    """Input matrix (nx, nu), acting on delayed input deviations."""
    C: NDArray[np.float64]
    """Output matrix (ny, nx)."""
    D: NDArray[np.float64]
    """Feed-through (ny, nu) of delayed input deviations."""
    sample_time_s: float
    """Sample time, s."""
    u_names: tuple[str, ...]
    """Input names."""
    y_names: tuple[str, ...]
    """Output names."""
    u0: NDArray[np.float64]
    """Input operating point (SI)."""
    y0: NDArray[np.float64]
    """Output operating point (SI)."""
    delays: tuple[int, ...] = ()
    """Dead time per input, samples (empty: none)."""
    u_units: tuple[str, ...] = ()
    """Input units (empty: ``"1"``)."""
    y_units: tuple[str, ...] = ()
    """Output units (empty: ``"1"``)."""
    method: str = ""
    """How it was identified (e.g. ``"n4sid order 4"``)."""
    u_limits: tuple[tuple[float, float], ...] = ()
    """(lower, upper) of every input, SI, e.g. the plant's MV bounds (empty: unbounded)."""
    info: dict[str, Any] = field(default_factory=dict)
    """JSON-able figures from identification/validation (fit %, orders, ...)."""

    def __post_init__(self) -> None:
        mats = {k: np.atleast_2d(np.asarray(getattr(self, k), dtype=float)) for k in "ABCD"}
        nx = mats["A"].shape[0] if mats["A"].size else 0
        if nx == 0:
            raise ModelError("identified model: A is empty; a model needs at least one state")
        nu, ny = len(self.u_names), len(self.y_names)
        want = {"A": (nx, nx), "B": (nx, nu), "C": (ny, nx), "D": (ny, nu)}
        for k, shape in want.items():
            if mats[k].shape != shape:
                raise ModelError(
                    f"identified model: {k} has shape {mats[k].shape}, expected {shape}"
                )
            if not np.all(np.isfinite(mats[k])):
                raise ModelError(f"identified model: {k} has NaN/inf entries")
            object.__setattr__(self, k, mats[k])
        if not (math.isfinite(self.sample_time_s) and self.sample_time_s > 0):
            raise ModelError(
                f"identified model: sample_time_s must be > 0, got {self.sample_time_s}"
            )
        limits = tuple((float(lo), float(hi)) for lo, hi in self.u_limits)
        if limits and (len(limits) != nu or any(not lo < hi for lo, hi in limits)):
            raise ModelError(
                f"identified model: u_limits must be {nu} (lower, upper) pairs "
                f"with lower < upper, got {self.u_limits}"
            )
        object.__setattr__(self, "u_limits", limits)
        delays = tuple(int(d) for d in self.delays) or (0,) * nu
        if len(delays) != nu or any(d < 0 for d in delays):
            raise ModelError(
                f"identified model: delays must be {nu} integers >= 0, got {self.delays}"
            )
        object.__setattr__(self, "delays", delays)
        for k, n in (("u0", nu), ("y0", ny)):
            vec = np.asarray(getattr(self, k), dtype=float).reshape(-1)
            if vec.shape != (n,) or not np.all(np.isfinite(vec)):
                raise ModelError(f"identified model: {k} must be {n} finite values")
            object.__setattr__(self, k, vec)

    # Analysis -------------------------------------------------------------
    @property
    def nx(self) -> int:
        """Order of the dynamic part (without dead-time buffers)."""
        return int(self.A.shape[0])

    def gain(self) -> NDArray[np.float64]:
        """Steady-state gain dy/du (ny, nu)."""
        return self.D + self.C @ np.linalg.solve(np.eye(self.nx) - self.A, self.B)

    def poles(self) -> NDArray[np.complex128]:
        """Discrete poles (eigenvalues of A)."""
        return np.asarray(np.linalg.eigvals(self.A), dtype=complex)

    def transmission_zeros(self) -> NDArray[np.complex128]:
        """Finite discrete-time invariant zeros of (A, B, C, D) (square systems)."""
        n, m = self.B.shape
        if self.C.shape[0] != m:
            raise ModelError("transmission_zeros needs as many outputs as inputs")
        big = np.block([[self.A, self.B], [self.C, self.D]])
        e = np.block([[np.eye(n), np.zeros((n, m))], [np.zeros((m, n + m))]])
        vals = sla.eigvals(big, e)
        return vals[np.isfinite(vals)]

    def simulate(self, du: ArrayLike, x0: ArrayLike | None = None) -> NDArray[np.float64]:
        """Output deviations (N, ny) for input deviations du (N, nu), from x0 (default 0)."""
        u = np.asarray(du, dtype=float)
        if u.ndim != 2 or u.shape[1] != len(self.u_names):
            raise ModelError(
                f"simulate: du must have shape (N, {len(self.u_names)}), got {u.shape}"
            )
        ud = delay_inputs(u, self.delays)
        x = np.zeros(self.nx) if x0 is None else np.asarray(x0, dtype=float).reshape(-1)
        out = np.empty((u.shape[0], len(self.y_names)))
        for k in range(u.shape[0]):
            out[k] = self.C @ x + self.D @ ud[k]
            x = self.A @ x + self.B @ ud[k]
        return out

    def simulate_segments(
        self, du: ArrayLike, dy: ArrayLike, segments: tuple[int, ...] = ()
    ) -> NDArray[np.float64]:
        """Simulated output deviations over independent records (``IdData.segments``): the first
        from rest, every later one from the initial state that fits its measured ``dy`` best
        (least squares; its state after a cut is not known otherwise)."""
        u = np.asarray(du, dtype=float)
        y = np.asarray(dy, dtype=float)
        edges = [0, *segments, u.shape[0]]
        out = np.empty((u.shape[0], len(self.y_names)))
        for k, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            forced = self.simulate(u[a:b])
            if k == 0:
                out[a:b] = forced
                continue
            obs = np.empty((b - a, len(self.y_names), self.nx))
            x = np.eye(self.nx)
            for i in range(b - a):
                obs[i] = self.C @ x
                x = self.A @ x
            phi = obs.reshape(-1, self.nx)
            x0 = np.linalg.lstsq(phi, (y[a:b] - forced).reshape(-1), rcond=None)[0]
            out[a:b] = forced + (phi @ x0).reshape(b - a, -1)
        return out

    # PlantModel -------------------------------------------------------------
    def to_plant_model(self, name: str = "identified") -> PlantModel:
        """Discrete-time PlantModel: states x then dead-time buffers; u, y in absolute SI values."""
        nu, ny = len(self.u_names), len(self.y_names)
        u_units = self.u_units or ("1",) * nu
        y_units = self.y_units or ("1",) * ny
        x_sigs = [
            Signal(f"x_{i + 1:02d}", "1", nominal=1.0, description="identified state")
            for i in range(self.nx)
        ]
        buf_index: list[list[int]] = []
        for j, d in enumerate(self.delays):
            idx = []
            for lag in range(1, d + 1):
                idx.append(len(x_sigs))
                x_sigs.append(
                    Signal(
                        f"{self.u_names[j]}_lag_{lag:02d}",
                        u_units[j],
                        nominal=_scale(self.u0[j]),
                        description=f"deviation of {self.u_names[j]} {lag} samples ago (dead time)",
                    )
                )
            buf_index.append(idx)
        nz = len(x_sigs)
        z = ca.SX.sym("z", nz)
        u = ca.SX.sym("u", nu)
        d_sym = ca.SX.sym("d", 0)
        p_sym = ca.SX.sym("p", 0)
        du = u - self.u0
        # delayed input deviation seen by the dynamics: buffer end, or du itself if no delay
        eff = (
            ca.vertcat(*[z[idx[-1]] if idx else du[j] for j, idx in enumerate(buf_index)])
            if nu
            else ca.SX(0, 1)
        )
        xk = z[: self.nx]
        nxt = [ca.mtimes(ca.DM(self.A), xk) + ca.mtimes(ca.DM(self.B), eff)] if self.nx else []
        for j, idx in enumerate(buf_index):
            for pos, _ in enumerate(idx):
                nxt.append(du[j] if pos == 0 else z[idx[pos - 1]])
        fx = ca.vertcat(*nxt) if nxt else ca.SX(0, 1)
        hy = ca.DM(self.y0) + ca.mtimes(ca.DM(self.C), xk) + ca.mtimes(ca.DM(self.D), eff)
        f = ca.Function("f", [z, u, d_sym, p_sym], [fx], ["x", "u", "d", "p"], ["x_next"])
        h = ca.Function("h", [z, u, d_sym, p_sym], [hy], ["x", "u", "d", "p"], ["y"])
        return PlantModel(
            name=name,
            x=SignalSet(tuple(x_sigs), kind="x"),
            u=SignalSet(
                tuple(
                    Signal(n, un, lo, hi, nominal=_scale(v), description="identified input")
                    for n, un, v, (lo, hi) in zip(
                        self.u_names,
                        u_units,
                        self.u0,
                        self.u_limits or ((-math.inf, math.inf),) * nu,
                        strict=True,
                    )
                ),
                kind="u",
            ),
            d=SignalSet((), kind="d"),
            p=SignalSet((), kind="p"),
            y=SignalSet(
                tuple(
                    Signal(n, un, nominal=_scale(v), description="identified output")
                    for n, un, v in zip(self.y_names, y_units, self.y0, strict=True)
                ),
                kind="y",
            ),
            f=f,
            h=h,
            nominal=OperatingPoint(np.zeros(nz), self.u0, np.zeros(0), np.zeros(0)),
            time_domain=TimeDomain.DISCRETE,
            sample_time_s=self.sample_time_s,
            source=f"identified from data ({self.method})"
            if self.method
            else "identified from data",
            description=f"identified linear model, {self.nx} states, dead times {self.delays} samples",
        )

    # Files --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (the file format)."""
        nu, ny = len(self.u_names), len(self.y_names)
        u_units = self.u_units or ("1",) * nu
        y_units = self.y_units or ("1",) * ny
        return {
            "format": FORMAT,
            "version": VERSION,
            "method": self.method,
            "sample_time_s": self.sample_time_s,
            "inputs": [
                {
                    "name": n,
                    "unit": un,
                    "operating_point": float(v),
                    "delay_samples": d,
                    **({"lower": _finite(lim[0]), "upper": _finite(lim[1])} if lim else {}),
                }
                for n, un, v, d, lim in zip(
                    self.u_names,
                    u_units,
                    self.u0,
                    self.delays,
                    self.u_limits or ((),) * nu,
                    strict=True,
                )
            ],
            "outputs": [
                {"name": n, "unit": un, "operating_point": float(v)}
                for n, un, v in zip(self.y_names, y_units, self.y0, strict=True)
            ],
            "A": self.A.tolist(),
            "B": self.B.tolist(),
            "C": self.C.tolist(),
            "D": self.D.tolist(),
            "info": self.info,
        }

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON; returns the path."""
        out = Path(path)
        if out.suffix != ".json":
            raise ModelError(f"identified model files are JSON: use a .json name, got {out.name}")
        out.write_text(json.dumps(self.to_dict(), indent=1, default=_json_default))
        return out


def delay_inputs(u: NDArray[np.float64], delays: tuple[int, ...]) -> NDArray[np.float64]:
    """Shift each input column by its delay (zeros before the start: deviation at rest)."""
    out = np.zeros_like(u)
    for j, d in enumerate(delays):
        out[d:, j] = u[: u.shape[0] - d, j] if d else u[:, j]
    return out


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _scale(v: float) -> float:
    return max(abs(float(v)), 1e-6)


def _json_default(obj: object) -> object:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
