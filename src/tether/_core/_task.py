"""The kernel's task object.

A task wraps one coroutine, the `contextvars.Context` it runs in, and the
kernel's bookkeeping for it: which nursery it belongs to, which cancel status
applies to it, what to send it on its next step, and (while it is parked in
`wait_task_rescheduled`) how to abort its wait.
"""

from __future__ import annotations

import contextvars
import gc
import warnings
from collections.abc import Callable, Iterator
from types import AsyncGeneratorType, CoroutineType, FrameType, GeneratorType
from typing import TYPE_CHECKING, Any, TypeAlias

import outcome

from ._cancel_reason import cancelled_for
from ._exceptions import TetherDeprecationWarning, TetherInternalError
from ._traps import (
    ABORT_BY_CANCELLING_TIMER,
    ABORT_BY_LEAVING_LOT,
    Abort,
    AbortFn,
    ForeignWaitAbort,
)

if TYPE_CHECKING:
    from ._cancel import CancelStatus
    from ._nursery import Nursery
    from ._run import Runner


#: The classes of what an async generator's ``asend``/``athrow``/``aclose``
#: return. Named, not taken from an instance: making one would call the
#: thread's async generator hooks at import time.
_ASYNC_GENERATOR_STEPS = frozenset({"async_generator_asend", "async_generator_athrow"})


def _frame_and_awaited(awaitable: Any) -> tuple[FrameType | None, Any]:
    """The frame running `awaitable` (None once it finished, or if it is not
    a coroutine, generator or async generator) and what it awaits now."""
    if isinstance(awaitable, CoroutineType):
        return awaitable.cr_frame, awaitable.cr_await
    if isinstance(awaitable, GeneratorType):
        return awaitable.gi_frame, awaitable.gi_yieldfrom
    if isinstance(awaitable, AsyncGeneratorType):
        return awaitable.ag_frame, awaitable.ag_await
    # Duck-typed coroutine-likes (Cython, a face's own objects).
    frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
    awaited = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return frame, awaited


#: What a task ended with, as `Runner.task_exited` and
#: `Nursery._child_finished` take it: the exception it raised, or its
#: return value in an `outcome.Value` (one shared object for None). Not an
#: `outcome.Error`: making one validates its argument, which adds up when
#: thousands of cancelled tasks exit at once.
TaskResult: TypeAlias = "outcome.Value[Any] | BaseException"


def outcome_of(result: TaskResult) -> outcome.Outcome[Any]:
    """`result` as a fresh outcome, for `run` to unwrap (the kernel's shared
    ``Value(None)`` must never be unwrapped)."""
    if isinstance(result, BaseException):
        return outcome.Error(result)
    return outcome.Value(result.value)


#: The kernel's fields of a task. A face built on the kernel that defines
#: its own task class (a subclass of `Task`, see `lowlevel.spawn_task`)
#: lists these in its ``__slots__``; the kernel sets them when the task
#: starts. (``name`` and ``foreign_yield_handler`` are not among them: the
#: face's class provides them, as fields or as class attributes. Nor is
#: ``_system``: a face's task is never a system task, and reads the class's
#: False.)
TASK_SLOTS: tuple[str, ...] = (
    "_abort_func",
    "_cancel_status",
    "_child_nurseries",
    "_eventual_parent_nursery",
    "_foreign_wait",
    "_lots_to_break",
    "_next_send",
    "_parent_nursery",
    "_pending_throw",
    "_runner",
    "_spawn_index",
    "context",
    "coro",
    "custom_sleep_data",
)


