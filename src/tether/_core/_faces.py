"""The face protocol: what a face built on the kernel (`tether.aio`) uses.

A face has task objects of its own class, derived from `Task` with the
kernel's fields (`TASK_SLOTS`) in its ``__slots__``, and starts them with
`spawn_task`; a face that gets coroutine objects uses `spawn_coroutine`.
`current_stepping_state` gives a face's stepper (or a primitive's fast path)
the run itself, for its hot paths, and `abort_wait` interrupts a task's wait for edge-triggered
cancellation. A face's task object that exists before it is started gets
the values of a task that is not running from `init_unstarted_task`;
`spawn_order` gives a face an order of its tasks that is the same in every
run. `has_open_nurseries` tells a face cheaply whether a task has
trio-style nurseries open, `cancelled_by_own_scope` whether a scope it
entered cancels it, and `make_cancelled` makes the kernel's
`Cancelled` for a face that aborts a wait as a cancellation would.
Everything here is exported by `tether.lowlevel`: a face uses these
rather than the kernel's private fields, which may change.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import outcome

from ._exceptions import Cancelled
from ._nursery import Nursery, closed_nursery_error
from ._run_context import current_runner
from ._task import Task


def spawn_coroutine(
    nursery: Nursery,
    coro: Coroutine[Any, Any, Any],
    *,
    name: str,
    context: contextvars.Context,
) -> Task:
    """Start a task in `nursery` that runs the existing coroutine object
    `coro`, stepped in `context` itself (not a copy), named `name`; return
    the new `Task`. Not a checkpoint.

    For faces built on the kernel (`tether.aio`'s ``create_task`` gets a
    coroutine object and a context of its own). Everyday code uses
    `Nursery.start_soon`, which also checks its argument and copies the
    caller's context.

    Raises:
      RuntimeError: if the nursery is closed.
      TypeError: if `coro` is not a coroutine object.
    """
    runner = current_runner()
    if nursery._closed:
        raise closed_nursery_error()
    if not isinstance(coro, Coroutine):
        raise TypeError(f"spawn_coroutine() expected a coroutine object, got {coro!r}")
    if not isinstance(context, contextvars.Context):
        raise TypeError(f"context must be a contextvars.Context, got {context!r}")
    return runner.spawn_coroutine(coro, name, context, nursery)


def spawn_task(
    nursery: Nursery,
    task: Task,
    coro: Any,
    *,
    context: contextvars.Context,
) -> None:
    """Start `task`, an object of a face's own task class, as a task in
    `nursery` that steps `coro` (an object with a coroutine's ``send``,
    ``throw`` and ``close``) in `context` (used as is). Not a checkpoint.

    For faces built on the kernel whose task objects are kernel tasks
    themselves (`tether.aio.Task` is an `asyncio.Future` and a kernel task
    at once). The class derives from `Task`, lists `TASK_SLOTS` in its
    ``__slots__`` and provides ``name`` and ``foreign_yield_handler``
    (fields or class attributes). The kernel sets the fields it reads
    before writing here, so a task object may be started again once its
    previous start has exited (in the same run or a later one).

    The stepper's ``send(value)`` and ``throw(exc)`` step the task's code
    and return what it yields; they end the task by returning `TASK_EXIT`
    or by raising (``StopIteration`` is a return). One stepper may serve
    many tasks (see `current_stepping_state`). The task's code, stepper
    included, can be interrupted by Ctrl-C like any task's code; mark
    stepper methods with `enable_ki_protection` to defer it there. For the
    task tree, hang reports and that protection, the class overrides
    `Task.code_coroutine` to return the coroutine that runs the task's code.

    Raises:
      RuntimeError: if the nursery is closed, or `task` is running.
      TypeError: if `task` is not a `Task` or `context` not a
        `contextvars.Context`.
    """
    runner = current_runner()
    if not isinstance(task, Task):
        raise TypeError(f"spawn_task() expected a tether.lowlevel.Task, got {task!r}")
    if getattr(task, "_cancel_status", None) is not None and task._runner is runner:
        raise RuntimeError(f"{task!r} is already running")
    if type(context) is not contextvars.Context:
        raise TypeError(f"context must be a contextvars.Context, got {context!r}")
    runner.spawn_task(nursery, task, coro, context)


class SteppingState(Protocol):
    """What `current_stepping_state` returns: the run itself, seen through
    what a face's hot paths need."""

    #: The task being stepped right now; None between steps. A face that
    #: runs code belonging to no task in the middle of a step (tether.aio's
    #: callback runners run the loop's callbacks, and with them the steps of
    #: standard-library tasks) sets it to None meanwhile, with
    #: `no_task_reason` and `no_task_stepping`, so that tether-native code
    #: there is refused instead of acting for the task being stepped; it
    #: puts all three back before the step goes on.
    current_task: Task | None
    #: Why ``current_task`` is None in the middle of a step: said by the
    #: `RuntimeError` that tether-native code gets there. None otherwise.
    no_task_reason: str | None
    #: The task being stepped while ``current_task`` is None for such code
    #: (what the task tree shows running, and a hang report names). None
    #: otherwise.
    no_task_stepping: Task | None

    @property
    def runq(self) -> list[Task]:
        """The tasks that the next batch steps, in a list that the kernel
        replaces with another at the start of every batch (it takes this
        one to step through). Read it, never change it: its identity tells
        a face that groups work of its own into the kernel's batches
        whether the batch it saw is still the next one."""

    def spawn_task(
        self, nursery: Nursery, task: Task, coro: Any, context: contextvars.Context
    ) -> None:
        """`spawn_task` without its argument checks (the nursery must belong
        to this run; a closed nursery still raises `RuntimeError`)."""

    def reschedule(self, task: Task, next_send: outcome.Outcome[Any] = ...) -> None:
        """`reschedule` without the check of `next_send` and the look-up of
        the run."""

    def resume_foreign_wait(self, task: Task, value: Any = None) -> None:
        """Make `task` runnable, sending `value` at its next step: the task is
        blocked at a foreign wait that the caller's stepper started itself
        (it yielded a `ForeignWaitAbort`), and the caller knows that the wait
        has not been aborted or woken since. `reschedule` with one check
        only: `RuntimeError` if the task is not blocked at a foreign wait."""

    def cancel_pending(self) -> bool:
        """Whether a cancel point in the task being stepped would raise now:
        it is inside a cancelled scope, or it is the main task and a Ctrl-C
        waits to be delivered. The test `checkpoint_if_cancelled` makes,
        without a generator to await. Not a checkpoint itself; call it only
        from the task being stepped (``current_task`` is not None).

        For a primitive written as one generator that yields the kernel's
        traps itself, in trio's order: ``if state.cancel_pending(): yield
        CHECKPOINT`` (the cancel point: `Cancelled` is raised there), then
        act, then ``yield CANCEL_SHIELDED_CHECKPOINT`` (the schedule point).
        It is False for every task while `cancelled_statuses` and
        `ki_pending` are both false, so the hottest paths test those two
        attributes first: ``if (state.cancelled_statuses or
        state.ki_pending) and state.cancel_pending():``."""

    @property
    def cancelled_statuses(self) -> int:
        """Never less than the number of the run's entered cancel scopes
        that are effectively cancelled (cancelled, or inside a cancelled
        one and not shielded): 0 means no task is in a cancelled scope."""

    @property
    def ki_pending(self) -> bool:
        """A Ctrl-C arrived and waits to be delivered to the main task."""


