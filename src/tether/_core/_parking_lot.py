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
    causes = ", ".join(repr(task) for task in lot._broken_by or ())
    return BrokenResourceError(
        f"parking lot broken by {causes}: for a lock, its owner exited without releasing it"
    )


def add_parking_lot_breaker(task: Task, lot: ParkingLot) -> None:
    """Have the kernel break `lot` (see `ParkingLot.break_lot`) if `task`
    exits before `remove_parking_lot_breaker` is called. Locks register
    their owner this way."""
    lots = task._lots_to_break
    if lots is None:
        task._lots_to_break = [lot]
    else:
        lots.append(lot)


def remove_parking_lot_breaker(task: Task, lot: ParkingLot) -> None:
    """Undo `add_parking_lot_breaker`; `ValueError` if it was not added."""
    lots = task._lots_to_break
    if lots is None or lot not in lots:
        raise ValueError(f"{task!r} is not registered to break {lot!r}")
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

    def __init__(self) -> None:
        self._parked: OrderedDict[Task, None] = OrderedDict()
        self._broken_by: list[Task] | None = None

    @property
    def broken_by(self) -> list[Task]:
        """The tasks that broke this lot (see `break_lot`); empty if it is
        not broken."""
        return list(self._broken_by or ())

    def break_lot(self, task: Task | None = None) -> None:
        """Break the lot, naming `task` (default: the current task) as the
        cause: every parked task wakes with `BrokenResourceError`, and so does
        every later `park`. The kernel calls this for lots registered with
        `add_parking_lot_breaker` when their task exits, so that the waiters
        of a lock whose owner died do not wait forever. Not a checkpoint."""
        if task is None:
            task = current_task()
        if self._broken_by is None:
            self._broken_by = []
        self._broken_by.append(task)
        runner = GLOBAL_RUN_CONTEXT.runner
        parked = self._parked
        while parked:
            waiter, _ = parked.popitem(last=False)
            runner.reschedule(waiter, outcome.Error(broken_lot_error(self)))

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
                raise ValueError(f"count must be an int or math.inf, got {count!r}")
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
        `new_lot` without waking them."""
        if not isinstance(new_lot, ParkingLot):
            raise TypeError(f"new_lot must be a ParkingLot, got {new_lot!r}")
        for task in self._pop_several(count):
            new_lot._parked[task] = None
            task.custom_sleep_data = new_lot

    def repark_all(self, new_lot: ParkingLot) -> None:
        """Move every parked task to `new_lot`."""
        self.repark(new_lot, count=len(self._parked))

    def statistics(self) -> ParkingLotStatistics:
        """``tasks_waiting``: how many tasks are parked here."""
        return ParkingLotStatistics(tasks_waiting=len(self._parked))
