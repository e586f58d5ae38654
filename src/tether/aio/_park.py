"""`PARK`: what an aio task awaits to wait without a future.

A primitive of tether.aio that keeps its waiting tasks itself (`Event`,
`StreamReader`) parks the task with ``await PARK``. The task's stepper
(`_Stepper._send`) sees `PARK` where it would see a future and blocks the
task in the kernel as if it waited for one, with `_task.PARKED` (one object
for every parked task) standing in for the future. The primitive wakes it
with `_task.wake_parked`: the await returns None, or raises the error given
there. ``Task.cancel()`` wakes it with `CancelledError`, as it would cancel
the future.

What this saves against a future: the future itself (about 140 bytes per
waiting task), the task's wakeup object (its done callback, 40 bytes, made
only for a task that waits for a future), and on each wait the done
callback's trip through ``call_soon``.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator
from typing import TYPE_CHECKING, Any


class Park:
    """The type of `PARK` (one instance).

    An await of `PARK` takes two steps, both in C (no Python frame, no
    `StopIteration` object: this is on every wakeup of a parked task, and
    a Python ``send`` that raises `StopIteration` cost twice as much):

    - ``__await__`` and ``__next__`` return `PARK` itself, so the first step
      yields it to the stepper;
    - the wakeup sends `WOKEN`, an exhausted iterator, and ``send`` is the
      builtin `next`: ``next(WOKEN)`` raises `StopIteration`, so the await
      returns None.

    An error thrown in (a cancellation, an error given to `wake_parked`) is
    raised at the await. Any other value sent in is a bug of the caller."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "tether.aio.PARK"

    #: Called by the coroutine's SEND with the value of the wakeup.
    send = next

    if TYPE_CHECKING:
        # (Set below, in C.)
        def __await__(self) -> Generator[Any, Any, None]: ...


PARK = Park()

# (Set on the class, not the instance: a builtin bound method is not a
# descriptor, so it is called without `self` and returns `PARK`.)
Park.__await__ = Park.__next__ = itertools.repeat(PARK).__next__  # type: ignore[method-assign,assignment,attr-defined]

#: What a parked task's await is sent when it is woken (see `Park`).
WOKEN: Any = iter(())
