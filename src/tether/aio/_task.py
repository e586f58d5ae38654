"""aio tasks: asyncio's `Task`, and a kernel task at the same time.

An aio `Task` is an `asyncio.Task` (a subclass of the C implementation, so
stdlib and third-party helpers that check ``isinstance(x, asyncio.Task)``
treat it as one; none of the C task's own machinery runs: its ``__init__``
is never called, and every method is tether's) that runs a coroutine, and it
is also a kernel task (a `tether.lowlevel.Task`): during each run of the loop (a
*segment*, see `_loop_core.py`) it is started with `lowlevel.spawn_task` in the
segment's root nursery. The kernel steps it through the loop's stepper
(`_stepper.py`), one object shared by all of the loop's tasks, which
learns from `lowlevel.current_stepping_state` which task a step is for.
The stepper

- makes the task asyncio's current task around each step, so that the
  standard library's `asyncio.current_task()` (and everything built on it,
  `asyncio.timeout`, sniffio) sees it;
- turns a bare ``yield`` (asyncio's "let one loop iteration pass", which is
  what `sleep(0)` does) into a kernel checkpoint;
- makes the task wait for the futures its coroutine awaits: for the
  common one (a pending future of the loop) it starts the wait itself
  (`_Stepper._send`) and gives the kernel the task's wakeup, a
  `lowlevel.ForeignWaitAbort`; anything else goes to the kernel, which
  calls
  the task's ``foreign_yield_handler`` (`Task._on_foreign_yield`). Either
  way the task is blocked in the kernel until the future is done. A task
  that awaits `PARK` (tether.aio's `Event` and `StreamReader`) waits
  without a future, until the primitive wakes it; its abort function is
  `PARKED`;
- delivers asyncio's edge-triggered cancellation: `Task.cancel()` cancels the
  future the task waits for, aborts its tether-native wait, or throws
  `CancelledError` in at the next step;
- records the outcome on the Task when the coroutine ends. The kernel task
  then ends normally: an asyncio task's error belongs to whoever awaits the
  task (or to the loop's exception handler), not to the nursery.

The task's state (`TaskState`, in ``_task_state``) says where it is. While the
loop runs a segment, a task is *attached* (its kernel task runs in the
segment's nursery) or not; between segments, none is.

=================  ===========================================================
state              where the task is
=================  ===========================================================
QUEUED             detached, in the loop's pending queue: started when the
                   loop runs (again), resumed with `_resume`
STARTING           attached, not stepped yet in this segment (its first step
                   takes `_resume`)
RUNNING            attached and stepped: runnable, or waiting in tether-native
                   (trio-style) code
WAITING            attached and blocked in the kernel until `_fut_waiter` is
                   done
WAITING_DETACHED   detached, still waiting for `_fut_waiter`
DONE               the coroutine has ended; the future has its outcome
=================  ===========================================================

The transitions (in one place each; the hot ones also written out inline):

- new task: STARTING while the loop runs, else QUEUED (`new_task`);
- QUEUED, or a wakeup while the loop runs: STARTING (`LoopCore._attach`);
- STARTING to RUNNING: the first step (the stepper);
- RUNNING to WAITING: the coroutine awaits a future (`_on_foreign_yield`;
  the stepper's ``send`` for the common case);
- WAITING to RUNNING: the future is done (`_Wakeup.fire`; its common case
  also in `LoopCore.call_soon`), a parked task is woken (`wake_parked`), or
  a tether scope around the task aborts the wait (`_abort_wait`);
- WAITING to WAITING_DETACHED: the segment ends (`LoopCore._freeze`, or
  `_abort_wait` when the segment's nursery is cancelled);
- WAITING_DETACHED to QUEUED (or STARTING): the future is done
  (`_Wakeup.fire`), or the parked task is woken (`wake_parked`);
- RUNNING or STARTING to QUEUED: the segment ends before the task's next
  step (the stepper, `Task._queue`), or it ended abnormally
  (`LoopCore._detach_after_abnormal_exit`);
- to DONE: the coroutine returns or raises (the stepper's `_finish`).

Invariants:

- QUEUED exactly while the task is in the loop's pending queue.
- WAITING and WAITING_DETACHED: ``_fut_waiter`` is the future, with
  ``_wakeup`` among its done callbacks; or, for a task parked without a
  future (``await PARK``, see `_park.py`), `PARKED`.
- ``_slow`` is True whenever the next step has more to do than send the
  value it gets: load `_resume`, deliver a pending `cancel()`
  (``_must_cancel``) or swap in an interrupt (``_interrupt``). It may be
  True needlessly (the slow path then clears it).
- ``context`` (a kernel field) is the task's `contextvars.Context` (the
  creator's, copied at creation as in asyncio, unless one was given); the
  kernel steps the coroutine in it.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import inspect
import itertools
import sys
import types
from collections.abc import Callable, Coroutine, Generator
from types import FrameType, GenericAlias
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import outcome

from .. import lowlevel
from ._frozen import check_frozen_wait, stays_at_stop
from ._futures import loop_of
from ._native import on_native_foreign_yield
from ._park import PARK, WOKEN
from ._stdlib import (
    Future,
    StdlibTask,
    current_task_of,
    get_running_loop_or_none,
    register_task,
)
from ._task_repr import describe_task, print_task_stack

if TYPE_CHECKING:
    from ._loop import TetherEventLoop
    from ._loop_core import LoopCore

T = TypeVar("T")

AbortFn = Callable[[Callable[[], Any]], lowlevel.Abort]

_task_numbers = itertools.count(1).__next__
_CoroutineType = types.CoroutineType

_VALUE_NONE: outcome.Value[None] = outcome.Value(None)


class TaskState(enum.Enum):
    """Where an aio task is (the module docstring has the transitions)."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    WAITING = "waiting"
    WAITING_DETACHED = "waiting, detached"
    DONE = "done"


