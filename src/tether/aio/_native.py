"""Trio-style tasks inside a running aio loop, awaiting asyncio futures.

Inside `tether.aio.run`, an aio task may open a trio-style nursery
(`tether.open_nursery`) and start tether-native tasks in it. Those tasks run
in the same kernel run as the loop, so they can use the loop too: `aio`'s
I/O, `create_task`, asyncio's streams and queues, whose awaits end in an
asyncio future. The kernel hands a native task's foreign yield (such a
future) to the task's ``foreign_yield_handler``; this module is that handler
for native tasks of a running aio loop. It blocks the task until the future
is done, as an aio task's wait does, except for cancellation, which stays
the kernel's: a tether cancel scope around the await stops the wait (and
leaves the future alone, as for an aio task under a tether scope).

A native task is *adopted* (given the handler) when it can first meet a
future of the loop:

- a task started in a nursery that an aio task opened: when it is
  started, by the kernel (`Task.child_foreign_yield_handler` of aio's
  `Task` class is the handler). With `Nursery.start`, only if the aio task
  itself calls it: `start` runs the new task under its caller until it
  has started;
- any other native task of the run (a grandchild...): when it creates a
  future or a task of the loop (`loop.create_future`, `loop.create_task`),
  which is how asyncio code comes by the futures it awaits.

Invariant: only native kernel tasks whose handler is None are adopted; aio
tasks have their own handler (`Task._on_foreign_yield`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import outcome

from .. import lowlevel
from ._frozen import check_frozen_wait
from ._futures import loop_of

_WAKE_VALUE: outcome.Value[None] = outcome.Value(None)


def adopt(task: lowlevel.Task) -> None:
    """Give the native kernel task `task` the handler for asyncio futures
    (if it has no handler yet)."""
    if task.foreign_yield_handler is None:
        task.foreign_yield_handler = on_native_foreign_yield


def on_native_foreign_yield(
    task: lowlevel.Task, awaited: object
) -> Callable[[Any], lowlevel.Abort]:
    """The ``foreign_yield_handler`` of an adopted native task: `awaited`
    must be an asyncio future of a running tether loop; the task waits until
    it is done. An error raised here is thrown into the task where it
    awaited."""
    # (Imported here: _loop_core imports this module.)
    from ._loop_core import LoopCore

    blocking = getattr(awaited, "_asyncio_future_blocking", None)
    if blocking is None:
        raise TypeError(
            f"{task!r} (a trio-style task) yielded {awaited!r}, which is neither a tether "
            "trap nor an asyncio future"
        )
    future: Any = awaited
    if not isinstance(loop_of(future), LoopCore) or not loop_of(future).is_running():
        raise RuntimeError(
            f"{task!r} (a trio-style task) awaited {future!r}, which belongs to no running "
            "tether.aio loop"
        )
    if not blocking:
        raise RuntimeError(f"yield was used instead of yield from in {task!r} with {future!r}")
    future._asyncio_future_blocking = False
    loop = loop_of(future)
    if loop._frozen and not future.done():
        check_frozen_wait(loop, task, False)
    waiting = [True]
    waits = loop._native_waits

    def wake(_: object) -> None:
        # (The callback may already be queued when the wait is aborted.)
        if waiting[0]:
            waiting[0] = False
            waits.pop(task, None)
            lowlevel.reschedule(task, _WAKE_VALUE)

    future.add_done_callback(wake)
    waits[task] = (future, wake)
    if loop._frozen and future.done():
        # (Its wakeup, a loop callback, would wait for the next run.)
        loop._token.run_sync_soon(wake, future)

    def abort(raise_cancel: Any) -> lowlevel.Abort:
        # A tether scope cancelled the wait: stop waiting; the future is
        # left as it is.
        waiting[0] = False
        waits.pop(task, None)
        future.remove_done_callback(wake)
        return lowlevel.Abort.SUCCEEDED

    return abort
