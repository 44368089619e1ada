"""Plant-wide RTO: one economic steady-state optimisation over a site of connected units.

A :class:`Site` names its units (each a :class:`~plant_models.model.PlantModel`),
the :class:`Stream` s between them (gas, steam, power, material: an output ``y``
of one unit equals an input ``u`` or a disturbance ``d`` of another), an
objective (USD/s per SI unit of any ``unit.signal``) and limits. A site may also
be written as one model (one unit, no streams), as the steel works gas network
``steel_energy`` is.

:class:`PlantwideRto` builds the NLP once (describe, build, run):

    max  sum_k w_k s_k + lambda_phi^T (u - u_ref)
    s.t. f_i(x_i, u_i, d_i, p_i) = 0               every unit i (steady state)
         y_a[src] = u_b[dst]  or  d_b[dst]          every stream
         lo_j <= c_j + eps_j <= hi_j                every limit (outputs; u, x: bounds)
         held states fixed (integrating inventories such as gasholders)

in variables scaled by the signals' nominals, solved by IPOPT. Prices (objective
weights), limits and disturbances are NLP *parameters*: change them on every
call without rebuilding (run-time prices: :class:`PriceSchedule`, a CSV price
file, or values read from a tag and passed to :meth:`PlantwideRto.solve`).
Modifier adaptation reuses :class:`rto.modifiers.Modifiers` over the site's
decision vector (:attr:`PlantwideRto.decisions`, ``unit.signal`` names);
constraint modifiers are keyed ``unit.signal``. :meth:`solve` never raises on a
failed solve: the result carries the status.

Per-unit targets go to the controllers through :class:`rto.handoff.TargetHandoff`
(ramps, reachability), gated by steady-state detection per unit: see
:class:`PlantwideCoordinator`.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ConfigError, ModelError
from plant_models.model import PlantModel
from plant_models.results import SolveInfo, SolveStatus, status_from_ipopt
from rto.modifiers import Modifiers

log = logging.getLogger(__name__)


class StreamKind(Enum):
    """What a stream carries (for reports and checks; the maths is the same)."""

    GAS = "gas"
    STEAM = "steam"
    POWER = "power"
    MATERIAL = "material"


@dataclass(frozen=True)
class SiteUnit:
    """One unit of a site."""

    name: str
    """Unit name (snake_case), as in ``[[unit]]`` configs."""
    model: PlantModel
    """Its steady-state model."""
    decisions: tuple[str, ...] | None = None
    """Inputs the RTO may move; None = all of ``u``; the others are fixed at the given u."""
    held_states: tuple[str, ...] = ()
    """States fixed in the optimisation (integrating inventories: holder contents)."""

    def __post_init__(self) -> None:
        if self.decisions is not None:
            object.__setattr__(self, "decisions", tuple(self.decisions))
            for n in self.decisions:
                if n not in self.model.u:
                    raise ConfigError(
                        f"site unit {self.name!r}: decisions: {self.model.name!r} "
                        f"has no input {n!r}; inputs: {', '.join(self.model.u.names)}"
                    )
        object.__setattr__(self, "held_states", tuple(self.held_states))
        for n in self.held_states:
            if n not in self.model.x:
                raise ConfigError(f"site unit {self.name!r}: held_states: no state {n!r}")


@dataclass(frozen=True)
class Stream:
    """A named connection: ``source`` output equals ``sink`` input or disturbance."""

    name: str
    """Stream name, e.g. ``mixed_gas_to_furnace``."""
    kind: StreamKind
    """Gas, steam, power or material."""
    source: str
    """``unit.output``."""
    sink: str
    """``unit.input`` or ``unit.disturbance``."""


def _split(key: str, where: str) -> tuple[str, str]:
    unit, dot, sig = key.partition(".")
    if not dot or not unit or not sig:
        raise ConfigError(f"{where}: expected 'unit.signal', got {key!r}")
    return unit, sig


@dataclass(frozen=True)
class Site:
    """Units, streams, economics and limits of a plant-wide optimisation."""

    units: tuple[SiteUnit, ...]
    """The units."""
    streams: tuple[Stream, ...] = ()
    """Connections between units."""
    objective: Mapping[str, float] = field(default_factory=dict)
    """Profit weight (USD/s per SI unit) per ``unit.signal`` (u, d or y); default prices."""
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Default limits per ``unit.output`` (SI); inputs and states: their signal bounds."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", tuple(self.units))
        object.__setattr__(self, "streams", tuple(self.streams))
        object.__setattr__(self, "objective", MappingProxyType(dict(self.objective)))
        object.__setattr__(
            self,
            "limits",
            MappingProxyType({k: (float(lo), float(hi)) for k, (lo, hi) in self.limits.items()}),
        )
        names = [u.name for u in self.units]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"site: needs units with unique names, got {names}")
        for s in self.streams:
            su, ss = _split(s.source, f"site stream {s.name!r}.source")
            du, ds = _split(s.sink, f"site stream {s.name!r}.sink")
            if ss not in self.unit(su).model.y:
                raise ConfigError(
                    f"site stream {s.name!r}.source: unit {su!r} has no output {ss!r}"
                )
            m = self.unit(du).model
            if ds not in m.u and ds not in m.d:
                raise ConfigError(
                    f"site stream {s.name!r}.sink: unit {du!r} has no input or disturbance {ds!r}"
                )
        for key in self.objective:
            self.kind_of(key, "site.objective")
        for key, (lo, hi) in self.limits.items():
            if self.kind_of(key, "site.limits") != "y":
                raise ConfigError(
                    f"site.limits[{key!r}]: limits are on outputs; bound inputs "
                    f"and states through their signals"
                )
            if lo > hi:
                raise ConfigError(f"site.limits[{key!r}]: lower {lo} above upper {hi}")

    def unit(self, name: str) -> SiteUnit:
        """The unit called ``name``."""
        for u in self.units:
            if u.name == name:
                return u
        raise ConfigError(f"site: no unit {name!r}; units: {', '.join(u.name for u in self.units)}")

    def kind_of(self, key: str, where: str) -> str:
        """``"u"``, ``"d"`` or ``"y"`` for a ``unit.signal`` key."""
        unit, sig = _split(key, where)
        m = self.unit(unit).model
        for kind in ("u", "d", "y"):
            if sig in getattr(m, kind):
                return kind
        raise ConfigError(
            f"{where}[{key!r}]: unit {unit!r} has no input, disturbance or output {sig!r}"
        )


@dataclass(frozen=True)
class UnitOptimum:
    """The optimum of one unit."""

    x: NDArray[np.float64]
    """Steady states."""
    u: NDArray[np.float64]
    """Inputs."""
    d: NDArray[np.float64]
    """Disturbances (stream-fed entries as optimised)."""
    y: NDArray[np.float64]
    """Outputs."""


@dataclass(frozen=True)
class PlantwideResult:
    """Outcome of :meth:`PlantwideRto.solve`."""

    info: SolveInfo
    """Status, modified profit, iterations, time, message."""
    units: Mapping[str, UnitOptimum] = field(default_factory=dict)
    """Optimum per unit (empty unless usable)."""
    profit: float | None = None
    """Site profit of the model at the optimum without modifiers, USD/s."""
    active: tuple[str, ...] = ()
    """Active limits and bounds, e.g. ``"steel.steam_flow upper"``."""
    multipliers: Mapping[str, float] = field(default_factory=dict)
    """d(profit)/d(limit) per active output limit ``unit.signal side``, USD/s per SI unit."""
    stream_prices: Mapping[str, float] = field(default_factory=dict)
    """Shadow price of each stream (USD/s per SI unit of the stream)."""

    @property
    def usable(self) -> bool:
        """True when the optimum may be used."""
        return self.info.status.usable

    def value(self, key: str) -> float:
        """Value of ``unit.signal`` (x, u, d or y) at the optimum."""
        if not self.units:
            raise ModelError(f"plant-wide RTO result has no optimum ({self.info.status.value})")
        unit, sig = _split(key, "value")
        opt = self.units[unit]
        model = self._models[unit]
        for kind in ("x", "u", "d", "y"):
            sset = getattr(model, kind)
            if sig in sset:
                return float(getattr(opt, kind)[sset.index(sig)])
        raise ModelError(f"value: unit {unit!r} has no signal {sig!r}")

    _models: Mapping[str, PlantModel] = field(default_factory=dict, repr=False)


class PlantwideRto:
    """Economic steady-state optimiser of a :class:`Site` (NLP built once)."""

    def __init__(
        self, site: Site, *, tol: float = 1e-9, max_iter: int = 500, active_tol: float = 1e-6
    ) -> None:
        self.site = site
        self.tol, self.max_iter, self.active_tol = tol, max_iter, active_tol
        self.decisions: tuple[str, ...] = tuple(
            f"{su.name}.{n}"
            for su in site.units
            for n in (su.decisions if su.decisions is not None else su.model.u.names)
        )
        """The site decision vector (``unit.input``), the order of modifiers' gradients."""
        self.limited: tuple[str, ...] = tuple(site.limits)
        self.priced: tuple[str, ...] = tuple(site.objective)
        self._sink_d = {s.sink for s in site.streams if site.kind_of(s.sink, "stream") == "d"}
        self._build()

    # -- construction ---------------------------------------------------------
    def _build(self) -> None:
        site = self.site
        zs: list[ca.MX] = []
        pars: list[ca.MX] = []
        self._sym: dict[str, dict[str, ca.MX]] = {}
        self._zslices: dict[str, dict[str, slice]] = {}
        off = 0
        y_of: dict[str, ca.MX] = {}
        eqs: list[ca.MX] = []
        for su in site.units:
            m, n = su.model, su.name
            nx, nu, nd = len(m.x), len(m.u), len(m.d)
            zx, zu = ca.MX.sym(f"{n}_zx", nx), ca.MX.sym(f"{n}_zu", nu)
            sinks = [i for i, s in enumerate(m.d.names) if f"{n}.{s}" in self._sink_d]
            zd = ca.MX.sym(f"{n}_zd", len(sinks))
            d_par, p_par = ca.MX.sym(f"{n}_d", nd), ca.MX.sym(f"{n}_p", len(m.p))
            x, u = zx * m.x.nominal, zu * m.u.nominal
            dparts = [d_par[i] for i in range(nd)]
            for k, i in enumerate(sinks):
                dparts[i] = zd[k] * m.d.nominal[i]
            d = ca.vertcat(*dparts) if nd else ca.MX(0, 1)
            f = m.f(x, u, d, p_par)
            eqs.append(f / m.x.nominal if m.is_continuous else (f - x) / m.x.nominal)
            y_of[n] = m.h(x, u, d, p_par)
            self._sym[n] = {"x": x, "u": u, "d": d, "y": y_of[n]}
            self._zslices[n] = {
                "x": slice(off, off + nx),
                "u": slice(off + nx, off + nx + nu),
                "d": slice(off + nx + nu, off + nx + nu + len(sinks)),
            }
            self._zslices[n]["sinks"] = sinks  # type: ignore[assignment]
            off += nx + nu + len(sinks)
            zs += [zx, zu, zd]
            pars += [d_par, p_par]
        neq = sum(int(e.numel()) for e in eqs)
        streams = []
        for s in site.streams:
            su_, ss = _split(s.source, "stream")
            du, ds = _split(s.sink, "stream")
            src = y_of[su_][site.unit(su_).model.y.index(ss)]
            dm = site.unit(du).model
            kind = "u" if ds in dm.u else "d"
            sset = getattr(dm, kind)
            dst = self._sym[du][kind][sset.index(ds)]
            streams.append((src - dst) / sset[ds].nominal)
        cons = []
        for key in self.limited:
            unit, sig = _split(key, "limit")
            m = site.unit(unit).model
            cons.append(y_of[unit][m.y.index(sig)] / m.y[sig].nominal)
        self._nstream = len(streams)
        # parameters: per-unit d and p, prices, modifiers (u_ref, lambda, eps), scale
        ndec = len(self.decisions)
        w = ca.MX.sym("w", len(self.priced))
        u_ref, lam = ca.MX.sym("u_ref", ndec), ca.MX.sym("lam", ndec)
        eps = ca.MX.sym("eps", len(self.limited))
        lam_c = ca.MX.sym("lam_c", len(self.limited) * ndec)
        scale = ca.MX.sym("scale")
        profit = ca.MX(0)
        for k, key in enumerate(self.priced):
            profit += w[k] * self._expr(key)
        udec = ca.vertcat(*[self._expr(k) for k in self.decisions]) if ndec else ca.MX(0, 1)
        mod_profit = profit + ca.dot(lam, udec - u_ref)
        cons = [
            c
            + (eps[j] + ca.dot(lam_c[j * ndec : (j + 1) * ndec], udec - u_ref))
            / site.unit(_split(k, "l")[0]).model.y[_split(k, "l")[1]].nominal
            for j, (c, k) in enumerate(zip(cons, self.limited, strict=True))
        ]
        z = ca.vertcat(*zs)
        g = ca.vertcat(*eqs, *streams, *cons)
        par = ca.vertcat(*pars, w, u_ref, lam, eps, lam_c, scale)
        self._neq, self._ncons = neq, len(cons)
        self._solver = ca.nlpsol(
            "plantwide_rto",
            "ipopt",
            {"x": z, "f": -mod_profit / scale, "g": g, "p": par},
            {
                "print_time": False,
                "ipopt": {
                    "print_level": 0,
                    "sb": "yes",
                    "tol": self.tol,
                    "max_iter": self.max_iter,
                    "bound_relax_factor": 0.0,
                },
            },
        )
        self._fn = ca.Function(
            "site", [z, par], [profit, g, udec] + [self._sym[su.name]["y"] for su in site.units]
        )
        self._nz = int(z.numel())

    def _expr(self, key: str) -> ca.MX:
        unit, sig = _split(key, "key")
        m = self.site.unit(unit).model
        for kind in ("u", "d", "y"):
            sset = getattr(m, kind)
            if sig in sset:
                return self._sym[unit][kind][sset.index(sig)]
        raise ConfigError(f"plant-wide RTO: unit {unit!r} has no signal {sig!r}")

    # -- solve ----------------------------------------------------------------
    def solve(
        self,
        d: Mapping[str, Mapping[str, float]] | None = None,
        *,
        u: Mapping[str, Mapping[str, float]] | None = None,
        x: Mapping[str, Mapping[str, float]] | None = None,
        p: Mapping[str, Mapping[str, float]] | None = None,
        prices: Mapping[str, float] | None = None,
        limits: Mapping[str, tuple[float, float]] | None = None,
        modifiers: Modifiers | None = None,
    ) -> PlantwideResult:
        """Optimise the site.

        Per unit (``{unit: {signal: value}}``, defaults: the model's nominal point):
        ``d`` disturbances, ``u`` fixed inputs and the initial guess, ``x`` held states
        and the initial guess, ``p`` parameters. ``prices`` overrides objective weights
        (``unit.signal``), ``limits`` output limits; ``modifiers`` adapt the model.
        """
        site = self.site
        try:
            lbz, ubz, z0 = np.zeros(self._nz), np.zeros(self._nz), np.zeros(self._nz)
            pars = []
            for su in site.units:
                m, n, sl = su.model, su.name, self._zslices[su.name]
                dv = m.resolve("d", (d or {}).get(n))
                pv = m.resolve("p", (p or {}).get(n))
                uv = m.resolve("u", (u or {}).get(n))
                xv = m.resolve("x", (x or {}).get(n))
                free = set(su.decisions if su.decisions is not None else m.u.names)
                lbu = np.array(
                    [m.u[k].lower if k in free else uv[i] for i, k in enumerate(m.u.names)]
                )
                ubu = np.array(
                    [m.u[k].upper if k in free else uv[i] for i, k in enumerate(m.u.names)]
                )
                lbx = np.array(
                    [
                        xv[i] if k in su.held_states else m.x[k].lower
                        for i, k in enumerate(m.x.names)
                    ]
                )
                ubx = np.array(
                    [
                        xv[i] if k in su.held_states else m.x[k].upper
                        for i, k in enumerate(m.x.names)
                    ]
                )
                sinks = sl["sinks"]  # type: ignore[index]
                dn = m.d.nominal[sinks] if sinks else np.zeros(0)
                lbz[sl["x"]], ubz[sl["x"]] = lbx / m.x.nominal, ubx / m.x.nominal
                lbz[sl["u"]], ubz[sl["u"]] = lbu / m.u.nominal, ubu / m.u.nominal
                lbz[sl["d"]] = m.d.lower[sinks] / dn if sinks else []
                ubz[sl["d"]] = m.d.upper[sinks] / dn if sinks else []
                z0[sl["x"]] = np.clip(xv / m.x.nominal, lbz[sl["x"]], ubz[sl["x"]])
                z0[sl["u"]] = np.clip(uv / m.u.nominal, lbz[sl["u"]], ubz[sl["u"]])
                z0[sl["d"]] = dv[sinks] / dn if sinks else []
                pars += [dv, pv]
            w = np.array([float((prices or {}).get(k, site.objective[k])) for k in self.priced])
            for key in prices or {}:
                if key not in site.objective:
                    raise ConfigError(
                        f"prices[{key!r}]: not an objective term; terms: {', '.join(self.priced)}"
                    )
            lim = dict(site.limits)
            for key, val in (limits or {}).items():
                if key not in lim:
                    raise ConfigError(
                        f"limits[{key!r}]: not a site limit; limits: "
                        f"{', '.join(self.limited) or '(none)'}"
                    )
                lim[key] = (float(val[0]), float(val[1]))
            ndec = len(self.decisions)
            mods = modifiers
            u_ref = np.zeros(ndec) if mods is None else np.asarray(mods.u_ref, float)
            lam = np.zeros(ndec) if mods is None else np.asarray(mods.cost_gradient, float)
            if u_ref.shape != (ndec,) or lam.shape != (ndec,):
                raise ModelError(
                    f"modifiers: expected {ndec} entries (decisions "
                    f"{', '.join(self.decisions)}), got {u_ref.shape}"
                )
            eps = np.array(
                [(mods.constraint_bias.get(k, 0.0) if mods else 0.0) for k in self.limited]
            )
            lam_c = (
                np.concatenate(
                    [
                        np.asarray(
                            mods.constraint_gradient.get(k, np.zeros(ndec))
                            if mods
                            else np.zeros(ndec),
                            float,
                        ).reshape(-1)
                        for k in self.limited
                    ]
                )
                if self.limited
                else np.zeros(0)
            )
            if lam_c.shape != (len(self.limited) * ndec,):
                raise ModelError(
                    f"modifiers.constraint_gradient: expected {ndec} entries per "
                    f"limit (decisions {', '.join(self.decisions)})"
                )
        except (ModelError, ConfigError) as exc:
            return PlantwideResult(SolveInfo(SolveStatus.INVALID_INPUT, None, 0, 0.0, str(exc)))
        par0 = np.concatenate([*pars, w, u_ref, lam, eps, lam_c, [1.0]])
        scale = max(1.0, abs(float(self._fn(z0, par0)[0])))
        par = np.concatenate([*pars, w, u_ref, lam, eps, lam_c, [scale]])
        ynom = np.array(
            [site.unit(_split(k, "l")[0]).model.y[_split(k, "l")[1]].nominal for k in self.limited]
        )
        lbc = np.array([lim[k][0] for k in self.limited]) / ynom if self.limited else []
        ubc = np.array([lim[k][1] for k in self.limited]) / ynom if self.limited else []
        nfix = self._neq + self._nstream
        lbg = np.concatenate([np.zeros(nfix), lbc])
        ubg = np.concatenate([np.zeros(nfix), ubc])
        t0 = time.perf_counter()
        try:
            sol = self._solver(x0=z0, lbx=lbz, ubx=ubz, lbg=lbg, ubg=ubg, p=par)
        except RuntimeError as exc:
            msg = f"plant-wide RTO failed: {exc}"
            log.warning(msg)
            return PlantwideResult(
                SolveInfo(SolveStatus.NUMERICAL_ERROR, None, 0, time.perf_counter() - t0, msg)
            )
        elapsed = time.perf_counter() - t0
        stats = self._solver.stats()
        status = status_from_ipopt(stats)
        zopt = np.asarray(sol["x"], float).reshape(-1)
        out = self._fn(zopt, par)
        gval = np.asarray(out[1], float).reshape(-1)
        res = float(np.max(np.abs(gval[:nfix]))) if nfix else 0.0
        if status.usable and (res > 1e-6 or not np.all(np.isfinite(zopt))):
            status = SolveStatus.INFEASIBLE
        iters = int(stats.get("iter_count", 0))
        if not status.usable:
            msg = (
                f"plant-wide RTO: {status.value} ({stats.get('return_status')}); "
                f"balance residual {res:.3g}"
            )
            log.warning(msg)
            return PlantwideResult(SolveInfo(status, None, iters, elapsed, msg))
        units, models = {}, {}
        for k, su in enumerate(site.units):
            m, sl = su.model, self._zslices[su.name]
            sinks = sl["sinks"]  # type: ignore[index]
            dv = pars[2 * k].copy()
            if sinks:
                dv[sinks] = zopt[sl["d"]] * m.d.nominal[sinks]
            units[su.name] = UnitOptimum(
                zopt[sl["x"]] * m.x.nominal,
                zopt[sl["u"]] * m.u.nominal,
                dv,
                np.asarray(out[3 + k], float).reshape(-1),
            )
            models[su.name] = m
        lam_g = np.asarray(sol["lam_g"], float).reshape(-1) * scale
        lam_x = np.asarray(sol["lam_x"], float).reshape(-1)
        active, mult = self._active(gval, lbg, ubg, lam_g, zopt, lbz, ubz, lam_x, ynom)
        streams = {
            s.name: float(-lam_g[self._neq + i] / self._stream_nom(s))
            for i, s in enumerate(site.streams)
        }
        info = SolveInfo(
            status, -float(sol["f"]) * scale, iters, elapsed, str(stats.get("return_status", ""))
        )
        return PlantwideResult(
            info,
            MappingProxyType(units),
            float(out[0]),
            active,
            MappingProxyType(mult),
            MappingProxyType(streams),
            MappingProxyType(models),
        )

    def _stream_nom(self, s: Stream) -> float:
        du, ds = _split(s.sink, "stream")
        m = self.site.unit(du).model
        return (m.u if ds in m.u else m.d)[ds].nominal

    def _active(
        self,
        gval: NDArray,
        lbg: NDArray,
        ubg: NDArray,
        lam_g: NDArray,
        z: NDArray,
        lbz: NDArray,
        ubz: NDArray,
        lam_x: NDArray,
        ynom: NDArray,
    ) -> tuple[tuple[str, ...], dict[str, float]]:
        tol = self.active_tol
        nfix = self._neq + self._nstream
        active: list[str] = []
        mult: dict[str, float] = {}
        for j, key in enumerate(self.limited):
            v, lo, hi = gval[nfix + j], lbg[nfix + j], ubg[nfix + j]
            for side, lim in (("lower", lo), ("upper", hi)):
                if math.isfinite(lim) and abs(v - lim) <= tol * max(1.0, abs(lim)):
                    active.append(f"{key} {side}")
                    mult[f"{key} {side}"] = float(-lam_g[nfix + j] / ynom[j])
        for su in self.site.units:
            m, sl = su.model, self._zslices[su.name]
            free = set(su.decisions if su.decisions is not None else m.u.names)
            for i, n in enumerate(m.u.names):
                k = sl["u"].start + i
                if n in free and lbz[k] < ubz[k]:
                    for side, lim in (("lower", lbz[k]), ("upper", ubz[k])):
                        if abs(z[k] - lim) <= tol * max(1.0, abs(lim)):
                            active.append(f"{su.name}.{n} {side}")
        return tuple(active), mult

    def evaluate(self, result: PlantwideResult, key: str) -> float:
        """Shortcut for ``result.value(key)``."""
        return result.value(key)