def current_stepping_state() -> SteppingState:
    """An object of the current run whose ``current_task`` attribute is the
    task the kernel is stepping at the moment it is read (None between
    steps). Not a checkpoint.

    For a face's stepper (see `spawn_task`): one stepper object can serve
    all of a face's tasks, reading this attribute to learn which task a
    ``send`` is for, at the cost of one attribute lookup instead of a call
    to `current_task`. Its ``spawn_task`` method is `spawn_task` without
    the argument checks, for a face that creates many tasks. A primitive
    whose fast path must be cheap (memory channels) keeps it too, for
    ``cancel_pending`` and ``reschedule``. Valid for the current run only.

    Raises `RuntimeError` outside a run.
    """
    return current_runner()


def set_signal_listener(listener: Callable[[bytes], object] | None) -> bool:
    """Have `listener` called, between two batches of the current run,
    with the numbers (as ``bytes``) of the signals that the C-level signal
    handler writes to the run's wakeup socket, or stop that with None.
    Returns whether numbers will come: only if the run made its socket the
    wakeup fd (``signal.set_wakeup_fd``), which a run in the main thread
    does when no other wakeup fd was set before it. Not a checkpoint.

    Numbers already written are first given to the listener this replaces
    (or dropped if there was none), so that each goes to the listener that
    was in place when it was written, or to none. The C-level handler
    writes every signal that has a Python handler, whoever installed it:
    for a face whose signal callbacks must run even while other code has
    replaced their Python handler (asyncio's ``add_signal_handler`` reads
    its wakeup fd). A number may come once for two deliveries of a signal
    (the OS merges them), or not at all if the socket's buffer was full. A
    listener that raises crashes the run."""
    io_manager = current_runner().io_manager
    io_manager.drain_wakeup()
    io_manager.signal_listener = listener
    return io_manager.owns_signal_wakeup


