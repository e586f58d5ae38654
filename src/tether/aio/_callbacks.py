"""Done callbacks of tether.aio's own helpers (gather, TaskGroup, wait...):
`LoopCallback`, which the loop queues without an `asyncio.Handle`, and
`CountingHook`, which counts a group's members as they finish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class CountingHook:
    """The done callback of a group of futures (a `gather`'s children) whose
    callback has work to do only for a member that raised or was cancelled,
    and for the last member to finish; for the others it would only count
    them.

    A member that is a new task with the hook as its ``_done_hook`` is
    counted by the task's finish, which queues ``callback`` only in those
    cases. Every member of a group must be counted the same way: a group
    with other futures among its members gives every member a callback that
    calls `count_one`, or the last count could come before the callback of
    a member that finished earlier had run. ``last`` is the member that
    finished last, once all ``count`` of them have."""

    __slots__ = ("callback", "count", "finished", "last")

    def __init__(self, callback: Any) -> None:
        self.callback = callback
        self.count = 0
        self.finished = 0
        self.last: Any = None

    def count_one(self, member: Any) -> None:
        self.finished += 1
        if self.finished == self.count:
            self.last = member


class LoopCallback:
    """A done callback that tether.aio's own helpers (gather, TaskGroup,
    wait...) add to futures. ``call_soon`` queues it like any callback, in
    the same place, but without creating an `asyncio.Handle`, and runs it
    outside any context (these callbacks use no context variables)."""

    __slots__ = ("function",)

    def __init__(self, function: Callable[..., object]) -> None:
        self.function = function

    def __call__(self, *args: Any) -> None:
        self.function(*args)

    def __repr__(self) -> str:
        return f"<LoopCallback {self.function!r}>"
