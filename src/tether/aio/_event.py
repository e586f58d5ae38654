"""`Event`: asyncio's event, whose waiting tasks park without a future.

An `asyncio.Event` makes a future for every task that waits, and wakes the
tasks by setting their futures. tether.aio's `Event` is that class with
`wait` and `set` replaced: a plain aio task of a tether loop parks on the
event itself (``await PARK``, see `_park.py`), which `set` wakes directly.
Everything else (binding to the running loop, `clear`, `is_set`, the repr,
the order in which waiters wake, what a cancellation does) is asyncio's,
and a wait that cannot park (another loop's task, a trio-style task, a task
made by a task factory) waits for a future exactly as asyncio's does.
"""

from __future__ import annotations

import asyncio
from asyncio.events import _get_running_loop
from typing import Any, Literal

from ._park import PARK
from ._stdlib import current_task_of
from ._task import Task, wake_parked

#: (Called rather than reached through ``super()``, whose cell would make
#: the frame of every waiting task one slot larger.)
_stdlib_wait = asyncio.Event.wait


class Event(asyncio.Event):
    """`asyncio.Event`: a flag that tasks can wait for. `set` wakes every
    waiting task, in the order they started waiting; `clear` resets it.

    Cancellation: `wait` is cancellable (``Task.cancel()``, or a timeout);
    cancelled, it raises `CancelledError` and stops waiting. A task that
    `set` has woken but that is cancelled before it runs again gets
    `CancelledError` from `wait` (as in asyncio)."""

    # (asyncio's fields; typeshed declares `_waiters` as futures only.)
    _loop: Any
    _value: bool
    _waiters: Any

    def set(self) -> None:
        """Set the flag and wake every task waiting for it. Not a wait."""
        if not self._value:
            self._value = True
            for waiter in self._waiters:
                if type(waiter) is Task:
                    wake_parked(waiter)
                elif not waiter.done():
                    waiter.set_result(True)

    async def wait(self) -> Literal[True]:
        """Wait until the flag is set; return True (at once if it is set).
        Raises `RuntimeError` if the event was used with another loop."""
        if self._value:
            return True
        if _get_running_loop() is not self._loop:
            # Binds the event to the running loop, or refuses another loop.
            self._get_loop()  # type: ignore[attr-defined]
        # (One local only: the frame of every waiting task holds them all.)
        task = parking_task(self._loop)
        if task is None:
            return await _stdlib_wait(self)
        self._waiters.append(task)
        try:
            await PARK
        finally:
            self._waiters.remove(task)
        return True


def parking_task(loop: Any) -> Task[Any] | None:
    """The task that may park on `PARK` now: asyncio's current task of
    `loop`, if it is a plain `Task` of that (tether) loop and also the task
    its kernel is stepping. None otherwise (a stock asyncio loop, a
    trio-style task, a task factory's task, a stdlib task started eagerly
    inside a step of ours): the caller waits for a future, as asyncio does."""
    task = current_task_of(loop)
    if type(task) is not Task or task._loop._kernel.current_task is not task:  # type: ignore[union-attr]
        return None
    return task
