"""Restart policy: replay the previous run's accepted changes into a fresh live model.

Policy: when the engine starts with the same configuration (same hash) as the last
run, the operator's and engineer's accepted changes of that run are applied again,
in order, journaled with source ``replay`` (so they chain over several restarts).
Mode requests are not replayed: the engine starts in the mode given on the command
line or in the config, never ON because an operator switched it ON before a crash.
With a changed configuration nothing is replayed: the file is the new truth. A
replayed change that the new state refuses is logged and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from rtompc.live.params import LiveParameters
from rtompc.live.types import LiveChangeRefused, Role, Source

logger = logging.getLogger(__name__)

NOT_REPLAYED = frozenset({"controller.mode_request", "controller.mode"})
"""Keys the restart policy never replays."""


class Entry(Protocol):
    """What replay needs of a journal row (:class:`rtompc.historian.journal.JournalRow`)."""

    @property
    def key(self) -> str:
        """Parameter key."""

    @property
    def new(self) -> object:
        """Value set."""

    @property
    def role(self) -> str:
        """Role name."""

    @property
    def user(self) -> str:
        """Who."""


def replay(live: LiveParameters, entries: Iterable[Entry]) -> int:
    """Apply ``entries`` (accepted changes of the last run) to ``live``; returns how many
    were applied."""
    n = 0
    for e in entries:
        if e.key in NOT_REPLAYED:
            continue
        try:
            role = Role(e.role)
        except ValueError:
            logger.warning("journal replay: %s has an unknown role %r; skipped", e.key, e.role)
            continue
        try:
            live.submit(e.key, e.new, role=role, user=e.user, source=Source.REPLAY)
            n += 1
        except LiveChangeRefused as exc:
            logger.warning("journal replay: %s skipped (%s)", e.key, exc)
    return n
