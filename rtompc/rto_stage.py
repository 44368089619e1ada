"""The RTO layer inside the closed-loop runtime: a :class:`rtompc.runtime.TargetSource`.

:class:`RtoStage` is called by :class:`rtompc.runtime.ControlLoop` every
``rto_every_n`` cycles (in a worker thread). Each call it

1. appends the measurement, the applied MVs and the measured disturbances to a
   window of recent samples (a sample with a non-GOOD value on a needed signal
   restarts the window);
2. while a hand-off ramp is in progress, advances it and returns the next
   ramped target (``OperatingTarget(source="rto")``); the window restarts,
   since the plant is being moved;
3. otherwise tests the window for steady state (Cao & Rhinehart's
   R-statistic, :class:`rto.SteadyStateDetector`, on the configured signals; a
   signal whose peak-to-peak change over the window is within its
   ``steady_tolerance`` counts as steady, which noise-free simulations need:
   the R-statistic is scale-free and a clean exponential settling never passes
   it; a signal whose spread exceeds its ``max_spread`` is moving whatever R
   says, which catches oscillations the R-statistic takes for noise) and
   returns ``(None, "waiting for steady state: <moving signals>")`` while the
   plant moves;
4. at steady state runs one RTO iteration with the window's tail averages as
   the plant data: two-step (:class:`rto.TwoStepRto`) or modifier adaptation
   (:class:`rto.ModifierAdaptation`), chosen by :class:`RtoMethod`; the RTO
   model may differ from the controller's model;
5. passes the new optimum through :class:`rto.TargetHandoff` (ramped,
   reachability-checked against the controller's model).

Modifier adaptation gets plant gradients from past operating points: every
steady operating point is one sample of the plant map. When the last points are
ill-conditioned or too far apart (always at the start, and after a long move),
:meth:`rto.ModifierAdaptation.probe_points` asks for extra points; here each
probe becomes a target the closed loop moves the plant to, waits for steady
state at, and records; after the last probe the iteration runs with them (if a
measured disturbance moves meanwhile, the probes restart from the new point).

A failed RTO iteration or hand-off keeps the previous targets (returns None)
and the status text says why. Nothing here raises on a bad solve.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray

from plant_models.errors import ConfigError
from plant_models.model import PlantModel
from plant_models.samples import Measurement, OperatingTarget, Quality, StateEstimate
from plant_models.steady_state import steady_state
from rto import (
    EstimationConfig,
    HandoffConfig,
    ModifierAdaptation,
    ModifierAdaptationConfig,
    RStatisticConfig,
    RtoConfig,
    RtoIteration,
    SteadyStateDetector,
    TargetHandoff,
    TwoStepRto,
)

logger = logging.getLogger(__name__)


class RtoMethod(Enum):
    """Which RTO iteration the stage runs at each steady state."""

    TWO_STEP = "two_step"
    """Parameter estimation, then economic optimisation (:class:`rto.TwoStepRto`)."""
    MODIFIER_ADAPTATION = "modifier_adaptation"
    """First-order modifier adaptation (:class:`rto.ModifierAdaptation`)."""


@dataclass(frozen=True)
class RtoStageConfig:
    """How the closed-loop RTO stage detects steady state, optimises and hands off."""

    rto: RtoConfig
    """Economics and limits of the optimisation (on the RTO model)."""
    handoff: HandoffConfig
    """How optima become MPC targets (on the controller's model): CVs, ramps, limits."""
    steady_signals: tuple[str, ...]
    """Signals tested for steady state: measured outputs/disturbances or MV names."""
    method: RtoMethod = RtoMethod.MODIFIER_ADAPTATION
    """Two-step or modifier adaptation."""
    window_samples: int = 20
    """Samples (stage calls) in the steady-state window."""
    average_samples: int = 5
    """Trailing samples of the window averaged into the plant data handed to RTO."""
    detector: RStatisticConfig = field(default_factory=RStatisticConfig)
    """Filter factors and false-alarm probability of the R-statistic test."""
    steady_tolerance: Mapping[str, float] = field(default_factory=dict)
    """Deadband per signal (SI): peak-to-peak change over the window at or below it counts as
    steady whatever R says (needed for noise-free signals)."""
    max_spread: Mapping[str, float] = field(default_factory=dict)
    """Largest peak-to-peak change per signal over the window (SI) for a steady verdict,
    whatever R says: catches oscillations (e.g. a limit-cycling loop), which the R-statistic
    takes for noise."""
    estimation: EstimationConfig | None = None
    """Parameters and measurements of the two-step estimation (required for TWO_STEP)."""
    modifier: ModifierAdaptationConfig = field(default_factory=ModifierAdaptationConfig)
    """Filter gain, gradient source and probe steps of modifier adaptation."""

    def __post_init__(self) -> None:
        for name, cls in (("rto", RtoConfig), ("handoff", HandoffConfig),
                          ("detector", RStatisticConfig),
                          ("modifier", ModifierAdaptationConfig)):
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"RtoStageConfig.{name}: expected a {cls.__name__}, got "
                                  f"{type(getattr(self, name)).__name__}")
        try:
            object.__setattr__(self, "method", RtoMethod(self.method))
        except ValueError:
            raise ConfigError(f"RtoStageConfig.method: expected one of "
                              f"{[m.value for m in RtoMethod]}, got {self.method!r}") from None
        signals = (self.steady_signals,) if isinstance(self.steady_signals, str) else tuple(
            self.steady_signals)
        if not signals:
            raise ConfigError("RtoStageConfig.steady_signals: expected at least one signal name")
        if len(set(signals)) != len(signals):
            raise ConfigError(f"RtoStageConfig.steady_signals: duplicate names in {signals}")
        object.__setattr__(self, "steady_signals", signals)
        for name in ("window_samples", "average_samples"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, int):
                raise ConfigError(f"RtoStageConfig.{name}: expected an integer, got {val!r}")
        if self.window_samples < self.detector.warmup + 1:
            raise ConfigError(
                f"RtoStageConfig.window_samples: expected >= detector.warmup + 1 = "
                f"{self.detector.warmup + 1}, got {self.window_samples}")
        if not 1 <= self.average_samples <= self.window_samples:
            raise ConfigError(f"RtoStageConfig.average_samples: expected 1..window_samples="
                              f"{self.window_samples}, got {self.average_samples}")
        for attr in ("steady_tolerance", "max_spread"):
            tol = dict(getattr(self, attr))
            for key, val in tol.items():
                if key not in signals:
                    raise ConfigError(f"RtoStageConfig.{attr}[{key!r}]: not one of the "
                                      f"steady_signals {signals}")
                if not (isinstance(val, (int, float)) and math.isfinite(val) and val >= 0):
                    raise ConfigError(f"RtoStageConfig.{attr}[{key!r}]: expected a finite "
                                      f"number >= 0, got {val!r}")
            object.__setattr__(self, attr,
                               MappingProxyType({k: float(v) for k, v in tol.items()}))
        for key, spread in self.max_spread.items():
            if spread < self.steady_tolerance.get(key, 0.0):
                raise ConfigError(f"RtoStageConfig.max_spread[{key!r}]: {spread} is below "
                                  f"steady_tolerance[{key!r}]")
        if self.method is RtoMethod.TWO_STEP and not isinstance(self.estimation,
                                                                EstimationConfig):
            raise ConfigError("RtoStageConfig.estimation: an EstimationConfig is required for "
                              "method two_step")


