"""Linearisation of a PlantModel: A, B, C, D (and disturbance maps), continuous or discrete.

Continuous models are discretised exactly for a zero-order hold with the
matrix exponential of the augmented system. The :class:`LinearModel` also gives
poles, steady-state gains and transmission zeros (for square systems).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import casadi as ca
import numpy as np
import scipy.linalg as sla
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from plant_models.model import PlantModel


@dataclass(frozen=True)
class LinearModel:
    """Deviation model dx = A dx + B du + E dd, dy = C dx + D du + F dd."""

    A: NDArray[np.float64]
    """State matrix."""
    B: NDArray[np.float64]
    """Input matrix (manipulated inputs)."""
    C: NDArray[np.float64]
    """Output matrix."""
    D: NDArray[np.float64]
    """Feed-through from inputs."""
    E: NDArray[np.float64]
    """Disturbance input matrix."""
    F: NDArray[np.float64]
    """Disturbance feed-through."""
    sample_time_s: float | None
    """None for continuous time, else the ZOH sample time."""
    x0: NDArray[np.float64]
    """Linearisation point: states."""
    u0: NDArray[np.float64]
    """Linearisation point: inputs."""
    d0: NDArray[np.float64]
    """Linearisation point: disturbances."""
    p0: NDArray[np.float64]
    """Linearisation point: parameters."""
    y0: NDArray[np.float64]
    """Outputs at the linearisation point."""

    @property
    def poles(self) -> NDArray[np.complex128]:
        """Eigenvalues of A."""
        return np.asarray(np.linalg.eigvals(self.A), dtype=complex)

    def gain(self) -> NDArray[np.float64]:
        """Steady-state gain dy/du."""
        if self.sample_time_s is None:
            return self.D - self.C @ np.linalg.solve(self.A, self.B)
        n = self.A.shape[0]
        return self.D + self.C @ np.linalg.solve(np.eye(n) - self.A, self.B)

    def transmission_zeros(self) -> NDArray[np.complex128]:
        """Finite invariant zeros of (A, B, C, D) for a square system (generalised eigenvalues
        of the Rosenbrock system matrix)."""
        n, m = self.B.shape
        if self.C.shape[0] != m:
            raise ModelError(
                f"transmission_zeros needs a square system; got {self.C.shape[0]} outputs and "
                f"{m} inputs"
            )
        M = np.block([[self.A, self.B], [self.C, self.D]])
        N = np.block([[np.eye(n), np.zeros((n, m))], [np.zeros((m, n)), np.zeros((m, m))]])
        vals = sla.eigvals(M, N)
        return vals[np.isfinite(vals)]

    def select(self, outputs: list[int]) -> LinearModel:
        """The same model with only some outputs."""
        return LinearModel(
            self.A, self.B, self.C[outputs], self.D[outputs], self.E, self.F[outputs],
            self.sample_time_s, self.x0, self.u0, self.d0, self.p0, self.y0[outputs],
        )


def _jac(model: PlantModel) -> ca.Function:
    cached = model._cache.get("jac")
    if cached is not None:
        return cached
    x = ca.SX.sym("x", len(model.x))
    u = ca.SX.sym("u", len(model.u))
    d = ca.SX.sym("d", len(model.d))
    p = ca.SX.sym("p", len(model.p))
    f = model.f(x, u, d, p)
    h = model.h(x, u, d, p)
    fun = ca.Function(
        "linearization", [x, u, d, p],
        [ca.jacobian(f, x), ca.jacobian(f, u), ca.jacobian(f, d),
         ca.jacobian(h, x), ca.jacobian(h, u), ca.jacobian(h, d), h],
    )
    model._cache["jac"] = fun
    return fun


def linearize(
    model: PlantModel,
    x: Mapping[str, float] | ArrayLike | None = None,
    u: Mapping[str, float] | ArrayLike | None = None,
    d: Mapping[str, float] | ArrayLike | None = None,
    p: Mapping[str, float] | ArrayLike | None = None,
    *,
    sample_time_s: float | None = None,
) -> LinearModel:
    """Linearise at (x, u, d, p) (defaults: nominal point).

    For a continuous model with ``sample_time_s`` the result is the exact ZOH
    discretisation; a discrete model is returned in its own sample time.
    """
    xv, uv, dv, pv = (model.resolve(k, v) for k, v in (("x", x), ("u", u), ("d", d), ("p", p)))
    outs = [np.asarray(m, dtype=float) for m in _jac(model)(xv, uv, dv, pv)]
    A, B, E, C, D, F, y0 = outs
    nx, nu, nd = len(model.x), len(model.u), len(model.d)
    ny = len(model.y)
    A = A.reshape(nx, nx)
    B = B.reshape(nx, nu)
    E = E.reshape(nx, nd)
    C = C.reshape(ny, nx)
    D = D.reshape(ny, nu)
    F = F.reshape(ny, nd)
    y0 = y0.reshape(ny)
    if not model.is_continuous:
        if sample_time_s is not None and abs(sample_time_s - float(model.sample_time_s or 0)) > 1e-12:
            raise ModelError(
                f"model {model.name!r} is discrete with sample time {model.sample_time_s} s; "
                f"cannot linearise at {sample_time_s} s"
            )
        return LinearModel(A, B, C, D, E, F, model.sample_time_s, xv, uv, dv, pv, y0)
    if sample_time_s is None:
        return LinearModel(A, B, C, D, E, F, None, xv, uv, dv, pv, y0)
    if not (np.isfinite(sample_time_s) and sample_time_s > 0):
        raise ModelError(f"linearize: sample_time_s must be positive, got {sample_time_s}")
    m = nu + nd
    big = np.zeros((nx + m, nx + m))
    big[:nx, :nx] = A
    big[:nx, nx:nx + nu] = B
    big[:nx, nx + nu:] = E
    ex = sla.expm(big * sample_time_s)
    Ad = ex[:nx, :nx]
    Bd = ex[:nx, nx:nx + nu]
    Ed = ex[:nx, nx + nu:]
    return LinearModel(Ad, Bd, C, D, Ed, F, float(sample_time_s), xv, uv, dv, pv, y0)