class PriceSchedule:
    """Prices (or any disturbance) over time from a CSV price file, held piecewise constant.

    File format: a header ``time_s,<unit.signal>,...`` and one row per change,
    times in seconds ascending, values in SI (e.g. ``steel.power_price`` in USD/J).
    ``at(t)`` returns the row in force at time t (the last row with time_s <= t).
    """

    def __init__(
        self,
        times: ArrayLike,
        columns: Mapping[str, ArrayLike],
        source: str = "price schedule",
    ) -> None:
        self.times = np.asarray(times, float)
        self.columns = {k: np.asarray(v, float) for k, v in columns.items()}
        self.source = source
        if self.times.size == 0 or np.any(np.diff(self.times) <= 0):
            raise ConfigError(f"{source}: time_s must be a non-empty ascending column")
        for k, v in self.columns.items():
            _split(k, f"{source}: column")
            if v.shape != self.times.shape or not np.all(np.isfinite(v)):
                raise ConfigError(f"{source}: column {k!r} needs a finite number in every row")

    @classmethod
    def from_csv(cls, path: str | Path) -> PriceSchedule:
        """Read a price file; errors name the file, row and column."""
        path = Path(path)
        try:
            with path.open(newline="") as fh:
                rows = list(csv.reader(fh))
        except OSError as exc:
            raise ConfigError(f"price file {path}: cannot read ({exc.strerror})") from None
        if not rows or not rows[0] or rows[0][0].strip() != "time_s":
            raise ConfigError(f"price file {path}: first column of the header must be 'time_s'")
        header = [h.strip() for h in rows[0]]
        data: list[list[float]] = []
        for r, row in enumerate(rows[1:], start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) != len(header):
                raise ConfigError(
                    f"price file {path}, row {r}: {len(row)} values, expected "
                    f"{len(header)} ({', '.join(header)})"
                )
            vals = []
            for col, cell in zip(header, row, strict=True):
                try:
                    vals.append(float(cell))
                except ValueError:
                    raise ConfigError(
                        f"price file {path}, row {r}, column {col!r}: expected "
                        f"a number in SI units, got {cell!r}"
                    ) from None
            data.append(vals)
        arr = np.asarray(data, float).reshape(-1, len(header))
        return cls(
            arr[:, 0],
            {h: arr[:, j] for j, h in enumerate(header) if j},
            source=f"price file {path}",
        )

    def at(self, time_s: float) -> dict[str, float]:
        """Values in force at ``time_s`` (the first row's before the first time)."""
        i = max(0, int(np.searchsorted(self.times, time_s, side="right")) - 1)
        return {k: float(v[i]) for k, v in self.columns.items()}

    def by_unit(self, time_s: float) -> dict[str, dict[str, float]]:
        """:meth:`at` grouped ``{unit: {signal: value}}`` (to merge into ``d``)."""
        out: dict[str, dict[str, float]] = {}
        for key, val in self.at(time_s).items():
            unit, sig = _split(key, self.source)
            out.setdefault(unit, {})[sig] = val
        return out
