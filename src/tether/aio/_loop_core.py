"""`LoopCore`: the part of the aio event loop that runs on tether's kernel.

Each call of `run_forever` (and so of `run_until_complete`, `aio.run`,
`Runner.run`) is one `tether.run`, a *segment*. Its main task opens the
segment's root nursery, in which everything of the loop runs as kernel
tasks:

- every aio task is carried by a kernel task (see `_task.py`);
- callbacks (`call_soon`) run in *callback runners*: the callbacks queued
  one after the other, with no task scheduled in between, form a batch that
  one runner task runs in one step. A runner is woken (or spawned) when its
  batch opens, so it takes its place in the kernel's FIFO run queue exactly
  where asyncio would have put the first of those callbacks in its ready
  queue; anything that puts a task in the run queue (a bare-yield
  checkpoint, a wakeup, a new task) closes the open batch. This keeps
  asyncio's ordering of callbacks and task steps;
- timers (`call_later`, `call_at`, `sleep`, `timeout`) live in one heap,
  served by one kernel task that sleeps until the earliest timer with a
  kernel deadline and runs the due timers in order;
- file-descriptor callbacks (`add_reader`...) are run by one kernel task
  that waits on a `lowlevel.FdWatchSet` (or by its hook: `_selector.py`).

What asyncio keeps at loop level (tasks, callbacks, timers, readers, futures,
worker-thread jobs) stays at loop level here: it survives from one segment to
the next. At a segment's end (`stop()`, or `run_until_complete`'s future is
done), the loop *freezes* between two kernel batches, as asyncio stops between
two iterations (after a KeyboardInterrupt or SystemExit from a callback or
task, at once, as asyncio stops in the middle of one): then its kernel tasks
leave the kernel instead of running user code (an aio task waiting for a
future keeps waiting, detached; one that could
run is queued with the value it would have been resumed with; an unrun batch
of callbacks is queued), the root nursery is cancelled and the segment ends.
The next segment starts from the queue. An aio task inside tether-native
(trio-style) code when its segment ends cannot leave the kernel there: it is
cancelled with `tether.Cancelled` (see docs/aio.md).

Invariants:

- ``_pending`` holds, in order, what runs when the loop next runs: QUEUED
  tasks, and callbacks (Handles and tuples: see `CallbackBatch`). While a
  segment runs and is not frozen, nothing is added to it.
- ``_open_batch`` is None or the batch of a runner that is in the kernel's
  run queue and has not run it yet; callbacks queued now join it if the
  kernel has not started the batch that runner is in (the batch's ``runq``
  is still the kernel's ``runq``; see `CallbackBatch.runq`).
- ``_nursery``, ``_stepper``, ``_kernel`` and ``_token`` are set exactly
  while a segment runs; ``_frozen`` is True only between the segment's
  freeze and its end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
import os
import sys
import threading
import warnings
import weakref
from asyncio import CancelledError, events
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar, TypeVarTuple, Unpack

import tether

from .. import RunFinishedError, lowlevel
from ..abc import Clock
from ._callbacks import (
    CONTEXT_CALL,
    FACTORY_REASON,
    CallbackBatch,
    LoopCallback,
    QueuedCallback,
    call_outside_task,
    call_unprotected,
    requeue_callbacks,
    run_callbacks,
)
from ._frozen import detach_if_waiting, release_stuck_tasks, stays_at_stop
from ._futures import isfuture
from ._native import adopt
from ._selector import Selector
from ._signals import SignalHandlers
from ._stdlib import Future as _Future
from ._stdlib import get_running_loop_or_none, set_running_loop
from ._stepper import _Stepper
from ._task import (
    RUNNING,
    STARTING,
    WAITING,
    WAITING_DETACHED,
    Task,
    TaskState,
    _Wakeup,
    new_task,
)
from ._task_functions import ensure_future
from ._thread_reports import ThreadReports
from ._timers import MonotonicClock, TimerMethods, pop_due_timers, run_timers

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

logger = logging.getLogger("asyncio")


_stdlib_all_tasks = asyncio.all_tasks
#: Frames of a coroutine's origin recorded in debug mode (asyncio's depth).
_DEBUG_ORIGIN_TRACKING_DEPTH = asyncio.constants.DEBUG_STACK_DEPTH
#: The states of a task whose kernel task runs in the current segment.
_ATTACHED = frozenset({TaskState.STARTING, TaskState.RUNNING, TaskState.WAITING})
IN_TETHER_RUN = (
    "an aio event loop cannot run inside tether.run(): there, await "
    "tether.aio.run_hosted(main()), which hosts the loop in the tether run"
)


def _debug_from_environment() -> bool:
    return sys.flags.dev_mode or (
        not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG"))
    )


def _run_until_complete_cb(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        exc = future.exception()
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            # The loop is stopping because of it already.
            return
    future.get_loop().stop()


class LoopCore(TimerMethods, asyncio.AbstractEventLoop):
    """The part of `TetherEventLoop` that runs on the kernel: running and
    stopping in segments, tasks, callbacks, timers (see the module
    docstring). `TetherEventLoop` adds the rest of asyncio's loop API."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._closed = False
        self._debug = _debug_from_environment()
        self._thread_id: int | None = None
        self._stopping = False
        #: The segment is ending (see the module docstring).
        self._frozen = False
        self._exception_handler: Callable[..., object] | None = None
        self._task_factory: Callable[..., Any] | None = None
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_shutdown_called = False
        self._thread_reports = ThreadReports()
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        #: What runs when the loop next runs, in order: callbacks and tasks.
        self._pending: deque[QueuedCallback | Task[Any]] = deque()
        #: Callbacks from other threads; guarded by `_lock`.
        self._threadsafe: deque[events.Handle] = deque()
        self._lock = threading.Lock()
        self._token: lowlevel.TetherToken | None = None
        self._nursery: tether.Nursery | None = None
        self._stepper: _Stepper | None = None  # (steps every task)
        #: Whether ``call_soon`` wakes a waiting task inline: in a segment,
        #: outside debug mode (where it checks the thread, as asyncio's).
        self._wake_inline = False
        #: Debug mode logs a callback or task step this slow (seconds).
        self.slow_callback_duration = 0.1
        self._kernel: lowlevel.SteppingState | None = None
        #: The segment's main task: waits (`_main_waiting`) until `_freeze`.
        self._main_ktask: lowlevel.Task | None = None
        self._main_waiting = False
        #: The coroutine origin tracking depth debug mode replaced, or None.
        self._saved_origin_tracking_depth: int | None = None
        #: The batch that callbacks queued now join (None: see above).
        self._open_batch: CallbackBatch | None = None
        #: The batches of the callback runners that wait for work.
        self._idle_batches: list[CallbackBatch] = []
        #: TimerHandles, a heap ordered by time (their ``_when``).
        self._timers: list[Any] = []
        self._timer_scope: tether.CancelScope | None = None
        self._timer_wake_at = float("inf")  # (the timer task sleeps until)
        self._timer_cancelled_count = 0
        #: The `_ReplacedTimeWatch` installed in this segment's run, if any.
        self._time_watch: lowlevel.Instrument | None = None
        self._segment_error: BaseException | None = None
        self._current_handle: Any = None
        # (Made for a stand-in loop rather than this one: the loop refers to
        # it, and a reference back would keep the loop in a cycle.)
        self._fired_handle = events.Handle(_noop, (), _FIRED)  # type: ignore[arg-type]
        self._selector: Selector | None = None
        #: Trio-style tasks waiting for one of this loop's futures (`_native`).
        self._native_waits: dict[lowlevel.Task, Any] = {}
        #: The buffer every transport reads into (`_transports.read_view`).
        self._read_view: memoryview | None = None
        #: fd -> its open transport (`add_reader` and friends refuse the fd).
        self._transports: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._signals = SignalHandlers(self)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()}>"
        )

    # -- running and stopping --------------------------------------------------

    def run_forever(self) -> None:
        """Run the loop until `stop()` is called.

        Raises `RuntimeError` if the loop is closed or already running, or if
        another event loop runs in this thread. A `KeyboardInterrupt` or
        `SystemExit` raised by a task or callback stops the loop and
        propagates from here, as in asyncio."""
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        self._thread_id = threading.get_ident()
        set_running_loop(self)
        try:
            tether.run(self._run_segment, clock=self._clock)
        except BaseException:
            # A KeyboardInterrupt or SystemExit that stopped the segment first
            # is raised, with this as its context (none stays for next time).
            self._raise_segment_error()
            raise
        finally:
            self._detach_after_abnormal_exit()
            self._stopping = False
            self._thread_id = None
            set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
        self._raise_segment_error()

    async def _run_forever_hosted(self) -> None:
        """`run_forever` as a part of the current tether run (see
        `tether.aio.run_hosted`): one segment, run by the calling task."""
        self._check_closed()
        self._check_running(hosted=True)
        self._thread_id = threading.get_ident()
        set_running_loop(self)
        try:
            await self._run_segment()
        except BaseException:
            self._raise_segment_error()  # (see run_forever)
            raise
        finally:
            self._stopping = False
            self._thread_id = None
            set_running_loop(None)
        self._raise_segment_error()

    def _raise_segment_error(self) -> None:
        """Raise the KeyboardInterrupt or SystemExit that stopped the segment
        (see `_segment_failed`), if there is one."""
        error = self._segment_error
        if error is not None:
            self._segment_error = None
            try:
                raise error
            finally:
                del error

    def run_until_complete(self, future: Generator[Any, None, T] | Awaitable[T]) -> T:
        """Run until `future` (a future, task or coroutine, which is wrapped
        in a task) is done, and return its result or raise its exception.

        Raises `RuntimeError` if the loop was stopped before the future was
        done, and like `run_forever` otherwise."""
        self._check_closed()
        self._check_running()
        new_task = not isfuture(future)
        fut: Any = ensure_future(future, loop=self)  # type: ignore[arg-type]
        if new_task:
            # An exception in the task is raised from here: do not also log
            # it as never retrieved.
            fut._log_destroy_pending = False
        fut.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except BaseException:
            if new_task and fut.done() and not fut.cancelled():
                # The exception is raised from here; mark it retrieved.
                fut.exception()
            raise
        finally:
            fut.remove_done_callback(_run_until_complete_cb)
        if not fut.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return fut.result()  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stop the loop after the current iteration: everything that was
        ready to run when the iteration started runs; what became ready
        during it runs when the loop is run again. Not thread-safe: from
        another thread use ``loop.call_soon_threadsafe(loop.stop)``."""
        self._stopping = True
        token = self._token
        if token is not None and not self._frozen:
            # The entry queue runs between two kernel batches: the freeze
            # happens at the end of the current iteration.
            try:
                token.run_sync_soon(self._freeze, idempotent=True)
            except RunFinishedError:
                pass

    def is_running(self) -> bool:
        """Whether the loop is running (`run_forever` has not returned)."""
        return self._thread_id is not None

    def is_closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _check_running(self, hosted: bool = False) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if get_running_loop_or_none() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")
        if not hosted and lowlevel.in_tether_run():
            raise RuntimeError(IN_TETHER_RUN)

    def _check_thread(self) -> None:
        if self._thread_id is not None and threading.get_ident() != self._thread_id:
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other than the current one"
            )

    def _check_callback(self, callback: Any, method: str) -> None:
        if asyncio.iscoroutine(callback) or asyncio.iscoroutinefunction(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        """In debug mode, while the loop runs, the interpreter records where
        each coroutine was created (shown when one is never awaited); the
        depth it had before is put back afterwards."""
        saved = self._saved_origin_tracking_depth
        if enabled and saved is None:
            self._saved_origin_tracking_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(_DEBUG_ORIGIN_TRACKING_DEPTH)
        elif not enabled and saved is not None:
            sys.set_coroutine_origin_tracking_depth(saved)
            self._saved_origin_tracking_depth = None

    # -- one segment -----------------------------------------------------------

    @lowlevel.enable_ki_protection  # (a Ctrl-C goes to the main wait below)
    async def _run_segment(self) -> None:
        agen_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook
        )
        try:
            async with tether.open_nursery() as nursery:
                self._nursery = nursery
                self._wake_inline = not self._debug
                self._stepper = _Stepper(self)
                self._kernel = lowlevel.current_stepping_state()
                self._main_ktask = lowlevel.current_task()
                self._frozen = False
                with self._lock:
                    self._token = lowlevel.current_tether_token()
                self._thread_reports.segment_started()
                # What was queued while the loop was not running goes first,
                # in order; timers that are due run after it, as in asyncio.
                pending = self._pending
                self._pending = deque()
                for item in pending:
                    if isinstance(item, Task):
                        self._attach(item)
                    else:
                        self._enqueue(item)
                del pending
                self._drain_threadsafe()
                self._signals.dispatch()
                self._signals.segment_started()
                if self._selector is not None:
                    self._selector.start(nursery)
                nursery.start_soon(run_timers, self, pop_due_timers(self), name="tether.aio timers")
                try:
                    if self._stopping:
                        # stop() first: one iteration (queued callbacks run next).
                        await lowlevel.cancel_shielded_checkpoint()
                        self._token.run_sync_soon(self._freeze, idempotent=True)
                    if not self._frozen:
                        self._main_waiting = True
                        await lowlevel.wait_task_rescheduled(self._abort_main_wait)
                except tether.Cancelled:
                    # One of the loop's own tasks raised (its error comes out
                    # of the nursery), or an outer scope was cancelled.
                    self._freeze()
                    raise
                except BaseException as exc:
                    # KeyboardInterrupt, delivered by the kernel to the main
                    # task: stop the loop (it freezes) and raise it from
                    # run_forever.
                    self._segment_failed(exc)
                nursery.cancel_scope.cancel()
                release_stuck_tasks(self)
        except BaseExceptionGroup as group:
            leaf: BaseException = group
            while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
                leaf = leaf.exceptions[0]
            if not isinstance(leaf, KeyboardInterrupt | SystemExit):
                raise
            # A lone KeyboardInterrupt or SystemExit from the loop's own code:
            # raised alone, as one from a callback (`_raise_segment_error`).
            self._segment_failed(leaf)
            del leaf
        finally:
            with self._lock:
                self._token = None
            self._thread_reports.segment_ended()
            self._nursery = None
            # (With no nursery, what they queue waits for the next segment.)
            self._signals.segment_ending()
            self._drop_time_watch()
            self._wake_inline = False
            if self._stepper is not None:
                self._stepper.close_segment()  # (no kernel task of it is left)
            self._stepper = None
            self._kernel = None
            self._main_ktask = None
            self._open_batch = None
            self._idle_batches.clear()
            self._timer_scope = None
            self._frozen = False
            if self._selector is not None:
                self._selector.stop()
            sys.set_asyncgen_hooks(*agen_hooks)

    def _detach_after_abnormal_exit(self) -> None:
        """After a run that ended without freezing (an exception escaped the
        kernel: an internal error, a Ctrl-C in the kernel's unprotected
        code), leave no task attached to a kernel task that is gone. A task
        waiting for a future keeps waiting; any other is resumed with
        `CancelledError` when the loop runs again."""
        # In the order they were started in the kernel run that just ended.
        attached = [task for task in self._aio_tasks() if task._task_state in _ATTACHED]
        attached.sort(key=lowlevel.spawn_order)
        for task in attached:
            state = task._task_state
            if state is WAITING:
                task._task_state = WAITING_DETACHED
                continue
            if state is RUNNING:
                task._set_resume(None, CancelledError("the event loop stopped abnormally"))
            # (A task attached but never stepped still has its first resume.)
            task._queue()

    def _aio_tasks(self) -> list[Task[Any]]:
        """This loop's `Task` objects that are not done (from the standard
        library's registry of tasks, which holds them weakly)."""
        tasks: set[Any] = _stdlib_all_tasks(self)
        return [task for task in tasks if isinstance(task, Task)]

    def _abort_main_wait(self, raise_cancel: Callable[[], Any]) -> lowlevel.Abort:
        self._main_waiting = False
        return lowlevel.Abort.SUCCEEDED

    def _freeze(self) -> None:
        """End the segment (see the module docstring): from the entry queue,
        between two kernel batches, for `stop()` and the end of
        `run_until_complete`; at once for a KeyboardInterrupt or SystemExit
        (`_segment_failed`)."""
        if self._frozen or self._nursery is None:
            return
        self._frozen = True
        for task in self._aio_tasks():
            if task._task_state is WAITING and not stays_at_stop(task, False):
                # It keeps waiting, out of the kernel (see `stays_at_stop`).
                detach_if_waiting(task)
        if self._main_waiting:
            self._main_waiting = False
            lowlevel.reschedule(self._main_ktask)  # type: ignore[arg-type]

    @lowlevel.enable_ki_protection
    def _segment_failed(self, error: BaseException) -> None:
        """A KeyboardInterrupt or SystemExit escaped a task or callback: stop
        and raise it from `run_forever`. The loop freezes at once, mid-batch,
        as asyncio's stops mid-iteration: the task steps and callbacks left
        in the batch do not run; they stay queued for the next run."""
        if self._segment_error is None:
            self._segment_error = error
        self._freeze()

    # -- tasks -----------------------------------------------------------------

    def _make_ready(self, task: Task[Any]) -> None:
        """`task` (whose resume value is set) can run: start it now if the
        segment runs, else queue it for the next."""
        if self._nursery is not None and not self._frozen:
            self._attach(task)
        else:
            task._queue()

    def _attach(self, task: Task[Any]) -> None:
        """Start `task` in this segment's kernel: it goes to STARTING."""
        # The new kernel task enters the run queue: callbacks queued from now
        # on must run after it.
        self._open_batch = None
        self._kernel.spawn_task(self._nursery, task, self._stepper, task.context)  # type: ignore[union-attr, arg-type]
        task._task_state = STARTING
        task._aio_point = True

    def create_task(  # type: ignore[override]
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
        *,
        name: object = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Future[T]:
        """Schedule `coro` as a task of this loop; see `tether.aio.create_task`."""
        if self._debug:
            self._check_thread()
        kernel = self._kernel
        if kernel is not None:
            ktask = kernel.current_task
            if ktask is not None and ktask.foreign_yield_handler is None:
                # A trio-style task that may await it (see _native.py).
                adopt(ktask)
        if self._task_factory is None:
            # (new_task raises the closed loop's RuntimeError itself.)
            return new_task(coro, self, name, context)
        self._check_closed()
        factory = self._task_factory
        if context is not None:
            factory = functools.partial(factory, context=context)
        if kernel is not None and kernel.current_task is not None:
            # In a task's step the factory runs as code of no task: a task it
            # starts eagerly runs its first step there, not as the caller.
            task = call_outside_task(
                kernel, call_unprotected, factory, self, coro, why=FACTORY_REASON
            )
        else:
            task = factory(self, coro)
        if name is not None:
            task.set_name(name)
        return task  # type: ignore[no-any-return]

    def set_task_factory(self, factory: Callable[..., Any] | None) -> None:
        """Use ``factory(loop, coro, **kwargs)`` to create tasks (None: the
        default, `tether.aio.Task`)."""
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Callable[..., Any] | None:
        """The factory set by `set_task_factory`, or None for the default."""
        return self._task_factory

    def create_future(self) -> asyncio.Future[Any]:
        """A new `asyncio.Future` attached to this loop."""
        kernel = self._kernel
        if kernel is not None:
            ktask = kernel.current_task
            if ktask is not None and ktask.foreign_yield_handler is None:
                # A trio-style task that will await it (see _native.py).
                adopt(ktask)
        return _Future(loop=self)

    # -- callbacks -------------------------------------------------------------

    def call_soon(
        self,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> events.Handle:
        """Call ``callback(*args)`` at the next iteration, in FIFO order with
        other callbacks and task steps; return an `asyncio.Handle`.

        The callback runs in `context` (default: a copy of the current one).
        An exception it raises is passed to the exception handler."""
        kind = type(callback)
        if kind is _Wakeup:
            # A future's done callback for a task waiting on it: wake the task
            # now (it joins the run queue where asyncio would queue this).
            task = callback.task  # type: ignore[attr-defined]
            if task._task_state is WAITING and self._wake_inline:
                # (`_Wakeup.fire`'s common case, one call less per wakeup.)
                task._task_state = RUNNING
                self._open_batch = None
                self._kernel.resume_foreign_wait(task)  # type: ignore[union-attr]
            else:
                if self._debug:
                    self._check_thread()
                callback.fire()  # type: ignore[attr-defined]
            return self._fired_handle
        if kind is LoopCallback and len(args) == 1:
            # One of the loop's own done callbacks: queued in order, like a
            # Handle, but without making one.
            if self._debug:
                self._check_thread()
            self._enqueue_callback(callback, args[0])  # type: ignore[arg-type, misc]
            return self._fired_handle
        if (
            kind is _BuiltinMethod
            and context is not None
            and not self._debug
            and callback.__name__ == "task_wakeup"
            and not self._closed
        ):
            # A standard-library task's wakeup (its future's done callback),
            # queued without a Handle: the C task drops what call_soon returns.
            batch = self._open_batch
            if batch is not None and batch.runq is self._kernel.runq and not self._frozen:  # type: ignore[union-attr]
                batch.extend((CONTEXT_CALL, callback, args, context))
            else:
                self._enqueue((CONTEXT_CALL, callback, args, context))
            return self._fired_handle
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
        handle: Any = events.Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        thread_id = self._thread_id
        if thread_id is not None and thread_id != threading.get_ident():
            # Called from another thread while the loop runs (not thread-safe
            # on asyncio either, which accepts it outside debug mode): handed
            # over as call_soon_threadsafe would, instead of touching the
            # loop's batches from this thread.
            self._hand_over(handle)
        else:
            self._enqueue(handle)
        return handle  # type: ignore[no-any-return]

    def _enqueue_callback(self, callback: LoopCallback, arg: Any) -> None:
        """Queue ``callback.function(arg)`` like a callback from call_soon
        (without making a Handle)."""
        batch = self._open_batch
        if batch is not None and batch.runq is self._kernel.runq and not self._frozen:  # type: ignore[union-attr]
            batch.add_callback(callback, arg)
        else:
            self._enqueue((callback, arg))

    def _enqueue(self, item: QueuedCallback) -> None:
        """Queue `item` (a Handle, or a tuple: see `CallbackBatch`): in the
        open batch, or in a new one, whose runner enters the kernel's run
        queue now, where asyncio would have queued this callback."""
        if self._nursery is None or self._frozen:
            self._pending.append(item)
            return
        batch = self._open_batch
        kernel: Any = self._kernel
        if batch is None or batch.runq is not kernel.runq:
            if self._idle_batches:
                batch = self._idle_batches.pop()
                # (Without `lowlevel.reschedule`'s checks: the runner is idle.)
                kernel.reschedule(batch.runner)
            else:
                batch = CallbackBatch()
                self._nursery.start_soon(self._run_callbacks, batch, name="tether.aio callbacks")
            batch.runq = kernel.runq
            self._open_batch = batch
        batch.add(item)

    @lowlevel.enable_ki_protection
    async def _run_callbacks(self, batch: CallbackBatch) -> None:
        """A callback runner: runs its batch each time it is given one."""
        batch.runner = lowlevel.current_task()
        while True:
            if self._open_batch is batch:
                self._open_batch = None
            if self._frozen:
                requeue_callbacks(batch, self._pending)
            else:
                run_callbacks(self, batch)
            # Empty it: while this runner is idle, it would keep every
            # future and task the batch's callbacks were given alive.
            batch.clear()
            self._idle_batches.append(batch)
            await lowlevel.wait_task_rescheduled(self._abort_idle_runners)

    def _abort_idle_runners(self, raise_cancel: Callable[[], Any]) -> lowlevel.Abort:
        # Only the end of a segment cancels runners, and then all of them.
        self._idle_batches.clear()
        return lowlevel.Abort.SUCCEEDED

    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> events.Handle:
        """Like `call_soon`, but callable from any thread: the way for other
        threads to get work into the loop. Wakes the loop if it waits."""
        self._check_closed()
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
        handle: Any = events.Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        self._hand_over(handle)
        return handle  # type: ignore[no-any-return]

    def _hand_over(self, handle: Any) -> None:
        """Queue `handle` from any thread: the loop's thread takes it at its
        next turn (woken if it waits)."""
        with self._lock:
            self._threadsafe.append(handle)
            token = self._token
        if token is not None:
            try:
                token.run_sync_soon(self._drain_threadsafe, idempotent=True)
            except RunFinishedError:
                # The segment just ended; the next one picks the handle up.
                pass

    def _drain_threadsafe(self) -> None:
        with self._lock:
            handles = list(self._threadsafe)
            self._threadsafe.clear()
        for handle in handles:
            self._enqueue(handle)

    # -- async generators ------------------------------------------------------

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                "loop.shutdown_asyncgens() call",
                ResourceWarning,
                source=self,
                stacklevel=1,
            )
        self._asyncgens.add(agen)

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    # -- debug -----------------------------------------------------------------

    def get_debug(self) -> bool:
        """Whether debug mode is on (default: ``PYTHONASYNCIODEBUG`` or
        ``-X dev``)."""
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        """Turn debug mode on or off: thread checks in ``call_soon``,
        callback checks, source tracebacks of handles and coroutines, a
        warning for each callback or task step that takes longer than
        ``slow_callback_duration``."""
        self._debug = enabled
        if self._nursery is not None:
            self._wake_inline = not enabled
        if self._stepper is not None:
            self._stepper.set_debug(enabled)
        if self.is_running():
            self._set_coroutine_origin_tracking(enabled)


def creates_plain_tasks(loop: object) -> bool:
    """Whether `loop` is a tether loop whose ``create_task`` makes a plain
    `Task` (no task factory, the method not overridden): then tether.aio's
    helpers (gather, TaskGroup) make their tasks with `new_task` directly,
    the cheaper way. False for anything else (None included)."""
    return (
        getattr(type(loop), "create_task", None) is LoopCore.create_task
        and loop._task_factory is None  # type: ignore[attr-defined]
    )


def _noop() -> None:
    pass


class _FiredHandleLoop:
    """The loop of the handle that ``call_soon`` returns for a callback it
    ran or queued without a Handle (what the handle's ``cancel()`` asks)."""

    __slots__ = ()

    def get_debug(self) -> bool:
        return False


_FIRED = _FiredHandleLoop()


#: The type of a standard-library task's wakeup (a builtin method).
_BuiltinMethod: Any = type(len)
