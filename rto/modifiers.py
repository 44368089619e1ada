"""First-order modifiers of the economic optimisation (modifier adaptation).

The modified problem (Marchetti, Chachuat & Bonvin, Ind. Eng. Chem. Res. 48
(2009) 6022-6033) maximises

    profit_m(u) + lambda_phi^T (u - u_k)
    s.t. c_m(u) + eps + lambda_c^T (u - u_k) within the limits of c,

where ``eps`` corrects the value and ``lambda`` the gradient of the model at
the last plant operating point ``u_k``. :func:`update_modifiers` computes new
modifiers from plant and model values and gradients and filters them with a
first-order filter of gain K (K = 1: no filtering).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ConfigError


@dataclass(frozen=True)
class Modifiers:
    """Zeroth- and first-order corrections of the model at an operating point."""

    u_ref: NDArray[np.float64]
    """Operating point u_k the first-order terms are taken around (full u vector, SI)."""
    cost_gradient: NDArray[np.float64]
    """lambda_phi: plant minus model profit gradient w.r.t. u, $/s per SI unit of u."""
    constraint_bias: Mapping[str, float] = field(default_factory=dict)
    """eps: plant minus model value per constrained output, SI."""
    constraint_gradient: Mapping[str, NDArray[np.float64]] = field(default_factory=dict)
    """lambda_c: plant minus model gradient w.r.t. u per constrained output."""

    @staticmethod
    def zero(u_ref: ArrayLike, constrained: tuple[str, ...] = ()) -> Modifiers:
        """Modifiers that change nothing."""
        u = np.asarray(u_ref, dtype=float).reshape(-1)
        return Modifiers(
            u_ref=u, cost_gradient=np.zeros_like(u),
            constraint_bias={c: 0.0 for c in constrained},
            constraint_gradient={c: np.zeros_like(u) for c in constrained},
        )


def update_modifiers(
    previous: Modifiers | None,
    u_k: ArrayLike,
    plant_gradient: ArrayLike,
    model_gradient: ArrayLike,
    *,
    gain: float,
    plant_constraints: Mapping[str, float] | None = None,
    model_constraints: Mapping[str, float] | None = None,
    plant_constraint_gradients: Mapping[str, ArrayLike] | None = None,
    model_constraint_gradients: Mapping[str, ArrayLike] | None = None,
) -> Modifiers:
    """New modifiers at ``u_k``: ``(1 - K) previous + K (plant - model)``.

    Gradients are with respect to the full u vector (zero for fixed inputs).
    """
    if not (0.0 < gain <= 1.0):
        raise ConfigError(f"modifier filter gain K must be in (0, 1], got {gain}")
    u = np.asarray(u_k, dtype=float).reshape(-1)
    raw_cost = np.asarray(plant_gradient, float).reshape(-1) - np.asarray(
        model_gradient, float).reshape(-1)
    pc = dict(plant_constraints or {})
    mc = dict(model_constraints or {})
    pg = {k: np.asarray(v, float).reshape(-1)
          for k, v in (plant_constraint_gradients or {}).items()}
    mg = {k: np.asarray(v, float).reshape(-1)
          for k, v in (model_constraint_gradients or {}).items()}
    if previous is None:
        previous = Modifiers.zero(u, tuple(pc))
    cost = (1 - gain) * previous.cost_gradient + gain * raw_cost
    bias = {}
    grads = {}
    for name in pc:
        prev_eps = previous.constraint_bias.get(name, 0.0)
        prev_grad = previous.constraint_gradient.get(name, np.zeros_like(u))
        bias[name] = (1 - gain) * prev_eps + gain * (pc[name] - mc[name])
        if name in pg:
            grads[name] = (1 - gain) * prev_grad + gain * (pg[name] - mg[name])
        else:
            grads[name] = prev_grad
    return Modifiers(u_ref=u, cost_gradient=cost, constraint_bias=bias, constraint_gradient=grads)
