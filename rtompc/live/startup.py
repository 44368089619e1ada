"""The live parameters of an application run: journaled in its historian, restart policy applied.

``rtompc run`` calls :func:`live_for_run` after the historian's run has begun: the
live model starts from the controller configuration and the run's mode, records
those initial values in the run's meta (``live_initial``), writes every change
into the historian's journal, and replays the accepted changes of
the last run with the same configuration hash (mode requests excepted; see
:mod:`rtompc.live.replay`).
"""

from __future__ import annotations

import logging

from mpc.config import MpcConfig
from plant_models.model import PlantModel
from plant_models.samples import Mode
from rtompc.historian.journal import HistorianJournal, last_run_changes
from rtompc.historian.store import Historian
from rtompc.live.params import LiveParameters
from rtompc.live.replay import replay

logger = logging.getLogger(__name__)


def live_for_run(
    model: PlantModel,
    config: MpcConfig,
    *,
    mode: Mode,
    rto_enable: bool,
    historian: Historian | None,
    config_hash: str,
) -> LiveParameters:
    """A live model for one run; with a historian, journaled and replayed from the last run."""
    journal = HistorianJournal(historian) if historian is not None else None
    live = LiveParameters(model, config, mode=mode, rto_enable=rto_enable, journal=journal)
    if historian is not None and historian.run_id is not None:
        record_initial(historian, live)
    if historian is not None and config_hash:
        n = replay(live, last_run_changes(historian, config_hash))
        if n:
            logger.info("restart policy: %d live change(s) of the last run replayed", n)
    return live


def record_initial(historian: Historian, live: LiveParameters) -> None:
    """Store the live values at start (before any replay) in the open run's meta under
    ``live_initial``: with the journal's accepted changes they give the limits in force at
    any time of the run (``rtompc report`` draws them)."""
    values = {k: (v.value if isinstance(v, Mode) else v) for k, v in live.snapshot().items()}
    try:
        historian.update_run_meta({"live_initial": values})
    except Exception as exc:  # noqa: BLE001 - a report aid must never stop a start-up
        logger.error("historian: initial live values not recorded (%s)", exc)
