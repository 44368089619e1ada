"""``[plantwide]``: the plant-wide RTO of a multi-unit application (placeholder section).

The site model, its streams, prices and the per-unit hand-off are added here by
the plant-wide RTO work (issue 16, deliverable 2); until then the section only
switches the coordinator's RTO hand-off on and sets its period. The
coordinator (:mod:`rtompc.multiunit`) holds a unit's targets whenever that unit
cannot take new ones (link lost, plant LOCAL, solver failing).
"""

from __future__ import annotations

from pydantic import Field

from rtompc.config.fields import PositiveSeconds, Section


class PlantwideSection(Section):
    """``[plantwide]``: the plant-wide RTO that sets every unit's targets."""

    enabled: bool = True
    """Run the plant-wide RTO (false: each unit keeps its configured targets)."""
    every_s: PositiveSeconds = Field(default=60.0)
    """Period of the plant-wide RTO, plant seconds."""
