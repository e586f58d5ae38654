"""Every time the run waits for: cancel-scope deadlines and sleeping tasks'
timers, in one binary heap.

The run loop asks for the nearest time to know how long it may wait, and
after each wait expires everything that has passed: a scope's deadline
cancels the scope, a timer wakes the task that `sleep_until` parked (as
from a `CHECKPOINT`: it raises `Cancelled` when it resumes if it is in a
cancelled scope by then, as trio's sleep, a wait in a scope of its own,
does).

The heap holds entries ``[time, sequence number, target, is_timer]``;
``target`` is the `CancelScope` or the sleeping `Task`. Adding is a push;
removing (a scope exited or its deadline changed, a sleep cancelled) only
marks the entry dead (``target`` None), and dead entries are dropped when
they reach the top, or all at once when they outnumber the live ones, or
when none is left alive: both stay O(log n), and the heap at most about
twice the size of what it holds.
The sequence number keeps entries with equal times in the order they were
added, and makes two entries never compare their targets.

Invariants: ``_live`` is the number of entries in the heap whose target
is not None, and the heap is empty when that is 0 (between calls). A
scope keeps its entry (``_deadline_key``) to remove it; a sleeping task
keeps its entry in ``custom_sleep_data`` while its abort function is
`ABORT_BY_CANCELLING_TIMER`.
"""

from __future__ import annotations

import heapq
import itertools
import math
import types
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import outcome

from ._cancel_reason import DEADLINE
from ._run_context import current_runner, outside_task_error
from ._traps import ABORT_BY_CANCELLING_TIMER, CHECKPOINT, WaitTaskRescheduled

if TYPE_CHECKING:
    from ._cancel import CancelScope
    from ._task import Task

#: ``[time, sequence number, target (None once dead), is_timer]``.
DeadlineEntry: TypeAlias = list[Any]

#: Rebuild the heap without its dead entries once more than half of it is
#: dead and at least this many are: removal stays O(1) without letting
#: the heap grow with entries that will never fire.
_COMPACT_AT_LEAST = 64


class Deadlines:
    """The run's deadlines and timers."""

    __slots__ = ("_live", "_scopes", "_sequence", "_wake")

    #: The heap of entries (scopes' deadlines and timers; the name is older
    #: than the timers). The run loop tests its truth to skip `expire`
    #: when there is nothing, dead or alive, left.
    _scopes: list[DeadlineEntry]
    #: How many entries are alive (see the module docstring).
    _live: int
    #: Numbers for the entries, in the order they were added.
    _sequence: itertools.count[int]
    #: ``wake(task)``: make a task whose timer fired runnable (the run's).
    _wake: Callable[[Task], None]

    def __init__(self, wake: Callable[[Task], None]) -> None:
        self._scopes = []
        self._live = 0
        self._sequence = itertools.count()
        self._wake = wake

    def __len__(self) -> int:
        return self._live

    def add(self, deadline: float, scope: CancelScope) -> DeadlineEntry:
        """Register `scope` to be cancelled at `deadline`; returns the key
        to pass to `remove`."""
        entry = [deadline, next(self._sequence), scope, False]
        heapq.heappush(self._scopes, entry)
        self._live += 1
        return entry

    def add_timer(self, deadline: float, task: Task) -> DeadlineEntry:
        """Register `task`, parked by `sleep_until`, to be woken at
        `deadline`; returns the key to pass to `remove`."""
        entry = [deadline, next(self._sequence), task, True]
        heapq.heappush(self._scopes, entry)
        self._live += 1
        return entry

    def remove(self, key: DeadlineEntry) -> None:
        """Forget an entry that has not fired."""
        key[2] = None
        self._live -= 1
        heap = self._scopes
        if not self._live:
            # Nothing left to fire: an empty heap lets the run loop skip
            # `expire` (dead entries would keep it calling until their
            # times passed).
            heap.clear()
            return
        dead = len(heap) - self._live
        if dead > self._live and dead >= _COMPACT_AT_LEAST:
            heap[:] = [entry for entry in heap if entry[2] is not None]
            heapq.heapify(heap)

    def next_deadline(self) -> float:
        """The nearest time registered; ``inf`` for none."""
        heap = self._scopes
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
        if not heap:
            return math.inf
        deadline: float = heap[0][0]
        return deadline

    def expire(self, now: float) -> bool:
        """Fire every entry whose time is at or before `now`: cancel the
        scopes, wake the sleeping tasks. Returns whether anything fired."""
        heap = self._scopes
        heappop = heapq.heappop
        did_something = False
        while heap and heap[0][0] <= now:
            entry = heappop(heap)
            target = entry[2]
            if target is None:
                continue
            entry[2] = None
            self._live -= 1
            did_something = True
            if entry[3]:
                # (Unless something else rescheduled the task meanwhile:
                # then its sleep removes nothing and raises.)
                if target.custom_sleep_data is entry:
                    self._wake(target)
                continue
            # The scope's registration is gone; tell it so cancel() does not
            # try to remove it a second time.
            target._registered_deadline = math.inf
            target._deadline_key = None
            target._cancel(DEADLINE)
        if not self._live:
            heap.clear()  # (only dead entries are left; see `remove`)
        return did_something


#: What a task in `sleep_until` yields: one shared trap, since its abort
#: function is a marker (the entry to remove is in ``custom_sleep_data``).
_SLEEP: Final = WaitTaskRescheduled(ABORT_BY_CANCELLING_TIMER)


@types.coroutine
def sleep_until(deadline: float) -> Generator[Any, Any, None]:
    """``await sleep_until(deadline)``: the kernel's timed wait. Park the
    task until the run's clock reaches `deadline` (a number, not NaN: the
    caller checks), then resume it as from a `CHECKPOINT`. A checkpoint,
    always: a deadline already passed is a plain checkpoint.

    Cancellable: a cancellation while it waits removes the timer and
    raises `Cancelled`; a task woken by its timer raises `Cancelled` all
    the same if it is inside a cancelled scope when it resumes (what trio's
    sleep, a wait inside a scope of its own, does). Costs no cancel scope,
    no exception and no outcome when it is not cancelled."""
    runner = current_runner()
    task = runner.current_task
    if task is None:
        raise outside_task_error(runner)
    if deadline <= runner.clock.current_time():
        yield CHECKPOINT
        return
    deadlines = runner.deadlines
    entry = task.custom_sleep_data = deadlines.add_timer(deadline, task)
    # None when the timer woke the task (the loop resumed it as from a
    # checkpoint); otherwise the outcome that whoever ended the wait passed
    # to `reschedule` (a cancellation's error, after the abort removed the
    # timer).
    woken_by: outcome.Outcome[Any] | None = yield _SLEEP
    if woken_by is None:
        return
    if entry[2] is not None:
        deadlines.remove(entry)
    if type(woken_by) is outcome.Value:
        raise RuntimeError(
            "a task in tether.sleep_until() was rescheduled by something other than "
            "its timer or a cancellation"
        )
    try:
        woken_by.unwrap()
    finally:
        del woken_by
