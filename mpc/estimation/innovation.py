"""Innovation monitor: flags a measurement whose residual against the prediction is wrong.

Owns :class:`InnovationConfig` and :class:`InnovationMonitor`. Before each
correction the estimator hands the monitor, per validated measured output, the
innovation ``e = y - y_hat`` (measurement minus one-step prediction) and its
predicted standard deviation ``s = sqrt(C P C' + R)_ii``. The monitor works on
the normalised innovation ``nu = e / s``, which is N(0, 1) when the model and
the sensor are right, with two textbook tests per signal:

- A two-sided CUSUM (Page, "Continuous inspection schemes", Biometrika 41 (1954)
  100-115; Montgomery, *Introduction to Statistical Quality Control*, ch. 9):
  ``g+ = max(0, g+ + nu - k)``, ``g- = max(0, g- - nu - k)``, alarm when either
  exceeds ``h``. It catches a bias or a drift of the sensor: a persistent shift of
  ``delta`` standard deviations is flagged after about ``h / (delta - k)`` samples.
  With the defaults ``k = 0.5`` and ``h = 10`` the in-control average run length
  of one side is about 1.4e5 samples (Siegmund's approximation
  ``(exp(-2 D b) + 2 D b - 1) / (2 D**2)`` with ``D = delta - k`` and
  ``b = h + 1.166``; for ``delta = 0`` it is ``(exp(2 k b) - 2 k b - 1) / (2 k**2)``),
  about 39 h at 1 s when the innovations really are N(0, 1); a 2-sigma shift is
  flagged after about 7 samples, a 1-sigma shift after about 20.
- A windowed normalised innovation squared (NIS; Bar-Shalom, Li & Kirubarajan,
  *Estimation with Applications to Tracking and Navigation*, 2001, sec. 5.4):
  the sum of ``nu**2`` over the last ``nis_window`` samples is chi-square with
  ``nis_window`` degrees of freedom; alarm above its ``1 - nis_alpha`` quantile.
  It catches a sensor that became noisy or erratic (variance, not mean).

A flagged signal is left out of the estimator's update (the caller does that)
and stays flagged until its normalised innovation has stayed within
``clear_band`` for ``clear_samples`` consecutive samples; then its statistics
restart. Optionally, the estimated integrating output disturbance of a signal
is bounded (``bias_limits``): a sensor drift on an output with an offset-free
disturbance model is absorbed by that disturbance and never shows in the
innovation, so only a bound on its size can catch it (the "prediction error
limit" of commercial MPC packages).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from scipy.stats import chi2

from plant_models.errors import ConfigError

logger = logging.getLogger(__name__)


def _pos(value: object, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{label}: expected a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{label}: expected a finite number > 0, got {value!r}")
    return float(value)


def _count(value: object, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{label}: expected an integer >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class InnovationConfig:
    """Settings of the innovation monitor (statistics on normalised innovations)."""

    signals: tuple[str, ...] = ()
    """Measured outputs to monitor (empty: the monitor is off)."""
    cusum_k: float = 0.5
    """CUSUM reference value (allowance) in standard deviations: shifts smaller than this are
    ignored; 0.5 is tuned to detect a 1-sigma shift fastest."""
    cusum_h: float = 10.0
    """CUSUM decision interval in standard deviations (alarm threshold of ``g+`` / ``g-``)."""
    nis_window: int = 20
    """Samples in the windowed NIS test (0 would disable it; use ``nis_alpha`` = None)."""
    nis_alpha: float | None = 1e-6
    """False-alarm probability per full window of the NIS test (chi-square quantile);
    None: no NIS test."""
    clear_samples: int = 10
    """Consecutive samples with ``|nu| <= clear_band`` that clear a flagged signal."""
    clear_band: float = 2.0
    """Band of the normalised innovation, in standard deviations, that counts as healthy again."""
    bias_limits: Mapping[str, float] = field(default_factory=dict)
    """Largest credible estimated output disturbance ``|y_bias|`` per output (SI); beyond it the
    signal is flagged ``bias_limit``. Outputs not listed are not bounded."""

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.signals)
        if len(set(names)) != len(names):
            raise ConfigError(f"InnovationConfig.signals: duplicate names in {names}")
        object.__setattr__(self, "signals", names)
        object.__setattr__(self, "cusum_k", _pos(self.cusum_k, "InnovationConfig.cusum_k"))
        object.__setattr__(self, "cusum_h", _pos(self.cusum_h, "InnovationConfig.cusum_h"))
        _count(self.nis_window, "InnovationConfig.nis_window")
        _count(self.clear_samples, "InnovationConfig.clear_samples")
        object.__setattr__(self, "clear_band", _pos(self.clear_band, "InnovationConfig.clear_band"))
        if self.nis_alpha is not None:
            alpha = _pos(self.nis_alpha, "InnovationConfig.nis_alpha")
            if alpha >= 1:
                raise ConfigError(
                    f"InnovationConfig.nis_alpha: expected a probability in (0, 1), got {alpha}"
                )
        object.__setattr__(
            self,
            "bias_limits",
            {
                str(n): _pos(v, f"InnovationConfig.bias_limits[{n!r}]")
                for n, v in dict(self.bias_limits).items()
            },
        )

    @property
    def enabled(self) -> bool:
        """True when any signal is monitored or bounded."""
        return bool(self.signals or self.bias_limits)

    @property
    def nis_threshold(self) -> float:
        """Alarm level of the windowed NIS sum (inf without an NIS test)."""
        if self.nis_alpha is None:
            return math.inf
        return float(chi2.ppf(1.0 - self.nis_alpha, self.nis_window))


@dataclass(frozen=True)
class InnovationFlag:
    """One monitored signal flagged in this update."""

    name: str
    """Signal name."""
    reason: str
    """``innovation`` (CUSUM or NIS) or ``bias_limit``."""
    detail: str
    """Human-readable statistic and threshold, for logs."""


@dataclass
class _Track:
    g_pos: float = 0.0
    g_neg: float = 0.0
    window: deque[float] = field(default_factory=deque)
    flagged: str = ""
    healthy: int = 0


class InnovationMonitor:
    """Per-signal CUSUM and windowed NIS on normalised innovations (one instance per estimator)."""

    def __init__(self, config: InnovationConfig | None = None) -> None:
        self.config = config if config is not None else InnovationConfig()
        self._threshold = self.config.nis_threshold
        self._tracks: dict[str, _Track] = {}
        self._bias_flags: dict[str, str] = {}

    def reset(self) -> None:
        """Forget all statistics and flags."""
        self._tracks.clear()
        self._bias_flags.clear()

    @property
    def flagged(self) -> dict[str, str]:
        """Signals flagged now, with the reason (``innovation`` or ``bias_limit``)."""
        out = {n: "innovation" for n, t in self._tracks.items() if t.flagged}
        out.update({n: "bias_limit" for n in self._bias_flags})
        return out

    def statistic(self, name: str) -> tuple[float, float]:
        """Current ``(g+, g-)`` CUSUM values of a signal (zeros when not seen yet)."""
        t = self._tracks.get(name)
        return (t.g_pos, t.g_neg) if t is not None else (0.0, 0.0)

    def observe(
        self, names: Sequence[str], innovation: Sequence[float], std: Sequence[float]
    ) -> tuple[InnovationFlag, ...]:
        """Feed one sample per signal; returns the signals that are flagged after it.

        Signals not in :attr:`InnovationConfig.signals` are ignored; a non-positive or
        non-finite ``std`` skips that signal for this sample.
        """
        cfg = self.config
        out: list[InnovationFlag] = []
        for name, e, s in zip(names, innovation, std, strict=True):
            if name not in cfg.signals or not (math.isfinite(e) and math.isfinite(s) and s > 0):
                continue
            nu = float(e) / float(s)
            t = self._tracks.setdefault(name, _Track())
            if t.flagged:
                t.healthy = t.healthy + 1 if abs(nu) <= cfg.clear_band else 0
                if t.healthy >= cfg.clear_samples:
                    logger.info(
                        "innovation monitor: %s healthy again (|nu| <= %g for %d samples)",
                        name,
                        cfg.clear_band,
                        t.healthy,
                    )
                    self._tracks[name] = _Track()
                    continue
                out.append(InnovationFlag(name, "innovation", t.flagged))
                continue
            t.g_pos = max(0.0, t.g_pos + nu - cfg.cusum_k)
            t.g_neg = max(0.0, t.g_neg - nu - cfg.cusum_k)
            t.window.append(nu * nu)
            if len(t.window) > cfg.nis_window:
                t.window.popleft()
            nis = sum(t.window)
            why = ""
            if t.g_pos > cfg.cusum_h:
                why = f"CUSUM g+ {t.g_pos:.3g} > {cfg.cusum_h:g}: measurement above prediction"
            elif t.g_neg > cfg.cusum_h:
                why = f"CUSUM g- {t.g_neg:.3g} > {cfg.cusum_h:g}: measurement below prediction"
            elif len(t.window) == cfg.nis_window and nis > self._threshold:
                why = (
                    f"NIS {nis:.3g} over {cfg.nis_window} samples > {self._threshold:.3g}: "
                    f"residual too large or erratic"
                )
            if why:
                t.flagged, t.healthy = why, 0
                logger.warning(
                    "innovation monitor: %s flagged: %s (last e = %.4g, s = %.4g)", name, why, e, s
                )
                out.append(InnovationFlag(name, "innovation", why))
        return tuple(out)

    def check_biases(self, biases: Mapping[str, float]) -> tuple[InnovationFlag, ...]:
        """Bound the estimated output disturbances; returns the signals beyond their limit."""
        out: list[InnovationFlag] = []
        for name, limit in self.config.bias_limits.items():
            value = biases.get(name)
            if value is None or not math.isfinite(value):
                continue
            if abs(value) > limit:
                why = f"estimated output disturbance {value:.4g} beyond +/-{limit:g}"
                if name not in self._bias_flags:
                    logger.warning("innovation monitor: %s flagged: %s", name, why)
                self._bias_flags[name] = why
                out.append(InnovationFlag(name, "bias_limit", why))
        return tuple(out)
