"""Live parameters: what an operator or engineer may change while the loop runs.

- :mod:`.types`: roles, sources, a change, a refusal.
- :mod:`.params`: :class:`LiveParameters`, the one model (validation, queue, journal).
- :mod:`.config`: live values -> the controller's MpcConfig, MV bounds, setpoints.
- :mod:`.apply`: :class:`LiveApplier`, how the loop applies changes at the start of a cycle.
- :mod:`.replay`, :mod:`.startup`: the restart policy, and the live model of ``rtompc run``.
- :mod:`.view`, :mod:`.frame`: the EngineView, what operator surfaces read of a running loop
  (:class:`UnitView` per control loop, :class:`EngineViews` per application, :class:`Frame`).

Restart policy (see ``docs/live-parameters.md``): the journal of the last run with the
same configuration hash is replayed at start-up (:func:`replay`), except mode requests:
the engine always starts in the mode given on the command line or in the config.
"""

from __future__ import annotations

from rtompc.live.apply import LiveApplier, LiveStep
from rtompc.live.frame import Frame
from rtompc.live.params import LiveParameters
from rtompc.live.replay import replay
from rtompc.live.types import LiveChange, LiveChangeRefused, Refusal, Role, Source
from rtompc.live.view import EngineViews, Subscription, UnitView

__all__ = [
    "EngineViews",
    "Frame",
    "LiveApplier",
    "LiveChange",
    "LiveChangeRefused",
    "LiveParameters",
    "LiveStep",
    "Refusal",
    "Role",
    "Source",
    "Subscription",
    "UnitView",
    "replay",
]
