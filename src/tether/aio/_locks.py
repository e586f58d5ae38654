"""Synchronization primitives and queues: the standard library's own, and
an `Event` of tether's.

asyncio's `Lock`, `Condition`, `Semaphore`, `BoundedSemaphore`, `Barrier`
and queues are built only on futures of the running loop
(`loop.create_future`, `call_soon`). On a tether loop those futures park
aio tasks in the kernel, so the standard classes run unchanged, with exactly
asyncio's fairness, error behaviour and exception classes. Re-exporting them
(rather than re-implementing) is the most compatible choice: an object
created through ``asyncio.Lock`` and one created through ``tether.aio.Lock``
are the same kind of object.

`Event` is the exception: ``tether.aio.Event`` is a subclass of
`asyncio.Event` (so an instance of it) whose waiting tasks park on the event
itself instead of on a future each (see `_event.py`): about 140 bytes less
per waiting task, and a cheaper wakeup. Its behaviour is asyncio's.
"""

from __future__ import annotations

from asyncio import (
    Barrier,
    BoundedSemaphore,
    BrokenBarrierError,
    Condition,
    LifoQueue,
    Lock,
    PriorityQueue,
    Queue,
    QueueEmpty,
    QueueFull,
    Semaphore,
)

from ._event import Event

__all__ = [
    "Barrier",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "Condition",
    "Event",
    "LifoQueue",
    "Lock",
    "PriorityQueue",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "Semaphore",
]