def abort_wait(task: Task, raise_exc: Callable[[], Any]) -> bool:
    """Interrupt `task` if it is parked in any kernel wait, with the exception
    that ``raise_exc()`` raises, as a cancellation would: the wait's abort
    function is called with `raise_exc`; if it agrees (`Abort.SUCCEEDED`) the
    task is rescheduled to raise that exception where it waits. Returns
    whether the task was interrupted (False if it was not parked, or its wait
    cannot be abandoned).

    For faces with edge-triggered cancellation (asyncio's ``Task.cancel()``
    must interrupt whatever the task awaits, tether-native waits included).
    """
    current_runner()
    if task._abort_func is None:
        return False
    task._attempt_abort(raise_exc)
    return task._abort_func is None


def make_cancelled() -> Cancelled:
    """A new `tether.Cancelled`, which code outside the kernel cannot
    construct otherwise. Not a checkpoint; needs no run.

    For a face that interrupts a task's wait with `abort_wait` and wants
    the wait's abort function to see an ordinary cancellation: its
    ``raise_exc`` raises this (a nursery's exit then ignores the attempt,
    a thread keeps it for ``from_thread.check_cancelled``), and the face
    replaces the error the task resumes with by its own (`tether.aio`
    turns it into `asyncio.CancelledError`). Raising it anywhere else
    looks to the code around it like a cancellation it did not ask for.
    """
    return Cancelled._create()


def has_open_nurseries(task: Task) -> bool:
    """Whether `task` has nurseries open (`Task.child_nurseries` is not
    empty), without copying that list. Not a checkpoint; needs no run.

    For a face's stepper that asks after a step of a task whether the
    step may have started trio-style children: one call, where
    ``task.child_nurseries`` would build a list each time. (`tether.aio`
    no longer asks: the kernel gives such children its handler when they
    start, see `Task.child_foreign_yield_handler`.)
    """
    return True if task._child_nurseries else False


def cancelled_by_own_scope(task: Task) -> bool:
    """Whether `task` is cancelled by a cancel scope it entered itself (a
    `CancelScope`, a ``move_on_*`` or ``fail_*`` block, or the scope of a
    nursery it opened) rather than by one around the nursery it was started
    in: such a scope was cancelled (or reached its deadline), and no shield
    between it and the task hides that. Not a checkpoint; needs no run.

    For a face whose task leaves the kernel when its event loop stops
    (`tether.aio`): the stop cancels every task through the nursery they
    were started in, and that cancellation is set aside; one of the task's
    own making must still reach it.

    Raises:
      TypeError: if `task` is not a `Task`.
    """
    try:
        status = task._cancel_status
    except AttributeError:
        raise TypeError(
            f"cancelled_by_own_scope() expected a tether.lowlevel.Task, got {task!r}"
        ) from None
    nursery = task._parent_nursery
    outer = nursery._cancel_status if nursery is not None else None
    while status is not None and status is not outer:
        scope = status._scope
        if scope._cancel_called:
            return True
        if scope._shield:
            return False
        status = status._parent
    return False


def init_unstarted_task(task: Task) -> None:
    """Give `task`, an object of a face's task class (see `spawn_task`)
    that has not been started, the kernel's fields of a task that is not
    running: no nursery (`Task.parent_nursery` None, `Task.child_nurseries`
    empty), not waiting (``custom_sleep_data`` None, `abort_wait` returns
    False), no breakers, and `spawn_order` 0. The kernel's functions that
    read a task then work on it before it starts; `spawn_task` sets every
    field when it does. Not a checkpoint; needs no run.

    For faces whose task objects exist before the kernel runs them
    (`tether.aio` creates a task whose loop is not running yet).

    Raises:
      TypeError: if `task` is not a `Task`.
    """
    if not isinstance(task, Task):
        raise TypeError(f"init_unstarted_task() expected a tether.lowlevel.Task, got {task!r}")
    task._parent_nursery = None
    task._cancel_status = None
    task._abort_func = None
    task._child_nurseries = ()
    task._lots_to_break = None
    task.custom_sleep_data = None
    task._spawn_index = 0


def spawn_order(task: Task) -> int:
    """Where `task` comes in the order its run started tasks: 1 for the
    run's root task, then counting up (0 for a task that
    `init_unstarted_task` prepared and that has not started yet). A task
    object started again gets its new place. Not a checkpoint; needs no run
    (it stays readable after the run has ended).

    For a face that handles a set of its tasks in an order that must be
    the same in every run of a program, as a seeded schedule requires
    (iterating a set or sorting by ``id`` follows memory addresses):
    `tether.aio` sorts the tasks it moves out of a finished run by it.

    Raises:
      TypeError: if `task` is not a `Task`.
      RuntimeError: if it was never started nor prepared.
    """
    try:
        return task._spawn_index
    except AttributeError:
        if not isinstance(task, Task):
            raise TypeError(
                f"spawn_order() expected a tether.lowlevel.Task, got {task!r}"
            ) from None
        raise RuntimeError(
            f"{task!r} was never started: start it with spawn_task, or prepare it "
            "with init_unstarted_task first"
        ) from None
