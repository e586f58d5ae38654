"""Schedulers: who decides the order of a batch of runnable tasks.

Without a scheduler the run loop steps each batch in the order its tasks
became runnable (FIFO), and pays one ``is None`` check per batch for the
possibility of a scheduler. With one (``tether.run(..., scheduler=...)``,
or ``schedule_seed=N``, which installs a `SeededScheduler`), the loop
hands every batch to `Scheduler.schedule_batch` before stepping it, and
tells the scheduler when the run is stuck (`Scheduler.all_tasks_blocked`).

Invariants the kernel keeps for a scheduler:

- the batch it is given is in *spawn order* (tasks started earlier come
  first), not FIFO: the FIFO order can depend on object addresses (a
  cancellation wakes the tasks of a scope in set order), and a scheduler
  that replays decisions needs the same batch in every run;
- the scheduler must leave the batch a permutation of itself: same tasks,
  each once. Tasks that become runnable while the batch runs form the next
  batch, as without a scheduler, so no ordering can starve a task;
- `all_tasks_blocked` is called between steps, in the run's thread, when no
  task is runnable and nothing the kernel knows of can wake one: no
  deadline, no I/O wait, no `run_sync_soon` callback queued, no worker
  thread of a `to_thread` call still working, no task in
  `wait_all_tasks_blocked`. (A thread or a signal handler could still
  queue a callback; the kernel cannot see those.)

`enclosing_deadline_scope` lets a testing scheduler find the scope whose
deadline governs a task, to make it fire at a chosen step.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._cancel import CancelScope
    from ._task import Task


class Scheduler:
    """Base class for objects that decide the order in which the tasks of
    each batch are stepped. Pass one as ``tether.run(..., scheduler=...)``.

    For testing tools (`tether.testing.Schedule` is built on it): a
    scheduler explores interleavings a FIFO run would never produce. The
    hooks are called in the run's thread, between task steps, so they may
    inspect tasks (`Task.iter_await_frames`) and cancel scopes, but they
    must not await anything.
    """

    __slots__ = ()

    def schedule_batch(self, batch: list[Task]) -> None:
        """Reorder `batch`, in place, into the order in which its tasks will
        be stepped. It arrives in spawn order (see the module docstring) and
        must stay a permutation of itself. The default leaves it so. The
        list is the kernel's, emptied and reused after the batch: copy it
        to keep it.

        An exception raised here ends the run as one from
        `all_tasks_blocked` does."""

    def all_tasks_blocked(self) -> None:
        """Called when every task is blocked and nothing the kernel knows of
        can wake one (see the module docstring); called again each time the
        loop is about to wait in that state.

        The scheduler may cancel scopes here (which wakes the tasks inside
        them), or raise: the exception ends the run, after the coroutines of
        the remaining tasks are closed, and propagates from `tether.run`.
        The default does nothing, and the loop waits (for a thread or a
        signal to wake it)."""


class SeededScheduler(Scheduler):
    """Shuffles every batch with a `random.Random` seeded with `seed`: one
    deterministic interleaving per seed (what ``run(..., schedule_seed=N)``
    installs)."""

    __slots__ = ("_random", "seed")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._random = random.Random(seed)

    def __repr__(self) -> str:
        return f"SeededScheduler({self.seed!r})"

    def schedule_batch(self, batch: list[Task]) -> None:
        self._random.shuffle(batch)


def enclosing_deadline_scope(task: Task) -> CancelScope | None:
    """The innermost cancel scope with a finite deadline whose cancellation
    would reach `task` now (looking outwards from the task's innermost
    scope, up to and including the first shielding scope), or None. Not
    cancelled ones only: a scope already cancelled is skipped. Not a
    checkpoint."""
    status = task._cancel_status
    while status is not None:
        scope = status._scope
        if scope._deadline != math.inf and not scope._cancel_called:
            return scope
        if scope._shield:
            return None
        status = status._parent
    return None
