"""Fixtures shared by the real-process fault tests (test_faults_stack.py, test_faults_periodic.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from livekit_emulator.testing import EmulatorProcess


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    """The LiveKit emulator as a subprocess, one per test module that asks for it."""
    with EmulatorProcess() as emu:
        yield emu