# (Module globals: read on the stepper's hot path.)
QUEUED = TaskState.QUEUED
STARTING = TaskState.STARTING
RUNNING = TaskState.RUNNING
WAITING = TaskState.WAITING
WAITING_DETACHED = TaskState.WAITING_DETACHED
DONE = TaskState.DONE


#: Python 3.13's `uncancel()` also withdraws a pending cancellation.
_UNCANCEL_WITHDRAWS = sys.version_info >= (3, 13)


def _cancelled_error(msg: Any) -> asyncio.CancelledError:
    """The error a future cancelled with `msg` raises when awaited."""
    return asyncio.CancelledError() if msg is None else asyncio.CancelledError(msg)


class _Wakeup(lowlevel.ForeignWaitAbort):
    """The done callback a waiting task adds to the future it waits for, and
    also the abort function the kernel keeps for that wait (one object, made
    at the task's first wait for a future, serves every such wait: a task
    waiting for a future allocates nothing else for it; a parked task's
    abort function is `PARKED`). The stepper yields it to the kernel for
    a wait it started itself (`_Stepper._send`), so the kernel blocks the
    task on it without calling `Task._on_foreign_yield`.

    The loop's ``call_soon`` recognises it by type and wakes the task at
    once (what `fire` does) instead of queueing it: waking a kernel task
    appends it to the kernel's run queue, which is exactly where asyncio
    would queue the task's own wakeup callback."""

    __slots__ = ("task",)

    def __init__(self, task: Task[Any]) -> None:
        self.task = task

    def __call__(self, future_or_raise_cancel: Any, /) -> lowlevel.Abort | None:  # type: ignore[override]
        # As a done callback it gets the future; as the kernel's abort
        # function, its ``raise_cancel`` function (futures are not callable).
        if callable(future_or_raise_cancel):
            return self.task._abort_wait(future_or_raise_cancel)
        self.fire()
        return None

    def __repr__(self) -> str:
        # What asyncio calls a task's wakeup: a future's repr lists it as
        # "cb=[Task.task_wakeup()]", as on asyncio. (Not a `__getattr__` that
        # gives it a ``__qualname__``: on Python 3.11 a class with one reads
        # every attribute of its instances more slowly.)
        return "Task.task_wakeup"

    def fire(self) -> None:
        task = self.task
        state = task._task_state
        loop = task._loop
        if state is WAITING and loop._nursery is not None:
            task._task_state = RUNNING
            # The task enters the run queue: callbacks queued from now on
            # run after it.
            loop._open_batch = None
            # (The segment's run, without `lowlevel.reschedule`'s checks: the
            # task waits at the foreign wait its stepper started.)
            loop._kernel.resume_foreign_wait(task)  # type: ignore[union-attr]
        elif state is WAITING or state is WAITING_DETACHED:
            task._set_resume(None, None)
            loop._make_ready(task)
        else:
            # The wait was abandoned, or the future finished while the task
            # was still starting to wait (`_on_foreign_yield` handles that;
            # the stepper's fast path never lets it happen).
            task._woken_early = True


