"""Stage-structured transcription: one CasADi Function per stage, mapped over the horizon.

:func:`build_stage_problem` never writes the whole horizon as one expression.
It builds, once:

- ``dyn(xs, us, xc, d, p, u_bias) -> (x_next, A, B, T, t)``: the discrete
  dynamics of one sample and their sensitivities, in scaled variables. RK4
  with substeps (small models: one SX function with its exact Jacobian; large
  models: an MX chain of per-substep SX functions that propagates the
  sensitivities ``S <- J_sub S`` sparse-times-dense), or Radau collocation
  whose collocation states are lifted and eliminated *numerically* per stage
  (``T = -R_c^-1 R_z``, ``t = -R_c^-1 r`` with a sparse LU, one Newton step
  per SQP iteration as in lifted implicit integrators; for models up to
  :data:`SX_DYNAMICS_MAX_STATES` states ``dyn`` returns the residual and its
  Jacobians and numpy solves all stages at once, see :func:`eliminate_colloc`);
- ``stage(X, U, pn) -> (H, q, g, J_g, f)``: Gauss-Newton Hessian, gradient,
  the node's own constraints and their Jacobian, and its cost;
- ``terminal(X, pn) -> (H, q, g, J_g, f)``.

Each is evaluated for all nodes of all scenarios with ``Function.map``
(serial: the machines this runs on have few cores), so build time and memory
are those of one stage, and evaluation is linear in the horizon and in the
number of scenarios.

Node layout (as :mod:`mpc.ocp`, HPIPM-ordered): a node state
``X = [x, u_last, R]`` and control ``U = [u, slacks]``, all divided by the
signal nominals. ``R`` (robust trees only) holds the moves of the current
branch history at the ``robust_horizon`` branching stages: the scenarios are
chained one after the other, and a scenario that shares its first ``k``
branches with the previous one must repeat that scenario's move at stage ``k``
(non-anticipativity, one row per MV), otherwise it writes its own move into
``R``. The chain keeps HPIPM's stages small: the QP cost is linear in the
number of scenarios.

Hard CV bounds are rows with a slack whose upper bound is zero from the second
predicted node on; at the first one (and at the fixed initial node) the slack
is free and costs ``hard_bound_penalty``: the first stage is soft, so a
disturbed initial state never makes the QP infeasible. At the initial node a
limit on an output that no input moves (a state bound) is a constant: its rows
are unbounded there and its slack pinned to zero, so neither reaches the QP
(:mod:`mpc.stage_hpipm` leaves both out).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import NDArray

from mpc.config import CvSpec, Discretisation, MpcConfig, MvSpec
from mpc.discretisation import collocation_coefficients
from mpc.soft_limits import limit_rows
from mpc.stage_codegen import resolve_codegen
from plant_models.model import PlantModel

SX_DYNAMICS_MAX_STATES = 16
"""Largest model for which the RK4 map and its exact Jacobian are one SX expression;
larger models chain per-substep SX functions in MX (memory linear in the substeps)."""
WHOLE_HORIZON_MAX_STATES = 16
"""Largest model :attr:`mpc.config.Transcription.AUTO` gives to the whole-horizon path."""


@dataclass(frozen=True)
class NodeParams:
    """Rows of the node parameter vector ``pn`` (one column per node)."""

    d: slice
    p: slice
    y_bias: slice
    u_bias: slice
    y_target: slice
    u_target: slice
    omega: int
    """Scenario probability."""
    onehot: slice
    """Which branching-stage slot of ``R`` this node's move belongs to (all zero after)."""
    rho: int
    """1 when the node starts a new branch (writes its move into ``R``), else 0."""
    size: int


