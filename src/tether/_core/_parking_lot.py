"""`ParkingLot`: the fair wait queue every blocking primitive is built on.

What it must do:

* ``await lot.park()`` blocks the current task in the lot until someone
  wakes it; tasks are woken oldest first (``unpark(count=n)``,
  ``unpark_all()``), and the wake calls return the tasks they woke.
* A parked task can be cancelled: it leaves the queue (whatever lot it is
  in by then) and raises `Cancelled`.
* ``repark`` moves the oldest waiters to the back of another lot without
  waking them: they are then woken or cancelled as that lot's waiters.
* A lot can be *broken* (``break_lot``, or by the kernel when a task
  registered with `add_parking_lot_breaker` exits): its waiters wake with
  `BrokenResourceError`, later parks fail at once, and ``broken_by`` lists
  who broke it. Moving waiters into a broken lot wakes them with that error.
* ``count`` is an int >= 0 or ``math.inf``; fewer waiters than ``count`` is
  not an error. ``len(lot)`` and ``bool(lot)`` tell how many wait.

Design (speed matters: every Lock, Event, Condition and Semaphore wait comes
through here, and one Event may hold 100k waiters):

* The lot is a passive queue that the *kernel* fills. ``park`` yields the lot
  itself to the run loop (`park_in`), which appends the task to ``_waiters``,
  points the task's ``custom_sleep_data`` at the lot and gives it the shared
  abort marker `ABORT_BY_LEAVING_LOT`; cancelling the task deletes it from
  ``custom_sleep_data._waiters``. No closure or frame is made per wait.
* ``_waiters`` is an `OrderedDict` used as an ordered set: appending,
  taking the oldest and deleting a cancelled task from the middle are all
  O(1), in C.
* Waking goes through one helper, `_take`, which turns ``count`` into a
  number of tasks (with the checks) and removes them; taking everything
  copies and clears the queue in one go instead of popping task by task.
* ``_breakers`` is None until the lot breaks, so the kernel's check when a
  task parks is a single ``is not None``.

Invariants: a task is in ``_waiters`` exactly while it is blocked with
``custom_sleep_data`` being this lot; a broken lot has no waiters.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import outcome

from ._exceptions import BrokenResourceError
from ._ki import deliver_pending_ki
from ._run_context import GLOBAL_RUN_CONTEXT, current_task
from ._traps import ABORT_BY_LEAVING_LOT, THROW_ON_RESUME, park_in

if TYPE_CHECKING:
    from ._run import Runner
    from ._task import Task

#: What a woken waiter is sent (shared: the kernel only reads it).
_WOKEN = outcome.Value(None)


def park_refused_error(lot: ParkingLot) -> BrokenResourceError:
    """The error for a task that parks in a broken lot (the kernel raises
    it). The words are trio's, which its tests match."""
    return BrokenResourceError(f"Attempted to park in parking lot broken by {lot._breakers}")


def queue_in_lot(runner: Runner, task: Task, lot: ParkingLot) -> None:
    """`task`, stepped by `runner`, yielded `lot` (``await lot.park()``):
    queue it there, or throw `BrokenResourceError` into it if the lot is
    broken. (The step loop's, for the exact class; `foreign_yield`'s for a
    subclass.)"""
    if lot._breakers is not None:
        task._pending_throw = park_refused_error(lot)
        task._next_send = THROW_ON_RESUME
        runner.runq.append(task)
        return
    lot._waiters[task] = None
    task.custom_sleep_data = lot
    task._abort_func = ABORT_BY_LEAVING_LOT
    if runner.ki_pending and task is runner.main_task:
        deliver_pending_ki(runner)
    status = task._cancel_status
    if status is not None and status.effectively_cancelled:
        task._attempt_delivery_of_any_pending_cancel()


def _woken_by_break_error(breaker: Task) -> BrokenResourceError:
    # Starts with trio's words ("Parking lot broken by"), which tests match.
    return BrokenResourceError(
        f"Parking lot broken by {breaker!r} (a lock's owner exited without releasing "
        "it, another task registered with add_parking_lot_breaker exited, or "
        "ParkingLot.break_lot() was called)"
    )


def _count_to_take(count: object, available: int) -> int:
    """How many waiters a ``count`` argument asks for, at most `available`."""
    if type(count) is int:
        if count < 0:
            raise ValueError(f"count must be non-negative, got {count!r}")
        return count if count < available else available
    if isinstance(count, float):
        if count == math.inf:
            return available
        raise ValueError("Cannot pop a non-integer number of tasks.")  # trio's words
    if isinstance(count, int):  # a bool or an int subclass
        return _count_to_take(int(count), available)
    raise TypeError(f"count must be an int or math.inf, got {count!r}")


def _code_has_finished(task: Task) -> bool:
    """Whether the coroutine running `task`'s code has returned or raised
    (a finished coroutine or generator has no frame). Unknown kinds of
    code object count as still running."""
    code = task._code_coroutine()
    for frame_attribute in ("cr_frame", "gi_frame"):
        if hasattr(code, frame_attribute):
            return getattr(code, frame_attribute) is None
    return False


@dataclass(frozen=True)
class ParkingLotStatistics:
    """What `ParkingLot.statistics` reports: ``tasks_waiting``, how many
    tasks are parked in the lot."""

    tasks_waiting: int


