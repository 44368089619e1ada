"""PlantModel: the frozen description of a plant that every layer builds on.

A model is its signal sets (x, u, d, p, y), two CasADi functions
``f(x, u, d, p)`` (continuous ODE right-hand side, or the discrete-time map for
one sample) and ``h(x, u, d, p)`` (outputs), a nominal operating point and its
literature source. Simulation, steady state, linearisation and do-mpc export
are functions of it (in sibling modules) exposed as methods for convenience.
Use :func:`plant_models.builder.continuous_model` to write a plant by name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ModelError
from plant_models.signals import SignalSet

if TYPE_CHECKING:  # pragma: no cover
    from plant_models.linearization import LinearModel
    from plant_models.simulation import Integrator, Trajectory
    from plant_models.steady_state import SteadyState


class TimeDomain(Enum):
    """Whether ``f`` is a continuous-time ODE or a discrete-time map."""

    CONTINUOUS = "continuous"
    DISCRETE = "discrete"


@dataclass(frozen=True)
class OperatingPoint:
    """A consistent set of values for every signal set (nominal point of a model)."""

    x: NDArray[np.float64]
    """States."""
    u: NDArray[np.float64]
    """Manipulated inputs."""
    d: NDArray[np.float64]
    """Measured disturbances."""
    p: NDArray[np.float64]
    """Parameters."""


@dataclass(frozen=True)
class PlantModel:
    """Frozen description of a plant: signal sets, dynamics and outputs."""

    name: str
    """Registry name or a descriptive identifier."""
    x: SignalSet
    """States."""
    u: SignalSet
    """Manipulated inputs (MVs)."""
    d: SignalSet
    """Measured disturbances."""
    p: SignalSet
    """Uncertain parameters (estimated, calibrated, or used for robust MPC)."""
    y: SignalSet
    """Outputs: controlled variables and measurements."""
    f: ca.Function
    """``f(x,u,d,p)``: dx/dt (continuous) or x[k+1] (discrete)."""
    h: ca.Function
    """``h(x,u,d,p)``: outputs y."""
    nominal: OperatingPoint
    """Nominal operating point (documented in the plant's source)."""
    time_domain: TimeDomain = TimeDomain.CONTINUOUS
    """Continuous ODE or discrete-time map."""
    sample_time_s: float | None = None
    """Sample time of a discrete-time model, seconds; None for continuous models."""
    source: str = ""
    """Literature source of the model and its parameters."""
    description: str = ""
    """One-paragraph description."""
    _cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for kind in ("x", "u", "d", "p", "y"):
            sset = getattr(self, kind)
            if not isinstance(sset, SignalSet):
                raise ModelError(f"model {self.name!r}: {kind} must be a SignalSet")
        if len(self.x) == 0:
            raise ModelError(f"model {self.name!r}: needs at least one state")
        dims = [len(self.x), len(self.u), len(self.d), len(self.p)]
        for fname, fun, nout in (("f", self.f, len(self.x)), ("h", self.h, len(self.y))):
            if not isinstance(fun, ca.Function):
                raise ModelError(f"model {self.name!r}: {fname} must be a casadi.Function")
            if fun.n_in() != 4 or fun.n_out() != 1:
                raise ModelError(f"model {self.name!r}: {fname} must map (x,u,d,p) to one output")
            for i, n in enumerate(dims):
                if fun.size1_in(i) * fun.size2_in(i) != n:
                    raise ModelError(
                        f"model {self.name!r}: {fname} input {fun.name_in(i)} has "
                        f"{fun.numel_in(i)} entries, expected {n}"
                    )
            if fun.numel_out(0) != nout:
                raise ModelError(
                    f"model {self.name!r}: {fname} returns {fun.numel_out(0)} values, expected {nout}"
                )
        if self.time_domain is TimeDomain.DISCRETE:
            if self.sample_time_s is None or not (
                math.isfinite(self.sample_time_s) and self.sample_time_s > 0
            ):
                raise ModelError(
                    f"model {self.name!r}: a discrete-time model needs sample_time_s > 0, "
                    f"got {self.sample_time_s}"
                )
        elif self.sample_time_s is not None:
            raise ModelError(f"model {self.name!r}: sample_time_s is only for discrete-time models")
        nom = self.nominal
        object.__setattr__(
            self,
            "nominal",
            OperatingPoint(
                x=self.x.vector(nom.x, what=f"{self.name} nominal x"),
                u=self.u.vector(nom.u, what=f"{self.name} nominal u"),
                d=self.d.vector(nom.d, what=f"{self.name} nominal d"),
                p=self.p.vector(nom.p, what=f"{self.name} nominal p"),
            ),
        )

    # Convenience ---------------------------------------------------------
    @property
    def is_continuous(self) -> bool:
        """True for an ODE model."""
        return self.time_domain is TimeDomain.CONTINUOUS

    def resolve(
        self, kind: str, values: Mapping[str, float] | ArrayLike | None
    ) -> NDArray[np.float64]:
        """Vector for signal set ``kind`` from a mapping/array, defaulting to the nominal point.

        The default is a copy: writing into the result never changes the model's nominal point.
        """
        sset: SignalSet = getattr(self, kind)
        default = getattr(self.nominal, kind)
        if values is None:
            return sset.vector(default, what=f"{self.name}.{kind}").copy()
        return sset.vector(values, default=default, what=f"{self.name}.{kind}")

    def outputs(
        self,
        x: Mapping[str, float] | ArrayLike | None = None,
        u: Mapping[str, float] | ArrayLike | None = None,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
    ) -> NDArray[np.float64]:
        """Evaluate ``h`` numerically (defaults: nominal point)."""
        args = [self.resolve(k, v) for k, v in (("x", x), ("u", u), ("d", d), ("p", p))]
        return np.asarray(self.h(*args), dtype=float).reshape(-1)

    def rhs(
        self,
        x: Mapping[str, float] | ArrayLike | None = None,
        u: Mapping[str, float] | ArrayLike | None = None,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
    ) -> NDArray[np.float64]:
        """Evaluate ``f`` numerically (defaults: nominal point)."""
        args = [self.resolve(k, v) for k, v in (("x", x), ("u", u), ("d", d), ("p", p))]
        return np.asarray(self.f(*args), dtype=float).reshape(-1)

    def with_nominal(self, **values: Mapping[str, float] | ArrayLike) -> PlantModel:
        """A copy with some nominal values replaced, e.g. ``model.with_nominal(p={"k1": 2.0})``."""
        parts = {k: self.resolve(k, values.get(k)) for k in ("x", "u", "d", "p")}
        unknown = set(values) - set(parts)
        if unknown:
            raise ModelError(f"with_nominal: unknown signal sets {sorted(unknown)}")
        return PlantModel(
            name=self.name, x=self.x, u=self.u, d=self.d, p=self.p, y=self.y, f=self.f, h=self.h,
            nominal=OperatingPoint(**parts), time_domain=self.time_domain,
            sample_time_s=self.sample_time_s, source=self.source, description=self.description,
        )

    # Functions of the model ----------------------------------------------
    def simulate(
        self,
        x0: Mapping[str, float] | ArrayLike | None,
        u: ArrayLike,
        dt: float,
        *,
        d: ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
        method: Integrator | str = "cvodes",
    ) -> Trajectory:
        """Simulate with piecewise-constant inputs; see :func:`plant_models.simulation.simulate`."""
        from plant_models.simulation import simulate

        return simulate(self, x0, u, dt, d=d, p=p, method=method)

    def steady_state(
        self,
        u: Mapping[str, float] | ArrayLike | None = None,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
        *,
        x_guess: Mapping[str, float] | ArrayLike | None = None,
        targets: Mapping[str, float] | None = None,
        free_inputs: tuple[str, ...] | None = None,
    ) -> SteadyState:
        """Steady state for given inputs, or (``targets``) the inputs that reach output targets.

        See :func:`plant_models.steady_state.steady_state`.
        """
        from plant_models.steady_state import steady_state

        return steady_state(
            self, u, d, p, x_guess=x_guess, targets=targets, free_inputs=free_inputs
        )

    def linearize(
        self,
        x: Mapping[str, float] | ArrayLike | None = None,
        u: Mapping[str, float] | ArrayLike | None = None,
        d: Mapping[str, float] | ArrayLike | None = None,
        p: Mapping[str, float] | ArrayLike | None = None,
        *,
        sample_time_s: float | None = None,
    ) -> LinearModel:
        """Jacobians at an operating point; discretised (ZOH) when ``sample_time_s`` is given."""
        from plant_models.linearization import linearize

        return linearize(self, x, u, d, p, sample_time_s=sample_time_s)

    def to_do_mpc(self) -> Any:
        """A set-up ``do_mpc.model.Model`` of this plant (d as tvp, p as parameters)."""
        from plant_models.do_mpc_export import to_do_mpc

        return to_do_mpc(self)