class _Parked(lowlevel.ForeignWaitAbort):
    """The type of `PARKED` (one instance). The kernel aborts a parked wait
    through `abort_task`, never by calling the object."""

    __slots__ = ()

    def abort_task(self, task: Any, raise_cancel: Any, /) -> lowlevel.Abort:
        return task._abort_wait(raise_cancel)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return "<parked>"


#: The ``_fut_waiter`` of every task parked without a future (``await
#: PARK``), and the abort function of its wait in the kernel (which gives it
#: the task: see `lowlevel.ForeignWaitAbort.abort_task`). One object serves
#: every parked task, so a task that only ever parks has no wakeup object.
#: ``Task.cancel()`` wakes a parked task with `CancelledError`
#: (`wake_parked`), as it would cancel a future it waits for.
PARKED = _Parked()


#: Kernel fields (`lowlevel.TASK_SLOTS`) that the kernel writes before it
#: reads them, and that an aio task never needs: `Nursery.start`'s (an aio
#: task is never started that way). Without a slot they take no room on
#: every task; if set they would live in the instance's ``__dict__``, which
#: the C future provides. (Not the error to throw in, `_pending_throw`:
#: the end of a segment sets it on every waiting task, and a dict made for
#: it would cost more than the slot.)
_KERNEL_FIELDS_IN_DICT = frozenset({"_eventual_parent_nursery"})


