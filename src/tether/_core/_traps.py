"""Every yield from a task to the kernel lives in this module.

A task talks to the kernel only by yielding one of the trap objects defined
here (or a `ParkingLot`, through `park_in`); the run loop in `_run.py`
dispatches on them. Everything that blocks (sleep, locks, channels, I/O,
threads) is built from `wait_task_rescheduled`, usually through
`ParkingLot`. The traps are generator-based coroutines (``await trap()``),
and the kernel's markers that are not yielded (`TASK_EXIT`, the abort
markers `ABORT_BY_LEAVING_LOT` and `ABORT_BY_CANCELLING_TIMER`, the resume
markers `RESUME_CHECKPOINT` and `THROW_ON_RESUME`) live here too.

What the kernel sends back:
- after `CHECKPOINT` / `CANCEL_SHIELDED_CHECKPOINT`: ``None`` (or it throws
  `Cancelled` into the task at a `CHECKPOINT` in a cancelled scope);
- after `WaitTaskRescheduled`: the `outcome.Outcome` that was passed to
  `reschedule`, which the trap unwraps in the task's own frame.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Callable, Generator
from typing import Any, Final, Protocol, TypeAlias

import outcome

from ._run_context import current_runner, outside_task_error


class _Marker:
    """A named singleton the kernel recognises by identity. Subclasses say
    what kind of marker it is in their ``repr``."""

    __slots__ = ("name",)

    #: ``repr`` of the markers of a class, with ``{}`` for the name.
    _repr_format = "<tether marker {}>"

    #: For ``repr``: which marker (a trap's name, or the action it stands
    #: for).
    name: str

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self._repr_format.format(self.name)


class Trap(_Marker):
    """A singleton marker yielded to the kernel."""

    __slots__ = ()
    _repr_format = "<tether trap {}>"


class _CheckpointTrap(Trap):
    """A checkpoint's trap. What else receives it names it in an error (the
    standard library's task: "Task got bad yield: ..."), so its ``repr``
    says where it can be awaited."""

    __slots__ = ()
    _repr_format = (
        "<tether trap {}, for tether tasks only: await it in tether.run or in "
        "a tether.aio task (loop.create_task), not in a standard-library "
        "asyncio.Task>"
    )


#: Schedule point + cancel point.
CHECKPOINT: Final = _CheckpointTrap("checkpoint")
#: Schedule point only: what `cancel_shielded_checkpoint` yields. A
#: primitive written as one generator yields it itself after acting, with
#: the cancel point before acting made by `SteppingState.cancel_pending`.
CANCEL_SHIELDED_CHECKPOINT: Final = _CheckpointTrap("cancel_shielded_checkpoint")
#: Returned (not yielded) by a face's stepper (see `lowlevel.spawn_task`)
#: from ``send``/``throw``: the task is finished, as if the stepper had
#: raised ``StopIteration`` (a return with None), without the cost of
#: raising it. The kernel never steps the task again.
TASK_EXIT: Final = Trap("task_exit")


class Abort(enum.Enum):
    """What an abort function returns to say whether a blocked task could be
    taken out of its wait (`SUCCEEDED`: the kernel reschedules it with
    `Cancelled`) or not (`FAILED`: whoever it waits on must still call
    `reschedule` on it later)."""

    SUCCEEDED = 1
    FAILED = 2


#: The type of the ``raise_cancel`` argument the kernel passes to an abort
#: function (see `wait_task_rescheduled`): a function of no arguments that
#: raises the exception the interrupted task should get: `Cancelled`,
#: `KeyboardInterrupt` for a Ctrl-C delivered to the main task, or the
#: exception given to `abort_wait`. An abort function that returns
#: `Abort.FAILED` may call it (catching what it raises) to hand that
#: exception to the task later through `reschedule`.
RaiseCancelT: TypeAlias = Callable[[], "Any"]
#: The type of an abort function (see `wait_task_rescheduled`).
AbortFn: TypeAlias = Callable[[RaiseCancelT], Abort]


class WaitTaskRescheduled:
    """Trap: park the task until someone calls `reschedule` on it."""

    __slots__ = ("abort_func",)

    #: What the kernel calls if the task is cancelled while parked (see
    #: `wait_task_rescheduled`); stored in the task's ``_abort_func``.
    abort_func: AbortFn

    def __init__(self, abort_func: AbortFn) -> None:
        self.abort_func = abort_func


# The two checkpoints are generator-based coroutines rather than `async def`:
# awaiting them then costs one generator frame instead of a coroutine frame
# plus a generator frame, about a third of the cost of a task switch. The
# price is that calling one without `await` does not produce Python's
# "coroutine was never awaited" warning.


@types.coroutine
def checkpoint() -> Generator[Any, Any, None]:
    """A pure checkpoint: let other tasks run, then raise `Cancelled` if this
    task is inside a cancelled scope. Use as ``await checkpoint()``.

    The schedule point comes first, so that the cancellation check sees
    deadlines that expired and scopes cancelled while other tasks ran.
    """
    yield CHECKPOINT


@types.coroutine
def cancel_shielded_checkpoint() -> Generator[Any, Any, None]:
    """A schedule point that is never a cancel point: other tasks may run, but
    this never raises `Cancelled`. Use as ``await cancel_shielded_checkpoint()``."""
    yield CANCEL_SHIELDED_CHECKPOINT


@types.coroutine
def wait_task_rescheduled(abort_func: AbortFn) -> Generator[Any, Any, Any]:
    """Park the current task until another piece of code calls
    ``reschedule(task, outcome)``, and return (or raise) that outcome.

    If the task is cancelled while parked, the kernel calls
    ``abort_func(raise_cancel)``. It must detach the task from whatever it is
    waiting on and return `Abort.SUCCEEDED` (the task then raises
    `Cancelled`), or return `Abort.FAILED` if the wait cannot be abandoned,
    in which case the task stays parked until someone reschedules it.
    ``raise_cancel`` raises the appropriate exception; an abort function may
    call it to capture that exception for later delivery.

    Use as ``await wait_task_rescheduled(abort_func)``. This is the low-level
    building block: it is a cancel point only through `abort_func`.
    """
    next_send: outcome.Outcome[Any] = yield WaitTaskRescheduled(abort_func)
    # Reading .value instead of unwrap() lets the kernel share one Value(None)
    # between wakeups (outcome objects refuse a second unwrap()).
    if type(next_send) is outcome.Value:
        return next_send.value
    try:
        return next_send.unwrap()
    finally:
        # The error's traceback holds this frame: drop the outcome (and
        # the error) from it, or they form a reference cycle.
        del next_send


class _HasIsSet(Protocol):
    def is_set(self) -> bool: ...


@types.coroutine
def park_unless_set(lot: object, flag: _HasIsSet) -> Generator[Any, Any, None]:
    """``await park_unless_set(lot, flag)``: a checkpoint if ``flag.is_set()``
    when the wait *starts* (not when this is called), otherwise park in `lot`.
    One frame, like `park_in`; what `Event.wait` is made of."""
    if flag.is_set():
        yield CHECKPOINT
        return
    # (`park_in`'s body, written out: ``yield from park_in(lot)`` would add
    # a generator frame to every wait.)
    next_send: outcome.Outcome[Any] = yield lot
    if type(next_send) is not outcome.Value:
        try:
            next_send.unwrap()
        finally:
            del next_send


@types.coroutine
def park_in(lot: object) -> Generator[Any, Any, None]:
    """The trap behind `ParkingLot.park`: the lot itself is yielded, and the
    kernel queues the task in it. This saves a frame and an abort closure per
    parked task compared with `wait_task_rescheduled`, which matters when
    100k tasks wait on one event."""
    next_send: outcome.Outcome[Any] = yield lot
    if type(next_send) is not outcome.Value:
        try:
            next_send.unwrap()
        finally:
            del next_send


class _AbortMarker(_Marker):
    """The class of the abort markers: abort functions of the kernel's own
    waits, which the kernel recognises by identity and carries out itself
    (`Task._attempt_abort`) with what the task's ``custom_sleep_data``
    holds (its name says what it does). One shared marker instead of a
    closure per waiting task."""

    __slots__ = ()
    _repr_format = "<tether abort marker: {}>"

    def __call__(self, raise_cancel: RaiseCancelT) -> Abort:
        raise AssertionError("a marker the kernel recognises by identity, never called")


#: The abort function of a task that `park_in` queued in a `ParkingLot`
#: (the lot is the task's ``custom_sleep_data``): the kernel aborts the wait
#: by taking the task out of that lot itself.
ABORT_BY_LEAVING_LOT: Final = _AbortMarker("leave the parking lot")

#: The abort function of a task in the kernel's `sleep_until` (the entry of
#: its timer in the run's deadlines is its ``custom_sleep_data``): the
#: kernel aborts the wait by removing the timer.
ABORT_BY_CANCELLING_TIMER: Final = _AbortMarker("cancel the timer")


class _NextSendMarker(_Marker):
    """The class of the markers the kernel stores in a task's ``_next_send``
    instead of a value to send: they tell the step loop what to do when the
    task resumes (its name). Recognised by identity; never sent to a
    task."""

    __slots__ = ()
    _repr_format = "<tether resume marker: {}>"


#: In ``task._next_send``: the task yielded `CHECKPOINT`, so the step loop
#: checks for cancellation when the task resumes (not when it yielded: a
#: deadline may expire, or a sibling may cancel, in between).
RESUME_CHECKPOINT: Any = _NextSendMarker("check for cancellation, then send None")

#: In ``task._next_send``: throw ``task._pending_throw`` into the task when it
#: resumes (for a task whose wait has no trap frame to unwrap an outcome,
#: such as a foreign yield, and for errors the kernel raises in a task).
THROW_ON_RESUME: Any = _NextSendMarker("throw the pending error in")


class ForeignWaitAbort:
    """Base class for the abort function of a foreign wait that a face's
    stepper starts itself.

    A task that yields an instance of a subclass to the kernel is blocked
    exactly as if its ``foreign_yield_handler`` had been called and had
    returned that object: the object is the task's abort function, and the
    task waits at a foreign yield (`reschedule` sends it the plain value, or
    throws the error, where it yielded). For a face whose stepper already
    knows what the coroutine yielded (the asyncio face, for a future of its
    loop): it starts the wait itself and saves the handler call and the
    kernel's checks of what else the object could be. Subclasses implement
    ``__call__(raise_cancel)`` as any abort function does.

    The kernel aborts the wait through `abort_task`, which is given the
    task as well. One object can then serve as the abort function of many
    tasks at once (a face that parks its tasks the same way needs no object
    per task): such a subclass overrides `abort_task` instead of
    ``__call__``."""

    __slots__ = ()

    def __call__(self, raise_cancel: RaiseCancelT, /) -> Abort:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")

    def abort_task(self, task: Any, raise_cancel: RaiseCancelT, /) -> Abort:
        """Abort `task`'s wait (this object is its abort function), as an
        abort function called with `raise_cancel` does. By default, calls
        the object with `raise_cancel`."""
        return self(raise_cancel)


class PermanentlyDetach:
    """Trap: the task ends now, with `final_outcome` as its result, and the
    kernel lets go of its coroutine (see `permanently_detach_coroutine_object`)."""

    __slots__ = ("final_outcome",)

    #: The task's result, as its nursery sees it.
    final_outcome: outcome.Outcome[Any]

    def __init__(self, final_outcome: outcome.Outcome[Any]) -> None:
        self.final_outcome = final_outcome


@types.coroutine
def yield_to_runner(value: object) -> Generator[Any, Any, Any]:
    """``await yield_to_runner(value)``: yield `value` to whatever is stepping
    this coroutine (the kernel, or a foreign runner while the task is
    detached) and return exactly what it sends back, unwrapped by nothing.
    The building block of detaching and reattaching a task's coroutine."""
    return (yield value)