@dataclass
class StageProblem:
    """The stage functions and the static structure of the stage-structured QP."""

    model: PlantModel
    config: MpcConfig
    n_scenarios: int
    n_stage_nodes: int
    """Nodes with a control (``n_scenarios * N``)."""
    nx: int
    nu: int
    nr: int
    """Size of ``R`` (``nu * robust_horizon`` for robust trees, else 0)."""
    nxb: int
    nub: int
    n_colloc: int
    """Lifted collocation states per stage (0 for RK4)."""
    ng_stage: int
    ng_term: int
    n_hard: int
    """Slacks of hard CV bounds (the last ones of a node's control block)."""
    pn: NodeParams
    dyn: ca.Function
    stage: ca.Function
    terminal: ca.Function
    outputs: ca.Function
    """``(X, pn) -> y`` (SI) of one node, for the trajectories."""
    pn_static: NDArray[np.float64]
    """Node parameters without the per-step entries, shape (n_nodes, pn.size), node order."""
    lbg_stage: NDArray[np.float64]
    ubg_stage: NDArray[np.float64]
    lbg_term: NDArray[np.float64]
    ubg_term: NDArray[np.float64]
    lbw: NDArray[np.float64]
    ubw: NDArray[np.float64]
    node_offsets: NDArray[np.int64]
    """Start of each node's block in the decision vector, then its length."""
    is_stage: NDArray[np.bool_]
    """Per node: True for nodes with a control, False for terminal nodes."""
    p_fixed: NDArray[np.bool_]
    """Per node and parameter: True where a scenario fixes the value (else the step's p)."""
    x_scale: NDArray[np.float64]
    u_scale: NDArray[np.float64]
    colloc: tuple[float, NDArray[np.float64]] | None = None
    """``(d0, D)`` when ``dyn`` returns the collocation residual and Jacobians
    ``(x_end, r, Rc, Rz)`` and :func:`eliminate_colloc` solves (see :func:`numeric_colloc`)."""

    @property
    def n_nodes(self) -> int:
        """All nodes (``n_scenarios * (N + 1)``)."""
        return int(self.is_stage.size)

    @property
    def nw(self) -> int:
        """Length of the decision vector."""
        return int(self.node_offsets[-1])


def _scenario_params(
    model: PlantModel, config: MpcConfig
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[tuple[int, ...]]]:
    """Branch parameter overrides (NaN: keep), branch probabilities, scenario branch tuples."""
    npar = len(model.p)
    rob = config.robust
    if rob is None:
        return np.full((1, npar), np.nan), np.ones(1), [()]
    names = [n for n, _ in rob.values]
    combos = list(itertools.product(*[vs for _, vs in rob.values]))
    over = np.full((len(combos), npar), np.nan)
    for i, combo in enumerate(combos):
        for name, val in zip(names, combo, strict=True):
            over[i, model.p.index(name)] = val
    probs = np.array(rob.branch_probabilities())
    scen = list(itertools.product(range(len(combos)), repeat=config.robust_horizon))
    return over, probs, scen


