"""`ParkingLot`: the fair wait queue every blocking primitive is built on.

Tasks park in FIFO order and are unparked oldest first. A parked task's
``custom_sleep_data`` points at the lot it is in, so that `repark` can move
it to another lot and a cancellation removes it from whichever lot holds it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import outcome

from ._exceptions import BrokenResourceError
from ._run_context import GLOBAL_RUN_CONTEXT, current_task
from ._traps import park_in

if TYPE_CHECKING:
    from ._task import Task

_VALUE_NONE = outcome.Value(None)


def broken_lot_error(lot: ParkingLot) -> BrokenResourceError:
    """The error for a task that tries to park in a broken lot. (trio's
    wording, which code ported from trio may match on.)"""
    return BrokenResourceError(f"Attempted to park in parking lot broken by {lot._broken_by}")


def _broken_while_parked_error(breaker: Task) -> BrokenResourceError:
    return BrokenResourceError(
        f"Parking lot broken by {breaker!r} (a lock's owner exited without releasing "
        "it, another task registered with add_parking_lot_breaker exited, or "
        "ParkingLot.break_lot() was called)"
    )


def _has_exited(task: Task) -> bool:
    """Whether `task`'s code has finished (its coroutine has no frame left).
    A task whose code object cannot be inspected counts as alive."""
    coro = task._code_coroutine()
    frame = getattr(coro, "cr_frame", getattr(coro, "gi_frame", False))
    return frame is None


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
    if task._runner.current_task is not task and _has_exited(task):
        raise BrokenResourceError("Attempted to add already exited task as lot breaker.")
    lots = task._lots_to_break
    if lots is None:
        task._lots_to_break = [lot]
    else:
        lots.append(lot)


def remove_parking_lot_breaker(task: Task, lot: ParkingLot) -> None:
    """Undo one `add_parking_lot_breaker(task, lot)`. Not a checkpoint.

    Raises:
      RuntimeError: if `task` is not registered as a breaker of `lot`.
    """
    lots = task._lots_to_break
    if lots is None or lot not in lots:
        raise RuntimeError(
            "Attempted to remove task as breaker for a lot it is not registered for: "
            f"{task!r} is not registered to break {lot!r}"
        )
    lots.remove(lot)


@dataclass(frozen=True)
class ParkingLotStatistics:
    """What `ParkingLot.statistics` reports: ``tasks_waiting``, how many
    tasks are parked in the lot."""

    tasks_waiting: int


class ParkingLot:
    """A FIFO queue of parked tasks. Not a checkpoint on its own: `park`
    blocks until unparked (and is cancellable); `unpark*` never block."""

    __slots__ = ("_broken_by", "_parked")

    #: The parked tasks, oldest first (an ordered dict: removing a
    #: cancelled task from the middle is O(1)). Invariant: a task is in it
    #: exactly while it is blocked with ``_abort_func`` being
    #: `ABORT_BY_LEAVING_LOT` and ``custom_sleep_data`` being this lot.
    _parked: OrderedDict[Task, None]
    #: The tasks that broke the lot, in order; None while it is not broken.
    #: Invariant: a broken lot has no parked tasks (breaking wakes them all,
    #: and a task that parks there is refused).
    _broken_by: list[Task] | None

    def __init__(self) -> None:
        self._parked = OrderedDict()
        self._broken_by = None

    @property
    def broken_by(self) -> list[Task]:
        """The tasks that broke this lot (see `break_lot`); empty if it is
        not broken."""
        return list(self._broken_by or ())

    def break_lot(self, task: Task | None = None) -> None:
        """Break the lot, naming `task` (default: the current task) as the
        cause, which is added to `broken_by`: every parked task wakes with
        `BrokenResourceError` naming it, and every later `park` raises
        `BrokenResourceError` at once. Breaking a broken lot again only adds
        `task` to `broken_by`. The kernel calls this for lots registered
        with `add_parking_lot_breaker` when their task exits. Not a
        checkpoint."""
        if task is None:
            task = current_task()
        if self._broken_by is None:
            self._broken_by = []
        self._broken_by.append(task)
        self._wake_broken(task)

    def _wake_broken(self, breaker: Task) -> None:
        runner = GLOBAL_RUN_CONTEXT.runner
        parked = self._parked
        while parked:
            waiter, _ = parked.popitem(last=False)
            runner.reschedule(waiter, outcome.Error(_broken_while_parked_error(breaker)))

    def __len__(self) -> int:
        return len(self._parked)

    def __bool__(self) -> bool:
        return bool(self._parked)

    def __repr__(self) -> str:
        return f"<ParkingLot with {len(self._parked)} parked tasks>"

    def park(self) -> Awaitable[None]:
        """``await lot.park()``: park the current task until `unpark` picks
        it. Cancellable: a cancelled task leaves the queue and raises
        `Cancelled`. The task joins the queue when the wait starts, not when
        `park()` is called."""
        return park_in(self)

    def _pop_several(self, count: int | float) -> Iterator[Task]:
        if isinstance(count, float):
            if not math.isinf(count):
                # (trio's wording, which code ported from trio may match on.)
                raise ValueError("Cannot pop a non-integer number of tasks.")
            count = len(self._parked)
        elif not isinstance(count, int):
            raise TypeError(f"count must be an int or math.inf, got {count!r}")
        elif count < 0:
            raise ValueError(f"count must be non-negative, got {count!r}")
        parked = self._parked
        for _ in range(min(count, len(parked))):
            task, _ = parked.popitem(last=False)
            yield task

    def unpark(self, *, count: int | float = 1) -> list[Task]:
        """Wake up to `count` parked tasks, oldest first; return them."""
        runner = GLOBAL_RUN_CONTEXT.runner
        tasks = list(self._pop_several(count))
        for task in tasks:
            runner.reschedule(task, _VALUE_NONE)
        return tasks

    def unpark_all(self) -> list[Task]:
        """Wake every parked task; return them."""
        return self.unpark(count=len(self._parked))

    def repark(self, new_lot: ParkingLot, *, count: int | float = 1) -> None:
        """Move up to `count` parked tasks, oldest first, to the end of
        `new_lot` without waking them. Into a broken lot, they wake with
        `BrokenResourceError` instead, as if they had parked there."""
        if not isinstance(new_lot, ParkingLot):
            raise TypeError(f"new_lot must be a ParkingLot, got {new_lot!r}")
        for task in self._pop_several(count):
            new_lot._parked[task] = None
            task.custom_sleep_data = new_lot
        if new_lot._broken_by:
            new_lot._wake_broken(new_lot._broken_by[0])

    def repark_all(self, new_lot: ParkingLot) -> None:
        """Move every parked task to `new_lot`."""
        self.repark(new_lot, count=len(self._parked))

    def statistics(self) -> ParkingLotStatistics:
        """``tasks_waiting``: how many tasks are parked here."""
        return ParkingLotStatistics(tasks_waiting=len(self._parked))