class Task(StdlibTask[T], lowlevel.Task):
    """A coroutine running concurrently, as `asyncio.Task`.

    Create tasks with `create_task` (or `loop.create_task`). The task starts
    at the loop's next iteration and is a kernel task while it runs. It is a
    future: ``await task`` waits for it and returns its result or raises its
    exception.

    Cancellation: `cancel()` requests cancellation, edge-triggered as in
    asyncio. If the task waits for a future, that future is cancelled (which
    wakes the task with `asyncio.CancelledError`); otherwise the error is
    thrown into the coroutine at its next step. The coroutine may catch it.
    A wait in tether-native (trio-style) code is interrupted and raises the
    error, unless it cannot be abandoned (then the error comes at the next
    await; see `_interrupt_native_wait`). The task is marked
    cancelled when its coroutine ends with `CancelledError` (or with the
    kernel's `tether.Cancelled`, when a trio-style scope around it was
    cancelled).
    """

    __slots__ = (
        *(name for name in lowlevel.TASK_SLOTS if name not in _KERNEL_FIELDS_IN_DICT),
        "_aio_point",
        "_coro",
        "_done_hook",
        "_fut_waiter",
        "_must_cancel",
        "_name",
        "_num_cancels_requested",
        "_slow",
        "_task_state",
        "_wakeup",
    )

    # Set by new_task (declared here for type checkers). Five fields that
    # are rarely set have no slot (8 bytes each on every task):
    # ``_interrupt``, ``_resume``, ``_woken_early`` and ``_cancelled_exc``
    # (see `_make_cancelled_error`) live in the instance's ``__dict__`` (the
    # C future's, made when first needed) while set, read with a default;
    # ``_log_destroy_pending`` (written by `new_task` and by stdlib helpers
    # and ours, read by the C task's finalizer) is the C task's own field.
    #: The coroutine is suspended at an asyncio-level await (a bare yield,
    #: a future) or has not started: a pending `cancel()` is thrown in at
    #: the next step. False while it waits in tether-native code, which gets
    #: what woke it up (a value sent by a channel, a lock handed over) rather
    #: than losing it to a cancellation.
    _aio_point: bool
    _coro: Coroutine[Any, Any, T] | Generator[Any, None, T]
    #: A `LoopCallback` of tether.aio's own (a TaskGroup's, a gather's) that
    #: runs as this task's first done callback, queued by `_finish` without
    #: a trip through the future's callback list. Set only on a new task
    #: that has no callbacks yet (so that it comes first, as if added with
    #: ``add_done_callback``): a `LoopCallback`, or a `CountingHook`.
    _done_hook: Any
    #: The future the task waits for (WAITING, WAITING_DETACHED), or None.
    _fut_waiter: Any
    #: The `CancelledError` that replaces the outcome of a tether-native
    #: wait that `cancel()` interrupted (see `_interrupt_native_wait`);
    #: unset otherwise.
    _interrupt: BaseException
    #: The `CancelledError` the coroutine ended with, until first retrieved.
    _cancelled_exc: BaseException
    _log_destroy_pending: bool
    #: A `cancel()` waits to be delivered at the next asyncio-level await
    #: (asyncio's name for it).
    _must_cancel: bool
    #: The name, or the task's number (its place in creation order) until
    #: a name is given or asked for.
    _name: str | int
    _num_cancels_requested: int
    #: What to resume a detached task with when it is attached again:
    #: ``(value, error)``; unset for ``(None, None)``.
    _resume: tuple[Any, BaseException | None]
    #: The next step must take the stepper's slow path (see the invariants).
    _slow: bool
    #: Where the task is: a `TaskState`.
    _task_state: TaskState
    #: The loop (the C future's own field, set by its ``__init__``).
    _loop: LoopCore
    #: The done callback the task adds to the futures it waits for (made
    #: once, at its first wait).
    _wakeup: _Wakeup | None
    #: Set (True) by ``_wakeup`` when the future is done before the task
    #: has finished starting to wait for it (`_on_foreign_yield`); unset
    #: otherwise.
    _woken_early: bool

    def __init__(
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
        *,
        loop: TetherEventLoop | None = None,
        name: object = None,
        context: contextvars.Context | None = None,
        eager_start: bool = False,
    ) -> None:
        if loop is None:
            # (Imported here: _loop imports this module, through _loop_core.)
            from ._loop import TetherEventLoop

            running = get_running_loop_or_none()
            if not isinstance(running, TetherEventLoop):
                raise RuntimeError(
                    "tether.aio.Task needs a tether.aio event loop: create tasks with "
                    "create_task() inside tether.aio.run(), or pass loop="
                )
            loop = running
        new_task(coro, loop, name, context, self)

    __class_getitem__: Any = classmethod(GenericAlias)

    # -- asyncio.Task API ------------------------------------------------------

    def __repr__(self) -> str:
        return describe_task(self)

    def get_coro(self) -> Coroutine[Any, Any, T] | Generator[Any, None, T]:
        """The coroutine this task runs."""
        return self._coro

    def get_context(self) -> contextvars.Context:
        """The `contextvars.Context` the coroutine runs in."""
        return self.context

    @property
    def name(self) -> str:
        """The task's name, for the kernel's tools (`get_name`)."""
        return self.get_name()

    @name.setter
    def name(self, value: str) -> None:
        self.set_name(value)

    def code_coroutine(self) -> Any:
        """The coroutine this task runs (the kernel steps the loop's
        stepper, which steps this; see `tether.lowlevel.Task`)."""
        return self._coro

    def get_name(self) -> str:
        """The task's name: ``Task-N`` unless one was given."""
        name = self._name
        if isinstance(name, int):
            name = self._name = f"Task-{name}"
        return name

    def set_name(self, value: object) -> None:
        """Rename the task (the name is converted with ``str``)."""
        self._name = str(value)

    def set_result(self, result: Any) -> None:
        """Always raises `RuntimeError`, as for an `asyncio.Task`: a task's
        result is what its coroutine returns."""
        raise RuntimeError("Task does not support set_result operation")

    def set_exception(self, exception: Any) -> None:
        """Always raises `RuntimeError`, as for an `asyncio.Task`: a task's
        exception is what its coroutine raises."""
        raise RuntimeError("Task does not support set_exception operation")

    def cancel(self, msg: Any = None) -> bool:
        """Request that the task be cancelled; see the class docstring.

        Returns False if the task is already done, True otherwise. Increases
        the count that `cancelling()` reports."""
        self._log_traceback = False
        if self.done():
            return False
        self._num_cancels_requested += 1
        waiter = self._fut_waiter
        if waiter is not None:
            if waiter is PARKED:
                # Woken with the error, as cancelling its future would.
                if wake_parked(self, _cancelled_error(msg)):
                    return True
            elif waiter.cancel(msg=msg):
                return True
        self._must_cancel = True
        self._cancel_message = msg
        self._slow = True
        if self._task_state is RUNNING:
            # Perhaps waiting in tether-native code: interrupt that wait.
            self._interrupt_native_wait()
        return True

    def _make_cancelled_error(self) -> BaseException:
        """The `CancelledError` that retrieving this cancelled task's
        outcome raises: the first time, the very error its coroutine ended
        with (with its traceback through the task's frames), as asyncio's
        task hands it over; after that a new one, without a message when the
        coroutine ended with its own error (the task then cancels itself
        without one, as asyncio's does).
        (``result()`` and ``exception()`` below raise it; an aio task
        awaiting this one gets it from its stepper.)"""
        original = getattr(self, "_cancelled_exc", None)
        if original is not None:
            del self._cancelled_exc
            return original  # type: ignore[no-any-return]
        return super()._make_cancelled_error()  # type: ignore[misc, no-any-return]

    def result(self) -> T:
        """The task's result; raises its exception, or `CancelledError` if it
        was cancelled (the first time, the error its coroutine ended with),
        or `InvalidStateError` if it is not done. Not a checkpoint."""
        if self.cancelled():
            raise self._make_cancelled_error()
        return _future_result(self)

    def __await__(self) -> Generator[Any, None, T]:
        # (A cancelled task's first awaiter after it ended gets its own
        # error, as `result()` gives it; every other await is the standard
        # library's.)
        if self.cancelled():
            return _raise_when_awaited(self._make_cancelled_error())
        return _future_await(self)

    __iter__ = __await__

    def exception(self) -> BaseException | None:
        """The task's exception, or None if it returned; raises
        `CancelledError` if it was cancelled (the first time, the error its
        coroutine ended with) or `InvalidStateError` if it is not done."""
        if self.cancelled():
            raise self._make_cancelled_error()
        return _future_exception(self)

    def cancelling(self) -> int:
        """How many cancellation requests are pending (`cancel` calls not yet
        matched by `uncancel`)."""
        return self._num_cancels_requested

    def uncancel(self) -> int:
        """Decrement the count of cancellation requests; returns the new count.
        From Python 3.13 on (as asyncio), a cancellation not delivered yet is
        withdrawn when the count drops to zero."""
        if self._num_cancels_requested > 0:
            self._num_cancels_requested -= 1
            if self._num_cancels_requested == 0 and _UNCANCEL_WITHDRAWS:
                self._must_cancel = False
        return self._num_cancels_requested

    def get_stack(self, *, limit: int | None = None) -> list[FrameType]:
        """The frames of the coroutine: where it is suspended (only its own
        frame, as in asyncio), or the traceback frames if it ended with an
        exception; empty if it finished otherwise."""
        frames: list[FrameType] = []
        frame = getattr(self._coro, "cr_frame", None) or getattr(self._coro, "gi_frame", None)
        if frame is not None:
            while frame is not None and (limit is None or len(frames) < limit):
                frames.append(frame)
                frame = frame.f_back
            frames.reverse()
        elif self.done() and not self.cancelled() and self.exception() is not None:
            exc = self.exception()
            assert exc is not None
            tb = exc.__traceback__
            while tb is not None and (limit is None or len(frames) < limit):
                frames.append(tb.tb_frame)
                tb = tb.tb_next
        return frames

    def print_stack(self, *, limit: int | None = None, file: TextIO | None = None) -> None:
        """Print `get_stack()` in the format of the `traceback` module (to
        `file`, default ``sys.stderr``)."""
        print_task_stack(self, limit, file)

    # -- the loop's side -------------------------------------------------------

    def _set_resume(self, value: Any, error: BaseException | None) -> None:
        """Resume the task with `value` (or throw `error` in) at its next
        first step in a segment."""
        if value is not None or error is not None:
            self._resume = (value, error)
        elif getattr(self, "_resume", None) is not None:
            del self._resume
        self._slow = True

    def _queue(self) -> None:
        """The task goes to QUEUED: into the loop's pending queue, to be
        started when the loop runs (again). Its resume value is set."""
        self._task_state = QUEUED
        self._loop._pending.append(self)

    def _interrupt_native_wait(self) -> None:
        """Deliver a pending `cancel()` to a task whose kernel task waits in
        tether-native code (`tether.sleep`, a `tether.Event`, a channel,
        `tether.to_thread.run_sync(..., abandon_on_cancel=True)`...), as
        asyncio interrupts whatever a task awaits: the wait is aborted with
        `lowlevel.abort_wait` and raises `CancelledError` where it waits.

        A wait that cannot be abandoned (a thread that is not abandoned, a
        trio-style nursery's exit waiting for its children) keeps the
        request pending: it is delivered at the task's next asyncio-level
        await, or by interrupting its next tether-native wait. If the task
        is the one running, it is not waiting yet: try again once it is."""
        loop = self._loop
        if self._task_state is not RUNNING or loop._frozen or loop._nursery is None:
            # Not in tether-native code: detached, not started, waiting for
            # a future (cancelling the future delivers it); or the segment is
            # ending.
            return
        if current_task_of(loop) is self:
            token = loop._token
            if token is not None:
                token.run_sync_soon(_retry_interrupt, self)
            return
        raiser = _Interrupt()
        if lowlevel.abort_wait(self, raiser):
            # The kernel task resumes with the kernel's Cancelled from the
            # wait; the stepper swaps in this error (see `_Stepper._step`).
            self._interrupt = self._make_cancelled_error()
            self._must_cancel = False
        else:
            raiser.armed = False

    def _on_foreign_yield(self, awaited: object) -> AbortFn:
        """The task's ``foreign_yield_handler`` (called by the kernel as
        ``Task._on_foreign_yield(task, awaited)``): the coroutine awaits `awaited`
        (normally a future of this loop). Mirrors what asyncio's task step
        does with a yielded object; an error raised here is thrown into the
        coroutine at its next step."""
        # Whatever the outcome, the coroutine waits at an asyncio-level await.
        # (The common waits, a pending future of the loop and `PARK` with no
        # cancel() pending, are usually started by the stepper's fast path,
        # `_Stepper._send`; the slow path and the other cases come here.)
        self._aio_point = True
        if self._loop._frozen:
            check_frozen_wait(self._loop, self, not stays_at_stop(self, False))
        if awaited is PARK:
            if not self._must_cancel:
                # Parked without a future (see `_park.py`).
                self._fut_waiter = PARKED
                self._task_state = WAITING
                return PARKED
            # The wait is cancelled before it starts, as a future's would be.
            self._must_cancel = False
            raise _cancelled_error(self._cancel_message)
        blocking = getattr(awaited, "_asyncio_future_blocking", None)
        if blocking is None:
            if inspect.isgenerator(awaited):
                raise RuntimeError(
                    f"yield was used instead of yield from for generator in task "
                    f"{self!r} with {awaited!r}"
                )
            raise RuntimeError(f"Task got bad yield: {awaited!r}")
        future: Any = awaited
        if loop_of(future) is not self._loop:
            raise RuntimeError(f"Task {self!r} got Future {future!r} attached to a different loop")
        if not blocking:
            raise RuntimeError(
                f"yield was used instead of yield from in task {self!r} with {future!r}"
            )
        if future is self:
            raise RuntimeError(f"Task cannot await on itself: {self!r}")
        future._asyncio_future_blocking = False
        if getattr(self, "_woken_early", False):
            # (Left by a wakeup of a wait that was abandoned.)
            del self._woken_early
        wakeup = self._wakeup
        if wakeup is None:
            wakeup = self._wakeup = _Wakeup(self)
        future.add_done_callback(wakeup, context=_EMPTY_CONTEXT)
        self._fut_waiter = future
        if self._must_cancel and future.cancel(msg=self._cancel_message):
            self._must_cancel = False
            # The future is done: continue at once with its error, as the
            # asyncio task's wakeup would.
            raise future._make_cancelled_error()
        self._task_state = WAITING
        if getattr(self, "_woken_early", False):
            # A future-like object that was already done when awaited: its
            # callback ran before the task was waiting. Wake up next
            # iteration.
            del self._woken_early
            self._loop.call_soon(wakeup.fire)
        # (The abort function: `_abort_wait`, through the wakeup.)
        return wakeup  # type: ignore[return-value]

    def _abort_wait(self, raise_cancel: Callable[[], Any]) -> lowlevel.Abort:
        # The kernel cancels the wait: a trio-style scope around the task was
        # cancelled, or the segment is ending (then the task stays waiting
        # for its future, detached, unless `stays_at_stop`).
        if self._loop._frozen and not stays_at_stop(self, True):
            self._task_state = WAITING_DETACHED
        else:
            self._task_state = RUNNING
            future = self._fut_waiter
            if future is not None and future is not PARKED:
                future.remove_done_callback(self._wakeup)
            self._fut_waiter = None
        return lowlevel.Abort.SUCCEEDED