def _rk4_step(model: PlantModel, x: ca.SX, u: ca.SX, d: ca.SX, p: ca.SX, h: float) -> ca.SX:
    k1 = model.f(x, u, d, p)
    k2 = model.f(x + 0.5 * h * k1, u, d, p)
    k3 = model.f(x + 0.5 * h * k2, u, d, p)
    k4 = model.f(x + h * k3, u, d, p)
    return x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def dynamics_function(model: PlantModel, config: MpcConfig) -> ca.Function:
    """``dyn(xs, us, xc, d, p, u_bias) -> (x_next, A, B, T, t)``, scaled (see the module doc)."""
    nx, nu, nd, npar = len(model.x), len(model.u), len(model.d), len(model.p)
    xn = ca.DM(model.x.nominal)
    un = ca.DM(model.u.nominal)
    dt = config.sample_time_s
    colloc = model.is_continuous and config.discretisation is Discretisation.COLLOCATION
    deg = config.collocation_degree if colloc else 0
    nc = nx * deg
    big = nx > SX_DYNAMICS_MAX_STATES
    sym: Any = ca.MX if (big and model.is_continuous) else ca.SX
    xs: Any = sym.sym("xs", nx)
    us: Any = sym.sym("us", nu)
    xc: Any = sym.sym("xc", nc)
    d: Any = sym.sym("d", nd)
    p: Any = sym.sym("p", npar)
    ub: Any = sym.sym("ub", nu)
    x: Any
    u: Any
    names = ["xs", "us", "xc", "d", "p", "ub"]
    outs = ["x_next", "A", "B", "T", "t"]
    scale_a = ca.DM(np.outer(1.0 / model.x.nominal, model.x.nominal))
    scale_b = ca.DM(np.outer(1.0 / model.x.nominal, model.u.nominal))
    if not model.is_continuous or config.discretisation is Discretisation.RK4:
        if not model.is_continuous or not big:
            x = xn * xs
            u = un * us + ub
            if model.is_continuous:
                h = dt / config.rk4_substeps
                for _ in range(config.rk4_substeps):
                    x = _rk4_step(model, x, u, d, p, h)
            else:
                x = model.f(x, u, d, p)
            xnext = x / xn
            a = ca.densify(ca.jacobian(xnext, xs))
            b = ca.densify(ca.jacobian(xnext, us))
            return ca.Function(
                "dyn",
                [xs, us, xc, d, p, ub],
                [xnext, a, b, ca.SX(0, nx + nu), ca.SX(0, 1)],
                names,
                outs,
            )
        # large model: per-substep SX function with its sparse Jacobians, chained in MX
        h = dt / config.rk4_substeps
        xe, ue = ca.SX.sym("x", nx), ca.SX.sym("u", nu)
        de, pe = ca.SX.sym("d", nd), ca.SX.sym("p", npar)
        x1 = _rk4_step(model, xe, ue, de, pe, h)
        sub = ca.Function(
            "rk4_sub", [xe, ue, de, pe], [x1, ca.jacobian(x1, xe), ca.jacobian(x1, ue)]
        )
        x = xn * xs
        u = un * us + ub
        sx: ca.MX = ca.MX(ca.DM.eye(nx))
        su: ca.MX = ca.MX(nx, nu)
        for _ in range(config.rk4_substeps):
            x, jx, ju = sub(x, u, d, p)
            sx = ca.mtimes(jx, sx)
            su = ca.mtimes(jx, su) + ju
        a = ca.densify(sx) * scale_a
        b = ca.densify(su) * scale_b
        return ca.Function(
            "dyn",
            [xs, us, xc, d, p, ub],
            [x / xn, a, b, ca.MX(0, nx + nu), ca.MX(0, 1)],
            names,
            outs,
        )
    # Radau collocation, lifted, eliminated numerically per stage
    c, dvec, _ = collocation_coefficients(deg)
    x = xn * xs
    u = un * us + ub
    pts = [x] + [xn * xc[j * nx : (j + 1) * nx] for j in range(deg)]
    res = []
    for r in range(1, deg + 1):
        xp = sum(c[j, r] * pts[j] for j in range(deg + 1))
        res.append((dt * model.f(pts[r], u, d, p) - xp) / xn)
    rvec = ca.vertcat(*res)
    z = ca.vertcat(xs, us)
    rc = ca.jacobian(rvec, xc)
    rz = ca.densify(ca.jacobian(rvec, z))
    # x_end = d0 x + sum_j d_j xc_j (scaled alike), linearised through dxc = T dz + t
    dc = ca.horzcat(*[float(dvec[j + 1]) * ca.DM.eye(nx) for j in range(deg)])
    x_end = float(dvec[0]) * xs + ca.mtimes(dc, xc)
    if sym is ca.SX:  # the residual and its Jacobians only: numpy solves (eliminate_colloc)
        return ca.Function(
            "dyn",
            [xs, us, xc, d, p, ub],
            [x_end, rvec, ca.densify(rc), rz],
            names,
            ["x_end", "r", "Rc", "Rz"],
        )
    # CSparse's LU is the faster one in the CasADi VM, but cannot be generated as C; CasADi's
    # sparse QR can. Column A, degree 1, N = 30 (dyn for all stages, quiet machine): VM
    # CSparse 7.7 ms, VM QR 8.7-9.4 ms, compiled QR 6.5 ms per step.
    linsol = "qr" if resolve_codegen(config.codegen) else "csparse"
    tmat = -ca.solve(rc, rz, linsol)
    tvec = -ca.solve(rc, rvec, linsol)
    jz = ca.horzcat(float(dvec[0]) * ca.DM.eye(nx), ca.DM(nx, nu)) + ca.mtimes(dc, tmat)
    xnext = x_end + ca.mtimes(dc, tvec)
    return ca.Function(
        "dyn", [xs, us, xc, d, p, ub], [xnext, jz[:, :nx], jz[:, nx:], tmat, tvec], names, outs
    )


