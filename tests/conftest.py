"""Suite-wide hook: in CI the independent peers are required, never silently skipped.

Tests that need Node.js with node-opcua (interoperability, strict PLC stand-in) or Debian's
Chromium with chromedriver and selenium (web console, report) skip with a reason when those
are missing on a developer's machine. ``.ci/run`` installs them and sets
``RTOMPC_REQUIRE_PEERS=1``: then such a skip is reported as a failure, so a CI machine that
lost a peer cannot pass with the tests it was meant to run left out.

It also sets ``RTOMPC_CODEGEN=off`` unless set (see below).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

REQUIRE_PEERS = os.environ.get("RTOMPC_REQUIRE_PEERS") == "1"
# The suite builds hundreds of controllers: with the default ``codegen = "auto"`` each would
# start a background gcc (tens of seconds of CPU on 2 cores). The compiled paths have their own
# tests (``codegen=True``, and tests/mpc/test_codegen_auto.py sets the variable itself).
os.environ.setdefault("RTOMPC_CODEGEN", "off")
PEER_WORDS = ("chromium", "chromedriver", "selenium", "node.js", "node-opcua", "npm ci")
"""Words of the skip reasons that mean "a required peer is missing"."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if not (REQUIRE_PEERS and report.skipped and isinstance(report.longrepr, tuple)):
        return
    reason = str(report.longrepr[2])
    if any(word in reason.lower() for word in PEER_WORDS):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid}: skipped for a missing peer, but RTOMPC_REQUIRE_PEERS=1 "
            f"(set by .ci/run, which installs the peers): {reason}"
        )
