"""Waits that start while a segment ends (see `_loop_core.py`, "Segments").

Once the loop is frozen it runs no more callbacks or timers, so an
asyncio-level wait started then (a future, a parked `aio.Event`) can only
end by the segment's cancellation, which its nursery's cancel scope delivers
to every task. A wait that a shield keeps that cancellation from would last
for ever, and the run with it. Such a wait is ended here instead: a task
that can leave the kernel there (an aio task with no tether nursery open)
is detached, as `LoopCore._freeze` detaches the tasks that wait when the
segment starts to end; any other gets `stuck_error`.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import outcome

import tether

from .. import lowlevel

if TYPE_CHECKING:
    from ._loop_core import LoopCore
    from ._task import Task

#: Sent to a waiting kernel task at the end of a segment: "leave the kernel,
#: the aio task keeps waiting for its future".
DETACH: Any = object()
_DETACH_VALUE = outcome.Value(DETACH)


def stays_at_stop(task: Any, cancelled: bool) -> bool:
    """Whether the aio task `task`, attached and at an asyncio-level await
    as its segment ends, must unwind in this segment instead of leaving the
    kernel: it has a tether nursery open (whose children end with the
    segment), or it is `cancelled` by a tether scope it entered (not to be
    lost)."""
    if lowlevel.has_open_nurseries(task):
        return True
    return cancelled and lowlevel.cancelled_by_own_scope(task)


def detach_if_waiting(task: Task[Any]) -> None:
    """Let the aio task `task`, if it waits for its future in the kernel,
    leave the kernel and go on waiting (the stepper ends its kernel task)."""
    from ._task import WAITING, WAITING_DETACHED

    if task._task_state is WAITING:
        task._task_state = WAITING_DETACHED
        lowlevel.reschedule(task, _DETACH_VALUE)


def wait_would_last(loop: LoopCore, task: Any) -> bool:
    """Whether an asyncio-level wait of `task` (an aio task, or a trio-style
    task) in `loop`'s ending segment could never end: the segment's nursery
    is cancelled, `task` runs under it, and neither a cancellation nor a
    deadline reaches `task` (a shield with no deadline)."""
    nursery = loop._nursery
    return (
        nursery is not None
        and nursery.cancel_scope.cancel_called
        and lowlevel.effective_deadline_of(task) == math.inf
        and _runs_under(task, nursery)
    )


def _runs_under(task: Any, nursery: tether.Nursery) -> bool:
    """Whether `task` is `nursery`'s child, or a descendant of one (a task
    of a host run, under ``run_hosted``, is not)."""
    while task is not None:
        parent = task.parent_nursery
        if parent is None:
            return False
        if parent is nursery:
            return True
        task = parent.parent_task
    return False


def check_frozen_wait(loop: LoopCore, task: Any, can_leave: bool) -> None:
    """`task`, the current task, starts an asyncio-level wait while `loop`
    is frozen: if the wait would last for ever (`wait_would_last`), detach
    the task once it is blocked, if it `can_leave` the kernel, or raise
    `stuck_error`."""
    if not wait_would_last(loop, task):
        return
    if not can_leave:
        raise stuck_error(task)
    loop._token.run_sync_soon(detach_if_waiting, task)  # type: ignore[union-attr]


def stuck_error(task: Any) -> RuntimeError:
    return RuntimeError(
        f"the event loop stopped while {task!r}, which has a tether nursery open (or runs in "
        "one), was at an asyncio-level await that no cancellation reaches (a shielded tether "
        "scope, or a TaskGroup waiting for its tasks): the stopped loop runs no callbacks, so it "
        "would wait for ever, and the nursery's tasks end with the loop's run; close the "
        "nursery before the loop stops"
    )


def release_stuck_tasks(loop: LoopCore) -> None:
    """Just after the segment's nursery is cancelled: the aio tasks still
    waiting at an asyncio-level await are those a shield keeps the
    cancellation from (the others were interrupted at once), and so may be
    trio-style tasks waiting for one of the loop's futures. Of those whose
    wait would last (`wait_would_last`), detach the aio tasks that can leave
    the kernel; end the wait of the others with `stuck_error`."""
    from ._task import WAITING

    for task in sorted(loop._aio_tasks(), key=lowlevel.spawn_order):
        if task._task_state is WAITING and wait_would_last(loop, task):
            if stays_at_stop(task, False):
                lowlevel.abort_wait(task, functools.partial(_raise, stuck_error(task)))
            else:
                detach_if_waiting(task)
    # And the trio-style tasks of the segment that wait for one of its
    # futures (see `_native.py`); one whose future is done already (its
    # wakeup, a loop callback, would run in the next run) resumes now.
    waits = loop._native_waits
    for native in sorted(waits, key=lowlevel.spawn_order):
        future, wake = waits[native]
        if future.done():
            wake(future)
        elif wait_would_last(loop, native):
            lowlevel.abort_wait(native, functools.partial(_raise, stuck_error(native)))


def _raise(error: BaseException) -> None:
    raise error
