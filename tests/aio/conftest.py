"""Helpers for the aio tests: run a coroutine in a tether loop with virtual
time, and collect what the loop's exception handler receives."""

from __future__ import annotations

import pytest

from tether import aio
from tether.testing import MockClock


def run_virtual(coro, **kwargs):
    """aio.run with a MockClock that jumps to the next timer at once."""
    return aio.run(coro, clock=MockClock(autojump_threshold=0), **kwargs)


@pytest.fixture
def run():
    return run_virtual


@pytest.fixture
def loop():
    loop = aio.new_event_loop(clock=MockClock(autojump_threshold=0))
    yield loop
    if loop.is_running():  # pragma: no cover - a test crashed mid-run
        return
    loop.close()
