"""`TetherEventLoop`: an `asyncio.AbstractEventLoop` that runs on tether's kernel.

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
- file-descriptor callbacks (`add_reader`...) are kernel tasks waiting with
  `lowlevel.wait_readable` / `wait_writable` (see `_selector.py`).

What asyncio keeps at loop level (tasks, callbacks, timers, readers, futures)
stays at loop level here, so it survives from one segment to the next. At
the end of a segment (`stop()`, or the future of `run_until_complete`
finishing), the loop *freezes* between two kernel batches, as asyncio stops
between two iterations: from then on kernel tasks of the loop leave the
kernel instead of running user code (an aio task waiting for a future keeps
waiting, detached; one that could run is queued with the value it would have
been resumed with; an unrun batch of callbacks is queued), then the root
nursery is cancelled and the segment ends. The next segment starts from the
queue. An aio task that is inside tether-native (trio-style) code when its
segment ends cannot leave the kernel there: it is cancelled with
`tether.Cancelled` (see docs/aio.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import heapq
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import warnings
import weakref
from asyncio import CancelledError, events
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar, TypeVarTuple, Unpack

import outcome

import tether

from .. import RunFinishedError, lowlevel
from ..abc import Clock
from . import _connections, _datagram, _pipes, _sockets, _subprocess
from ._callbacks import LoopCallback
from ._native import adopt
from ._selector import _READ, _WRITE, Selector
from ._signals import SignalHandlers
from ._stdlib import get_running_loop_or_none, set_running_loop
from ._stepper import _Stepper
from ._task import Task, _Wakeup, new_task

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

logger = logging.getLogger("asyncio")


_stdlib_all_tasks = asyncio.all_tasks
#: The resolution of the loop's default clock (asyncio uses it the same way).
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution
_HandleOrTask = events.Handle | Task[Any] | tuple[Any, Any]


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


class TetherEventLoop(asyncio.AbstractEventLoop):
    """An asyncio event loop whose tasks are tether kernel tasks.

    Create one with `tether.aio.new_event_loop()` (or use `tether.aio.run`).
    It implements `asyncio.AbstractEventLoop`, and while it runs it is what
    the standard library's `asyncio.get_running_loop()` returns.

    Args:
      clock: a tether clock for the loop's time (`loop.time()`) and its
        timers; default a real-time clock. Pass
        ``tether.testing.MockClock(autojump_threshold=0)`` for virtual time
        in tests. A tether extension.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else lowlevel.SystemClock()
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
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        #: Things to run when the loop next runs, in order: callbacks, and
        #: tasks (to start in the kernel).
        self._pending: deque[_HandleOrTask] = deque()
        #: Callbacks from other threads; guarded by `_lock`.
        self._threadsafe: deque[events.Handle] = deque()
        self._lock = threading.Lock()
        self._token: lowlevel.TetherToken | None = None
        self._nursery: tether.Nursery | None = None
        #: What the kernel steps for every task during a segment.
        self._stepper: _Stepper | None = None
        #: The segment's kernel (`lowlevel.current_stepping_state`).
        self._kernel: lowlevel.SteppingState | None = None
        self._main_ktask: lowlevel.Task | None = None
        self._main_parked = False
        self._open_batch: list[Any] | None = None
        self._idle_runners: list[lowlevel.Task] = []
        #: TimerHandles, a heap ordered by time (their ``_when``).
        self._timers: list[Any] = []
        self._timer_scope: tether.CancelScope | None = None
        #: The loop time the timer task sleeps until (its earliest timer).
        self._timer_wake_at = float("inf")
        self._timer_cancelled_count = 0
        self._segment_error: BaseException | None = None
        self._current_handle: Any = None
        self._fired_handle = events.Handle(_noop, (), self)
        self._selector: Selector | None = None
        #: fd -> the transport that uses it; `add_reader` and friends refuse
        #: those fds while the transport is open, as asyncio's do.
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
        finally:
            self._detach_after_abnormal_exit()
            self._stopping = False
            self._thread_id = None
            set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
        error = self._segment_error
        if error is not None:
            self._segment_error = None
            try:
                raise error
            finally:
                del error

    async def _run_forever_hosted(self) -> None:
        """`run_forever` as a part of the current tether run (see
        `tether.aio.run_hosted`): one segment, run by the calling task."""
        self._check_closed()
        self._check_running()
        self._thread_id = threading.get_ident()
        set_running_loop(self)
        try:
            await self._run_segment()
        finally:
            self._stopping = False
            self._thread_id = None
            set_running_loop(None)
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
        from ._task import ensure_future

        self._check_closed()
        self._check_running()
        new_task = not _isfuture(future)
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

    def close(self) -> None:
        """Close the loop: drop pending callbacks and timers, and shut the
        default executor down without waiting for it. Idempotent.

        Raises `RuntimeError` if the loop is running."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            logger.debug("Close %r", self)
        self._closed = True
        self._pending.clear()
        self._threadsafe.clear()
        self._timers.clear()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)
        self._signals.close()
        if self._selector is not None:
            self._selector.close()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed:
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _check_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if get_running_loop_or_none() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

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
        if enabled:
            sys.set_coroutine_origin_tracking_depth(10)
        elif sys.get_coroutine_origin_tracking_depth():
            sys.set_coroutine_origin_tracking_depth(0)

    # -- one segment -----------------------------------------------------------

    async def _run_segment(self) -> None:
        agen_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook
        )
        try:
            async with tether.open_nursery() as nursery:
                self._nursery = nursery
                self._stepper = _Stepper(self)
                self._kernel = lowlevel.current_stepping_state()
                self._main_ktask = lowlevel.current_task()
                self._frozen = False
                with self._lock:
                    self._token = lowlevel.current_tether_token()
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
                if self._selector is not None:
                    self._selector.start(nursery)
                nursery.start_soon(self._run_timers, name="tether.aio timers")
                if self._stopping:
                    # stop() before run_forever(): run one iteration (what is
                    # queued now runs in the next kernel batch, with us).
                    await lowlevel.cancel_shielded_checkpoint()
                    lowlevel.current_tether_token().run_sync_soon(self._freeze, idempotent=True)
                try:
                    if not self._frozen:
                        self._main_parked = True
                        await lowlevel.wait_task_rescheduled(self._abort_main_wait)
                except BaseException as exc:
                    # KeyboardInterrupt, delivered by the kernel to the main
                    # task: stop the loop and raise it from run_forever.
                    self._segment_failed(exc)
                    self._freeze()
                nursery.cancel_scope.cancel()
        finally:
            with self._lock:
                self._token = None
            self._nursery = None
            self._stepper = None
            self._kernel = None
            self._main_ktask = None
            self._open_batch = None
            self._idle_runners.clear()
            self._timer_scope = None
            self._frozen = False
            if self._selector is not None:
                self._selector.stop()
            sys.set_asyncgen_hooks(*agen_hooks)

    def _detach_after_abnormal_exit(self) -> None:
        """After a run that ended without freezing (an exception escaped the
        kernel, such as a KeyboardInterrupt raised inside the loop's own
        code), leave no task attached to a kernel task that is gone. A task
        waiting for a future keeps waiting; any other is resumed with
        `CancelledError` when the loop runs again."""
        queued = {item for item in self._pending if isinstance(item, Task)}
        # In the order they were started in the kernel run that just ended.
        attached = [task for task in self._aio_tasks() if task._attached]
        attached.sort(key=lowlevel.spawn_order)
        for task in attached:
            was_running = not task._fresh
            task._attached = False
            task._fresh = False
            task._kernel_parked = False
            task._slow = True
            if task._parked or task in queued:
                continue
            if was_running:
                task._set_resume(None, CancelledError("the event loop stopped abnormally"))
            # (A task attached but never stepped still has its first resume.)
            self._pending.append(task)

    def _aio_tasks(self) -> list[Task[Any]]:
        """This loop's `Task` objects that are not done (from the standard
        library's registry of tasks, which holds them weakly, as asyncio
        does)."""
        tasks: set[Any] = _stdlib_all_tasks(self)
        return [task for task in tasks if isinstance(task, Task)]

    def _abort_main_wait(self, raise_cancel: Callable[[], Any]) -> lowlevel.Abort:
        self._main_parked = False
        return lowlevel.Abort.SUCCEEDED

    def _freeze(self) -> None:
        """End the segment (runs between two kernel batches, from the entry
        queue; see the module docstring)."""
        if self._frozen or self._nursery is None:
            return
        self._frozen = True
        detach = outcome.Value(_task_detach_marker())
        for task in self._aio_tasks():
            if task._kernel_parked:
                task._kernel_parked = False
                lowlevel.reschedule(task, detach)
        if self._main_parked:
            self._main_parked = False
            lowlevel.reschedule(self._main_ktask)  # type: ignore[arg-type]

    def _segment_failed(self, error: BaseException) -> None:
        """A KeyboardInterrupt or SystemExit escaped a task or callback: stop
        and raise it from `run_forever`."""
        if self._segment_error is None:
            self._segment_error = error
        token = self._token
        if token is not None and not self._frozen:
            try:
                token.run_sync_soon(self._freeze, idempotent=True)
            except RunFinishedError:
                pass

    # -- tasks -----------------------------------------------------------------

    def _make_ready(self, task: Task[Any]) -> None:
        if self._nursery is not None and not self._frozen:
            self._attach(task)
        else:
            self._pending.append(task)

    def _attach(self, task: Task[Any]) -> None:
        # The new kernel task enters the run queue: callbacks queued from now
        # on must run after it.
        self._open_batch = None
        assert self._nursery is not None and self._kernel is not None
        self._kernel.spawn_task(self._nursery, task, self._stepper, task.context)
        task._attached = True
        task._fresh = True
        task._aio_point = True

    def create_task(  # type: ignore[override]
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
        *,
        name: object = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Future[T]:
        """Schedule `coro` as a task of this loop; see `tether.aio.create_task`."""
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
        if context is None:
            task = self._task_factory(self, coro)
        else:
            task = self._task_factory(self, coro, context=context)
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
        return asyncio.Future(loop=self)

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
            callback.fire()  # type: ignore[attr-defined]
            return self._fired_handle
        if kind is LoopCallback and len(args) == 1:
            # One of the loop's own done callbacks: queued in order, like a
            # Handle, but without making one.
            self._enqueue_callback(callback, args[0])  # type: ignore[arg-type, misc]
            return self._fired_handle
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
        handle: Any = events.Handle(callback, args, self, context)
        if handle._source_traceback:
            del handle._source_traceback[-1]
        self._enqueue(handle)
        return handle  # type: ignore[no-any-return]

    def _enqueue_callback(self, callback: LoopCallback, arg: Any) -> None:
        """Queue ``callback.function(arg)`` like a callback from call_soon.
        In a batch it takes two entries, itself and its argument, so that
        queueing it keeps no new object alive (with 100k tasks finishing in
        one batch, kept tuples would make the garbage collector walk them
        all)."""
        batch = self._open_batch
        if batch is not None and not self._frozen:
            batch.append(callback)
            batch.append(arg)
        else:
            self._enqueue((callback, arg))

    def _enqueue(self, handle: Any) -> None:
        if self._nursery is None or self._frozen:
            self._pending.append(handle)
            return
        batch = self._open_batch
        if batch is not None:
            if type(handle) is tuple:
                batch.extend(handle)
            else:
                batch.append(handle)
            return
        self._open_batch = batch = list(handle) if type(handle) is tuple else [handle]
        if self._idle_runners:
            lowlevel.reschedule(self._idle_runners.pop(), outcome.Value(batch))
        else:
            self._nursery.start_soon(self._run_callbacks, batch, name="tether.aio callbacks")

    async def _run_callbacks(self, batch: list[Any]) -> None:
        ktask = lowlevel.current_task()
        while True:
            if self._open_batch is batch:
                self._open_batch = None
            if self._frozen:
                self._requeue(batch, 0)
            else:
                self._run_handles(batch)
            # Empty it: while this runner is idle the kernel still holds the
            # list (the value it last sent), and with it every future and
            # task the batch's callbacks were given.
            batch.clear()
            del batch
            self._idle_runners.append(ktask)
            batch = await lowlevel.wait_task_rescheduled(self._abort_idle_runners)

    def _abort_idle_runners(self, raise_cancel: Callable[[], Any]) -> lowlevel.Abort:
        # Only the end of a segment cancels runners, and then all of them.
        self._idle_runners.clear()
        return lowlevel.Abort.SUCCEEDED

    def _requeue(self, handles: list[Any], start: int) -> None:
        """Put ``handles[start:]``, a batch's entries, back in the pending
        queue (a LoopCallback and its argument as one pair)."""
        items = iter(handles[start:])
        for handle in items:
            if type(handle) is LoopCallback:
                self._pending.append((handle, next(items)))
            else:
                self._pending.append(handle)

    def _run_handles(self, handles: list[Any]) -> None:
        # (Callers clear `handles` afterwards.) A frame that outlives a
        # callback, in the traceback of an error the callback kept (a task's
        # exception), links back to this frame and keeps its locals as they
        # are when it returns: so no handle may be left in them, as asyncio's
        # loop drops its own, or the handle (and what it refers to) would
        # stay alive until the cycle collector runs.
        index = 0
        count = len(handles)
        handle = arg = None
        while index < count:
            handle = handles[index]
            index += 1
            if type(handle) is LoopCallback:
                # The loop's own done callbacks, run without a Handle; the
                # next entry is the argument.
                arg = handles[index]
                index += 1
                try:
                    handle.function(arg)
                except (SystemExit, KeyboardInterrupt) as exc:
                    self._segment_failed(exc)
                    self._requeue(handles, index)
                    return
                except BaseException as exc:
                    self.call_exception_handler(
                        {"message": f"Exception in callback {handle!r}", "exception": exc}
                    )
                handle = arg = None
                continue
            if handle._cancelled:
                continue
            self._current_handle = handle
            try:
                handle._run()
            except BaseException as exc:
                # KeyboardInterrupt or SystemExit (Handle._run reports the
                # rest): stop, and keep the callbacks not run yet.
                self._segment_failed(exc)
                self._requeue(handles, index)
                return
            finally:
                self._current_handle = handle = arg = None

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
        with self._lock:
            self._threadsafe.append(handle)
            token = self._token
        if token is not None:
            try:
                token.run_sync_soon(self._drain_threadsafe, idempotent=True)
            except RunFinishedError:
                # The segment just ended; the next one picks the handle up.
                pass
        return handle  # type: ignore[no-any-return]

    def _drain_threadsafe(self) -> None:
        with self._lock:
            handles = list(self._threadsafe)
            self._threadsafe.clear()
        for handle in handles:
            self._enqueue(handle)

    # -- timers ----------------------------------------------------------------

    def time(self) -> float:
        """The loop's time, in seconds, on its clock (also outside a run)."""
        return self._clock.current_time()

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> events.TimerHandle:
        """Call ``callback(*args)`` after `delay` seconds; return an
        `asyncio.TimerHandle` (``cancel()``, ``when()``)."""
        if delay is None:
            raise TypeError("delay must not be None")
        timer: Any = self.call_at(self.time() + delay, callback, *args, context=context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        return timer  # type: ignore[no-any-return]

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> events.TimerHandle:
        """Call ``callback(*args)`` at loop time `when`; return an
        `asyncio.TimerHandle`. Timers due at the same time run in the order
        they were scheduled."""
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
        timer: Any = events.TimerHandle(when, callback, args, self, context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        heapq.heappush(self._timers, timer)
        timer._scheduled = True
        scope = self._timer_scope
        if scope is not None and when < self._timer_wake_at:
            self._timer_wake_at = when
            scope.deadline = self._kernel_deadline(when)
        return timer  # type: ignore[no-any-return]

    def _kernel_deadline(self, when: float) -> float:
        """The kernel deadline (on the clock) for loop time `when`. The same
        number, unless `time()` was replaced (test suites patch
        ``loop.time`` to fake time) or overridden: then the loop waits, as
        asyncio's does, for ``when - loop.time()`` seconds from now."""
        if "time" not in self.__dict__ and type(self).time is TetherEventLoop.time:
            return when
        return self._clock.current_time() + (when - self.time())

    def _timer_handle_cancelled(self, handle: Any) -> None:
        if handle._scheduled:
            self._timer_cancelled_count += 1
            timers = self._timers
            if self._timer_cancelled_count > 100 and self._timer_cancelled_count * 2 > len(timers):
                # Mostly cancelled timers: rebuild the heap without them.
                kept = []
                for timer in timers:
                    if timer._cancelled:
                        timer._scheduled = False
                    else:
                        kept.append(timer)
                heapq.heapify(kept)
                self._timers = kept
                self._timer_cancelled_count = 0

    async def _run_timers(self) -> None:
        while True:
            timers = self._timers
            if not self._frozen:
                # Timers up to one clock tick ahead are due, as in asyncio
                # (so that waking at a deadline computed from a patched
                # `time()` does not fall a rounding error short).
                end = self.time() + _CLOCK_RESOLUTION
                due = []
                while timers and timers[0]._when <= end:
                    timer = heapq.heappop(timers)
                    timer._scheduled = False
                    if timer._cancelled:
                        self._timer_cancelled_count -= 1
                    else:
                        due.append(timer)
                if due:
                    self._run_handles(due)
                    # (Not kept by this frame until the next timer.)
                    due.clear()
                timer = None
            while timers and timers[0]._cancelled:
                heapq.heappop(timers)._scheduled = False
                self._timer_cancelled_count -= 1
            if timers:
                self._timer_wake_at = when = timers[0]._when
                deadline = self._kernel_deadline(when)
            else:
                self._timer_wake_at = deadline = float("inf")
            with tether.CancelScope(deadline=deadline) as scope:
                self._timer_scope = scope
                await tether.sleep_forever()
            self._timer_scope = None

    # -- futures ---------------------------------------------------------------

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[Unpack[Ts]], T],
        *args: *Ts,
    ) -> asyncio.Future[T]:
        """Run ``func(*args)`` in `executor` (default: the loop's
        `ThreadPoolExecutor`) and return an awaitable future for the result.

        Cancelling the future cancels the call if it has not started yet."""
        from ._futures import wrap_future

        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor
        return wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor: Any) -> None:
        """Use `executor` (a `concurrent.futures.ThreadPoolExecutor`) for
        ``run_in_executor(None, ...)``."""
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Shut the default executor down and wait (in a helper thread) for
        its threads to finish, at most `timeout` seconds. Cancellable: the
        shutdown continues in the background."""
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        future = self.create_future()

        def shut_down() -> None:
            try:
                executor.shutdown(wait=True)
                if not self.is_closed():
                    self.call_soon_threadsafe(_set_result_unless_cancelled, future, None)
            except Exception as exc:
                if not self.is_closed():
                    self.call_soon_threadsafe(_set_exception_unless_cancelled, future, exc)

        thread = threading.Thread(target=shut_down, name="tether.aio executor shutdown")
        thread.start()
        try:
            from ._timeouts import timeout as aio_timeout

            async with aio_timeout(timeout):
                await future
        except TimeoutError:
            warnings.warn(
                f"The executor did not finishing joining its threads within {timeout} seconds.",
                RuntimeWarning,
                stacklevel=2,
            )
            executor.shutdown(wait=False)
        else:
            thread.join()

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

    async def shutdown_asyncgens(self) -> None:
        """Close every async generator first iterated in this loop that is
        still alive, concurrently; errors go to the exception handler.
        Cancelling it cancels the closing generators (as `gather`)."""
        from ._gather import gather

        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await gather(*[agen.aclose() for agen in closing], return_exceptions=True)
        for result, agen in zip(results, closing, strict=True):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": "an error occurred during closing of "
                        f"asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )

    # -- errors ----------------------------------------------------------------

    def get_exception_handler(self) -> Callable[..., object] | None:
        """The handler set with `set_exception_handler`, or None."""
        return self._exception_handler

    def set_exception_handler(self, handler: Callable[..., object] | None) -> None:
        """Use ``handler(loop, context)`` for errors nobody else can handle
        (None: back to `default_exception_handler`)."""
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        """Log `context` (``message``, ``exception`` and whatever else it
        holds) to the ``asyncio`` logger, as asyncio does."""
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info: Any = (
            (type(exception), exception, exception.__traceback__)
            if exception is not None
            else False
        )
        current = self._current_handle
        if "source_traceback" not in context and current is not None and current._source_traceback:
            context["handle_traceback"] = current._source_traceback
        lines = [message]
        for key in sorted(context):
            if key in {"message", "exception"}:
                continue
            value = context[key]
            if key == "source_traceback":
                text = "".join(traceback.format_list(value))
                value = "Object created at (most recent call last):\n" + text.rstrip()
            elif key == "handle_traceback":
                text = "".join(traceback.format_list(value))
                value = "Handle created at (most recent call last):\n" + text.rstrip()
            else:
                value = repr(value)
            lines.append(f"{key}: {value}")
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Pass `context` to the exception handler. An error raised by the
        handler itself is logged, never propagated (except
        KeyboardInterrupt and SystemExit)."""
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            run_in = _handler_context(context) if _HANDLER_IN_CONTEXT else None
            if run_in is not None:
                run_in.run(self._exception_handler, self, context)
            else:
                self._exception_handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler while handling an "
                    "unexpected error in custom exception handler",
                    exc_info=True,
                )

    # -- file descriptors, sockets, signals --------------------------------------

    def _get_selector(self) -> Selector:
        selector = self._selector
        if selector is None:
            selector = self._selector = Selector(self)
            if self._nursery is not None:
                selector.start(self._nursery)
        return selector

    def add_reader(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        """Call ``callback(*args)`` whenever `fd` (an int or an object with
        ``fileno()``) is readable, until `remove_reader`. Replaces the
        fd's previous reader.

        Raises `RuntimeError` if an open transport of this loop uses `fd`,
        `OSError` if `fd` is closed, `ValueError` for an invalid one."""
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd: Any) -> bool:
        """Stop watching `fd` for reading; returns whether it was watched.
        Raises `RuntimeError` if an open transport of this loop uses `fd`."""
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def add_writer(self, fd: Any, callback: Callable[[Unpack[Ts]], Any], *args: *Ts) -> None:
        """Call ``callback(*args)`` whenever `fd` is writable, until
        `remove_writer`. Replaces the fd's previous writer. Raises as
        `add_reader`."""
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd: Any) -> bool:
        """Stop watching `fd` for writing; returns whether it was watched.
        Raises `RuntimeError` if an open transport of this loop uses `fd`."""
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    # The same without the transport check: for the loop's own transports
    # (and, as in asyncio's selector loop, for code that calls them).

    def _add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        self._check_closed()
        self._get_selector().add(fd, _READ, callback, args)

    def _remove_reader(self, fd: Any) -> bool:
        if self._closed or self._selector is None:
            return False
        return self._selector.remove(fd, _READ)

    def _add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        self._check_closed()
        self._get_selector().add(fd, _WRITE, callback, args)

    def _remove_writer(self, fd: Any) -> bool:
        if self._closed or self._selector is None:
            return False
        return self._selector.remove(fd, _WRITE)

    def _ensure_fd_no_transport(self, fd: Any) -> None:
        if not self._transports:
            return
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fd!r}") from None
        transport = self._transports.get(fileno)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")

    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        """Receive up to `nbytes` from the non-blocking `sock`. Cancellable."""
        return await _sockets.sock_recv(self, sock, nbytes)

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        """Receive into `buf`; returns the number of bytes. Cancellable."""
        return await _sockets.sock_recv_into(self, sock, buf)

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram of up to `bufsize` bytes. Cancellable."""
        return await _sockets.sock_recvfrom(self, sock, bufsize)

    async def sock_recvfrom_into(
        self, sock: socket.socket, buf: Any, nbytes: int = 0
    ) -> tuple[int, Any]:
        """Receive a datagram into `buf`. Cancellable."""
        return await _sockets.sock_recvfrom_into(self, sock, buf, nbytes)

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        """Send all of `data`. Cancellable; if cancelled, part of it may have
        been sent."""
        await _sockets.sock_sendall(self, sock, data)

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        """Send a datagram to `address`. Cancellable."""
        return await _sockets.sock_sendto(self, sock, data, address)

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connect `sock` to `address` (resolved first if it is a host name).
        Cancellable."""
        await _sockets.sock_connect(self, sock, address)

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        """Accept a connection on the listening `sock`; returns ``(conn,
        address)`` with `conn` non-blocking. Cancellable."""
        return await _sockets.sock_accept(self, sock)

    async def sock_sendfile(
        self,
        sock: socket.socket,
        file: Any,
        offset: int = 0,
        count: int | None = None,
        *,
        fallback: bool | None = True,
    ) -> int:
        """Send `file` over `sock` (read in the default executor and sent
        with `sock_sendall`); returns the number of bytes sent. Cancellable;
        the file position then reflects what was sent."""
        return await _sockets.sock_sendfile(self, sock, file, offset, count, fallback=fallback)

    async def getaddrinfo(
        self,
        host: Any,
        port: Any,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        """`socket.getaddrinfo`, run in the default executor. Cancellable
        (the lookup itself finishes in its thread)."""
        return await _sockets.getaddrinfo(
            self, host, port, family=family, type=type, proto=proto, flags=flags
        )

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        """`socket.getnameinfo`, run in the default executor. Cancellable
        (the lookup itself finishes in its thread)."""
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    def add_signal_handler(
        self, sig: int, callback: Callable[[Unpack[Ts]], object], *args: *Ts
    ) -> None:
        """Call ``callback(*args)`` (soon, from the loop) when signal `sig`
        arrives. Main thread only.

        Raises `RuntimeError` outside the main thread or for a signal that
        cannot be caught, `ValueError` for an invalid signal number and
        `TypeError` for a coroutine function."""
        self._signals.add(sig, callback, args)

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler of `sig` (restoring the default disposition);
        returns whether there was one."""
        return self._signals.remove(sig)

    # -- transports, servers, pipes, subprocesses -------------------------------

    async def create_connection(
        self, protocol_factory: Callable[[], Any], host: Any = None, port: Any = None, **kwargs: Any
    ) -> tuple[Any, Any]:
        """Open a stream connection to `host`:`port` (or over ``sock=``) and
        return ``(transport, protocol)``; asyncio's arguments (``ssl``,
        ``family``, ``local_addr``, ``server_hostname``, ``all_errors``...).
        Addresses are tried one after the other. Cancellable."""
        return await _connections.create_connection(self, protocol_factory, host, port, **kwargs)

    async def create_server(
        self, protocol_factory: Callable[[], Any], host: Any = None, port: Any = None, **kwargs: Any
    ) -> asyncio.Server:
        """Listen on `host`:`port` (or ``sock=``) and return an
        `asyncio.Server` that accepts connections with `protocol_factory`;
        asyncio's arguments. Cancellable while resolving the address (the
        sockets are closed)."""
        return await _connections.create_server(self, protocol_factory, host, port, **kwargs)

    async def create_unix_connection(
        self, protocol_factory: Callable[[], Any], path: Any = None, **kwargs: Any
    ) -> tuple[Any, Any]:
        """Like `create_connection`, to the Unix socket at `path`.
        Cancellable (the socket is closed)."""
        return await _connections.create_unix_connection(self, protocol_factory, path, **kwargs)

    async def create_unix_server(
        self, protocol_factory: Callable[[], Any], path: Any = None, **kwargs: Any
    ) -> asyncio.Server:
        """Like `create_server`, on the Unix socket at `path` (a stale
        socket file there is removed first)."""
        return await _connections.create_unix_server(self, protocol_factory, path, **kwargs)

    async def connect_accepted_socket(
        self, protocol_factory: Callable[[], Any], sock: socket.socket, **kwargs: Any
    ) -> tuple[Any, Any]:
        """Wrap an already accepted connection in a transport. Cancellable
        (the transport is closed)."""
        return await _connections.connect_accepted_socket(self, protocol_factory, sock, **kwargs)

    async def start_tls(self, transport: Any, protocol: Any, sslcontext: Any, **kwargs: Any) -> Any:
        """Upgrade `transport` to TLS and return the new transport.
        Cancellable: cancelling the handshake closes `transport`."""
        return await _connections.start_tls(self, transport, protocol, sslcontext, **kwargs)

    async def sendfile(
        self, transport: Any, file: Any, offset: int = 0, count: int | None = None, **kwargs: Any
    ) -> int:
        """Send `file` over `transport` (read in the default executor,
        written with flow control); returns the number of bytes sent.
        Cancellable; the file position then reflects what was sent."""
        return await _connections.sendfile(self, transport, file, offset, count, **kwargs)

    async def create_datagram_endpoint(
        self,
        protocol_factory: Callable[[], Any],
        local_addr: Any = None,
        remote_addr: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Create a datagram (UDP, or Unix datagram) endpoint bound to
        `local_addr` and/or connected to `remote_addr` (or over ``sock=``);
        returns ``(transport, protocol)``. asyncio's arguments (``family``,
        ``reuse_port``, ``allow_broadcast``...). Cancellable while resolving
        or connecting (the socket is closed)."""
        return await _datagram.create_datagram_endpoint(
            self, protocol_factory, local_addr, remote_addr, **kwargs
        )

    async def connect_read_pipe(
        self, protocol_factory: Callable[[], Any], pipe: Any
    ) -> tuple[Any, Any]:
        """Read from the pipe `pipe` (a file object) into a protocol;
        returns ``(transport, protocol)``. Cancellable (the transport is
        closed)."""
        return await _pipes.connect_read_pipe(self, protocol_factory, pipe)

    async def connect_write_pipe(
        self, protocol_factory: Callable[[], Any], pipe: Any
    ) -> tuple[Any, Any]:
        """Write to the pipe `pipe` through a transport; returns
        ``(transport, protocol)``. Cancellable (the transport is closed)."""
        return await _pipes.connect_write_pipe(self, protocol_factory, pipe)

    async def subprocess_exec(
        self,
        protocol_factory: Callable[[], Any],
        program: Any,
        *args: Any,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = False,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Start `program` with `args` and return ``(transport, protocol)``;
        see `asyncio.create_subprocess_exec` for the high-level API.
        Cancellable while the pipes connect: the process is then killed and
        waited for."""
        if shell:
            raise ValueError("shell must be False")
        _subprocess.check_subprocess_arguments(universal_newlines, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        transport = await _subprocess.make_subprocess_transport(
            self, protocol, (program, *args), False, stdin, stdout, stderr, bufsize, **kwargs
        )
        return transport, protocol

    async def subprocess_shell(
        self,
        protocol_factory: Callable[[], Any],
        cmd: Any,
        *,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = True,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Run the shell command `cmd`; like `subprocess_exec`."""
        if not isinstance(cmd, bytes | str):
            raise ValueError("cmd must be a string")
        if not shell:
            raise ValueError("shell must be True")
        _subprocess.check_subprocess_arguments(universal_newlines, bufsize, text, encoding, errors)
        protocol = protocol_factory()
        transport = await _subprocess.make_subprocess_transport(
            self, protocol, cmd, True, stdin, stdout, stderr, bufsize, **kwargs
        )
        return transport, protocol

    def _start_serving(self, protocol_factory: Any, sock: Any, *args: Any) -> None:
        # Called by asyncio.Server.
        _connections.start_serving(self, protocol_factory, sock, *args)

    def _stop_serving(self, sock: Any) -> None:
        # Called by asyncio.Server.
        _connections.stop_serving(self, sock)

    # -- debug -----------------------------------------------------------------

    def get_debug(self) -> bool:
        """Whether debug mode is on (default: ``PYTHONASYNCIODEBUG`` or
        ``-X dev``)."""
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        """Turn debug mode on or off: thread checks in ``call_soon``,
        callback checks, source tracebacks of handles and coroutines."""
        self._debug = enabled
        if self.is_running():
            self._set_coroutine_origin_tracking(enabled)


def _noop() -> None:
    pass


#: From Python 3.12 on, a custom exception handler runs in the context of
#: the task, future or handle the error came from (so it sees the context
#: variables the failing code had set).
_HANDLER_IN_CONTEXT = sys.version_info >= (3, 12)


def _handler_context(context: dict[str, Any]) -> Any:
    """The `contextvars.Context` of the task, future or handle named by an
    exception handler's `context` dict, or None."""
    thing = context.get("task")
    if thing is None:
        # (A task is a future too, and is sometimes passed as one.)
        thing = context.get("future")
    if thing is None:
        thing = context.get("handle")
    get_context = getattr(thing, "get_context", None)
    run_in = get_context() if get_context is not None else None
    return run_in if hasattr(run_in, "run") else None


def _task_detach_marker() -> Any:
    from ._stepper import _DETACH

    return _DETACH


def _isfuture(obj: object) -> bool:
    return (
        hasattr(type(obj), "_asyncio_future_blocking")
        and getattr(obj, "_asyncio_future_blocking", None) is not None
    )


def _set_result_unless_cancelled(future: asyncio.Future[Any], result: Any) -> None:
    if not future.cancelled():
        future.set_result(result)


def _set_exception_unless_cancelled(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(exc)
