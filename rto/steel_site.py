"""The steel works energy site for the plant-wide RTO: units, economics and limits.

One unit ``steel`` (the ``steel_energy`` model from the plant registry, written
as one model of the by-product gas network, boilers/CHP and the reheating
furnace's fuel demand). The holder contents are held at their current values
(at steady state the holders neither fill nor empty; where they sit is the
controller's business, inside their bands). The objective is the model's
``profit_rate`` output (power sold at the power price, natural gas bought,
flaring penalised), so run-time prices are the disturbances ``power_price``,
``ng_price`` and ``flare_penalty`` (a :class:`rto.plantwide.PriceSchedule`
column ``steel.power_price`` or a tag's value, passed in ``d``).

Limits (:data:`STEEL_LIMITS`): consumers' heat and mixing (least LHV) margins
non-negative, slab discharge at or up to 5 K above its target, boiler steam
within turndown and capacity and at least the process steam demand.
"""

from __future__ import annotations

import math

from plant_models.library import load
from plant_models.library.steel_energy import HOLDERS, STEAM_LIMITS
from plant_models.model import PlantModel
from rto.plantwide import PlantwideRto, Site, SiteUnit

UNIT = "steel"
"""Unit name of the gas network in the site."""

STEEL_LIMITS: dict[str, tuple[float, float]] = {
    "steel.stoves_heat_margin": (0.0, math.inf),
    "steel.stoves_lhv_margin": (0.0, math.inf),
    "steel.coke_ovens_heat_margin": (0.0, math.inf),
    "steel.coke_ovens_lhv_margin": (0.0, math.inf),
    "steel.furnace_lhv_margin": (0.0, math.inf),
    "steel.discharge_error": (0.0, 5.0),
    "steel.steam_flow": STEAM_LIMITS,
    "steel.steam_margin": (0.0, math.inf),
}
"""Output limits of the site optimisation (SI)."""


def steel_energy_site(model: PlantModel | None = None) -> Site:
    """The site: one unit ``steel`` with held holder contents, profit and limits."""
    model = model if model is not None else load("steel_energy")
    return Site(
        units=(SiteUnit(UNIT, model, held_states=tuple(f"v_{g}" for g in HOLDERS)),),
        objective={"steel.profit_rate": 1.0},
        limits=STEEL_LIMITS,
    )


def steel_energy_rto(model: PlantModel | None = None) -> PlantwideRto:
    """A :class:`PlantwideRto` of :func:`steel_energy_site`."""
    return PlantwideRto(steel_energy_site(model))
