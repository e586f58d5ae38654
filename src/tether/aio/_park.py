"""`PARK`: what an aio task awaits to wait without a future.

A primitive of tether.aio that keeps its waiting tasks itself (`Event`,
`StreamReader`) parks the task with ``await PARK``. The task's stepper sees
`PARK` where it would see a future (`start_wait`) and blocks the task in the
kernel as if it waited for one, with `_task.PARKED` (one object for every
parked task) standing in for the future. The primitive wakes it with
`_task.wake_parked`, and the await returns the value given there.
``Task.cancel()`` wakes it with `CancelledError`, as it would cancel the
future.

What this saves against a future: the future itself (about 140 bytes per
waiting task), the task's wakeup object (its done callback, 40 bytes, made
only for a task that waits for a future), and on each wait the done
callback's trip through ``call_soon``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any


class Park:
    """The type of `PARK` (one instance). Its ``__await__`` is the object
    itself: the first step of the await yields it to the stepper, and the
    next (a wakeup, which always sends a value) returns the value sent. An
    error thrown in (a cancellation) is raised at the await."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "tether.aio.PARK"

    def __await__(self) -> Generator[Any, Any, Any]:
        return self  # type: ignore[return-value]  # (an iterator with send)

    def __next__(self) -> Park:
        return self

    def send(self, value: Any) -> Any:
        # (With None the await would yield PARK again: wakeups send a value.)
        raise StopIteration(value)


PARK = Park()
