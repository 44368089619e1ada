"""The same MPC built with do-mpc (``do_mpc.controller.MPC``): an independent peer.

:class:`DoMpcController` takes the same :class:`~plant_models.model.PlantModel`
and :class:`~mpc.config.MpcConfig` as :class:`~mpc.controller.NmpcController`
and builds do-mpc's controller from them (model via ``model.to_do_mpc()``:
SI units, signal names). Only what do-mpc supports is accepted: orthogonal
collocation, or RK4 as a discrete do-mpc model of the same RK4 map (MX), CV
and MV tracking (with ``cost_scale``), linear economic costs, terminal
weight, move penalties, MV bounds, soft CV limits with a linear penalty, hard
CV bounds (do-mpc state bounds when the CV is a state, else hard nonlinear
constraints; do-mpc holds them at every node, ours from the second on), and
``robust_horizon`` as ``n_robust``. Anything else (rate limits, move
blocking, zones, quadratic slack penalties, scenario probabilities, general
economic costs, output or input biases) raises
:class:`~plant_models.errors.ConfigError` naming the field. This module is the only part of ``mpc`` that imports do_mpc.

Mapping of the conventions: do-mpc scales variables by ``mpc.scaling`` (set to
the signal nominals) and applies ``rterm`` to the *scaled* inputs, so the move
weights map one to one; its soft-constraint slack is unscaled, so the L1
penalty is divided by the CV's nominal.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

from mpc.config import Discretisation, MpcConfig, MvSpec
from mpc.result import MpcResult
from plant_models.do_mpc_export import import_do_mpc
from plant_models.errors import ConfigError, ModelError
from plant_models.model import PlantModel
from plant_models.results import SolveStatus, status_from_ipopt

log = logging.getLogger(__name__)


def _check_supported(model: PlantModel, config: MpcConfig) -> None:
    config.check_against(model)
    if not model.is_continuous:
        raise ConfigError("do-mpc backend: only continuous-time models are supported here")
    if config.robust is not None and config.robust.probabilities is not None:
        raise ConfigError("robust.probabilities: do-mpc weights its scenarios uniformly")
    if config.economic_stage_cost is not None or config.economic_terminal_cost is not None:
        raise ConfigError("economic_stage_cost: not mapped to do-mpc (use linear costs)")
    if config.control_horizon_steps is not None or config.move_blocks is not None:
        raise ConfigError("control_horizon_steps/move_blocks: not supported by do-mpc")
    for m in config.mvs:
        if m.max_rate_per_s is not None:
            raise ConfigError(f"mvs[{m.name!r}].max_rate_per_s: do-mpc has no rate limits")
    for c in config.cvs:
        if c.zone is not None:
            raise ConfigError(f"cvs[{c.name!r}].zone: do-mpc has no zone control")
        if c.l2_penalty > 0:
            raise ConfigError(f"cvs[{c.name!r}].l2_penalty: do-mpc soft constraints are L1 only")


def _discrete_rk4_model(do_mpc: Any, model: PlantModel, config: MpcConfig) -> Any:
    """do-mpc model of the RK4 map of one sample (MX: the map stays one function call)."""
    from mpc.discretisation import step_function

    fmap = step_function(model, config)
    m = do_mpc.model.Model("discrete", "MX")
    xs = [m.set_variable("_x", n) for n in model.x.names]
    us = [m.set_variable("_u", n) for n in model.u.names]
    ds = [m.set_variable("_tvp", n) for n in model.d.names]
    ps = [m.set_variable("_p", n) for n in model.p.names]
    args = [ca.vertcat(*v) if v else ca.MX(0, 1) for v in (xs, us, ds, ps)]
    xn = fmap(*args)
    hy = model.h(*args)
    for i, n in enumerate(model.x.names):
        m.set_rhs(n, xn[i])
    for i, n in enumerate(model.y.names):
        m.set_expression(n, hy[i])
    m.setup()
    return m


class DoMpcController:
    """do-mpc's MPC of the same problem, with an :class:`MpcResult`-returning ``step``."""

    def __init__(self, model: PlantModel, config: MpcConfig, *,
                 nlpsol_opts: Mapping[str, Any] | None = None,
                 collocation_elements: int = 1) -> None:
        """``collocation_elements``: do-mpc's ``collocation_ni`` (finite elements per sample);
        1 is the same collocation as ours."""
        _check_supported(model, config)
        do_mpc = import_do_mpc()
        self.model = model
        self.config = config
        self._d = model.nominal.d.copy()
        rk4 = config.discretisation is Discretisation.RK4
        dm = _discrete_rk4_model(do_mpc, model, config) if rk4 else model.to_do_mpc()
        mpc = do_mpc.controller.MPC(dm)
        opts: dict[str, Any] = {"ipopt.print_level": 0, "ipopt.sb": "yes", "print_time": 0}
        opts.update(dict(nlpsol_opts or {}))
        mpc.settings.n_horizon = config.horizon_steps
        mpc.settings.t_step = config.sample_time_s
        mpc.settings.n_robust = 0 if config.robust is None else config.robust_horizon
        mpc.settings.state_discretization = "discrete" if rk4 else "collocation"
        mpc.settings.collocation_type = "radau"
        mpc.settings.collocation_deg = config.collocation_degree
        mpc.settings.collocation_ni = collocation_elements
        mpc.settings.store_full_solution = True
        mpc.settings.nlpsol_opts = opts
        for s in model.x:
            mpc.scaling["_x", s.name] = s.nominal
        for s in model.u:
            mpc.scaling["_u", s.name] = s.nominal

        xs = ca.vertcat(*[dm.x[n] for n in model.x.names])
        us = ca.vertcat(*[dm.u[n] for n in model.u.names]) if len(model.u) else ca.SX(0, 1)
        ds = ca.vertcat(*[dm.tvp[n] for n in model.d.names]) if len(model.d) else ca.SX(0, 1)
        ps = ca.vertcat(*[dm.p[n] for n in model.p.names]) if len(model.p) else ca.SX(0, 1)
        y = model.h(xs, us, ds, ps)
        y_term = model.h(xs, type(xs).zeros(len(model.u)), ds, ps)
        # (on the RK4 path the do-mpc model is MX and its inputs are not plain symbols: the
        # feedthrough check is done on the SX outputs of our model instead)
        u_chk = ca.SX.sym("u", len(model.u))
        y_chk = model.h(ca.SX.sym("x", len(model.x)), u_chk, ca.SX.sym("d", len(model.d)),
                        ca.SX.sym("p", len(model.p)))
        if any(ca.depends_on(y_chk[model.y.index(c.name)], u_chk)
               for c in config.cvs if c.weight > 0):
            raise ConfigError("cvs: do-mpc terminal cost cannot depend on inputs (direct feedthrough)")
        lterm = 0 * xs[0]
        mterm = 0 * xs[0]
        for c in config.cvs:
            i = model.y.index(c.name)
            if c.weight > 0 and c.target is not None:
                cs = c.cost_scale or model.y[c.name].nominal
                lterm += c.weight * ((y[i] - c.target) / cs) ** 2
                mterm += c.weight * config.terminal_weight * ((y_term[i] - c.target) / cs) ** 2
            lterm += c.linear_cost * y[i]
            mterm += c.terminal_linear_cost * y_term[i]
        for name in model.u.names:
            m = config.mv(name) or MvSpec(name)
            i = model.u.index(name)
            if m.weight > 0 and m.target is not None:
                lterm += m.weight * ((us[i] - m.target) / (m.cost_scale or model.u[name].nominal)) ** 2
            lterm += m.linear_cost * us[i]
        mpc.set_objective(lterm=lterm, mterm=mterm)
        # rterm acts on inputs scaled by their nominal (mpc.scaling)
        mpc.set_rterm(**{(m.name): m.move_weight * (model.u[m.name].nominal
                                                    / (m.cost_scale or model.u[m.name].nominal))
                         ** 2 for m in config.mvs if m.move_weight > 0})
        for name in model.u.names:
            m = config.mv(name) or MvSpec(name)
            sig = model.u[name]
            mpc.bounds["lower", "_u", name] = sig.lower if m.lower is None else m.lower
            mpc.bounds["upper", "_u", name] = sig.upper if m.upper is None else m.upper
        # do-mpc charges a slack in every scenario; ours is weighted by the scenario's
        # probability (uniform here): divide by the number of scenarios.
        n_leaf = 1 if config.robust is None else config.robust.n_scenarios ** config.robust_horizon
        for c in config.cvs:
            i = model.y.index(c.name)
            nom = model.y[c.name].nominal
            if np.isfinite(c.upper):
                mpc.set_nl_cons(f"{c.name}_upper", y[i], ub=c.upper, soft_constraint=True,
                                penalty_term_cons=c.l1_penalty / nom / n_leaf)
            if np.isfinite(c.lower):
                mpc.set_nl_cons(f"{c.name}_lower", -y[i], ub=-c.lower, soft_constraint=True,
                                penalty_term_cons=c.l1_penalty / nom / n_leaf)
        for c in config.cvs:
            if not c.has_hard_bounds:
                continue
            i = model.y.index(c.name)
            if c.name in model.x.names and ca.is_equal(y[i], xs[model.x.index(c.name)]):
                if np.isfinite(c.hard_lower):
                    mpc.bounds["lower", "_x", c.name] = c.hard_lower
                if np.isfinite(c.hard_upper):
                    mpc.bounds["upper", "_x", c.name] = c.hard_upper
            else:
                if np.isfinite(c.hard_upper):
                    mpc.set_nl_cons(f"{c.name}_hard_upper", y[i], ub=c.hard_upper)
                if np.isfinite(c.hard_lower):
                    mpc.set_nl_cons(f"{c.name}_hard_lower", -y[i], ub=-c.hard_lower)
        tvp_template = mpc.get_tvp_template()

        def tvp_fun(_t: float) -> Any:
            for k in range(config.horizon_steps + 1):
                for j, name in enumerate(model.d.names):
                    tvp_template["_tvp", k, name] = self._d[j]
            return tvp_template

        mpc.set_tvp_fun(tvp_fun)
        values: dict[str, NDArray[np.float64]] = {
            n: np.array([v]) for n, v in zip(model.p.names, model.nominal.p, strict=True)
        }
        if config.robust is not None:
            for name, vals in config.robust.values:
                values[name] = np.array(vals)
        if len(model.p):
            mpc.set_uncertainty_values(**values)
        with warnings.catch_warnings():
            # do-mpc 5.1.2 calls numpy on casadi values during setup (casadi FutureWarning)
            warnings.simplefilter("ignore", FutureWarning)
            mpc.setup()
        self._mpc = mpc
        self._initialised = False

    @property
    def native(self) -> Any:
        """The underlying ``do_mpc.controller.MPC`` (for inspection)."""
        return self._mpc

    def step(
        self,
        x: Mapping[str, float] | ArrayLike,
        *,
        d: Mapping[str, float] | ArrayLike | None = None,
        u_prev: Mapping[str, float] | ArrayLike | None = None,
        time_s: float = 0.0,
    ) -> MpcResult:
        """One ``make_step``; the status comes from IPOPT's stats (do-mpc does not check it)."""
        t0 = time.perf_counter()
        model = self.model
        try:
            xv = model.x.vector(x, what="x")
            self._d = model.resolve("d", d)
            up = None if u_prev is None else model.u.vector(u_prev, what="u_prev")
        except ModelError as exc:
            return MpcResult(SolveStatus.INVALID_INPUT, None, message=str(exc), solver="do_mpc",
                             time_s=time_s)
        mpc = self._mpc
        if up is not None:
            mpc.u0 = up.reshape(-1, 1)
        if not self._initialised:
            mpc.x0 = xv.reshape(-1, 1)
            mpc.set_initial_guess()
            self._initialised = True
        try:
            u0 = np.asarray(mpc.make_step(xv.reshape(-1, 1)), dtype=float).reshape(-1)
            stats = mpc.solver_stats
        except RuntimeError as exc:
            return MpcResult(SolveStatus.NUMERICAL_ERROR, None, message=str(exc), solver="do_mpc",
                             solve_time_s=time.perf_counter() - t0, time_s=time_s)
        status = status_from_ipopt(stats)
        n = self.config.horizon_steps
        opt = mpc.opt_x_num_unscaled
        x_pred = np.array([np.asarray(opt["_x", k, 0, -1]).reshape(-1) for k in range(n + 1)])
        u_pred = np.array([np.asarray(opt["_u", k, 0]).reshape(-1) for k in range(n)])
        return MpcResult(
            status, u0 if status.usable else None, x_pred=x_pred, u_pred=u_pred,
            iterations=int(stats.get("iter_count", 0)), solve_time_s=time.perf_counter() - t0,
            message=str(stats.get("return_status", "")), solver="do_mpc", time_s=time_s,
        )