def numeric_colloc(
    model: PlantModel, config: MpcConfig
) -> tuple[float, NDArray[np.float64]] | None:
    """``(d0, D)`` of ``x_end = d0 x + D xc`` where :func:`dynamics_function` leaves the
    collocation solve to :func:`eliminate_colloc` (Radau collocation of models up to
    :data:`SX_DYNAMICS_MAX_STATES` states), else None."""
    if not (model.is_continuous and config.discretisation is Discretisation.COLLOCATION):
        return None
    nx = len(model.x)
    if nx > SX_DYNAMICS_MAX_STATES:
        return None
    _, dvec, _ = collocation_coefficients(config.collocation_degree)
    dc = np.hstack([float(dvec[j + 1]) * np.eye(nx) for j in range(config.collocation_degree)])
    return float(dvec[0]), dc


def eliminate_colloc(
    d0: float,
    dc: NDArray[np.float64],
    x_end: NDArray[np.float64],
    r: NDArray[np.float64],
    rc: NDArray[np.float64],
    rz: NDArray[np.float64],
) -> tuple[NDArray[np.float64], ...]:
    """Newton step of the collocation states and the stage sensitivities, for all nodes.

    Inputs per node (leading axis): ``x_end`` (nx), residual ``r`` (nc), ``rc = dr/dxc``
    (nc x nc), ``rz = dr/d(x, u)`` (nc x nz). Returns ``(x_next, A, B, T, t)`` with
    ``dxc = T dz + t``, ``T = -rc^-1 rz``, ``t = -rc^-1 r``: one batched LU per step
    instead of a symbolic dense solve per stage (27,000 VM instructions per stage for
    industrial_poly's degree-2 collocation). Raises ``numpy.linalg.LinAlgError`` if an
    ``rc`` is singular.
    """
    nx = dc.shape[0]
    nz = rz.shape[2]
    sol = np.linalg.solve(rc, np.concatenate([rz, r[:, :, None]], axis=2))
    tmat = -sol[:, :, :nz]
    tvec = -sol[:, :, nz]
    jz = dc @ tmat
    jz[:, :, :nx] += d0 * np.eye(nx)
    return x_end + tvec @ dc.T, jz[:, :, :nx], jz[:, :, nx:], tmat, tvec


def _cost_scale(spec: CvSpec | MvSpec, nominal: float) -> float:
    return spec.cost_scale if spec.cost_scale is not None else nominal


