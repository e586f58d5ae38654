"""aio tasks: asyncio's `Task`, and a kernel task at the same time.

An aio `Task` is an `asyncio.Task` (a subclass of the C implementation, so
stdlib and third-party helpers that check ``isinstance(x, asyncio.Task)``
treat it as one; none of the C task's own machinery runs: its ``__init__``
is never called, and every method is tether's) that runs a coroutine, and it
is also a kernel task (a `tether.lowlevel.Task`): during each run of the loop (a
*segment*, see `_loop.py`) it is started with `lowlevel.spawn_task` in the
segment's root nursery. The kernel steps it through the loop's `_Stepper`,
one object shared by all of the loop's tasks, which learns from
`lowlevel.current_stepping_state` which task a step is for. The stepper

- makes the task asyncio's current task around each step, so that the
  standard library's `asyncio.current_task()` (and everything built on it,
  `asyncio.timeout`, sniffio) sees it;
- turns a bare ``yield`` (asyncio's "let one loop iteration pass", which is
  what `sleep(0)` does) into a kernel checkpoint;
- passes futures the coroutine awaits on to the kernel, which calls the
  task's ``foreign_yield_handler`` (`Task._park`): the task is parked in the
  kernel until the future is done;
- delivers asyncio's edge-triggered cancellation: `Task.cancel()` cancels the
  future the task waits for, aborts its tether-native wait, or throws
  `CancelledError` in at the next step;
- records the outcome on the Task when the coroutine ends. The kernel task
  then ends normally: an asyncio task's error belongs to whoever awaits the
  task (or to the loop's exception handler), not to the nursery.

Between segments a task is *detached* (not running in the kernel), and it
is either waiting for its future (`_parked`) or queued in the loop's pending
queue with the value to resume it with (`_resume_*`).

Invariants:
- ``_attached``: the task is running in the current segment's kernel (it was
  started there and has not exited). ``_fresh``: attached, and no step has
  run yet in this segment.
- ``context`` (a kernel field) is the task's `contextvars.Context` (the
  creator's, copied at creation as in asyncio, unless one was given); the
  kernel steps the coroutine in it.
- ``_parked``: the task waits for ``_fut_waiter`` with ``_wakeup`` among its
  done callbacks. ``_kernel_parked``: additionally it is parked in the kernel
  (so waking it is a `reschedule`).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import itertools
import linecache
import sys
import traceback
import types
from asyncio import CancelledError
from collections.abc import Awaitable, Callable, Coroutine, Generator
from types import FrameType, GenericAlias
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import outcome

from .. import Cancelled, lowlevel
from ._native import adopt_children
from ._stdlib import (
    Future,
    StdlibTask,
    current_task_of,
    enter_task,
    get_running_loop_or_none,
    leave_task,
    register_task,
)

if TYPE_CHECKING:
    from ._loop import TetherEventLoop

T = TypeVar("T")

AbortFn = Callable[[Callable[[], Any]], lowlevel.Abort]

_task_numbers = itertools.count(1).__next__
_CoroutineType = types.CoroutineType

#: Sent to a parked kernel task at the end of a segment: "leave the kernel,
#: the aio task keeps waiting for its future".
_DETACH: Any = object()


#: What the stepper gives the kernel for the coroutine's bare ``yield``.
_CHECKPOINT = lowlevel.CHECKPOINT
#: What the stepper gives the kernel when the task's kernel run ends.
_TASK_EXIT = lowlevel.TASK_EXIT
_VALUE_NONE: outcome.Value[None] = outcome.Value(None)
_has_open_nurseries = lowlevel.has_open_nurseries


#: Python 3.13's `uncancel()` also withdraws a pending cancellation.
_UNCANCEL_WITHDRAWS = sys.version_info >= (3, 13)


def _message_of(exc: BaseException) -> Any:
    return exc.args[0] if exc.args else None


class _Wakeup:
    """The done callback a waiting task adds to the future it waits for.

    The loop's ``call_soon`` recognises it by type and calls `fire` at once
    instead of queueing it: waking a kernel task appends it to the kernel's
    run queue, which is exactly where asyncio would queue the task's own
    wakeup callback."""

    __slots__ = ("task",)

    def __init__(self, task: Task[Any]) -> None:
        self.task = task

    def __call__(self, future: object) -> None:
        self.fire()

    def __repr__(self) -> str:
        return f"<wakeup of {self.task!r}>"

    def fire(self) -> None:
        task = self.task
        if not task._parked:
            # The wait was abandoned, or the future finished while the task
            # was still being parked (`_park` handles that).
            task._woken_early = True
            return
        task._parked = False
        loop = task._tloop
        if task._kernel_parked and loop._nursery is not None:
            task._kernel_parked = False
            loop._open_batch = None
            lowlevel.reschedule(task, _VALUE_NONE)
        else:
            task._set_resume(None, None)
            loop._make_ready(task)


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
        *lowlevel.TASK_SLOTS,
        "_aio_point",
        "_attached",
        "_coro",
        "_done_hook",
        "_fresh",
        "_fut_waiter",
        "_interrupt",
        "_kernel_parked",
        "_log_destroy_pending",
        "_must_cancel",
        "_name",
        "_num_cancels_requested",
        "_parked",
        "_resume",
        "_slow",
        "_tloop",
        "_wakeup",
        "_woken_early",
    )

    # Set by new_task (declared here for type checkers), except for
    # ``_log_destroy_pending`` (only written, by stdlib helpers and ours),
    # ``_woken_early`` (written before it is read), ``_resume`` and
    # ``_wakeup`` (read with a default): fields left unset cost the garbage
    # collector nothing, and every pending task is traversed several times
    # while many are alive.
    #: The coroutine is suspended at an asyncio-level await (a bare yield,
    #: a future) or has not started: a pending `cancel()` is thrown in at
    #: the next step. False while it waits in tether-native code, which gets
    #: what woke it up (a value sent by a channel, a lock handed over) rather
    #: than losing it to a cancellation.
    _aio_point: bool
    _attached: bool
    _coro: Coroutine[Any, Any, T] | Generator[Any, None, T]
    #: A `LoopCallback` of tether.aio's own (a TaskGroup's, a gather's) that
    #: runs as this task's first done callback, queued by `_finish` without
    #: a trip through the future's callback list. Set only on a new task
    #: that has no callbacks yet (so that it comes first, as if added with
    #: ``add_done_callback``): a `LoopCallback`, or a `CountingHook`.
    _done_hook: Any
    #: No step has run yet in this segment. The first step loads the task's
    #: resume value if it is slow; a task whose resume value is None (a new
    #: one) may take the fast path instead.
    _fresh: bool
    _fut_waiter: Any
    _interrupt: BaseException | None
    _kernel_parked: bool
    _log_destroy_pending: bool
    _must_cancel: bool
    #: The name, or the task's number (its place in creation order) until
    #: a name is given or asked for.
    _name: str | int
    _num_cancels_requested: int
    _parked: bool
    #: What to resume a detached task with when it is attached again:
    #: ``(value, error)``, or None for ``(None, None)``.
    _resume: tuple[Any, BaseException | None] | None
    _slow: bool
    _tloop: TetherEventLoop
    _wakeup: _Wakeup | None
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
        if self.done():
            state = "cancelled" if self.cancelled() else "finished"
        elif self._num_cancels_requested:
            state = "cancelling"
        else:
            state = "pending"
        parts = [state, f"name={self.get_name()!r}", f"coro=<{_format_coroutine(self._coro)}>"]
        if self.done() and not self.cancelled():
            exc = self.exception()
            if exc is not None:
                parts.append(f"exception={exc!r}")
            else:
                result = repr(self.result())
                if len(result) > 60:
                    result = result[:27] + "..." + result[-27:]
                parts.append(f"result={result}")
        elif self._fut_waiter is not None:
            parts.append(f"wait_for={self._fut_waiter!r}")
        return f"<{type(self).__name__} {' '.join(parts)}>"

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
        if waiter is not None and waiter.cancel(msg=msg):
            return True
        self._must_cancel = True
        self._cancel_message = msg
        self._slow = True
        if self._attached and not self._kernel_parked:
            # Perhaps waiting in tether-native code: interrupt that wait.
            self._interrupt_native_wait()
        return True

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
        """Print `get_stack()` in the format of the `traceback` module."""
        if file is None:
            file = sys.stderr
        entries = []
        for frame in self.get_stack(limit=limit):
            code = frame.f_code
            line = linecache.getline(code.co_filename, frame.f_lineno, frame.f_globals)
            entries.append((code.co_filename, frame.f_lineno, code.co_name, line.strip()))
        exc = None
        if self.done() and not self.cancelled():
            exc = self.exception()
        if not entries:
            print(f"No stack for {self!r}", file=file)
        elif exc is not None:
            print(f"Traceback for {self!r} (most recent call last):", file=file)
        else:
            print(f"Stack for {self!r} (most recent call last):", file=file)
        traceback.print_list(traceback.StackSummary.from_list(entries), file=file)
        if exc is not None:
            for line in traceback.format_exception_only(type(exc), exc):
                print(line, file=file, end="")

    # -- the loop's side -------------------------------------------------------

    def _set_resume(self, value: Any, error: BaseException | None) -> None:
        self._resume = None if value is None and error is None else (value, error)
        self._slow = True

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
        loop = self._tloop
        if not self._attached or self._kernel_parked or loop._frozen or loop._nursery is None:
            # Detached, waiting for a future (cancelling the future delivers
            # it), or the segment is ending.
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
            self._interrupt = self._make_cancelled_error()  # type: ignore[attr-defined]
            self._must_cancel = False
        else:
            raiser.armed = False

    def _park(self, awaited: object) -> AbortFn:
        """The task's ``foreign_yield_handler`` (called by the kernel as
        ``Task._park(task, awaited)``): the coroutine awaits `awaited`
        (normally a future of this loop). Mirrors what asyncio's task step
        does with a yielded object; an error raised here is thrown into the
        coroutine at its next step."""
        # Whatever the outcome, the coroutine waits at an asyncio-level await.
        self._aio_point = True
        blocking = getattr(awaited, "_asyncio_future_blocking", None)
        if blocking is None:
            if inspect.isgenerator(awaited):
                raise RuntimeError(
                    f"yield was used instead of yield from for generator in task "
                    f"{self!r} with {awaited!r}"
                )
            raise RuntimeError(f"Task got bad yield: {awaited!r}")
        future: Any = awaited
        if _loop_of(future) is not self._tloop:
            raise RuntimeError(f"Task {self!r} got Future {future!r} attached to a different loop")
        if not blocking:
            raise RuntimeError(
                f"yield was used instead of yield from in task {self!r} with {future!r}"
            )
        if future is self:
            raise RuntimeError(f"Task cannot await on itself: {self!r}")
        future._asyncio_future_blocking = False
        self._woken_early = False
        wakeup = getattr(self, "_wakeup", None)
        if wakeup is None:
            wakeup = self._wakeup = _Wakeup(self)
        future.add_done_callback(wakeup, context=_EMPTY_CONTEXT)
        self._fut_waiter = future
        if self._must_cancel and future.cancel(msg=self._cancel_message):
            self._must_cancel = False
            # The future is done: continue at once with its error, as the
            # asyncio task's wakeup would.
            raise future._make_cancelled_error()
        self._parked = True
        self._kernel_parked = True
        if self._woken_early:
            # A future-like object that was already done when awaited: its
            # callback ran before we were parked. Wake up next iteration.
            self._woken_early = False
            self._tloop.call_soon(wakeup.fire)
        return self._abort_wait

    def _abort_wait(self, raise_cancel: Callable[[], Any]) -> lowlevel.Abort:
        # The kernel cancels the wait: a trio-style scope around the task was
        # cancelled, or the segment is ending (then the task stays waiting
        # for its future, detached).
        self._kernel_parked = False
        if not self._tloop._frozen:
            self._parked = False
            future = self._fut_waiter
            if future is not None:
                future.remove_done_callback(self._wakeup)
            self._fut_waiter = None
        return lowlevel.Abort.SUCCEEDED


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
    # cancelled itself is parked now if its step ended in a native wait.
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
_set_result = Future.set_result
_new_task = Task.__new__


def new_task(
    coro: Any,
    loop: TetherEventLoop,
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
    if type(coro) is not _CoroutineType and not _is_coroutine(coro):
        task._log_destroy_pending = False
        raise TypeError(f"a coroutine was expected, got {coro!r}")
    task._tloop = loop
    task.context = _copy_context() if context is None else context
    task._must_cancel = False
    task._interrupt = None
    task._done_hook = None
    task._aio_point = True
    task._kernel_parked = False
    task._parked = False
    # A new task starts with nothing to resume it with (None), so its first
    # step can take the stepper's fast path.
    task._slow = False
    register_task(task)
    if loop._closed:
        raise RuntimeError("Event loop is closed")
    nursery = loop._nursery
    if nursery is not None and not loop._frozen:
        # Started now (`loop._attach`, inlined: this is the hot path of
        # create_task).
        loop._open_batch = None
        loop._kernel.spawn_task(nursery, task, loop._stepper, task.context)  # type: ignore[union-attr]
        task._attached = True
        task._fresh = True
    else:
        task._attached = False
        task._fresh = False
        # Not started yet: the kernel's fields read as for a task that is
        # not running (the kernel sets them all when it starts).
        lowlevel.init_unstarted_task(task)
        loop._pending.append(task)
    return task


#: The kernel calls ``task.foreign_yield_handler(task, awaited)``.
Task.foreign_yield_handler = staticmethod(Task._park)  # type: ignore[assignment]


class CountingHook:
    """The done callback of a group of futures (a `gather`'s children) whose
    callback has work to do only for a member that raised or was cancelled,
    and for the last member to finish; for the others it would only count
    them.

    A member that is a new task with the hook as its ``_done_hook`` is
    counted by the task's finish, which queues ``callback`` only in those
    cases. Every member of a group must be counted the same way: a group
    with other futures among its members gives every member a callback that
    calls `count_one`, or the last count could come before the callback of
    a member that finished earlier had run. ``last`` is the member that
    finished last, once all ``count`` of them have."""

    __slots__ = ("callback", "count", "finished", "last")

    def __init__(self, callback: Any) -> None:
        self.callback = callback
        self.count = 0
        self.finished = 0
        self.last: Any = None

    def count_one(self, member: Any) -> None:
        self.finished += 1
        if self.finished == self.count:
            self.last = member


# The stepper's own code keeps the task's state consistent: a Ctrl-C there
# is deferred (the task's coroutine itself is not protected).
_protected = lowlevel.enable_ki_protection


class _Stepper:
    """What the kernel steps for every task of one loop during one segment
    (the ``coro`` of each task; see the module docstring). Not a coroutine:
    the kernel calls its ``send`` and ``throw``, and they step the coroutine
    of the task the kernel is stepping."""

    __slots__ = ("_loop", "_state")

    def __init__(self, loop: TetherEventLoop) -> None:
        self._loop = loop
        self._state = lowlevel.current_stepping_state()

    def __repr__(self) -> str:
        return f"<tether.aio task stepper of {self._loop!r}>"

    def close(self) -> None:
        # The kernel closes the coroutines of tasks it cannot wake after a
        # crash; an aio task's coroutine stays with the task.
        pass

    @_protected
    def send(self, value: Any) -> Any:
        task: Task[Any] = self._state.current_task  # type: ignore[assignment]
        loop = self._loop
        if task._slow or loop._frozen:
            # (The frames of a step can outlive it, as the f_back of the
            # coroutine's frame in an error's traceback: the task stored
            # in them would keep itself alive. So the slow path reads it
            # again, and the error paths drop it before `_finish`.)
            del task
            return self._step(value, None)
        task._fut_waiter = None
        enter_task(loop, task)
        try:
            yielded = task._coro.send(value)
        except StopIteration as stop:
            # The coroutine returned (nothing refers to `stop` afterwards).
            leave_task(loop, task)
            return _finish(task, loop, stop.value, None)
        except BaseException as exc:
            leave_task(loop, task)
            del task
            return _finish(self._state.current_task, loop, None, exc)  # type: ignore[arg-type]
        leave_task(loop, task)
        # (The first step may be this fast one: a new task's resume value is
        # None. Later slow steps must not load it again.)
        task._fresh = False
        if _has_open_nurseries(task):
            # Trio-style children started in this step may await the loop's
            # futures: give them the handler before their first step.
            adopt_children(task)
        if yielded is None:
            # A bare yield: give up one iteration. The task re-enters the run
            # queue, so callbacks queued from now on run after it.
            loop._open_batch = None
            task._aio_point = True
            return _CHECKPOINT
        # A future (`_park` sets the flag back) or a tether-native trap.
        task._aio_point = False
        if yielded is _TASK_EXIT:
            return _BadYield(yielded)
        return yielded

    @_protected
    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        error = typ if isinstance(typ, BaseException) else typ(val)
        return self._step(None, error)

    @_protected
    def _step(self, value: Any, error: BaseException | None) -> Any:
        task: Task[Any] = self._state.current_task  # type: ignore[assignment]
        loop = self._loop
        if task._fresh:
            task._fresh = False
            resume = getattr(task, "_resume", None)
            if resume is not None:
                task._resume = None
                value, error = resume
            else:
                value = error = None
            del resume
        if loop._frozen:
            if value is _DETACH:
                return _detach(task)
            if error is not None and isinstance(error, Cancelled):
                # The segment's nursery was cancelled while the task waited
                # for a future (it keeps waiting) or at a bare-yield checkpoint
                # (it resumes normally next time).
                if task._parked:
                    return _detach(task)
                task._set_resume(None, None)
                loop._pending.append(task)
                return _detach(task)
            if not (type(value) is outcome.Error and isinstance(value.error, Cancelled)):
                task._set_resume(value, error)
                loop._pending.append(task)
                return _detach(task)
            # Otherwise a tether-native wait was cancelled by the end of the
            # segment: the task cannot leave the kernel in the middle of
            # tether code, so it unwinds with the kernel's Cancelled.
        interrupt = task._interrupt
        if interrupt is not None:
            # `cancel()` aborted the tether-native wait: it raises asyncio's
            # CancelledError instead of the kernel's Cancelled.
            task._interrupt = None
            if not loop._frozen and type(value) is outcome.Error:
                value = outcome.Error(interrupt)
                # A cancel() since then is answered by this error too, as
                # asyncio's step answers it with the awaited future's.
                task._must_cancel = False
            del interrupt
        if task._must_cancel and task._aio_point:
            if not isinstance(error, CancelledError):
                error = task._make_cancelled_error()  # type: ignore[attr-defined]
            task._must_cancel = False
        # Still pending (resumed from a tether-native wait): stay slow.
        task._slow = task._must_cancel
        task._parked = False
        task._fut_waiter = None
        enter_task(loop, task)
        try:
            if error is None:
                yielded = task._coro.send(value)
            else:
                yielded = task._coro.throw(error)
        except StopIteration as stop:
            # The coroutine returned: `_finish` applies a pending cancel().
            leave_task(loop, task)
            del error, task  # see send()
            return _finish(self._state.current_task, loop, stop.value, None)  # type: ignore[arg-type]
        except BaseException as exc:
            leave_task(loop, task)
            del error, task  # see send()
            return _finish(self._state.current_task, loop, None, exc)  # type: ignore[arg-type]
        leave_task(loop, task)
        if yielded is None:
            loop._open_batch = None
            task._aio_point = True
            return _CHECKPOINT
        task._aio_point = False
        if yielded is _TASK_EXIT:
            return _BadYield(yielded)
        if task._must_cancel:
            # A cancellation is pending and this may be a tether-native wait:
            # interrupt it once the kernel has parked the task.
            token = loop._token
            if token is not None:
                token.run_sync_soon(_retry_interrupt, task)
        return yielded


class _BadYield:
    """Stands for a kernel object the coroutine yielded that only a stepper
    may give the kernel (`lowlevel.TASK_EXIT`): it reaches `Task._park`,
    which rejects it, so the coroutine gets asyncio's "bad yield" error."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


@_protected
def _detach(task: Task[Any]) -> Any:
    """End the task's kernel run for this segment; it stays pending."""
    task._attached = False
    task._fresh = False
    task._kernel_parked = False
    task._slow = True
    return _TASK_EXIT


@_protected
def _finish(task: Task[Any], loop: TetherEventLoop, value: Any, exc: BaseException | None) -> Any:
    """The coroutine returned `value` (`exc` is None) or raised `exc`
    (StopIteration is a return too): record the outcome on the task, and
    return what ends its kernel run normally."""
    if exc is not None and isinstance(exc, StopIteration):
        value, exc = exc.value, None
    task._attached = False
    # The task keeps no reference to itself once done (asyncio's tasks
    # are collected, and report unretrieved errors, as soon as they are
    # dropped).
    task._wakeup = None
    hook = task._done_hook
    if hook is not None and type(hook) is CountingHook:
        hook.finished += 1
        if hook.finished == hook.count:
            hook.last = task
            hook = hook.callback
        elif exc is None and not task._must_cancel:
            # Returned, and not the last of its group: no callback.
            task._done_hook = hook = None
        else:
            hook = hook.callback
    if hook is not None:
        # The first done callback, queued where the future would queue it
        # (`loop._enqueue_callback`, inlined).
        task._done_hook = None
        batch = loop._open_batch
        if batch is not None and not loop._frozen:
            batch.append(hook)
            batch.append(task)
        else:
            loop._enqueue((hook, task))
        del batch
    del hook
    if exc is None:
        if task._must_cancel:
            task._must_cancel = False
            Future.cancel(task, msg=task._cancel_message)
        else:
            _set_result(task, value)
        # Ends the kernel task.
        return _TASK_EXIT
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code in _STEPPER_CODES:
        # Drop the stepper's own frame: it is not the task's code (and
        # it references the task).
        exc.__traceback__ = tb.tb_next
    del tb
    if isinstance(exc, CancelledError):
        Future.cancel(task, msg=_message_of(exc))
    elif isinstance(exc, Cancelled):
        # A trio-style scope around this task's code was cancelled and the
        # kernel's Cancelled reached the top of the task.
        Future.cancel(task)
    elif isinstance(exc, KeyboardInterrupt | SystemExit):
        Future.set_exception(task, exc)
        loop._segment_failed(exc)
    else:
        Future.set_exception(task, exc)
    return _TASK_EXIT


_STEPPER_CODES = frozenset({_Stepper.send.__code__, _Stepper._step.__code__})


def _loop_of(future: Any) -> Any:
    """The loop of an asyncio-compatible `future`: its ``get_loop()``, or
    for an older kind of future without one, its ``_loop`` (as asyncio's
    tasks accept)."""
    try:
        get_loop = future.get_loop
    except AttributeError:
        return future._loop
    return get_loop()


def _format_coroutine(coro: object) -> str:
    name = getattr(coro, "__qualname__", None) or getattr(coro, "__name__", None)
    if not name:
        name = f"<{type(coro).__name__} without __name__>"
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    if code is None:
        return f"{name}()"
    frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
    if frame is not None:
        return f"{name}() running at {code.co_filename}:{frame.f_lineno}"
    return f"{name}() done, defined at {code.co_filename}:{code.co_firstlineno}"


# ---------------------------------------------------------------------------
# Module-level functions


def current_task(loop: Any = None) -> Task[Any] | None:
    """The aio task running the calling code, or None (in a callback, or in
    a trio-style task). Not a checkpoint.

    Raises `RuntimeError` when called without a loop outside a running loop.
    """
    from ._stdlib import current_task as stdlib_current_task

    task: Any = stdlib_current_task(loop)
    return task  # type: ignore[no-any-return]


def all_tasks(loop: Any = None) -> set[Task[Any]]:
    """The set of tasks of the loop (default: the running loop) that are not
    done yet. Not a checkpoint."""
    from ._stdlib import get_running_loop

    if loop is None:
        loop = get_running_loop()
    from asyncio import all_tasks as stdlib_all_tasks

    # Every task of a tether loop is in the standard library's registry too.
    return stdlib_all_tasks(loop)  # type: ignore[return-value]


def create_task(
    coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
    *,
    name: object = None,
    context: contextvars.Context | None = None,
) -> Task[T]:
    """Start running `coro` as a task of the running loop, at the loop's next
    iteration, and return the `Task`. Not a checkpoint.

    Raises `RuntimeError` if no loop is running in this thread.
    """
    from ._stdlib import get_running_loop

    loop = get_running_loop()
    if context is None:
        task = loop.create_task(coro)
    else:
        task = loop.create_task(coro, context=context)
    if name is not None:
        task.set_name(name)
    return task  # type: ignore[no-any-return]


def ensure_future(coro_or_future: Awaitable[T], *, loop: Any = None) -> Future[T]:
    """Return `coro_or_future` if it is a future (of `loop`, when given);
    wrap a coroutine in a task; wrap another awaitable in a task that awaits
    it. Not a checkpoint.

    Raises `TypeError` for anything that is not awaitable, and `ValueError`
    when a future of another loop is passed with `loop`.
    """
    from ._events import get_event_loop
    from ._futures import isfuture

    if isfuture(coro_or_future):
        future: Any = coro_or_future
        if loop is not None and loop is not future.get_loop():
            raise ValueError(
                "The future belongs to a different loop than the one specified as the loop argument"
            )
        return future  # type: ignore[no-any-return]
    if _is_coroutine(coro_or_future):
        coro: Any = coro_or_future
    elif inspect.isawaitable(coro_or_future):
        coro = _wrap_awaitable(coro_or_future)
    else:
        raise TypeError("An asyncio.Future, a coroutine or an awaitable is required")
    if loop is None:
        loop = get_event_loop()
    return loop.create_task(coro)  # type: ignore[no-any-return]


async def _wrap_awaitable(awaitable: Awaitable[T]) -> T:
    return await awaitable
