"""Multiple-shooting formulation of the MPC problem, node-ordered and scaled.

:func:`build_ocp` turns a :class:`~plant_models.model.PlantModel` and an
:class:`~mpc.config.MpcConfig` into an :class:`Ocp`: one SX decision vector
``w`` ordered node by node as HPIPM wants it (``X_0, U_0, X_1, U_1, ...``), a
parameter vector ``P`` (current state, previous input, disturbances,
parameters, biases, targets), the least-squares residual ``r(w, P)`` plus a
linear slack cost (objective ``|r|^2 + c'w``) and constraints ``g(w, P)``
(per node: the gap to the next node first, then the node's own constraints).

A node's state is ``[x, u_last]`` (the input of the previous stage, so move
penalties, rate limits and move blocking are node-local) and its control is
``[u, collocation states, slacks]``. All variables are divided by the
signals' nominal values; a slack variable is the limit violation divided by
the nominal, times ``sqrt(penalty)`` so that its cost is O(1) (fewer interior
point iterations). Robust (multi-stage) MPC
chains the scenarios one after the other (scenario-major): the last node of
a scenario jumps back to ``(x0, u_prev)`` for the next one, and the first move
of scenario 0 travels along the chain as an extra state so that every
scenario's first move can be tied to it (non-anticipativity). The chain keeps
HPIPM's stages small (cost linear in the number of scenarios).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import NDArray

from mpc.config import CvSpec, Discretisation, MpcConfig, MvSpec
from mpc.discretisation import collocation_function, step_function
from mpc.soft_limits import limit_rows
from plant_models.model import PlantModel


@dataclass(frozen=True)
class ParamLayout:
    """Slices of the parameter vector ``P`` (all entries in SI units)."""

    x0: slice
    """Current state."""
    u_prev: slice
    """Input applied in the previous sample."""
    d: slice
    """Measured disturbances (held over the horizon)."""
    p: slice
    """Model parameters per scenario, scenario-major."""
    y_bias: slice
    """Additive output disturbance."""
    u_bias: slice
    """Additive input disturbance."""
    y_target: slice
    """Output targets (all outputs; unweighted ones unused)."""
    u_target: slice
    """Input targets."""
    size: int
    """Length of P."""


@dataclass(frozen=True)
class Ocp:
    """A built, stage-structured MPC problem (symbolic parts as CasADi Functions)."""

    model: PlantModel
    """The plant model."""
    config: MpcConfig
    """The configuration it was built from."""
    n_scenarios: int
    """Number of scenarios (1 for nominal MPC)."""
    scenario_p: NDArray[np.float64]
    """Overrides per scenario: shape (S, np), NaN where the runtime ``p`` applies."""
    params: ParamLayout
    """Layout of P."""
    w: ca.SX
    """Decision vector (scaled)."""
    P: ca.SX
    """Parameter vector."""
    residual: ca.SX
    """Least-squares residual r(w, P)."""
    linear_cost: NDArray[np.float64]
    """c in the objective |r|^2 + c'w."""
    g: ca.SX
    """Constraints g(w, P)."""
    lbg: NDArray[np.float64]
    """Lower bounds of g (scaled)."""
    ubg: NDArray[np.float64]
    """Upper bounds of g (scaled)."""
    lbw: NDArray[np.float64]
    """Lower bounds of w; the x0 / u_prev entries are set per step."""
    ubw: NDArray[np.float64]
    """Upper bounds of w."""
    n_colloc: int
    """Collocation states per scenario and stage (0 for RK4 / discrete models)."""
    colloc_blocks: list[tuple[NDArray[np.int64], NDArray[np.int64]]]
    """Per stage and scenario: (rows of g, entries of w) of the collocation equations."""
    nx_stage: list[int]
    """HPIPM stage (node) state sizes, one per node."""
    nu_stage: list[int]
    """HPIPM stage control sizes, one per node but the last."""
    ng_stage: list[int]
    """HPIPM general constraints per node."""
    colloc_stage: list[int]
    """Collocation states in each node's control block (one per node but the last)."""
    idx_x: NDArray[np.int64]
    """Indices of the scenario-0 states in w, shape (N+1, nx)."""
    idx_u: NDArray[np.int64]
    """Indices of the scenario-0 inputs in w, shape (N, nu)."""
    idx_x0: NDArray[np.int64]
    """Indices of the initial state in w (first node)."""
    idx_ul0: NDArray[np.int64]
    """Indices of the previous input in w (first node)."""
    stage_offsets: list[int]
    """Start of each node's block in w (one per node, then len(w))."""
    idx_core: NDArray[np.int64]
    """Indices of the entries that are not collocation states (shared by both layouts)."""
    idx_colloc_src: NDArray[np.int64]
    """For each collocation-state entry, the index of the stage state used as its guess."""
    idx_colloc: NDArray[np.int64]
    """Indices of the collocation-state entries."""
    x_scale: NDArray[np.float64]
    """Nominals of x."""
    u_scale: NDArray[np.float64]
    """Nominals of u."""
    objective: ca.Function
    """(w, P) -> objective."""
    trajectories: ca.Function
    """(w, P) -> (X (nx x N+1), U (nu x N), Y (ny x N+1)) of scenario 0, SI."""

    @property
    def nw(self) -> int:
        """Number of decision variables."""
        return int(self.w.numel())

    def bounds(self, x0: NDArray[np.float64], u_prev: NDArray[np.float64]) -> tuple[
        NDArray[np.float64], NDArray[np.float64]
    ]:
        """Variable bounds with the initial state and previous input fixed."""
        lbw = self.lbw.copy()
        ubw = self.ubw.copy()
        lbw[self.idx_x0] = ubw[self.idx_x0] = x0 / self.x_scale
        lbw[self.idx_ul0] = ubw[self.idx_ul0] = u_prev / self.u_scale
        return lbw, ubw

    def shift(self, w: NDArray[np.float64]) -> NDArray[np.float64]:
        """Warm start for the next sample: every node moves one step earlier in its scenario."""
        return w[self._shift_index]

    @cached_property
    def p_as_given(self) -> bool:
        """True when P holds the step's parameters unchanged (one scenario, no overrides)."""
        return self.n_scenarios == 1 and bool(np.isnan(self.scenario_p).all())

    @cached_property
    def _shift_index(self) -> NDArray[np.int64]:
        """``shift(w) == w[_shift_index]`` (computed once)."""
        idx = np.arange(self.nw)
        out = idx.copy()
        off = self.stage_offsets
        n = self.config.horizon_steps
        nxb = self.nx_stage[0]
        for j in range(self.n_scenarios):
            base = j * (n + 1)
            for k in range(n - 1):
                i = base + k
                out[off[i]:off[i + 1]] = idx[off[i + 1]:off[i + 2]]
            i_last, i_end = base + n - 1, base + n
            out[off[i_last]:off[i_last] + nxb] = idx[off[i_end]:off[i_end] + nxb]
        return out

    def initial_guess(self, x0: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.float64]:
        """Constant guess: every node at (x0, u), collocation states x0, slacks zero."""
        w = np.zeros(self.nw)
        nx, nu = len(self.x_scale), len(self.u_scale)
        xs = x0 / self.x_scale
        us = u / self.u_scale
        nxb = self.nx_stage[0]
        for i, b in enumerate(self.stage_offsets[:-1]):
            w[b:b + nx] = xs
            w[b + nx:b + nx + nu] = us
            if nxb > nx + nu:
                w[b + nx + nu:b + nxb] = us
            if i < len(self.nu_stage) and self.nu_stage[i] > 0:
                w[b + nxb:b + nxb + nu] = us
        w[self.idx_colloc] = w[self.idx_colloc_src]
        lo, hi = self.lbw, self.ubw
        return np.clip(w, lo, hi)

