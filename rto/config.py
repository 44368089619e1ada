"""RtoConfig: the typed, validated description of an economic steady-state optimisation.

Prices are given per signal ("stream"): any signal of the model's ``u``, ``d``
or ``y`` set, in $ per SI unit of the signal per second of operation, so that
``profit = sum(price * value)`` is in $/s when the streams are mass flows in
kg/s. Limits are ``(lower, upper)`` pairs on any signal of ``u``, ``y`` or
``x`` by name (use ``-inf``/``inf`` for an open side). :meth:`RtoConfig.validate`
checks a config against a model and raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from plant_models.errors import ConfigError
from plant_models.model import PlantModel


def _frozen_mapping(value: Mapping, label: str) -> MappingProxyType:
    if not isinstance(value, Mapping):
        raise ConfigError(f"RtoConfig.{label}: expected a mapping by signal name, got "
                          f"{type(value).__name__}")
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class RtoConfig:
    """Economics and limits of a steady-state optimisation."""

    prices: Mapping[str, float]
    """Price per signal of u, d or y ($ per SI unit per second; negative = cost)."""
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Operating limits ``(lower, upper)`` by signal name (u, y or x), SI; tightened with the
    signal's own bounds."""
    decisions: tuple[str, ...] | None = None
    """Manipulated inputs the optimiser may move; None = all of ``u``. The others stay fixed."""
    tol: float = 1e-9
    """IPOPT convergence tolerance on the scaled problem."""
    max_iter: int = 300
    """IPOPT iteration limit."""
    profit_scale: float | None = None
    """Typical profit magnitude ($/s) used to scale the objective; None = from the initial
    guess."""
    active_tol: float = 1e-6
    """A limit is reported active when the optimum is within this fraction of the signal's
    nominal of it."""

    def __post_init__(self) -> None:
        prices = _frozen_mapping(self.prices, "prices")
        for key, val in prices.items():
            if not isinstance(val, (int, float)) or not math.isfinite(float(val)):
                raise ConfigError(
                    f"RtoConfig.prices[{key!r}]: expected a finite number, got {val!r}"
                )
        if not prices:
            raise ConfigError("RtoConfig.prices: at least one priced signal is needed")
        object.__setattr__(
            self, "prices", MappingProxyType({k: float(v) for k, v in prices.items()})
        )
        limits = _frozen_mapping(self.limits, "limits")
        clean: dict[str, tuple[float, float]] = {}
        for key, pair in limits.items():
            try:
                lo, hi = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"RtoConfig.limits[{key!r}]: expected (lower, upper), got {pair!r}"
                ) from None
            if math.isnan(lo) or math.isnan(hi):
                raise ConfigError(f"RtoConfig.limits[{key!r}]: NaN limit")
            if lo > hi:
                raise ConfigError(
                    f"RtoConfig.limits[{key!r}]: lower limit {lo} is above upper limit {hi}"
                )
            clean[key] = (lo, hi)
        object.__setattr__(self, "limits", MappingProxyType(clean))
        if self.decisions is not None:
            object.__setattr__(self, "decisions", tuple(self.decisions))
        if not (self.tol > 0 and math.isfinite(self.tol)):
            raise ConfigError(f"RtoConfig.tol: expected a positive number, got {self.tol}")
        if not (isinstance(self.max_iter, int) and self.max_iter > 0):
            raise ConfigError(f"RtoConfig.max_iter: expected a positive int, got {self.max_iter!r}")
        if self.profit_scale is not None and not (
            math.isfinite(self.profit_scale) and self.profit_scale > 0
        ):
            raise ConfigError(
                f"RtoConfig.profit_scale: expected a positive number, got {self.profit_scale}"
            )

    def decision_names(self, model: PlantModel) -> tuple[str, ...]:
        """The free inputs for ``model``."""
        return model.u.names if self.decisions is None else tuple(self.decisions)

    def bounds(self, model: PlantModel, kind: str, name: str) -> tuple[float, float]:
        """Effective (lower, upper) of a signal: its own bounds tightened by the config's limits.

        Limits apply to the first set holding the name, in the order u, y, x.
        """
        sig = getattr(model, kind)[name]
        lo, hi = sig.lower, sig.upper
        if name in self.limits and self.limit_kind(model, name) == kind:
            llo, lhi = self.limits[name]
            lo, hi = max(lo, llo), min(hi, lhi)
        return lo, hi

    @staticmethod
    def limit_kind(model: PlantModel, name: str) -> str | None:
        """Which set a limit on ``name`` constrains (u, then y, then x), or None."""
        for kind in ("u", "y", "x"):
            if name in getattr(model, kind):
                return kind
        return None

    def validate(self, model: PlantModel) -> None:
        """Raise :class:`ConfigError` naming the key if this config does not fit ``model``."""
        streams = (*model.u.names, *model.d.names, *model.y.names)
        for key in self.prices:
            if key not in streams:
                hint = " (it is a state; add it to the outputs y)" if key in model.x else ""
                raise ConfigError(
                    f"RtoConfig.prices[{key!r}]: model {model.name!r} has no stream {key!r} in "
                    f"u, d or y{hint}; streams: {', '.join(streams)}"
                )
        for key, (lo, hi) in self.limits.items():
            if key in model.d:
                raise ConfigError(
                    f"RtoConfig.limits[{key!r}]: {key!r} is a measured disturbance of "
                    f"{model.name!r}; it cannot be limited by the optimiser"
                )
            kind = self.limit_kind(model, key)
            if kind is None:
                raise ConfigError(
                    f"RtoConfig.limits[{key!r}]: model {model.name!r} has no signal {key!r} in u, "
                    f"y or x; known: {', '.join((*model.u.names, *model.y.names))}"
                )
            sig = getattr(model, kind)[key]
            if lo > sig.upper or hi < sig.lower:
                raise ConfigError(
                    f"RtoConfig.limits[{key!r}]: range [{lo}, {hi}] does not meet the signal's "
                    f"bounds [{sig.lower}, {sig.upper}] {sig.unit}: the economics are infeasible"
                )
        names = self.decision_names(model)
        if not names:
            raise ConfigError("RtoConfig.decisions: at least one free input is needed")
        for key in names:
            if key not in model.u:
                raise ConfigError(
                    f"RtoConfig.decisions: {key!r} is not a manipulated input of {model.name!r}; "
                    f"inputs: {', '.join(model.u.names)}"
                )
            lo, hi = self.bounds(model, "u", key)
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ConfigError(
                    f"RtoConfig.limits[{key!r}]: decision {key!r} has no finite "
                    f"{'lower' if not math.isfinite(lo) else 'upper'} limit; the profit may be "
                    f"unbounded: give it a limit"
                )