@types.coroutine
def _finished() -> Generator[Any, Any, None]:
    return
    yield  # (makes this a generator)


#: A generator-based coroutine that has already finished: awaiting it again
#: returns None at once (a generator, unlike a native coroutine, may be
#: resumed after it ended), so it is shared by every call that has nothing
#: to wait for.
_ALREADY_DONE: Final = _finished()
for _ in _ALREADY_DONE:
    pass


def checkpoint_if_cancelled() -> Any:
    """``await checkpoint_if_cancelled()``: a checkpoint only if this task is
    in a cancelled scope (then it raises `Cancelled`), or is the main task with
    a Ctrl-C pending; otherwise it returns without letting other tasks run.

    A plain function that returns what to await: in the common case (not
    cancelled) one shared, finished awaitable, so that no frame is created
    at all."""
    runner = current_runner()
    task = runner.current_task
    if task is None:
        raise outside_task_error(runner)
    status = task._cancel_status
    if (status is not None and status.effectively_cancelled) or (
        runner.ki_pending and task is runner.main_task
    ):
        return checkpoint()
    return _ALREADY_DONE


@types.coroutine
def wait_on(trap: WaitTaskRescheduled) -> Generator[Any, Any, Any]:
    """`wait_task_rescheduled` with a trap built in advance, for a primitive
    that parks the same way many times and keeps its trap (the I/O waits):
    ``await wait_on(trap)``. Not a cancel point but through the trap's abort
    function, like `wait_task_rescheduled`."""
    next_send: outcome.Outcome[Any] = yield trap
    if type(next_send) is outcome.Value:
        return next_send.value
    try:
        return next_send.unwrap()
    finally:
        # (See `wait_task_rescheduled`: no cycle through the traceback.)
        del next_send
