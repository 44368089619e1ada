"""The estimator's model: discretisation, disturbance augmentation and detectability.

Owns the discrete-time augmented model every estimator here works on,

    z = [x; d_y; d_u],   x+ = F(x, u + B_u d_u, d, p),   d_y+ = d_y,   d_u+ = d_u,
    y = h(x, u + B_u d_u, d, p) + B_y d_y,

where ``F`` is the model's sample map (a CasADi RK4 with substeps, or the model's
own CVODES integrator, for a continuous model; ``f`` itself for a discrete one),
``d_y`` are integrating output disturbances on selected outputs and ``d_u``
integrating input disturbances on selected MVs (the plant sees ``u + u_bias``).
Jacobians come from CasADi. :func:`check_detectability` applies the offset-free
conditions of Pannocchia & Rawlings, "Disturbance models for offset-free
model-predictive control", AIChE J. 49 (2003) 426-437, and Maeder, Borrelli &
Morari, "Linear offset-free model predictive control", Automatica 45 (2009)
2214-2222 (Prop. 1 / Lemma): (A, C) detectable, n_d <= n_y and
rank [[I - A, -B_d], [C, C_d]] = n_x + n_d.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import NDArray

from plant_models.errors import ConfigError, ModelError
from plant_models.model import PlantModel
from plant_models.simulation import rk4_function


class Discretization(Enum):
    """How a continuous model is turned into a sample map for the estimator."""

    RK4 = "rk4"
    """Explicit Runge-Kutta 4 with ``substeps`` fixed steps, built symbolically (fast, SX)."""
    CVODES = "cvodes"
    """The model's variable-step CVODES integrator (accurate, slower; MX with sensitivities)."""


@dataclass(frozen=True)
class DisturbanceModel:
    """Integrating disturbances for offset-free estimation (names of outputs / MVs)."""

    outputs: tuple[str, ...] = ()
    """Outputs ``y`` that get an additive integrating disturbance ``d_y`` (y_bias)."""
    inputs: tuple[str, ...] = ()
    """MVs ``u`` that get an additive integrating disturbance ``d_u`` (u_bias)."""

    def __post_init__(self) -> None:
        for fname in ("outputs", "inputs"):
            names = tuple(getattr(self, fname))
            if len(set(names)) != len(names):
                raise ConfigError(f"DisturbanceModel.{fname}: duplicate names in {names}")
            object.__setattr__(self, fname, names)

    @property
    def size(self) -> int:
        """Number of disturbance states."""
        return len(self.outputs) + len(self.inputs)


@dataclass(frozen=True)
class AugmentedModel:
    """Discrete-time augmented model ``z = [x; d_y; d_u]`` of a plant, with Jacobians."""

    model: PlantModel
    """The plant model."""
    disturbances: DisturbanceModel
    """The disturbance model."""
    sample_time_s: float
    """Estimator sample time, seconds."""
    F: ca.Function
    """``F(z, u, d, p) -> z+``."""
    H: ca.Function
    """``H(z, u, d, p) -> y`` (all outputs, ``y`` order)."""
    dF: ca.Function
    """``dF(z, u, d, p) -> dF/dz``."""
    dH: ca.Function
    """``dH(z, u, d, p) -> dH/dz``."""
    FdF: ca.Function
    """``FdF(z, u, d, p) -> (z+, dF/dz)`` in one call (EKF prediction)."""
    HdH: ca.Function
    """``HdH(z, u, d, p) -> (y, dH/dz)`` in one call (EKF correction)."""
    B_y: NDArray[np.float64] = field(repr=False)
    """Output disturbance map, shape (ny, n_dy)."""
    B_u: NDArray[np.float64] = field(repr=False)
    """Input disturbance map, shape (nu, n_du)."""

    @property
    def nx(self) -> int:
        """Number of plant states."""
        return len(self.model.x)

    @property
    def nz(self) -> int:
        """Number of augmented states."""
        return self.nx + self.disturbances.size

    @property
    def names(self) -> tuple[str, ...]:
        """Augmented state names: states, then ``dy_<output>``, then ``du_<mv>``."""
        d = self.disturbances
        return (
            self.model.x.names
            + tuple(f"dy_{n}" for n in d.outputs)
            + tuple(f"du_{n}" for n in d.inputs)
        )

    def split(self, z: NDArray[np.float64]) -> tuple[NDArray, NDArray, NDArray]:
        """``(x, y_bias, u_bias)`` of an augmented state; biases have length ny and nu."""
        nx, ndy = self.nx, len(self.disturbances.outputs)
        return z[:nx].copy(), self.B_y @ z[nx : nx + ndy], self.B_u @ z[nx + ndy :]


