"""Fault-injection points for the real-process fault tests (docs/reliability.md).

The tests need to SIGKILL a worker while it is inside a given task, and some tasks (registering a
recording's files, say) finish in milliseconds. A process started with SCAIWAVE_FAILPOINTS naming a point
halts there: it writes `DATA_DIR/failpoints/<name>` (so the test can see the point was reached) and sleeps
until it is killed. With SCAIWAVE_FAILPOINTS empty, as in every real deployment, a point costs one set
lookup.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

# A halted process is meant to be killed; this bounds the damage if a test forgets to.
HALT_SECONDS = 600


def reached_marker(name: str) -> Path:
    return Path(settings.DATA_DIR) / "failpoints" / name


def failpoint(name: str) -> None:
    """Halt here if SCAIWAVE_FAILPOINTS names this point."""
    if name not in settings.FAILPOINTS:
        return
    marker = reached_marker(name)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))
    logger.warning("failpoint reached: halting until killed", extra={"failpoint": name})
    time.sleep(HALT_SECONDS)