def _scenarios(model: PlantModel, config: MpcConfig) -> NDArray[np.float64]:
    npar = len(model.p)
    if config.robust is None:
        return np.full((1, npar), np.nan)
    names = [n for n, _ in config.robust.values]
    combos = list(itertools.product(*[vs for _, vs in config.robust.values]))
    out = np.full((len(combos), npar), np.nan)
    for i, combo in enumerate(combos):
        for name, val in zip(names, combo, strict=True):
            out[i, model.p.index(name)] = val
    return out


def build_ocp(model: PlantModel, config: MpcConfig) -> Ocp:
    """Build the stage-structured NLP of ``config`` for ``model``.

    With collocation the collocation states are decision variables of each
    stage's control block (do-mpc's NLP); the RTI solver condenses them out of
    its QPs stage by stage.
    """
    config.check_against(model)
    nx, nu, nd, npar, ny = len(model.x), len(model.u), len(model.d), len(model.p), len(model.y)
    n = config.horizon_steps
    scen = _scenarios(model, config)
    ns = scen.shape[0]
    omega = 1.0 / ns
    xn = model.x.nominal
    un = model.u.nominal
    yn = model.y.nominal
    dt = config.sample_time_s
    lifted = model.is_continuous and config.discretisation is Discretisation.COLLOCATION
    ncol = nx * config.collocation_degree if lifted else 0
    fmap = step_function(model, config)
    colloc = collocation_function(model, config) if lifted else None

    mvs = [config.mv(name) or MvSpec(name) for name in model.u.names]
    u_lo = np.array([m.lower if m.lower is not None else model.u[m.name].lower for m in mvs])
    u_hi = np.array([m.upper if m.upper is not None else model.u[m.name].upper for m in mvs])
    cv_idx = [(model.y.index(c.name), c) for c in config.cvs]
    lim_cvs = [(i, c) for i, c in cv_idx if c.has_limits]
    zone_cvs = [(i, c) for i, c in cv_idx if c.zone is not None]
    nsl = len(lim_cvs) + len(zone_cvs)

    # Parameters --------------------------------------------------------
    sizes = [("x0", nx), ("u_prev", nu), ("d", nd), ("p", ns * npar), ("y_bias", ny),
             ("u_bias", nu), ("y_target", ny), ("u_target", nu)]
    sl: dict[str, slice] = {}
    off = 0
    for name, size in sizes:
        sl[name] = slice(off, off + size)
        off += size
    layout = ParamLayout(size=off, **sl)
    P = ca.SX.sym("P", off)
    d_sym = P[layout.d]
    p_sc = [P[layout.p][j * npar:(j + 1) * npar] for j in range(ns)]
    y_bias = P[layout.y_bias]
    u_bias = P[layout.u_bias]
    y_tgt = P[layout.y_target]
    u_tgt = P[layout.u_target]

    # Variables: a chain of nodes (scenario-major), HPIPM-ordered -------------
    nref = nu if ns > 1 else 0  # first move carried along the chain (non-anticipativity)
    nxb = nx + nu + nref  # node state block: [x, u_last, u_first]
    nub = nu + ncol + nsl  # node control block: [u, collocation states, slacks]
    nodes = [(j, k) for j in range(ns) for k in range(n + 1)]
    Xs = [ca.SX.sym(f"X{j}_{k}", nxb) for j, k in nodes]
    Us = [ca.SX.sym(f"U{j}_{k}", nub if k < n else 0) for j, k in nodes]
    parts: list[ca.SX] = []
    offsets = []
    pos = 0
    for i in range(len(nodes)):
        offsets.append(pos)
        parts += [Xs[i], Us[i]]
        pos += nxb + Us[i].numel()
    offsets.append(pos)
    w = ca.vertcat(*parts)

    def node(j: int, k: int) -> int:
        return j * (n + 1) + k

    res: list[ca.SX] = []
    lin = np.zeros(pos)
    g: list[ca.SX] = []
    lbg: list[float] = []
    ubg: list[float] = []
    ng_stage: list[int] = []
    colloc_blocks: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = []

    def tracking(y: ca.SX, u: Any, factor: float) -> None:
        for i, c in cv_idx:
            if c.weight > 0 and factor > 0:
                res.append(np.sqrt(omega * c.weight * factor) * (y[i] - y_tgt[i]) / yn[i])
        if u is not None:
            for m_i, m in enumerate(mvs):
                if m.weight > 0:
                    res.append(np.sqrt(omega * m.weight) * (u[m_i] - u_tgt[m_i]) / un[m_i])

    x0s = P[layout.x0] / ca.DM(xn)
    ups = P[layout.u_prev] / ca.DM(un)
    for i_node, (j, k) in enumerate(nodes):
        X = Xs[i_node]
        xsc, uls, uref = X[:nx], X[nx:nx + nu], X[nx + nu:]
        stage_g: list[ca.SX] = []
        stage_lb: list[float] = []
        stage_ub: list[float] = []
        gap_base = len(lbg)
        if k == n:
            if config.terminal_weight > 0:
                y = model.h(xn * xsc, un * uls + u_bias, d_sym, p_sc[j]) + y_bias
                tracking(y, None, config.terminal_weight)
            if j < ns - 1:  # jump to the next scenario's start: x0, u_prev, first move
                nxt = Xs[i_node + 1]
                g.append(ca.vertcat(x0s, ups, uref) - nxt)
                lbg += [0.0] * nxb
                ubg += [0.0] * nxb
            ng_stage.append(0)
            continue
        U = Us[i_node]
        usc, xcs, slk = U[:nu], U[nu:nu + ncol], U[nu + ncol:]
        x = xn * xsc
        u = un * usc
        ue = u + u_bias
        nxt = Xs[i_node + 1]
        xnext, ulnext, urefnext = nxt[:nx], nxt[nx:nx + nu], nxt[nx + nu:]
        if colloc is not None:
            xc = ca.repmat(ca.DM(xn), config.collocation_degree, 1) * xcs
            cres, x_end = colloc(x, xc, ue, d_sym, p_sc[j])
            g.append(x_end / xn - xnext)
            row0 = gap_base + nxb
            col0 = offsets[i_node] + nxb + nu
            colloc_blocks.append((np.arange(row0, row0 + ncol), np.arange(col0, col0 + ncol)))
            stage_g.append(cres / ca.repmat(ca.DM(xn), config.collocation_degree, 1))
            stage_lb += [0.0] * ncol
            stage_ub += [0.0] * ncol
        else:
            g.append(fmap(x, ue, d_sym, p_sc[j]) / xn - xnext)
        g.append(usc - ulnext)
        if nref:
            g.append((usc if (j, k) == (0, 0) else uref) - urefnext)
        lbg += [0.0] * nxb
        ubg += [0.0] * nxb
        y = model.h(x, ue, d_sym, p_sc[j]) + y_bias
        tracking(y, u, 1.0)
        for m_i, m in enumerate(mvs):
            if m.move_weight > 0:
                res.append(np.sqrt(omega * m.move_weight) * (usc[m_i] - uls[m_i]))
        # rate limits and move blocking
        free = config.free_move(k)
        for m_i, m in enumerate(mvs):
            if not free:
                stage_g.append(usc[m_i] - uls[m_i])
                stage_lb.append(0.0)
                stage_ub.append(0.0)
            elif m.max_rate_per_s is not None:
                r = m.max_rate_per_s * dt / un[m_i]
                stage_g.append(usc[m_i] - uls[m_i])
                stage_lb.append(-r)
                stage_ub.append(r)
        # soft limits and zones
        s_i = 0
        limits: list[tuple[float, float, int, CvSpec]] = [
            (c.lower, c.upper, i, c) for i, c in lim_cvs
        ] + [(c.zone[0], c.zone[1], i, c) for i, c in zone_cvs if c.zone is not None]
        for lo, hi, i, c in limits:
            ys = y[i] / yn[i]
            is_zone = s_i >= len(lim_cvs)
            l1 = 0.0 if is_zone else c.l1_penalty * omega  # weighted by scenario probability
            l2 = c.zone_weight * omega if is_zone else c.l2_penalty * omega
            rows = limit_rows(ys, slk[s_i], lo / yn[i], hi / yn[i], l1, l2)
            stage_g += rows.g
            stage_lb += rows.lb
            stage_ub += rows.ub
            if l2 > 0:
                res.append(np.sqrt(l2) * rows.slack)
            lin[offsets[i_node] + nxb + nu + ncol + s_i] = l1 * rows.sfac
            s_i += 1
        if nref and k == 0 and j > 0:  # non-anticipativity: every scenario's first move
            stage_g.append(usc - uref)
            stage_lb += [0.0] * nu
            stage_ub += [0.0] * nu
        g.extend(stage_g)
        lbg += stage_lb
        ubg += stage_ub
        ng_stage.append(int(sum(e.numel() for e in stage_g)))

    r = ca.vertcat(*res) if res else ca.SX(0, 1)
    gv = ca.vertcat(*g)

    lbw = np.full(pos, -np.inf)
    ubw = np.full(pos, np.inf)
    is_col = np.zeros(pos, dtype=bool)
    col_src: list[int] = []
    for i_node, (_, k) in enumerate(nodes):
        if k < n:
            b = offsets[i_node] + nxb
            lbw[b:b + nu] = u_lo / un
            ubw[b:b + nu] = u_hi / un
            lbw[b + nu + ncol:b + nub] = 0.0
            is_col[b + nu:b + nu + ncol] = True
            col_src += [offsets[i_node] + (i % nx) for i in range(ncol)]
    if nref:  # the first node's copy of the first move is unused: pin it
        lbw[nx + nu:nxb] = 0.0
        ubw[nx + nu:nxb] = 0.0

    idx_x = np.array([[offsets[node(0, k)] + i for i in range(nx)] for k in range(n + 1)])
    idx_u = np.array([[offsets[node(0, k)] + nxb + i for i in range(nu)] for k in range(n)])
    idx_x0 = np.arange(nx)
    idx_ul0 = np.arange(nx, nx + nu)

    f_expr = ca.sumsqr(r) + ca.dot(ca.DM(lin), w)
    objective = ca.Function("objective", [w, P], [f_expr])
    Xm = ca.horzcat(*[xn * Xs[node(0, k)][:nx] for k in range(n + 1)])
    Um = ca.horzcat(*[un * Us[node(0, k)][:nu] for k in range(n)])
    ys_list = []
    for k in range(n + 1):
        uk = Um[:, min(k, n - 1)] + u_bias
        ys_list.append(model.h(Xm[:, k], uk, d_sym, p_sc[0]) + y_bias)
    trajectories = ca.Function("trajectories", [w, P], [Xm, Um, ca.horzcat(*ys_list), f_expr])

    return Ocp(
        model=model, config=config, n_scenarios=ns, scenario_p=scen, params=layout, w=w, P=P,
        residual=r, linear_cost=lin, g=gv, lbg=np.array(lbg), ubg=np.array(ubg), lbw=lbw,
        ubw=ubw, n_colloc=ncol, colloc_blocks=colloc_blocks, nx_stage=[nxb] * len(nodes),
        nu_stage=[int(u.numel()) for u in Us[:-1]], ng_stage=ng_stage,
        colloc_stage=[ncol if k < n else 0 for _, k in nodes[:-1]], idx_x=idx_x, idx_u=idx_u,
        idx_x0=idx_x0, idx_ul0=idx_ul0, stage_offsets=offsets, idx_core=np.flatnonzero(~is_col),
        idx_colloc=np.flatnonzero(is_col), idx_colloc_src=np.array(col_src, dtype=int),
        x_scale=xn, u_scale=un, objective=objective, trajectories=trajectories,
    )


def parameter_vector(
    ocp: Ocp,
    *,
    x0: NDArray[np.float64],
    u_prev: NDArray[np.float64],
    d: NDArray[np.float64],
    p: NDArray[np.float64],
    y_bias: NDArray[np.float64],
    u_bias: NDArray[np.float64],
    y_target: NDArray[np.float64],
    u_target: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Assemble P (SI values); scenario overrides replace entries of ``p``."""
    lay = ocp.params
    out = np.zeros(lay.size)
    out[lay.x0] = x0
    out[lay.u_prev] = u_prev
    out[lay.d] = d
    if ocp.p_as_given:
        out[lay.p] = p
    else:
        out[lay.p] = np.where(np.isnan(ocp.scenario_p), p[None, :], ocp.scenario_p).reshape(-1)
    out[lay.y_bias] = y_bias
    out[lay.u_bias] = u_bias
    out[lay.y_target] = y_target
    out[lay.u_target] = u_target
    return out
