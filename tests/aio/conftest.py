"""Helpers for the aio tests: run a coroutine in a tether loop with virtual
time, and collect what the loop's exception handler receives."""

from __future__ import annotations

import pytest

from tether import aio
from tether.testing import MockClock


def run_virtual(coro, **kwargs):
    """aio.run with a MockClock that jumps to the next timer at once."""
    return aio.run(coro, clock=MockClock(autojump_threshold=0), **kwargs)


def run_on(new_loop, main):
    """Run the coroutine `main()` on a loop from `new_loop` (asyncio's
    ``new_event_loop`` or tether's, for dual runs), closed afterwards;
    return its result."""
    loop = new_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


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
