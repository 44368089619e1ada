"""From live parameter values to what the controller is given.

- :func:`controller_config`: the MpcConfig with the CVs' operator limits, zones,
  weights and setpoints and the MVs' rate limits (a CV out of service has no
  weight, no limits and no zone). Building it runs MpcConfig's own checks, so a
  change the controller cannot take is refused before it is queued.
- :func:`mv_bounds`: the MV bounds the controller plans with
  (``NmpcController.restrict_mvs``): the operator limits, and ``(held, held)`` for
  an MV out of service.
- :func:`setpoints`: operator setpoints by CV name (for the OperatingTarget).

Operator MV limits and in-service go through ``restrict_mvs``; CV limits, zones,
weights and MV rate limits change the problem's constant data, so they rebuild
the controller once per cycle that carries such a change (about 1 s for Van de Vusse
with N = 20 on the shared test machine; setpoint changes never rebuild).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from mpc.config import CvSpec, MpcConfig, MvSpec
from plant_models.samples import Mode

Values = Mapping[str, "float | bool | Mode | None"]


def _num(values: Values, key: str, default: float) -> float:
    v = values.get(key)
    return default if v is None or isinstance(v, Mode) else float(v)


def controller_config(base: MpcConfig, values: Values) -> MpcConfig:
    """``base`` with the live CV and MV fields applied (ConfigError when inconsistent)."""
    cvs: list[CvSpec] = []
    for c in base.cvs:
        k = f"cv.{c.name}."
        if values.get(k + "in_service") is False:
            cvs.append(
                dataclasses.replace(
                    c,
                    weight=0.0,
                    target=None,
                    lower=-math.inf,
                    upper=math.inf,
                    zone=None,
                    zone_weight=0.0,
                )
            )
            continue
        sp = values.get(k + "setpoint")
        zone = c.zone
        if zone is not None:
            zone = (_num(values, k + "zone_low", zone[0]), _num(values, k + "zone_high", zone[1]))
        cvs.append(
            dataclasses.replace(
                c,
                weight=_num(values, k + "weight", c.weight),
                target=float(sp) if isinstance(sp, float) else c.target,
                lower=_num(values, k + "low", c.lower),
                upper=_num(values, k + "high", c.upper),
                zone=zone,
            )
        )
    mvs: list[MvSpec] = []
    for m in base.mvs:
        rate = values.get(f"mv.{m.name}.rate", m.max_rate_per_s)
        mvs.append(
            dataclasses.replace(m, max_rate_per_s=float(rate) if isinstance(rate, float) else None)
        )
    return dataclasses.replace(base, cvs=tuple(cvs), mvs=tuple(mvs))


def mv_bounds(
    values: Values, names: Sequence[str], held: Mapping[str, float]
) -> dict[str, tuple[float, float]]:
    """Bounds per MV: ``(held, held)`` when out of service (``held`` must name it), else the
    operator limits."""
    out: dict[str, tuple[float, float]] = {}
    for n in names:
        if values.get(f"mv.{n}.in_service") is False:
            out[n] = (held[n], held[n])
        else:
            out[n] = (
                _num(values, f"mv.{n}.low", -math.inf),
                _num(values, f"mv.{n}.high", math.inf),
            )
    return out


def setpoints(values: Values, cv_names: Sequence[str]) -> dict[str, float]:
    """Operator setpoints of the CVs in service that have one."""
    out: dict[str, float] = {}
    for n in cv_names:
        sp = values.get(f"cv.{n}.setpoint")
        if isinstance(sp, float) and values.get(f"cv.{n}.in_service") is not False:
            out[n] = sp
    return out