@dataclass(frozen=True)
class SteadyPoint:
    """Plant data averaged over the tail of a steady window."""

    time_s: float
    """Plant time of the last sample of the window."""
    u: NDArray[np.float64]
    """Applied MVs, ordered like the RTO model's ``u``."""
    d: NDArray[np.float64]
    """Measured disturbances, ordered like the RTO model's ``d``."""
    y: dict[str, float]
    """Averaged signals by name: measured outputs and disturbances, and the applied MVs."""


class RtoStage:
    """Steady-state-gated RTO (two-step or modifier adaptation) feeding MPC targets."""

    def __init__(
        self,
        rto_model: PlantModel,
        control_model: PlantModel,
        config: RtoStageConfig,
        *,
        rto_p: Mapping[str, float] | ArrayLike | None = None,
        control_p: Mapping[str, float] | ArrayLike | None = None,
    ) -> None:
        config.rto.validate(rto_model)
        if set(rto_model.u.names) != set(control_model.u.names):
            raise ConfigError(
                f"RtoStage: RTO model {rto_model.name!r} inputs {rto_model.u.names} differ from "
                f"the controller model {control_model.name!r} inputs {control_model.u.names}")
        known = (*control_model.y.names, *control_model.d.names, *control_model.u.names)
        for name in config.steady_signals:
            if name not in known:
                raise ConfigError(f"RtoStageConfig.steady_signals: {name!r} is not an output, "
                                  f"disturbance or MV of {control_model.name!r}")
        self.rto_model, self.control_model, self.config = rto_model, control_model, config
        self.control_p = control_model.resolve("p", control_p)
        self.runner: TwoStepRto | ModifierAdaptation
        if config.method is RtoMethod.TWO_STEP:
            if config.estimation is None:  # RtoStageConfig checks this too
                raise ConfigError("RtoStageConfig.estimation: required for method two_step")
            self.runner = TwoStepRto(rto_model, config.rto, config.estimation, rto_p)
        else:
            self.runner = ModifierAdaptation(rto_model, config.rto, config.modifier, rto_p)
        self.handoff = TargetHandoff(control_model, config.handoff)
        self.detector = SteadyStateDetector(config.detector)
        self.iterations: list[RtoIteration] = []
        """Every RTO iteration run so far (accepted or not)."""
        self.steady_points: list[SteadyPoint] = []
        """Every steady operating point handed to RTO (base points and probes)."""
        self._window: deque[tuple[float, dict[str, float]]] = deque(
            maxlen=config.window_samples)
        self._desired: NDArray[np.float64] = rto_model.nominal.u.copy()  # RTO model's u order
        self._d_handoff: NDArray[np.float64] = rto_model.nominal.d.copy()
        self._ramping = False
        self._started = False
        self._base: SteadyPoint | None = None
        self._probes: list[NDArray[np.float64]] = []
        self._probe_data: list[tuple[NDArray[np.float64], dict[str, float]]] = []

    # ------------------------------------------------------------------
    def update(
        self, cycle: int, measurement: Measurement, estimate: StateEstimate,
        u: NDArray[np.float64], d: NDArray[np.float64],
    ) -> tuple[OperatingTarget | None, str]:
        """New targets (None keeps the current ones) and a status text (the TargetSource)."""
        sample = self._sample(measurement, u, d)
        if not self._started:
            self._start(measurement.time_s, sample)
        if self._ramping:
            self._window.clear()
            return self._advance(measurement.time_s, "rto: hand-off ramp")
        bad = [n for n in self._needed() if not math.isfinite(sample.get(n, math.nan))]
        if bad:
            self._window.clear()
            return None, f"waiting for steady state: no good value for {', '.join(bad)}; " \
                         f"window restarted"
        self._window.append((measurement.time_s, sample))
        n = len(self._window)
        if n < self.config.window_samples:
            return None, f"waiting for steady state: window {n}/{self.config.window_samples} samples"
        names = self.config.steady_signals
        data = np.array([[s[k] for k in names] for _, s in self._window])
        check = self.detector.check(data, names)
        spread = {k: float(np.ptp(data[:, j])) for j, k in enumerate(names)}
        cfg = self.config
        moving = [f"{k} (R={check.r[k]:.2f})" for k in names
                  if k in check.moving and spread[k] > cfg.steady_tolerance.get(k, 0.0)]
        moving += [f"{k} (spread {spread[k]:.3g} > {cfg.max_spread[k]:.3g})" for k in names
                   if spread[k] > cfg.max_spread.get(k, math.inf)]
        if moving:
            return None, f"waiting for steady state: {', '.join(moving)} moving (R_crit " \
                         f"{check.r_critical:.2f})"
        point = self._steady_point()
        self.steady_points.append(point)
        self._window.clear()
        return self._iterate(point)

    # ------------------------------------------------------------------
    def _needed(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.config.steady_signals, *self._data_names())))

    def _data_names(self) -> tuple[str, ...]:
        m, cfg = self.rto_model, self.config
        names = [n for n in cfg.rto.prices if n in m.y]
        names += [n for n in cfg.rto.limits if n in m.y]
        if cfg.method is RtoMethod.TWO_STEP and cfg.estimation is not None:
            names += list(cfg.estimation.measured)
        return tuple(dict.fromkeys(names))

    def _sample(self, meas: Measurement, u: NDArray, d: NDArray) -> dict[str, float]:
        cm = self.control_model
        out: dict[str, float] = {}
        for i, name in enumerate(meas.names):
            ok = meas.quality[i] is Quality.GOOD and bool(np.isfinite(meas.values[i]))
            out[name] = float(meas.values[i]) if ok else math.nan
        uv, dv = np.asarray(u, float).reshape(-1), np.asarray(d, float).reshape(-1)
        for i, name in enumerate(cm.u.names):
            out[name] = float(uv[i])
        for i, name in enumerate(cm.d.names):
            if name not in out:
                out[name] = float(dv[i])
        return out

    def _start(self, time_s: float, sample: Mapping[str, float]) -> None:
        """Start the hand-off ramps from the plant's values (MVs, measured CVs)."""
        cm = self.control_model
        current = {n: sample[n] for n in self.handoff.mvs}
        for n in self.config.handoff.cvs:
            current[n] = sample.get(n, math.nan)
        if any(not math.isfinite(v) for v in current.values()):
            uv = np.array([sample[n] for n in cm.u.names])
            dv = np.array([sample.get(n, cm.nominal.d[i]) for i, n in enumerate(cm.d.names)])
            ss = steady_state(cm, uv, dv, self.control_p, raise_on_failure=False)
            for n in self.config.handoff.cvs:
                if not math.isfinite(current[n]) and ss.y is not None:
                    current[n] = float(ss.y[cm.y.index(n)])
        if all(math.isfinite(v) for v in current.values()):
            self.handoff.reset(time_s, current)
            self._started = True

    def _steady_point(self) -> SteadyPoint:
        m = self.rto_model
        tail = list(self._window)[-self.config.average_samples:]
        keys = [k for k in tail[-1][1] if all(math.isfinite(s.get(k, math.nan)) for _, s in tail)]
        avg = {k: float(np.mean([s[k] for _, s in tail])) for k in keys}
        u = np.array([avg[n] for n in m.u.names])
        d = np.array([avg.get(n, m.nominal.d[i]) for i, n in enumerate(m.d.names)])
        return SteadyPoint(tail[-1][0], u, d, avg)

    def _iterate(self, point: SteadyPoint) -> tuple[OperatingTarget | None, str]:
        runner, head = self.runner, f"rto ({self.config.method.value})"
        note = ""
        if self._base is not None:
            changed = self._disturbances_changed(self._base, point)
            if changed:  # probes must see the base point's disturbances: start again here
                self._base, self._probes, self._probe_data = None, [], []
                note = f"{', '.join(changed)} changed during gradient probing, probes restarted; "
        try:
            if isinstance(runner, ModifierAdaptation):
                if self._base is not None:  # this steady point is a gradient probe
                    self._probe_data.append((point.u, point.y))
                    if len(self._probe_data) < len(self._probes):
                        return self._go_probe(point)
                    base, probes = self._base, list(self._probe_data)
                    self._base, self._probes, self._probe_data = None, [], []
                    it = runner.step(base.u, base.d, base.y, probes)
                else:
                    self._probes = runner.probe_points(point.u)
                    if self._probes:
                        self._base, self._probe_data = point, []
                        return self._go_probe(point, note)
                    it = runner.step(point.u, point.d, point.y)
            else:
                it = runner.step(point.u, point.d, point.y)
        except Exception as exc:  # noqa: BLE001 - a bad iteration keeps the targets
            self._base, self._probes, self._probe_data = None, [], []
            logger.warning("%s: iteration error: %s", head, exc)
            return None, f"{head}: iteration error, previous targets kept: {exc}"
        self.iterations.append(it)
        head = (f"rto iteration {it.index} ({self.config.method.value}, "
                f"{it.plant_evaluations} plant point(s)): plant profit {it.plant_profit:.3f}")
        if not it.accepted:
            logger.warning("%s: %s: %s", head, it.status.value, it.message)
            return None, f"{head}; failed ({it.status.value}), previous targets kept: {it.message}"
        return self._hand_off(point, it.target, f"{head}; new optimum")

    def _go_probe(self, point: SteadyPoint, note: str = "") -> tuple[OperatingTarget | None, str]:
        """Send the plant (now steady at ``point``) to the next gradient probe."""
        k = len(self._probe_data)
        return self._hand_off(point, self._probes[k],
                              f"rto: {note}probing the plant gradient, point {k + 1}/"
                              f"{len(self._probes)}")

    def _disturbances_changed(self, base: SteadyPoint, point: SteadyPoint) -> list[str]:
        """Measured disturbances that moved between two steady points (beyond their
        steady_tolerance, or 0.1 % of their nominal value)."""
        m = self.rto_model
        return [n for i, n in enumerate(m.d.names)
                if abs(point.d[i] - base.d[i]) > max(self.config.steady_tolerance.get(n, 0.0),
                                                     1e-3 * abs(m.d[n].nominal))]

    def _hand_off(self, point: SteadyPoint, u_rto: NDArray[np.float64],
                  head: str) -> tuple[OperatingTarget | None, str]:
        self._desired = np.asarray(u_rto, float)
        self._d_handoff = point.d
        # the ramp starts from where the plant is now, not from the last issued target
        current = {n: point.y[n] for n in self.handoff.mvs if n in point.y}
        current.update({n: point.y[n] for n in self.config.handoff.cvs if n in point.y})
        if len(current) == len(self.handoff.mvs) + len(self.config.handoff.cvs):
            self.handoff.reset(point.time_s, current)
        return self._advance(point.time_s, head)

    def _advance(self, time_s: float, head: str) -> tuple[OperatingTarget | None, str]:
        m = self.rto_model
        u_named = {n: float(self._desired[i]) for i, n in enumerate(m.u.names)}
        cm = self.control_model
        d_named = {n: float(self._d_handoff[m.d.index(n)]) if n in m.d else cm.nominal.d[i]
                   for i, n in enumerate(cm.d.names)}
        try:
            res = self.handoff.update(time_s, u_named, d=d_named, p=self.control_p)
        except Exception as exc:  # noqa: BLE001 - the loop must go on
            self._ramping = False
            return None, f"{head}; hand-off error, previous targets kept: {exc}"
        wanted = ", ".join(f"{n}={v:.4g}" for n, v in u_named.items())
        if res.target is None or not res.info.status.usable:
            self._ramping = False
            return None, (f"{head} ({wanted}); hand-off failed, previous targets kept: "
                          f"{res.info.message}")
        self._ramping = res.ramping or self._far(res.requested)
        issued = ", ".join(f"{n}={v:.4g}" for n, v in res.target.u.items())
        note = "ramping" if self._ramping else "reached"
        reach = "" if res.reachable else "; adjusted to a reachable steady state"
        return res.target, f"{head} ({wanted}); target {note}: {issued}{reach}"

    def _far(self, requested: Mapping[str, float]) -> bool:
        """True while a filtered (filter_gain < 1) target is still away from the RTO value."""
        if self.config.handoff.filter_gain >= 1.0:
            return False
        m = self.rto_model
        return any(abs(requested[n] - self._desired[m.u.index(n)]) > 1e-6 * m.u[n].nominal
                   for n in self.handoff.mvs if n in requested and n in m.u)
