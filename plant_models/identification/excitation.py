"""Test signals for plant step tests: steps (doublets), PRBS and GBN, per manipulated variable.

All signals are *deviations* from the operating point, with the given
amplitude, sampled at the experiment's sample time:

- STEP: a doublet per MV, one MV after the other: +amplitude for
  ``switch_time_s``, -amplitude for ``switch_time_s``, then 0 (classic
  one-at-a-time plant step test).
- PRBS: maximum-length pseudo-random binary sequence (linear feedback shift
  register) clocked every ``switch_time_s``; +-amplitude. Period 2^n - 1 clock
  periods; the register length n is the smallest that covers the experiment.
- GBN: generalised binary noise (Tulleken, Automatica 29 (1993) 285-308):
  at each sample the sign switches with probability dt / ``switch_time_s``,
  so the mean time between switches is ``switch_time_s``; +-amplitude. The
  usual choice is a mean switching time of about a third of the dominant time
  constant.

Each MV gets its own random stream (``seed`` + MV index) so the inputs are
uncorrelated, which MIMO identification needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from plant_models.errors import ModelError

# Feedback taps (1-based, Fibonacci LFSR) giving maximum-length sequences.
_LFSR_TAPS: dict[int, tuple[int, ...]] = {
    3: (3, 2), 4: (4, 3), 5: (5, 3), 6: (6, 5), 7: (7, 6), 8: (8, 6, 5, 4), 9: (9, 5),
    10: (10, 7), 11: (11, 9), 12: (12, 11, 10, 4), 13: (13, 12, 11, 8), 14: (14, 13, 12, 2),
    15: (15, 14), 16: (16, 15, 13, 4),
}


class SignalKind(Enum):
    """Kind of test signal for one MV."""

    STEP = "step"
    """Doublet: +a, -a, each held ``switch_time_s``, one MV after the other."""
    PRBS = "prbs"
    """Maximum-length pseudo-random binary sequence."""
    GBN = "gbn"
    """Generalised binary noise with a mean switching time."""
    NONE = "none"
    """Held at the operating point (not excited)."""


@dataclass(frozen=True)
class ExcitationSpec:
    """Test signal for one manipulated variable."""

    kind: SignalKind
    """Signal kind."""
    amplitude: float
    """Deviation from the operating point, in the MV's SI unit (> 0 unless NONE)."""
    switch_time_s: float
    """STEP: hold time of each half of the doublet; PRBS: clock period; GBN: mean time
    between switches. Seconds, > 0."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SignalKind(self.kind))
        if self.kind is not SignalKind.NONE and not (
            math.isfinite(self.amplitude) and self.amplitude > 0
        ):
            raise ModelError(f"excitation: amplitude must be positive, got {self.amplitude}")
        if not (math.isfinite(self.switch_time_s) and self.switch_time_s > 0):
            raise ModelError(f"excitation: switch_time_s must be positive, got {self.switch_time_s}")


def prbs(n_samples: int, sample_time_s: float, amplitude: float, switch_time_s: float,
         seed: int = 0) -> NDArray[np.float64]:
    """Maximum-length PRBS of +-amplitude, clocked every ``switch_time_s`` (rounded to samples)."""
    _check_n(n_samples, sample_time_s)
    hold = max(1, round(switch_time_s / sample_time_s))
    n_clock = math.ceil(n_samples / hold)
    bits = next((b for b in sorted(_LFSR_TAPS) if 2**b - 1 >= n_clock), max(_LFSR_TAPS))
    taps = _LFSR_TAPS[bits]
    rng = np.random.default_rng(seed)
    state = [int(v) for v in rng.integers(0, 2, bits)]
    if not any(state):
        state[0] = 1
    seq = np.empty(n_clock)
    for k in range(n_clock):
        out = state[-1]
        fb = 0
        for t in taps:
            fb ^= state[t - 1]
        state = [fb, *state[:-1]]
        seq[k] = amplitude if out else -amplitude
    return np.repeat(seq, hold)[:n_samples]


def gbn(n_samples: int, sample_time_s: float, amplitude: float, switch_time_s: float,
        seed: int = 0) -> NDArray[np.float64]:
    """Generalised binary noise: switch sign with probability dt/switch_time_s per sample."""
    _check_n(n_samples, sample_time_s)
    p_switch = min(1.0, sample_time_s / switch_time_s)
    rng = np.random.default_rng(seed)
    flips = rng.random(n_samples) < p_switch
    flips[0] = False
    sign = np.where(np.cumsum(flips) % 2 == 0, 1.0, -1.0) * (1.0 if rng.random() < 0.5 else -1.0)
    return amplitude * sign


def design_experiment(specs: Sequence[ExcitationSpec], n_samples: int, sample_time_s: float,
                      seed: int = 0, lead_in_samples: int = 0) -> NDArray[np.float64]:
    """Deviation inputs, shape (n_samples, len(specs)), one column per MV.

    The first ``lead_in_samples`` hold every MV at the operating point (so the
    record starts at steady state, which ``Detrend.INITIAL`` relies on). STEP
    doublets of the MVs follow each other in MV order; raise
    :class:`ModelError` if the experiment is too short to hold them.
    """
    _check_n(n_samples, sample_time_s)
    if not 0 <= lead_in_samples < n_samples:
        raise ModelError(
            f"excitation: lead_in_samples must be in [0, {n_samples}), got {lead_in_samples}"
        )
    out = np.zeros((n_samples, len(specs)))
    n_exc = n_samples - lead_in_samples
    step_start = lead_in_samples
    for j, spec in enumerate(specs):
        if spec.kind is SignalKind.PRBS:
            out[lead_in_samples:, j] = prbs(n_exc, sample_time_s, spec.amplitude,
                                            spec.switch_time_s, seed + j)
        elif spec.kind is SignalKind.GBN:
            out[lead_in_samples:, j] = gbn(n_exc, sample_time_s, spec.amplitude,
                                           spec.switch_time_s, seed + j)
        elif spec.kind is SignalKind.STEP:
            hold = max(1, round(spec.switch_time_s / sample_time_s))
            if step_start + 2 * hold > n_samples:
                raise ModelError(
                    f"excitation: MV {j} step doublet needs samples {step_start}..."
                    f"{step_start + 2 * hold}, experiment has {n_samples}; make it longer or "
                    f"shorten switch_time_s"
                )
            out[step_start:step_start + hold, j] = spec.amplitude
            out[step_start + hold:step_start + 2 * hold, j] = -spec.amplitude
            step_start += 2 * hold
    return out


def _check_n(n_samples: int, sample_time_s: float) -> None:
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ModelError(f"excitation: n_samples must be a positive integer, got {n_samples!r}")
    if not (math.isfinite(sample_time_s) and sample_time_s > 0):
        raise ModelError(f"excitation: sample_time_s must be positive, got {sample_time_s}")
