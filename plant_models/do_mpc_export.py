"""Export a PlantModel to a ``do_mpc.model.Model`` (the independent peer implementation).

Mapping: states -> ``_x``, manipulated inputs -> ``_u``, measured disturbances ->
``_tvp`` (time-varying parameters), uncertain parameters -> ``_p``, outputs ->
``_aux`` expressions, with the same names. This module and
``mpc/do_mpc_backend.py`` are the only places that import do_mpc.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import casadi as ca

if TYPE_CHECKING:  # pragma: no cover
    from plant_models.model import PlantModel


def import_do_mpc() -> Any:
    """Import do_mpc quietly (it warns about optional extras at import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import do_mpc

    return do_mpc


def to_do_mpc(model: PlantModel) -> Any:
    """A set-up ``do_mpc.model.Model`` equivalent to ``model``."""
    do_mpc = import_do_mpc()
    kind = "continuous" if model.is_continuous else "discrete"
    m = do_mpc.model.Model(kind, "SX")
    xs = [m.set_variable("_x", n) for n in model.x.names]
    us = [m.set_variable("_u", n) for n in model.u.names]
    ds = [m.set_variable("_tvp", n) for n in model.d.names]
    ps = [m.set_variable("_p", n) for n in model.p.names]
    args = [ca.vertcat(*v) if v else ca.SX(0, 1) for v in (xs, us, ds, ps)]
    fx = model.f(*args)
    hy = model.h(*args)
    for i, n in enumerate(model.x.names):
        m.set_rhs(n, fx[i])
    for i, n in enumerate(model.y.names):
        m.set_expression(n, hy[i])
    m.setup()
    return m