def _cvodes(model: PlantModel, dt: float) -> ca.Function:
    x = ca.MX.sym("x", len(model.x))
    u = ca.MX.sym("u", len(model.u))
    d = ca.MX.sym("d", len(model.d))
    p = ca.MX.sym("p", len(model.p))
    xs = ca.SX.sym("x", len(model.x))
    ps = ca.SX.sym("q", len(model.u) + len(model.d) + len(model.p))
    nu, nd = len(model.u), len(model.d)
    ode = model.f(xs, ps[:nu], ps[nu : nu + nd], ps[nu + nd :])
    integ = ca.integrator(
        "est_cvodes",
        "cvodes",
        {"x": xs, "p": ps, "ode": ode},
        0.0,
        dt,
        {"abstol": 1e-10, "reltol": 1e-10, "max_num_steps": 100000},
    )
    xf = integ(x0=x, p=ca.vertcat(u, d, p))["xf"]
    return ca.Function("cvodes_step", [x, u, d, p], [xf])


CHAIN_NX = 20
"""Above this many states an RK4 sample map's Jacobian is the product of the per-substep
Jacobians (built in well under a second for column A's 82 states and 16 substeps, against
about 8 s for CasADi's symbolic Jacobian of the whole unrolled map; same values)."""


def _rk4_chained(model: PlantModel, dt: float, substeps: int) -> ca.Function:
    """``(x, u, d, p) -> (x+, dx+/dx, dx+/du)`` of RK4 with ``substeps`` steps, chained."""
    nx, nu = len(model.x), len(model.u)
    xs, us = ca.SX.sym("x", nx), ca.SX.sym("u", nu)
    ds, ps = ca.SX.sym("d", len(model.d)), ca.SX.sym("p", len(model.p))
    h = dt / substeps
    k1 = model.f(xs, us, ds, ps)
    k2 = model.f(xs + h / 2 * k1, us, ds, ps)
    k3 = model.f(xs + h / 2 * k2, us, ds, ps)
    k4 = model.f(xs + h * k3, us, ds, ps)
    xn = xs + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    sub = ca.Function(
        "rk4_substep", [xs, us, ds, ps], [xn, ca.jacobian(xn, xs), ca.jacobian(xn, us)]
    )
    x, u = ca.MX.sym("x", nx), ca.MX.sym("u", nu)
    d, p = ca.MX.sym("d", len(model.d)), ca.MX.sym("p", len(model.p))
    xk, jx, ju = x, ca.MX.eye(nx), ca.MX.zeros(nx, nu)
    for _ in range(substeps):
        xk, ax, au = sub(xk, u, d, p)
        jx, ju = ca.mtimes(ax, jx), ca.mtimes(ax, ju) + au
    return ca.Function("rk4_chained", [x, u, d, p], [xk, jx, ju])


def sample_map(
    model: PlantModel,
    sample_time_s: float,
    method: Discretization = Discretization.RK4,
    substeps: int = 4,
) -> ca.Function:
    """``F(x, u, d, p) -> x+`` over one sample of the model (continuous or discrete)."""
    if not model.is_continuous:
        if abs(sample_time_s - float(model.sample_time_s or 0.0)) > 1e-9 * max(1.0, sample_time_s):
            raise ConfigError(
                f"sample_time_s: model {model.name!r} is discrete with sample time "
                f"{model.sample_time_s} s, got {sample_time_s} s"
            )
        return model.f
    if method is Discretization.RK4:
        return rk4_function(model, sample_time_s, substeps)
    return _cvodes(model, sample_time_s)


