"""Write a plant by signal name: symbols, right-hand side, outputs -> PlantModel.

A plant module declares its signal sets, then gives two Python callables that
receive a :class:`Symbols` table (``s.c_a``, ``s["c_a"]``) and return
``{state_name: derivative}`` and ``{output_name: expression}``. Missing or extra
names raise :class:`ModelError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import casadi as ca
import numpy as np

from plant_models.errors import ModelError
from plant_models.model import OperatingPoint, PlantModel, TimeDomain
from plant_models.signals import SignalSet


class Symbols:
    """Named CasADi symbols of a model's signal sets (attribute or item access)."""

    def __init__(self, sets: Mapping[str, tuple[SignalSet, ca.SX]]) -> None:
        self._table: dict[str, ca.SX] = {}
        for sset, vec in sets.values():
            for i, name in enumerate(sset.names):
                if name in self._table:
                    raise ModelError(f"signal name {name!r} is used in two signal sets")
                self._table[name] = vec[i]

    def __getattr__(self, name: str) -> ca.SX:
        try:
            return self._table[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> ca.SX:
        try:
            return self._table[name]
        except KeyError:
            raise ModelError(f"unknown signal {name!r}") from None


Expr = Any
RhsFn = Callable[[Symbols], Mapping[str, Expr]]


def _ordered(result: Mapping[str, Expr], sset: SignalSet, what: str, model: str) -> ca.SX:
    missing = [n for n in sset.names if n not in result]
    extra = [n for n in result if n not in sset]
    if missing or extra:
        raise ModelError(
            f"model {model!r}: {what} must give exactly the {sset.kind} signals; "
            f"missing {missing}, unknown {extra}"
        )
    return ca.vertcat(*[ca.SX(result[n]) if not isinstance(result[n], ca.SX) else result[n]
                        for n in sset.names]) if len(sset) else ca.SX(0, 1)


def build_model(
    name: str,
    *,
    x: SignalSet,
    u: SignalSet,
    y: SignalSet,
    rhs: RhsFn,
    output: RhsFn,
    nominal: Mapping[str, Mapping[str, float]],
    d: SignalSet | None = None,
    p: SignalSet | None = None,
    time_domain: TimeDomain = TimeDomain.CONTINUOUS,
    sample_time_s: float | None = None,
    source: str = "",
    description: str = "",
) -> PlantModel:
    """Build a :class:`PlantModel` from named expressions.

    ``nominal`` maps ``"x"``, ``"u"``, ``"d"``, ``"p"`` to ``{name: value}``.
    """
    d = d if d is not None else SignalSet((), kind="d")
    p = p if p is not None else SignalSet((), kind="p")
    syms = {k: ca.SX.sym(k, len(s)) for k, s in (("x", x), ("u", u), ("d", d), ("p", p))}
    table = Symbols({k: (s, syms[k]) for k, s in (("x", x), ("u", u), ("d", d), ("p", p))})
    fexpr = _ordered(rhs(table), x, "rhs", name)
    hexpr = _ordered(output(table), y, "output", name)
    args = [syms["x"], syms["u"], syms["d"], syms["p"]]
    f = ca.Function("f", args, [fexpr], ["x", "u", "d", "p"], ["xdot" if
                    time_domain is TimeDomain.CONTINUOUS else "x_next"])
    h = ca.Function("h", args, [hexpr], ["x", "u", "d", "p"], ["y"])
    nom = OperatingPoint(
        x=x.vector(nominal.get("x"), what=f"{name} nominal x"),
        u=u.vector(nominal.get("u"), what=f"{name} nominal u"),
        d=d.vector(nominal.get("d", {}) if len(d) else None, what=f"{name} nominal d"),
        p=p.vector(nominal.get("p", {}) if len(p) else None, what=f"{name} nominal p"),
    )
    return PlantModel(
        name=name, x=x, u=u, d=d, p=p, y=y, f=f, h=h, nominal=nom, time_domain=time_domain,
        sample_time_s=sample_time_s, source=source, description=description,
    )


def zeros_like(sset: SignalSet) -> np.ndarray:
    """Zero vector for a signal set."""
    return np.zeros(len(sset))
