"""Log set-up of the command line: levels by ``-v`` count, asyncua's internals kept quiet.

Library code only creates loggers (``logging.getLogger(__name__)``); this module, called
from :mod:`rtompc.cli`, decides what reaches the terminal:

- no ``-v``: warnings and errors; ``-v``: rtompc's own INFO lines (link lost/back, mode
  changes, the HIL's refused setpoints and watchdog trips); ``-vv``: DEBUG;
- asyncua stays at WARNING below ``-vv`` (its INFO is about a thousand lines per few
  seconds on a busy server), and its known noise is dropped: warnings it emits about its
  own shutdown of a link that is already gone (``close_secure_channel was called but
  connection is closed``) or about a server that grants a longer session timeout. These
  only printed in front of rtompc's own, clearer error lines. ``-vv`` shows everything.
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""Line format of the command line's log."""

ASYNCUA_NOISE: dict[str, tuple[str, ...]] = {
    "asyncua.client.ua_client.UaClient": (
        "close_secure_channel was called but connection is closed",
    ),
    "asyncua.client.ua_client.UASocketProtocol": (
        "close_secure_channel was called but connection is closed",
    ),
    "asyncua.client.ua_session.UaSession": ("close_session was called but connection is closed",),
    "asyncua.client.client": ("Requested session timeout to be",),
}
"""Per asyncua logger, the message beginnings dropped below ``-vv``."""


class DropNoise(logging.Filter):
    """Drops records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to judge
            return True
        return not text.startswith(self.prefixes)


def configure_logging(verbosity: int = 0) -> None:
    """Root handler and levels for ``verbosity`` = number of ``-v`` flags."""
    level = logging.WARNING - 10 * min(max(verbosity, 0), 2)
    logging.basicConfig(level=level, format=FORMAT)
    logging.getLogger().setLevel(level)
    quiet = verbosity < 2
    logging.getLogger("asyncua").setLevel(logging.WARNING if quiet else logging.NOTSET)
    for name, prefixes in ASYNCUA_NOISE.items():
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, DropNoise)]:
            logger.removeFilter(old)
        if quiet:
            logger.addFilter(DropNoise(prefixes))


def reset_logging() -> None:
    """Undo :func:`configure_logging`'s asyncua level and filters (tests)."""
    logging.getLogger("asyncua").setLevel(logging.NOTSET)
    for name in ASYNCUA_NOISE:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, DropNoise)]:
            logger.removeFilter(old)