def wake_parked(task: Task[Any], error: BaseException | None = None) -> bool:
    """Wake `task`, parked on `PARK`: its await returns None, or raises
    `error`. As `_Wakeup.fire` wakes a task whose future is done. False, and
    nothing done, if the task is not parked now (woken already, or
    cancelled)."""
    state = task._task_state
    if state is WAITING:
        if task._fut_waiter is not PARKED:
            return False
        loop = task._loop
        if loop._wake_inline or _segment_runs_checked(loop):
            # The common case, first (outside debug mode, one test).
            task._task_state = RUNNING
            # (As `_Wakeup.fire`: callbacks queued from now on run after it.)
            loop._open_batch = None
            if error is None:
                loop._kernel.resume_foreign_wait(task, WOKEN)  # type: ignore[union-attr]
            else:
                loop._kernel.reschedule(task, outcome.Error(error))  # type: ignore[union-attr]
            return True
    elif state is not WAITING_DETACHED or task._fut_waiter is not PARKED:
        return False
    if error is None:
        task._set_resume(WOKEN, None)
    else:
        task._set_resume(None, error)
    task._loop._make_ready(task)
    return True


def _segment_runs_checked(loop: LoopCore) -> bool:
    """For a wakeup when `loop`'s ``_wake_inline`` is off: whether a segment
    runs; if one does (so debug mode is on), asyncio's debug-mode check that
    the caller is the loop's thread first (`RuntimeError` if not)."""
    if loop._nursery is None:
        return False
    loop._check_thread()
    return True


