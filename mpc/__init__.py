"""mpc layer of rtompc: nonlinear MPC (RTI + full NLP), fallbacks, do-mpc backend.

Public API::

    from mpc import NmpcController, MpcConfig, CvSpec, MvSpec, SolverKind
    ctrl = NmpcController(model, MpcConfig(horizon_steps=20, sample_time_s=18.0, cvs=..., mvs=...))
    result = ctrl.step(x, target=..., d=..., y_bias=..., u_bias=...)
    if result.usable: apply(result.u)
    else: apply(fallback_move(FallbackPolicy.SHIFTED_PLAN, last_good, n_failed))

The do-mpc backend (``mpc.do_mpc_backend.DoMpcController``) is imported on
demand so that importing :mod:`mpc` does not import do_mpc.
"""

from mpc.config import CvSpec, Discretisation, MpcConfig, MvSpec, RobustSpec
from mpc.controller import NmpcController, SolverKind
from mpc.fallback import FallbackPolicy, fallback_move
from mpc.result import MpcResult

__all__ = [
    "CvSpec",
    "Discretisation",
    "FallbackPolicy",
    "MpcConfig",
    "MpcResult",
    "MvSpec",
    "NmpcController",
    "RobustSpec",
    "SolverKind",
    "fallback_move",
]
