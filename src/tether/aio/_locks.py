"""Synchronization primitives and queues: the standard library's own.

asyncio's `Lock`, `Event`, `Condition`, `Semaphore`, `BoundedSemaphore`,
`Barrier` and queues are built only on futures of the running loop
(`loop.create_future`, `call_soon`). On a tether loop those futures park
aio tasks in the kernel, so the standard classes run unchanged, with exactly
asyncio's fairness, error behaviour and exception classes. Re-exporting them
(rather than re-implementing) is the most compatible choice: an object
created through ``asyncio.Lock`` and one created through ``tether.aio.Lock``
are the same kind of object.
"""

from __future__ import annotations

from asyncio import (
    Barrier,
    BoundedSemaphore,
    BrokenBarrierError,
    Condition,
    Event,
    LifoQueue,
    Lock,
    PriorityQueue,
    Queue,
    QueueEmpty,
    QueueFull,
    Semaphore,
)

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