class _Interrupt:
    """The ``raise_exc`` that `Task._interrupt_native_wait` gives
    `lowlevel.abort_wait`. While armed it raises the kernel's `Cancelled`,
    so the wait's abort function sees an ordinary cancellation (a nursery's
    exit ignores it; a thread keeps it for ``from_thread.check_cancelled``);
    the stepper turns the wait's outcome into asyncio's `CancelledError`. If
    the wait could not be abandoned it is disarmed: a thread that calls
    ``check_cancelled`` later is not cancelled by it."""

    __slots__ = ("armed",)

    def __init__(self) -> None:
        self.armed = True

    def __call__(self) -> None:
        if self.armed:
            raise lowlevel.make_cancelled()


def _retry_interrupt(task: Task[Any]) -> None:
    # From the kernel's entry queue: between two batches, so the task that
    # cancelled itself is blocked now if its step ended in a native wait.
    if task._must_cancel and not task.done():
        task._interrupt_native_wait()


#: What asyncio's tasks accept as a coroutine, on this Python: coroutine
#: objects and `collections.abc.Coroutine`s, and on 3.11 also generators
#: (generator-based coroutines, which 3.11's own `ensure_future` and
#: `gather` make to wrap other awaitables).
_is_coroutine = asyncio.iscoroutine