def augment(
    model: PlantModel,
    disturbances: DisturbanceModel,
    sample_time_s: float,
    method: Discretization = Discretization.RK4,
    substeps: int = 4,
) -> AugmentedModel:
    """Build the augmented discrete-time model; unknown names raise :class:`ConfigError`."""
    for fname, sset in (("outputs", model.y), ("inputs", model.u)):
        for name in getattr(disturbances, fname):
            if name not in sset:
                raise ConfigError(
                    f"DisturbanceModel.{fname}: {name!r} is not a {sset.kind} signal of "
                    f"{model.name!r}; known: {', '.join(sset.names)}"
                )
    ny, nu = len(model.y), len(model.u)
    B_y = np.zeros((ny, len(disturbances.outputs)))
    for j, name in enumerate(disturbances.outputs):
        B_y[model.y.index(name), j] = 1.0
    B_u = np.zeros((nu, len(disturbances.inputs)))
    for j, name in enumerate(disturbances.inputs):
        B_u[model.u.index(name), j] = 1.0
    chained = model.is_continuous and method is Discretization.RK4 and len(model.x) > CHAIN_NX
    sym: Any = (
        ca.MX if (model.is_continuous and method is Discretization.CVODES) or chained else ca.SX
    )
    nx, ndy, ndu = len(model.x), B_y.shape[1], B_u.shape[1]
    z = sym.sym("z", nx + ndy + ndu)
    u = sym.sym("u", nu)
    d = sym.sym("d", len(model.d))
    p = sym.sym("p", len(model.p))
    x, dy, du = z[:nx], z[nx : nx + ndy], z[nx + ndy :]
    u_eff = u + ca.mtimes(ca.DM(B_u), du) if ndu else u
    if chained:
        x_next, jx, ju = _rk4_chained(model, sample_time_s, substeps)(x, u_eff, d, p)
        jac_f = ca.vertcat(
            ca.horzcat(jx, ca.MX.zeros(nx, ndy), ca.mtimes(ju, ca.DM(B_u))),
            ca.horzcat(ca.MX.zeros(ndy, nx), ca.MX.eye(ndy), ca.MX.zeros(ndy, ndu)),
            ca.horzcat(ca.MX.zeros(ndu, nx + ndy), ca.MX.eye(ndu)),
        )
        z_next = ca.vertcat(x_next, dy, du)
    else:
        step = sample_map(model, sample_time_s, method, substeps)
        z_next = ca.vertcat(step(x, u_eff, d, p), dy, du)
        jac_f = ca.jacobian(z_next, z)
    y = model.h(x, u_eff, d, p)
    if ndy:
        y = y + ca.mtimes(ca.DM(B_y), dy)
    jac_h = ca.jacobian(y, z)
    F = ca.Function("F_aug", [z, u, d, p], [z_next], ["z", "u", "d", "p"], ["z_next"])
    H = ca.Function("H_aug", [z, u, d, p], [y], ["z", "u", "d", "p"], ["y"])
    dF = ca.Function("dF_aug", [z, u, d, p], [jac_f])
    dH = ca.Function("dH_aug", [z, u, d, p], [jac_h])
    FdF = ca.Function("FdF_aug", [z, u, d, p], [z_next, jac_f])
    HdH = ca.Function("HdH_aug", [z, u, d, p], [y, jac_h])
    return AugmentedModel(
        model=model,
        disturbances=disturbances,
        sample_time_s=sample_time_s,
        F=F,
        H=H,
        dF=dF,
        dH=dH,
        FdF=FdF,
        HdH=HdH,
        B_y=B_y,
        B_u=B_u,
    )


@dataclass(frozen=True)
class Detectability:
    """Result of the offset-free detectability test at one operating point."""

    detectable: bool
    """True when every condition holds."""
    rank: int
    """Rank of [[I - A, -B_d], [C, C_d]] (nx + nd required)."""
    required_rank: int
    """nx + nd."""
    undetectable_modes: tuple[complex, ...]
    """Eigenvalues of A with |lambda| >= 1 that the measured outputs do not see."""
    message: str
    """Explanation (empty when detectable)."""


