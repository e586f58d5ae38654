"""Synchronization primitives built on `ParkingLot`.

Each primitive keeps its state in plain attributes and parks waiters in a
`ParkingLot`; the fast path (nothing to wait for) allocates nothing and is a
single checkpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import NoReturn

from ._core import ParkingLot, checkpoint


@dataclass(frozen=True)
class EventStatistics:
    tasks_waiting: int


class Event:
    """A flag that starts unset and can be set once; tasks can wait for it.

    There is no ``clear()``: an event that can be reset invites races where a
    waiter misses a set-then-clear. Create a new `Event` instead. An Event has
    no truth value (``if event:`` raises `TypeError`); call `is_set()`.
    """

    __slots__ = ("_flag", "_lot")

    def __init__(self) -> None:
        self._lot = ParkingLot()
        self._flag = False

    def __repr__(self) -> str:
        state = "set" if self._flag else f"unset, {len(self._lot)} waiting"
        return f"<tether.Event at {id(self):#x}, {state}>"

    def __bool__(self) -> NoReturn:
        raise TypeError("an Event has no truth value; use event.is_set()")

    def is_set(self) -> bool:
        """Whether the event has been set."""
        return self._flag

    def set(self) -> None:
        """Set the event and wake every waiting task. Idempotent; not a
        checkpoint."""
        if not self._flag:
            self._flag = True
            self._lot.unpark_all()

    def wait(self) -> Awaitable[None]:
        """``await event.wait()``: wait until the event is set. A checkpoint
        even when it is already set; cancellable while waiting.

        (A plain method returning the awaitable rather than an ``async def``:
        one frame fewer for each waiting task.)"""
        if self._flag:
            return checkpoint()
        return self._lot.park()

    def statistics(self) -> EventStatistics:
        """``tasks_waiting``: the number of tasks blocked in `wait`."""
        return EventStatistics(tasks_waiting=len(self._lot))