def build_stage_problem(model: PlantModel, config: MpcConfig) -> StageProblem:
    """Build the stage functions and the QP structure of ``config`` for ``model``."""
    config.check_against(model)
    nx, nu, nd, npar, ny = len(model.x), len(model.u), len(model.d), len(model.p), len(model.y)
    n = config.horizon_steps
    over, probs, scen = _scenario_params(model, config)
    ns = len(scen)
    nrob = config.robust_horizon if config.robust is not None else 0
    nr = nu * nrob
    xn, un, yn = model.x.nominal, model.u.nominal, model.y.nominal
    dt = config.sample_time_s
    colloc = model.is_continuous and config.discretisation is Discretisation.COLLOCATION
    nc = nx * config.collocation_degree if colloc else 0

    mvs = [config.mv(name) or MvSpec(name) for name in model.u.names]
    u_lo = np.array([m.lower if m.lower is not None else model.u[m.name].lower for m in mvs])
    u_hi = np.array([m.upper if m.upper is not None else model.u[m.name].upper for m in mvs])
    cv_idx = [(model.y.index(c.name), c) for c in config.cvs]
    lim_cvs = [(i, c) for i, c in cv_idx if c.has_limits]
    zone_cvs = [(i, c) for i, c in cv_idx if c.zone is not None]
    hard_cvs = [(i, c) for i, c in cv_idx if c.has_hard_bounds]
    nsl = len(lim_cvs) + len(zone_cvs) + len(hard_cvs)
    move_rows = any(m.max_rate_per_s is not None for m in mvs) or (
        config.control_horizon_steps is not None or config.move_blocks is not None
    )
    nxb = nx + nu + nr
    nub = nu + nsl

    sizes = [
        ("d", nd),
        ("p", npar),
        ("y_bias", ny),
        ("u_bias", nu),
        ("y_target", ny),
        ("u_target", nu),
    ]
    sl: dict[str, slice] = {}
    off = 0
    for name, size in sizes:
        sl[name] = slice(off, off + size)
        off += size
    pnl = NodeParams(
        omega=off,
        onehot=slice(off + 1, off + 1 + nrob),
        rho=off + 1 + nrob,
        size=off + 2 + nrob,
        **sl,
    )

    X = ca.SX.sym("X", nxb)
    U = ca.SX.sym("U", nub)
    pn = ca.SX.sym("pn", pnl.size)
    d, p = pn[pnl.d], pn[pnl.p]
    yb, ubias = pn[pnl.y_bias], pn[pnl.u_bias]
    ytg, utg = pn[pnl.y_target], pn[pnl.u_target]
    om = pn[pnl.omega]
    xs, uls, rr = X[:nx], X[nx : nx + nu], X[nx + nu :]
    us, slk = U[:nu], U[nu:]

    def names_map(vec: Any, sset: Any) -> dict[str, Any]:
        return {nm: vec[i] for i, nm in enumerate(sset.names)}

    # stage node ----------------------------------------------------------
    x = xn * xs
    u = un * us
    y = model.h(x, u + ubias, d, p) + yb
    res: list[ca.SX] = []
    lin = ca.SX(0)
    for i, c in cv_idx:
        if c.weight > 0:
            res.append(ca.sqrt(om * c.weight) * (y[i] - ytg[i]) / _cost_scale(c, yn[i]))
        lin += c.linear_cost * y[i]
    for m_i, m in enumerate(mvs):
        cs = _cost_scale(m, un[m_i])
        if m.weight > 0:
            res.append(ca.sqrt(om * m.weight) * (u[m_i] - utg[m_i]) / cs)
        if m.move_weight > 0:
            res.append(ca.sqrt(om * m.move_weight) * (us[m_i] - uls[m_i]) * un[m_i] / cs)
        lin += m.linear_cost * u[m_i]
    lin = om * lin
    econ = ca.SX(0)
    if config.economic_stage_cost is not None:
        econ = om * ca.SX(config.economic_stage_cost(names_map(y, model.y), names_map(u, model.u)))
    g: list[ca.SX] = []
    lbg: list[float] = []
    ubg: list[float] = []
    if move_rows:
        g.append(us - uls)
        lbg += [-np.inf] * nu  # per node, set below
        ubg += [np.inf] * nu
    if nr:
        g.append(
            us - sum(pn[pnl.onehot.start + r] * rr[r * nu : (r + 1) * nu] for r in range(nrob))
        )
        lbg += [-np.inf] * nu  # per node, set below
        ubg += [np.inf] * nu
    s_i = 0
    reg = np.zeros(nub)
    slack_lin = ca.SX(0)
    groups: list[tuple[float, float, int, float, float]] = []
    groups += [(c.lower, c.upper, i, c.l1_penalty, c.l2_penalty) for i, c in lim_cvs]
    groups += [
        (c.zone[0], c.zone[1], i, 0.0, c.zone_weight) for i, c in zone_cvs if c.zone is not None
    ]
    groups += [(c.hard_lower, c.hard_upper, i, config.hard_bound_penalty, 0.0) for i, c in hard_cvs]
    const_rows: list[int] = []  # rows (and slacks) of limits on outputs that no input moves:
    const_slacks: list[int] = []  # constant at the fixed initial node, left out there
    for lo, hi, i, l1, l2 in groups:
        rows = limit_rows(y[i] / yn[i], slk[s_i], lo / yn[i], hi / yn[i], l1, l2)
        if not ca.depends_on(y[i], us):
            row0 = sum(int(e.numel()) for e in g)
            const_rows += list(range(row0, row0 + len(rows.g)))
            const_slacks.append(s_i)
        g += rows.g
        lbg += rows.lb
        ubg += rows.ub
        if l2 > 0:
            res.append(ca.sqrt(om * l2) * rows.slack)
        slack_lin += om * l1 * rows.sfac * slk[s_i]
        if l1 > 0 and l2 == 0:
            reg[nu + s_i] = 1e-8
        s_i += 1
    r = ca.vertcat(*res) if res else ca.SX(0, 1)
    zz = ca.vertcat(X, U)
    jr = ca.jacobian(r, zz)
    hess = 2.0 * ca.mtimes(jr.T, jr) + ca.diag(ca.DM(np.concatenate([np.zeros(nxb), reg])))
    if config.economic_stage_cost is not None:
        hess = hess + ca.hessian(econ, zz)[0]
    hess = ca.sparsify(hess)
    grad = 2.0 * ca.mtimes(jr.T, r) + ca.gradient(lin + econ + slack_lin, zz)
    f = ca.sumsqr(r) + lin + econ + slack_lin
    gv = ca.vertcat(*g) if g else ca.SX(0, 1)
    stage = ca.Function(
        "stage",
        [X, U, pn],
        [hess, ca.densify(grad), ca.densify(gv), ca.jacobian(gv, zz), f],
        ["X", "U", "pn"],
        ["H", "q", "g", "Jg", "f"],
    )

    # terminal node -----------------------------------------------------------
    yT = model.h(x, un * uls + ubias, d, p) + yb
    resT: list[ca.SX] = []
    linT = ca.SX(0)
    for i, c in cv_idx:
        if c.weight > 0 and config.terminal_weight > 0:
            resT.append(
                ca.sqrt(om * c.weight * config.terminal_weight)
                * (yT[i] - ytg[i])
                / _cost_scale(c, yn[i])
            )
        linT += c.terminal_linear_cost * yT[i]
    linT = om * linT
    econT = ca.SX(0)
    if config.economic_terminal_cost is not None:
        econT = om * ca.SX(config.economic_terminal_cost(names_map(yT, model.y)))
    gT: list[ca.SX] = []
    lbgT: list[float] = []
    ubgT: list[float] = []
    if n > 1:
        for i, c in hard_cvs:
            gT.append(yT[i] / yn[i])
            lbgT.append(c.hard_lower / yn[i])
            ubgT.append(c.hard_upper / yn[i])
    rT = ca.vertcat(*resT) if resT else ca.SX(0, 1)
    jrT = ca.jacobian(rT, X)
    hessT = 2.0 * ca.mtimes(jrT.T, jrT)
    if config.economic_terminal_cost is not None:
        hessT = hessT + ca.hessian(econT, X)[0]
    gvT = ca.vertcat(*gT) if gT else ca.SX(0, 1)
    terminal = ca.Function(
        "terminal",
        [X, pn],
        [
            ca.sparsify(hessT),
            ca.densify(2.0 * ca.mtimes(jrT.T, rT) + ca.gradient(linT + econT, X)),
            ca.densify(gvT),
            ca.jacobian(gvT, X),
            ca.sumsqr(rT) + linT + econT,
        ],
        ["X", "pn"],
        ["H", "q", "g", "Jg", "f"],
    )
    uo = ca.SX.sym("u", nu)
    outputs = ca.Function("outputs", [X, uo, pn], [model.h(x, un * uo + ubias, d, p) + yb])

    # static node data, bounds ---------------------------------------------
    n_nodes = ns * (n + 1)
    is_stage = np.array([k < n for _ in range(ns) for k in range(n + 1)])
    sizes_n = np.where(is_stage, nxb + nub, nxb)
    offsets = np.concatenate([[0], np.cumsum(sizes_n)]).astype(np.int64)
    pst = np.zeros((n_nodes, pnl.size))
    p_fixed = np.zeros((n_nodes, npar), dtype=bool)
    lbg_s = np.tile(np.array(lbg, dtype=float), (ns * n, 1))
    ubg_s = np.tile(np.array(ubg, dtype=float), (ns * n, 1))
    lbw = np.full(int(offsets[-1]), -np.inf)
    ubw = np.full(int(offsets[-1]), np.inf)
    i_stage = 0
    for j, branches in enumerate(scen):
        prev = scen[j - 1] if j > 0 else None
        shared = 0  # leading branches shared with the previous scenario: the moves at
        # stages 0..shared are decided on the same information, so they must be equal
        if prev is not None:
            while shared < nrob and prev[shared] == branches[shared]:
                shared += 1
        omega = float(np.prod([probs[b] for b in branches])) if branches else 1.0
        for k in range(n + 1):
            node = j * (n + 1) + k
            b = branches[min(k, nrob - 1)] if nrob else None
            pv = model.nominal.p.copy()
            if b is not None:
                pv = np.where(np.isnan(over[b]), pv, over[b])
                p_fixed[node] = ~np.isnan(over[b])
            pst[node, pnl.p] = pv
            pst[node, pnl.omega] = omega
            o = int(offsets[node])
            if k == n:
                continue
            if k < nrob:
                pst[node, pnl.onehot.start + k] = 1.0
                pst[node, pnl.rho] = 0.0 if (prev is not None and k <= shared) else 1.0
            row = 0
            if move_rows:
                free = config.free_move(k)
                for m_i, m in enumerate(mvs):
                    if not free:
                        lbg_s[i_stage, m_i] = ubg_s[i_stage, m_i] = 0.0
                    elif m.max_rate_per_s is not None:
                        rate = m.max_rate_per_s * dt / un[m_i]
                        lbg_s[i_stage, m_i], ubg_s[i_stage, m_i] = -rate, rate
                row = nu
            if nr and k < nrob and prev is not None and k <= shared:
                lbg_s[i_stage, row : row + nu] = 0.0
                ubg_s[i_stage, row : row + nu] = 0.0
            ub_ = o + nxb
            lbw[ub_ : ub_ + nu] = u_lo / un
            ubw[ub_ : ub_ + nu] = u_hi / un
            lbw[ub_ + nu : ub_ + nub] = 0.0
            n_soft = len(lim_cvs) + len(zone_cvs)
            if k >= 2:  # hard bounds: slack pinned from the second predicted node on
                ubw[ub_ + nu + n_soft : ub_ + nub] = 0.0
            if k == 0:  # limits the initial state alone decides: no row, no slack
                lbg_s[i_stage, const_rows] = -np.inf
                ubg_s[i_stage, const_rows] = np.inf
                ubw[ub_ + nu + np.array(const_slacks, dtype=np.int64)] = 0.0
            i_stage += 1
    if nr:  # the first node's R is unused: pin it
        lbw[nx + nu : nxb] = 0.0
        ubw[nx + nu : nxb] = 0.0
    return StageProblem(
        model=model,
        config=config,
        n_scenarios=ns,
        n_stage_nodes=ns * n,
        nx=nx,
        nu=nu,
        nr=nr,
        nxb=nxb,
        nub=nub,
        n_colloc=nc,
        ng_stage=int(gv.numel()),
        ng_term=int(gvT.numel()),
        n_hard=len(hard_cvs),
        pn=pnl,
        dyn=dynamics_function(model, config),
        stage=stage,
        terminal=terminal,
        outputs=outputs,
        pn_static=pst,
        lbg_stage=lbg_s,
        ubg_stage=ubg_s,
        lbg_term=np.tile(np.array(lbgT, dtype=float), (ns, 1)),
        ubg_term=np.tile(np.array(ubgT, dtype=float), (ns, 1)),
        lbw=lbw,
        ubw=ubw,
        node_offsets=offsets,
        is_stage=is_stage,
        x_scale=xn,
        u_scale=un,
        p_fixed=p_fixed,
        colloc=numeric_colloc(model, config),
    )