def check_detectability(
    aug: AugmentedModel,
    measured: tuple[str, ...],
    x: NDArray[np.float64] | None = None,
    u: NDArray[np.float64] | None = None,
    d: NDArray[np.float64] | None = None,
    p: NDArray[np.float64] | None = None,
    *,
    tol: float = 1e-9,
) -> Detectability:
    """Offset-free detectability of ``aug`` with the ``measured`` outputs (default: nominal point).

    Conditions (Pannocchia & Rawlings 2003, Maeder, Borrelli & Morari 2009): the number of
    disturbances does not exceed the number of measured outputs, (A, C) is detectable and
    rank [[I - A, -B_d], [C, C_d]] = nx + nd, with A, B_d, C, C_d the Jacobians of the
    discrete augmented model restricted to the measured outputs.
    """
    model = aug.model
    nom = model.nominal
    xv = nom.x if x is None else np.asarray(x, dtype=float)
    uv = nom.u if u is None else np.asarray(u, dtype=float)
    dv = nom.d if d is None else np.asarray(d, dtype=float)
    pv = nom.p if p is None else np.asarray(p, dtype=float)
    nx, nd = aug.nx, aug.disturbances.size
    rows = model.y.indices(measured)
    z = np.concatenate([xv, np.zeros(nd)])
    Jf = np.asarray(aug.dF(z, uv, dv, pv), dtype=float)
    Jh = np.asarray(aug.dH(z, uv, dv, pv), dtype=float)[rows, :]
    A, Bd = Jf[:nx, :nx], Jf[:nx, nx:]
    C, Cd = Jh[:, :nx], Jh[:, nx:]
    # scale by signal nominals so the rank decision is unit-independent
    sx = model.x.nominal
    sy = model.y.nominal[rows]
    sdist = np.concatenate(
        [
            model.y.nominal[model.y.indices(aug.disturbances.outputs)],
            model.u.nominal[model.u.indices(aug.disturbances.inputs)],
        ]
    )
    Ms = np.block([[np.eye(nx) - A, -Bd], [C, Cd]])
    Ms = Ms / np.concatenate([sx, sy])[:, None] * np.concatenate([sx, sdist])[None, :]
    sv = np.linalg.svd(Ms, compute_uv=False)
    rank = int(np.sum(sv > tol * max(1.0, sv[0] if sv.size else 0.0)))
    bad_modes: list[complex] = []
    for lam in np.linalg.eigvals(A):
        if abs(lam) >= 1.0 - 1e-12:
            pbh = np.vstack([lam * np.eye(nx) - A, C])
            s = np.linalg.svd(pbh, compute_uv=False)
            if np.sum(s > tol * max(1.0, s[0])) < nx:
                bad_modes.append(complex(lam))
    problems: list[str] = []
    if nd > len(measured):
        problems.append(
            f"{nd} disturbances but only {len(measured)} measured outputs "
            f"({', '.join(measured) or 'none'})"
        )
    if bad_modes:
        problems.append(f"(A, C) not detectable: modes {bad_modes} unseen by the measured outputs")
    if rank < nx + nd:
        problems.append(f"rank [[I-A, -Bd], [C, Cd]] = {rank} < nx + nd = {nx + nd}")
    message = ""
    if problems:
        d_names = (
            ", ".join(
                [f"y:{n}" for n in aug.disturbances.outputs]
                + [f"u:{n}" for n in aug.disturbances.inputs]
            )
            or "none"
        )
        message = (
            f"disturbance model [{d_names}] with measured outputs "
            f"[{', '.join(measured)}] of {model.name!r} is not detectable: "
            + "; ".join(problems)
            + " (Pannocchia & Rawlings 2003; Maeder, Borrelli & Morari 2009)"
        )
    return Detectability(
        detectable=not problems,
        rank=rank,
        required_rank=nx + nd,
        undetectable_modes=tuple(bad_modes),
        message=message,
    )


def require_detectable(aug: AugmentedModel, measured: tuple[str, ...]) -> None:
    """Raise :class:`ModelError` when the augmented model is not detectable at the nominal point."""
    result = check_detectability(aug, measured)
    if not result.detectable:
        raise ModelError(result.message)
