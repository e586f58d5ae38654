"""Which loop is current: `get_running_loop`, `get_event_loop`,
`set_event_loop`, `new_event_loop`.

The running loop is the standard library's own notion (a tether loop sets it
while it runs), so these agree with `asyncio.get_running_loop()`. The loop
set with `set_event_loop` is also handed to the standard library's policy,
so legacy code calling `asyncio.get_event_loop()` finds it.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

from ..abc import Clock
from ._stdlib import get_running_loop_or_none, no_running_loop_message


class _CurrentLoop(threading.local):
    loop: Any = None
    set_called = False


_current = _CurrentLoop()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """An asyncio event-loop policy whose loops are tether loops.

    ``asyncio.set_event_loop_policy(tether.aio.EventLoopPolicy())`` makes the
    standard library's `asyncio.run`, `asyncio.new_event_loop` and
    `asyncio.get_event_loop` use `TetherEventLoop` (how to run an unmodified
    ``import asyncio`` program on tether on Python 3.11, whose `asyncio.run`
    has no ``loop_factory``)."""

    def new_event_loop(self) -> Any:
        """A new `TetherEventLoop` (what `asyncio.new_event_loop` and
        `asyncio.run` get under this policy)."""
        return new_event_loop()


def get_running_loop() -> Any:
    """The event loop running in this thread. Raises `RuntimeError` if there
    is none (for example, outside `tether.aio.run`)."""
    loop = get_running_loop_or_none()
    if loop is None:
        raise RuntimeError(no_running_loop_message())
    return loop


def new_event_loop(*, clock: Clock | None = None) -> Any:
    """Create a new tether event loop (not set as current, not running).

    ``clock`` (a tether extension) gives the loop a tether clock, such as
    ``tether.testing.MockClock`` for virtual time."""
    # (Imported here: the loop's modules import this one, for get_event_loop.)
    from ._loop import TetherEventLoop

    return TetherEventLoop(clock=clock)


def set_event_loop(loop: Any) -> None:
    """Make `loop` this thread's current loop (None: none), for
    `get_event_loop` calls outside a running loop."""
    if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
        raise TypeError(f"loop must be an instance of AbstractEventLoop or None, not {loop!r}")
    _current.loop = loop
    _current.set_called = True
    asyncio.set_event_loop(loop)


def forget_current_loop() -> None:
    """Forget this thread's loop set with `set_event_loop` (in a forked
    child, see `_fork.py`)."""
    _current.loop = None
    _current.set_called = False


def get_event_loop() -> Any:
    """The running loop; outside one, the loop set with `set_event_loop`.
    If none was ever set in the main thread, a new tether loop is created
    and set (with a `DeprecationWarning`, as asyncio does since 3.12).

    Raises `RuntimeError` in another thread with no loop set."""
    loop = get_running_loop_or_none()
    if loop is not None:
        return loop
    if _current.loop is not None:
        return _current.loop
    if _current.set_called or threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            f"There is no current event loop in thread {threading.current_thread().name!r}."
        )
    warnings.warn("There is no current event loop", DeprecationWarning, stacklevel=2)
    loop = new_event_loop()
    set_event_loop(loop)
    return loop
