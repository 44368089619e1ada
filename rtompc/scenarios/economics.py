"""Economics of a scenario: the RTO target source of the loop and the profit KPI's ideal.

- :class:`ScenarioRto` implements the runtime's ``TargetSource``: at each call it
  optimises the model's steady state at the measured disturbances and the
  current prices (:class:`rto.EconomicOptimizer`) and passes the optimum through
  the hand-off (:class:`rto.TargetHandoff`: filter, ramp, reachable target).
  With a steady-state gate it first tests the last window of measured CVs
  (:class:`rto.SteadyStateDetector`, R-statistic) and keeps the targets while
  the plant is moving.
- :class:`IdealProfit` gives the steady-state optimal profit rate of the *true*
  plant (its real parameters) at given prices and disturbances: the benchmark
  the closed loop's profit is compared with.
- :func:`profit_rate` evaluates ``sum(price * value)`` over u, d and y signals.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from plant_models.model import PlantModel
from plant_models.samples import Measurement, OperatingTarget, StateEstimate
from rto import EconomicOptimizer, HandoffConfig, RtoConfig, SteadyStateDetector, TargetHandoff
from rtompc.scenarios.spec import EconomicsSpec, RtoSpec

logger = logging.getLogger(__name__)


def _key(values: Mapping[str, float] | NDArray[np.float64]) -> tuple:
    if isinstance(values, Mapping):
        return tuple(sorted((k, float(v)) for k, v in values.items()))
    return tuple(np.round(np.asarray(values, dtype=float), 10).tolist())


class _Optimizers:
    """One EconomicOptimizer per price set (the NLP is built once per config)."""

    def __init__(self, model: PlantModel, economics: EconomicsSpec) -> None:
        self.model = model
        self.economics = economics
        self._cache: dict[tuple, EconomicOptimizer] = {}

    def get(self, prices: Mapping[str, float]) -> EconomicOptimizer:
        key = _key(prices)
        if key not in self._cache:
            cfg = RtoConfig(
                prices=dict(prices),
                limits=dict(self.economics.limits),
                decisions=self.economics.decisions,
            )
            self._cache[key] = EconomicOptimizer(self.model, cfg)
        return self._cache[key]


class ScenarioRto:
    """RTO layer of a scenario: economic optimum -> hand-off -> OperatingTarget."""

    def __init__(
        self, model: PlantModel, economics: EconomicsSpec, rto: RtoSpec, sample_time_s: float
    ) -> None:
        self.model = model
        self._gate = tuple(rto.steady_signals or rto.handoff_cvs) if rto.steady_window_s > 0 else ()
        n = max(12, int(round(rto.steady_window_s / sample_time_s)))
        self._window: deque[list[float]] = deque(maxlen=n)
        self._detector = SteadyStateDetector() if self._gate else None
        self.prices = dict(economics.prices)
        self._opt = _Optimizers(model, economics)
        limits = {k: v for k, v in economics.limits.items() if k in model.u or k in model.y}
        self._handoff = TargetHandoff(
            model,
            HandoffConfig(
                cvs=rto.handoff_cvs,
                mvs=rto.handoff_mvs,
                filter_gain=rto.filter_gain,
                max_rate=dict(rto.max_rate),
                limits=limits,
            ),
        )
        self.last_optimum: dict[str, float] = {}
        """Model inputs at the last accepted optimum."""

    def observe(self, measurement: Measurement) -> None:
        """Feed one cycle's measurement to the steady-state gate (every cycle)."""
        if self._gate:
            self._window.append(
                [measurement.value(n) if measurement.good(n) else math.nan for n in self._gate]
            )

    def steady(self) -> tuple[bool, str]:
        """Whether the gate lets the RTO run now, and why not."""
        if self._detector is None:
            return True, ""
        window = np.asarray(self._window, dtype=float)
        if len(self._window) < (self._window.maxlen or 0) or not np.all(np.isfinite(window)):
            return False, "rto waits: steady-state window not full (or has invalid values)"
        check = self._detector.check(window, self._gate)
        if not check.steady:
            return False, f"rto waits: not at steady state (moving: {', '.join(check.moving)})"
        return True, ""

    def set_prices(self, prices: Mapping[str, float]) -> None:
        """Use new prices from the next update on."""
        self.prices = dict(prices)

    def update(
        self,
        cycle: int,
        measurement: Measurement,
        estimate: StateEstimate,
        u: NDArray[np.float64],
        d: NDArray[np.float64],
    ) -> tuple[OperatingTarget | None, str]:
        """Optimise at the measured ``d`` and hand the optimum over as targets."""
        steady, why = self.steady()
        if not steady:
            return None, why
        opt = self._opt.get(self.prices)
        res = opt.solve(
            d=d, u=u, x_guess=np.clip(estimate.x, self.model.x.lower, self.model.x.upper)
        )
        if not res.status.usable or res.u is None:
            return None, f"rto {res.status.value}: {res.info.message}"
        self.last_optimum = self.model.u.mapping(res.u)
        ho = self._handoff.update(measurement.time_s, res.u, res.y, d=d)
        if ho.target is None:
            return None, f"handoff {ho.info.status.value}: {ho.info.message}"
        return ho.target, (
            f"rto {res.status.value}, model profit {res.model_profit:.6g} $/s; "
            f"handoff {ho.info.status.value}"
        )


class IdealProfit:
    """Steady-state optimal profit rate of the true plant, cached by (prices, d, p)."""

    def __init__(self, plant: PlantModel, economics: EconomicsSpec) -> None:
        self.plant = plant
        self._opt = _Optimizers(plant, economics)
        self._cache: dict[tuple, float] = {}
        self._u_guess: NDArray[np.float64] | None = None

    def rate(
        self, prices: Mapping[str, float], d: NDArray[np.float64], p: NDArray[np.float64]
    ) -> float:
        """Optimal profit rate, $/s (NaN when the optimisation fails)."""
        key = (_key(prices), _key(d), _key(p))
        if key not in self._cache:
            res = self._opt.get(prices).solve(d=d, p=p, u=self._u_guess)
            if res.status.usable and res.model_profit is not None:
                self._cache[key] = float(res.model_profit)
                self._u_guess = res.u
            else:
                logger.warning("ideal profit: optimisation failed: %s", res.info.message)
                self._cache[key] = math.nan
        return self._cache[key]


def profit_rate(
    plant: PlantModel,
    prices: Mapping[str, float],
    y: NDArray[np.float64],
    u: NDArray[np.float64],
    d: NDArray[np.float64],
) -> float:
    """``sum(price * value)`` over the priced u, d and y signals of ``plant``, $/s."""
    total = 0.0
    for name, price in prices.items():
        if name in plant.u:
            total += price * float(u[plant.u.index(name)])
        elif name in plant.d:
            total += price * float(d[plant.d.index(name)])
        else:
            total += price * float(y[plant.y.index(name)])
    return total