class Task:
    """A running tether task. Created by the kernel (`Nursery.start_soon`,
    `Nursery.start`, `tether.lowlevel.spawn_system_task`), or by a face built
    on the kernel from its own subclass (`tether.lowlevel.spawn_task`).

    This class holds the behaviour and declares the fields; the fields
    themselves live in the concrete classes' ``__slots__`` (`TASK_SLOTS`),
    so that a face's task class can also derive from a class with a layout
    of its own (`tether.aio.Task` is an `asyncio.Future`)."""

    if not TYPE_CHECKING:
        # (Hidden from type checkers, which would otherwise reject every
        # assignment to the fields declared below.)
        __slots__ = ()

    # -- the kernel's fields --------------------------------------------------
    # Declared here, stored in the concrete class's slots. `Runner.spawn_task`
    # sets every one of them (but the two noted as unset) each time the task
    # starts; `lowlevel.init_unstarted_task` gives a face's task that is not
    # started yet the values of one that is not running.

    #: What the kernel steps: each step is ``coro.send(value)`` or
    #: ``coro.throw(error)``, run in `context`. The task's coroutine for the
    #: kernel's own tasks; for a face's task, the face's stepper (which may
    #: serve many tasks; see `lowlevel.spawn_task`).
    coro: Any

    #: For ``repr`` and debugging. The kernel's tasks: the function's
    #: qualified name, interned (many tasks of one function share it). A
    #: face's class provides it (not in `TASK_SLOTS`).
    name: str

    #: The `contextvars.Context` every step runs in. The kernel's tasks: a
    #: copy of the spawner's (the run's initial one for system tasks). A
    #: face's task: the face's own, used as is.
    context: contextvars.Context

    #: Free for the code that blocks the task to record what it waits on;
    #: None when it is not blocked (`reschedule` resets it). Invariant: while
    #: `_abort_func` is `ABORT_BY_LEAVING_LOT`, this is the `ParkingLot`
    #: whose queue holds the task (`ParkingLot.repark` keeps it so); while
    #: it is `ABORT_BY_CANCELLING_TIMER`, the entry of the task's timer in
    #: the run's deadlines (see `sleep_until`). Other waits may store
    #: anything; the kernel never reads it then.
    custom_sleep_data: Any

    #: Hook for faces built on the kernel (the asyncio face): called as
    #: ``handler(task, obj)`` when the task yields an object that is not a
    #: tether trap (an asyncio future, a bare ``yield``). It returns an
    #: abort function, and the task is then blocked exactly as in
    #: `wait_task_rescheduled`; whoever completes the wait calls
    #: `reschedule(task, outcome)`, and the kernel sends the outcome's value
    #: into the task (or throws its error) at the point where it yielded,
    #: since a foreign awaitable does not unwrap outcomes. None: such a yield
    #: is a `TypeError` in the task. A face's class provides it (not in
    #: `TASK_SLOTS`), usually as a class attribute.
    foreign_yield_handler: Callable[[Task, object], AbortFn] | None

    #: The ``foreign_yield_handler`` that the kernel gives each task it
    #: starts in a nursery that this task opened (`Nursery.start_soon`;
    #: `Nursery.start` runs the new task in a nursery of its caller until
    #: it has started, so it gets the caller's); None: they get none. A
    #: face's class sets it (a `staticmethod`), so that trio-style code run
    #: by its tasks can await the face's awaitables from the first step
    #: (the asyncio face's tasks give their trio-style children the handler
    #: for asyncio futures). Read once per spawn; the kernel's own tasks
    #: have None.
    child_foreign_yield_handler: Callable[[Task, object], AbortFn] | None = None

    #: How to abort the task's current wait if it is cancelled; None when it
    #: is not blocked. Invariant: not None exactly while the task is blocked
    #: (in `wait_task_rescheduled`, a `ParkingLot`, or at a foreign yield)
    #: and so is in no run queue; `reschedule` sets it back to None, and
    #: refuses a task whose field is already None.
    _abort_func: AbortFn | None

    #: The status of the innermost cancel scope around the code the task
    #: runs now (for a new child: its nursery's). Invariant: the task is in
    #: ``_cancel_status.members()`` (in its ``tasks`` unless it is the
    #: status of `_parent_nursery`). None for the root task outside its
    #: scopes, and once the task has exited.
    _cancel_status: CancelStatus | None

    #: The nurseries the task has opened and not exited yet, outermost
    #: first. An empty tuple until it opens its first one (most tasks never
    #: do), a list from then on. Not empty when the task exits means its
    #: nurseries were misnested (see _misnesting.py).
    _child_nurseries: list[Nursery] | tuple[()]

    #: For a task started with `Nursery.start` that has not called
    #: ``task_status.started()`` yet: the nursery it will move into; None
    #: once it has. Left unset by `spawn_task` (written before it is read,
    #: or read with a default): an unset slot costs the garbage collector
    #: nothing when it traverses the task.
    _eventual_parent_nursery: Nursery | None

    #: True while the task is blocked at a yield that cannot unwrap an
    #: outcome (a foreign awaitable, or a checkpoint in a cancelled scope):
    #: `reschedule` then puts the outcome's plain value in `_next_send`, or
    #: its error in `_pending_throw`. False otherwise.
    _foreign_wait: bool

    #: Parking lots to break when the task exits (the locks it holds; see
    #: `add_parking_lot_breaker`); None when there are none.
    _lots_to_break: list[Any] | None

    #: What the next step sends into `coro`. None for a new task, or after a
    #: schedule point; the `outcome.Outcome` of a wait (the trap unwraps it
    #: in the task's own frame); `RESUME_CHECKPOINT` after a `CHECKPOINT`
    #: (the step checks for cancellation first); `THROW_ON_RESUME`, to throw
    #: `_pending_throw` in instead; a plain value after a foreign wait.
    #: None again once the task has exited (an error's traceback in it would
    #: keep the task's frames alive).
    _next_send: Any

    #: The nursery the task is a child of; None for the run's root task.
    #: Invariant: the task is in ``_parent_nursery._children`` until it
    #: exits (`Nursery.start` moves it, with this field, when it starts).
    _parent_nursery: Nursery | None

    #: The error the next step throws in, while `_next_send` is `THROW_ON_RESUME`;
    #: None once taken. Left unset by `spawn_task`, like
    #: `_eventual_parent_nursery`.
    _pending_throw: BaseException | None

    #: The run that started the task (last, for a face's task started
    #: again).
    _runner: Runner

    #: The task's position in its run's spawn order (1 for the root task). A
    #: seeded schedule sorts each batch by it before shuffling, so the same
    #: seed gives the same order whatever order wakeups came in.
    _spawn_index: int

    #: A system task (the root task, `spawn_system_task`, the kernel's own
    #: helpers): its code is protected from KeyboardInterrupt (see _ki.py).
    #: Only the kernel's own tasks (`CoroutineTask`) can be system tasks: they
    #: have a slot for it, set by `Runner.spawn_coroutine`; a face's task
    #: has none (8 bytes less on every one) and reads this class's False.
    _system: bool = False

    def __repr__(self) -> str:
        return f"<Task {self.name!r} at {id(self):#x}>"

    @property
    def parent_nursery(self) -> Nursery | None:
        """The nursery this task lives in; None for the run's root task."""
        return self._parent_nursery

    @property
    def eventual_parent_nursery(self) -> Nursery | None:
        """For a task started with `Nursery.start` that has not called
        ``task_status.started()`` yet: the nursery it will move into."""
        return getattr(self, "_eventual_parent_nursery", None)

    @property
    def child_nurseries(self) -> list[Nursery]:
        """The nurseries this task has open, outermost first."""
        return list(self._child_nurseries)

    def iter_await_frames(self) -> Iterator[tuple[FrameType, int]]:
        """Yield ``(frame, lineno)`` for each frame of this task's await
        chain, outermost first: where the task is, for debugging (feed it to
        `traceback.StackSummary.extract` for a stack trace). Follows
        coroutines, generator-based coroutines and async generators being
        iterated (``async for``, ``asend``, ``athrow``, ``aclose``). Empty
        for a task that has finished."""
        for _, frame in self._iter_await_chain():
            if frame is None:
                return
            yield frame, frame.f_lineno

    def _iter_await_chain(self) -> Iterator[tuple[Any, FrameType | None]]:
        """Yield ``(awaitable, frame)`` for each link of the task's await
        chain, outermost first, where `frame` is the frame running
        `awaitable`. The last link's frame is None when the chain ends in an
        object that is not a coroutine (what the innermost coroutine awaits:
        an asyncio future's iterator, say) or in a finished coroutine. Only
        reads the objects (for the task tree, which must not change them)."""
        awaitable: Any = self._code_coroutine()
        while awaitable is not None:
            if type(awaitable).__name__ in _ASYNC_GENERATOR_STEPS:
                # What ``async for`` / ``asend()`` awaits holds the async
                # generator, but exposes no attribute to reach it (CPython
                # gh-76991): find it among the objects it refers to.
                awaitable = next(
                    (ref for ref in gc.get_referents(awaitable) if type(ref) is AsyncGeneratorType),
                    None,
                )
                continue
            frame, awaited = _frame_and_awaited(awaitable)
            yield awaitable, frame
            if frame is None:
                return
            awaitable = awaited

    def _code_coroutine(self) -> Any:
        """The coroutine that runs the task's own code: `coro`, unless a
        face steps it through a stepper. The kernel's call of the public
        `code_coroutine`, which faces override."""
        return self.code_coroutine()

    def _root_frame(self) -> FrameType | None:
        """The frame where the task's own code starts (KeyboardInterrupt
        protection stops there)."""
        coro = self._code_coroutine()
        return getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)

    def code_coroutine(self) -> Any:
        """The coroutine that runs the task's own code: `coro` for the
        kernel's tasks. A face whose tasks are stepped through a stepper
        (see `lowlevel.spawn_task`) overrides it to return the task's own
        coroutine: `iter_await_frames`, the tools that show where tasks
        are (task trees, hang reports) and Ctrl-C protection read the
        task's code through it. Not a checkpoint."""
        return self.coro

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        legacy = cls.__dict__.get("_code_coroutine")
        if legacy is not None and "code_coroutine" not in cls.__dict__:
            # The face protocol's hook was once named ``_code_coroutine``:
            # a class that overrides only that name keeps working, public
            # callers included.
            warnings.warn(
                f"{cls.__qualname__} overrides Task._code_coroutine(); override "
                "code_coroutine() instead (the hook's public name)",
                TetherDeprecationWarning,
                stacklevel=2,
            )
            cls.code_coroutine = legacy  # type: ignore[method-assign]

    # -- cancellation plumbing -------------------------------------------------

    def _activate_cancel_status(self, cancel_status: CancelStatus | None) -> None:
        if self._cancel_status is not None:
            # (Nothing to discard for a child directly under its nursery's
            # status: see `CancelStatus.tasks`.)
            self._cancel_status.tasks.discard(self)
        self._cancel_status = cancel_status
        if cancel_status is not None:
            nursery = self._parent_nursery
            if nursery is None or nursery._cancel_status is not cancel_status:
                cancel_status.tasks.add(self)
            if cancel_status.effectively_cancelled:
                self._attempt_delivery_of_any_pending_cancel()

    def _attempt_abort(self, raise_cancel: Callable[[], Any]) -> None:
        abort_func = self._abort_func
        assert abort_func is not None
        if abort_func is ABORT_BY_LEAVING_LOT or abort_func is ABORT_BY_CANCELLING_TIMER:
            self._leave_kernel_wait(abort_func)
            success = Abort.SUCCEEDED
        else:
            try:
                if isinstance(abort_func, ForeignWaitAbort):
                    # (Perhaps one object shared by many tasks' waits.)
                    success = abort_func.abort_task(self, raise_cancel)
                else:
                    success = abort_func(raise_cancel)
            except BaseException as exc:
                # An abort function is part of a primitive's machinery: if it
                # fails, the primitive's state is unknown. That is not the
                # canceller's fault, so crash the run (in order) instead of
                # raising into whoever called cancel().
                self._runner.crash(exc, f"abort function {abort_func!r} of {self!r} raised")
                return
            if type(success) is not Abort:
                self._runner.crash(
                    TetherInternalError(
                        f"abort function {abort_func!r} must return tether.lowlevel.Abort, "
                        f"got {success!r}"
                    ),
                    f"while cancelling {self!r}",
                )
                return
        if success is Abort.SUCCEEDED:
            try:
                value = raise_cancel()
            except BaseException as exc:
                # Its traceback holds the frames that raised it here (this one
                # included, and so this task): the task could never be freed
                # by reference counting while the error is kept. It gets a
                # traceback of its own when it is raised in the task.
                exc.__traceback__ = None
                if type(self) is CoroutineTask:
                    # The kernel's own task waits at one of the kernel's
                    # traps, which raise what is thrown into them: no
                    # outcome to make and unwrap.
                    self._runner.reschedule_with_error(self, exc)
                else:
                    # A face's stepper is sent an outcome (see
                    # `lowlevel.spawn_task`).
                    self._runner.reschedule(self, outcome.Error(exc))
                del exc
            else:
                self._runner.reschedule(self, outcome.Value(value))

    def _leave_kernel_wait(self, abort_func: AbortFn) -> None:
        """Abort a wait whose abort function is one of the kernel's markers
        (see `ABORT_BY_LEAVING_LOT`)."""
        if abort_func is ABORT_BY_LEAVING_LOT:
            del self.custom_sleep_data._waiters[self]
        else:
            self._runner.deadlines.remove(self.custom_sleep_data)

    def _attempt_delivery_of_any_pending_cancel(self) -> None:
        abort_func = self._abort_func
        if abort_func is None:
            return
        status = self._cancel_status
        if status is None or not status.effectively_cancelled:
            return
        # The reason as it is now: the abort function may call raise_cancel
        # later (after the scope tree changed).
        reason = status._scope._cancel_reason
        if type(self) is CoroutineTask and (
            abort_func is ABORT_BY_LEAVING_LOT or abort_func is ABORT_BY_CANCELLING_TIMER
        ):
            # The commonest cancellation (a task parked in a parking lot,
            # waiting for an event or a lock, or sleeping; thousands at once
            # when a nursery is cancelled): `_attempt_abort` without a
            # closure to make and raise.
            self._leave_kernel_wait(abort_func)
            self._runner.reschedule_with_error(self, cancelled_for(reason))
            return

        def raise_cancel() -> Any:
            raise cancelled_for(reason)

        self._attempt_abort(raise_cancel)


class CoroutineTask(Task):
    """The kernel's own tasks: a coroutine and the kernel's fields. Made by
    the kernel only (`Runner.spawn_coroutine`), which sets every field."""

    __slots__ = (*TASK_SLOTS, "_system", "foreign_yield_handler", "name", "__weakref__")

    # ``name`` and ``foreign_yield_handler`` are set by
    # `Runner.spawn_coroutine` (the handler to None: code may set its own
    # on a running task; see `Task.foreign_yield_handler`).


def refusal_to_reschedule(task: Task, runner: object) -> str:
    """Why `Runner.reschedule` refuses `task` (off the fast path)."""
    if task._runner is not runner:
        return (
            f"cannot reschedule {task!r}: it belongs to another tether run; from "
            "outside that run, hand the wake-up to its TetherToken.run_sync_soon"
        )
    return (
        f"cannot reschedule {task!r}: it is not blocked in wait_task_rescheduled "
        "(was it rescheduled twice?)"
    )