class ParkingLot:
    """A FIFO queue of parked tasks. Not a checkpoint on its own: `park`
    blocks until unparked (and is cancellable); `unpark*` never block."""

    __slots__ = ("_breakers", "_waiters")

    #: The parked tasks, oldest first (the values are unused). The kernel
    #: adds a task when it parks and deletes it if it is cancelled.
    _waiters: OrderedDict[Task, None]
    #: Who broke the lot, in order; None while it is whole.
    _breakers: list[Task] | None

    def __init__(self) -> None:
        self._waiters = OrderedDict()
        self._breakers = None

    def __len__(self) -> int:
        # (Also what ``bool(lot)`` calls: true while someone waits.)
        return len(self._waiters)

    def __repr__(self) -> str:
        state = " (broken)" if self._breakers is not None else ""
        return f"<ParkingLot{state}: {len(self._waiters)} tasks parked>"

    def park(self) -> Awaitable[None]:
        """``await lot.park()``: park the current task until `unpark` picks
        it. Cancellable: a cancelled task leaves the queue and raises
        `Cancelled`. The task joins the queue when the wait starts, not when
        `park()` is called.

        Raises:
          BrokenResourceError: the lot is broken, or breaks while the task
            waits (see `break_lot`).
        """
        return park_in(self)

    def _take(self, count: object) -> list[Task]:
        """Remove the `count` oldest waiters (all of them for ``math.inf``)
        and return them, oldest first."""
        waiters = self._waiters
        if count == 1 and type(count) is int and waiters:
            # The common case (a Lock or Semaphore handing over): no checks
            # to make, no list to build up.
            return [waiters.popitem(False)[0]]
        wanted = _count_to_take(count, len(waiters))
        if wanted == len(waiters):
            taken = list(waiters)
            waiters.clear()
            return taken
        pop_oldest = waiters.popitem
        return [pop_oldest(False)[0] for _ in range(wanted)]

    @staticmethod
    def _resume(tasks: list[Task]) -> list[Task]:
        if tasks:
            wake = GLOBAL_RUN_CONTEXT.runner.reschedule
            for task in tasks:
                wake(task, _WOKEN)
        return tasks

    def unpark_all(self) -> list[Task]:
        """Wake every parked task; return them. Not a checkpoint."""
        return self._resume(self._take(math.inf))

    def unpark(self, *, count: int | float = 1) -> list[Task]:
        """Wake up to `count` parked tasks, oldest first; return them. Not a
        checkpoint: they run at the next schedule point."""
        return self._resume(self._take(count))

    def repark_all(self, new_lot: ParkingLot) -> None:
        """Move every parked task to `new_lot` (see `repark`)."""
        self.repark(new_lot, count=math.inf)

    def repark(self, new_lot: ParkingLot, *, count: int | float = 1) -> None:
        """Move up to `count` parked tasks, oldest first, to the end of
        `new_lot` without waking them. Into a broken lot, they wake with
        `BrokenResourceError` instead, as if they had parked there. Not a
        checkpoint."""
        if not isinstance(new_lot, ParkingLot):
            raise TypeError(f"can only repark into a ParkingLot, not {new_lot!r}")
        moved = self._take(count)
        if new_lot._breakers is not None:
            self._fail(moved, new_lot._breakers[0])
            return
        destination = new_lot._waiters
        for task in moved:
            destination[task] = None
            task.custom_sleep_data = new_lot

    @property
    def broken_by(self) -> list[Task]:
        """The tasks that broke this lot (see `break_lot`), in order; empty
        while it is not broken."""
        return [] if self._breakers is None else list(self._breakers)

    def break_lot(self, task: Task | None = None) -> None:
        """Break the lot, naming `task` (default: the current task) as the
        cause, which is added to `broken_by`: every parked task wakes with
        `BrokenResourceError` naming it, and every later `park` raises
        `BrokenResourceError` at once. Breaking a broken lot again only adds
        `task` to `broken_by`. The kernel calls this for lots registered
        with `add_parking_lot_breaker` when their task exits. Not a
        checkpoint."""
        breaker = current_task() if task is None else task
        if self._breakers is None:
            self._breakers = [breaker]
        else:
            self._breakers.append(breaker)
        self._fail(self._take(math.inf), breaker)

    @staticmethod
    def _fail(tasks: list[Task], breaker: Task) -> None:
        runner = GLOBAL_RUN_CONTEXT.runner
        for task in tasks:
            # One error per task: each is raised, and gets a traceback, in
            # its own task.
            runner.reschedule(task, outcome.Error(_woken_by_break_error(breaker)))

    def statistics(self) -> ParkingLotStatistics:
        """``tasks_waiting``: how many tasks are parked here."""
        waiting = len(self._waiters)
        return ParkingLotStatistics(tasks_waiting=waiting)


def add_parking_lot_breaker(task: Task, lot: ParkingLot) -> None:
    """Have the kernel break `lot` (see `ParkingLot.break_lot`) when `task`
    exits, unless `remove_parking_lot_breaker` is called first. A task can
    be registered for one lot several times (each registration is removed
    separately). Locks register their owner this way, so that the waiters of
    a lock whose owner died do not wait forever. Not a checkpoint.

    Raises:
      BrokenResourceError: if `task` has already exited (it could never
        break the lot).
    """
    if _code_has_finished(task):
        # trio's words, which its tests match.
        raise BrokenResourceError("Attempted to add already exited task as lot breaker.")
    if task._lots_to_break is None:
        task._lots_to_break = []
    task._lots_to_break.append(lot)


def remove_parking_lot_breaker(task: Task, lot: ParkingLot) -> None:
    """Undo one `add_parking_lot_breaker(task, lot)`. Not a checkpoint.

    Raises:
      RuntimeError: if `task` is not registered as a breaker of `lot`.
    """
    try:
        registered = task._lots_to_break or []
        registered.remove(lot)
    except ValueError:
        # Begins with trio's words, which its tests match.
        raise RuntimeError(
            "Attempted to remove task as breaker for a lot it is not registered for: "
            f"{task!r} is not registered to break {lot!r}"
        ) from None