_EMPTY_CONTEXT = contextvars.Context()
_copy_context = contextvars.copy_context
_future_init = Future.__init__
_future_result = Future.result
_future_await = Future.__await__
_future_exception = Future.exception
_set_result = Future.set_result
_new_task = Task.__new__


@lowlevel.enable_ki_protection  # (a half-made task would break the loop)
def new_task(
    coro: Any,
    loop: LoopCore,
    name: object,
    context: contextvars.Context | None,
    task: Task[Any] | None = None,
) -> Task[Any]:
    """Make and start a `Task` (or initialize `task`, from `Task.__init__`):
    ``Task(coro, loop=loop, ...)`` without the cost of calling a class, for
    the loop's `create_task`, `TaskGroup` and `gather`."""
    if task is None:
        task = _new_task(Task)
    _future_init(task, loop=loop)
    # Set before the check, so that a task whose creation failed can still
    # be printed.
    task._coro = coro
    # Numbered now (the order of creation), formatted when first asked for.
    task._name = _task_numbers() if name is None else str(name)
    task._num_cancels_requested = 0
    task._fut_waiter = None
    task._wakeup = None
    if type(coro) is not _CoroutineType and not _is_coroutine(coro):
        task._log_destroy_pending = False
        raise TypeError(f"a coroutine was expected, got {coro!r}")
    task.context = _copy_context() if context is None else context
    task._must_cancel = False
    task._done_hook = None
    task._aio_point = True
    # A new task starts with nothing to resume it with (None), so its first
    # step can take the stepper's fast path.
    task._slow = False
    if loop._closed:
        # (Before it is registered: a task that never runs is not one of
        # the loop's tasks, as in asyncio.)
        raise RuntimeError("Event loop is closed")
    # (The C task's flag: its finalizer reports a task destroyed while
    # still pending, as asyncio's does, unless a helper clears it.)
    task._log_destroy_pending = True
    register_task(task)
    nursery = loop._nursery
    if nursery is not None and not loop._frozen:
        # (`LoopCore._attach`, inlined: this runs once per task. The new
        # kernel task enters the run queue: callbacks queued from now on
        # run after it.)
        loop._open_batch = None
        loop._kernel.spawn_task(nursery, task, loop._stepper, task.context)  # type: ignore[union-attr]
        task._task_state = STARTING
    else:
        # Not started yet: the kernel's fields read as for a task that is
        # not running (the kernel sets them all when it starts).
        lowlevel.init_unstarted_task(task)
        task._queue()
    return task


#: The kernel calls ``task.foreign_yield_handler(task, awaited)``.
Task.foreign_yield_handler = staticmethod(Task._on_foreign_yield)  # type: ignore[assignment]
#: The kernel gives it to the trio-style tasks started in nurseries that an
#: aio task opens (see `_native.py`): they may await the loop's futures.
Task.child_foreign_yield_handler = staticmethod(on_native_foreign_yield)


def _raise_when_awaited(error: BaseException) -> Generator[Any, None, Any]:
    """What awaiting a cancelled task gives when its own error is handed
    over: that error, at the first step."""
    raise error
    yield  # (A generator.)
