"""`run`, `Runner` and `run_hosted`: the entry points of the asyncio face.

What they must do (asyncio's documented behaviour for `asyncio.run` and
`asyncio.Runner`):

- A runner owns one event loop, created on first use (entering the
  ``with`` block, `get_loop` or `run`) and used by every later `run` call,
  so tasks started by one call keep going in the next. Every `run` call
  runs its coroutine as a task in one `contextvars.Context` copied when the
  loop was created, unless the caller passes its own.
- `run` refuses what is not a coroutine (ValueError) and refuses to nest
  inside a running loop (RuntimeError); the words of both messages are the
  ones CPython's tests match.
- Ctrl-C while `run` waits (main thread, Python's default SIGINT handler
  in place): the first one cancels the main task, and if the task lets that
  cancellation end it, `run` raises KeyboardInterrupt; a further Ctrl-C
  raises KeyboardInterrupt at once. Python's handler is put back after.
- Closing, which is documented as a fixed sequence and so has asyncio's
  order: cancel every task still alive and wait for all of them (errors
  other than the cancellation go to the exception handler), close the
  async generators, shut the default executor down, un-set the loop as the
  thread's current one (if the runner set it), close the loop. A closed
  runner stays closed: using it again is a RuntimeError.

Design: the runner's life is its `_loop` slot (None before the loop is
created) plus a `_closed` flag. The shutdown steps are one coroutine,
`_wind_down`, shared by the synchronous runner (which runs it with
`run_until_complete`) and by `run_hosted` (which drives it inside a tether
run); the tasks to cancel are picked before it starts, so it never cancels
itself. SIGINT handling is the `_CtrlC` context manager.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from types import FrameType, TracebackType
from typing import Any, TypeVar

import tether

from .. import lowlevel
from ..abc import Clock
from ._events import new_event_loop, set_event_loop
from ._gather import gather
from ._loop import TetherEventLoop
from ._loop_core import IN_TETHER_RUN
from ._stdlib import get_running_loop_or_none
from ._task import Task
from ._task_functions import all_tasks

T = TypeVar("T")

#: The exception handler's message for a leftover task that failed while it
#: was being cancelled at shutdown (CPython's tests match "asyncio.run.*shutdown").
SHUTDOWN_ERROR_MESSAGE = "unhandled exception during asyncio.run() shutdown"


def _require_coroutine(coro: object) -> None:
    if not asyncio.iscoroutine(coro):
        raise ValueError(f"a coroutine was expected, got {coro!r}")


async def _wind_down(loop: Any, leftovers: set[Task[Any]]) -> None:
    """Cancel `leftovers` and wait for them; report those that failed
    otherwise; then close async generators and the default executor."""
    for task in leftovers:
        task.cancel()
    if leftovers:
        await gather(*leftovers, return_exceptions=True)
    failed = [t for t in leftovers if not t.cancelled() and t.exception() is not None]
    for task in failed:
        loop.call_exception_handler(
            {"message": SHUTDOWN_ERROR_MESSAGE, "exception": task.exception(), "task": task}
        )
    await loop.shutdown_asyncgens()
    # (In a task of its own, as asyncio's runner does it: the names of the
    # tasks made afterwards then count on as on asyncio.)
    await loop.create_task(loop.shutdown_default_executor())


class _CtrlC:
    """While active (a context manager), Ctrl-C cancels `task` once; any
    further Ctrl-C raises KeyboardInterrupt. Only takes over SIGINT when
    Python's own handler is installed and this is the main thread."""

    def __init__(self, loop: Any, task: asyncio.Task[Any]) -> None:
        self._loop = loop
        self._task = task
        self.presses = 0
        self._cancel_landed = False
        self._installed: Callable[[int, FrameType | None], None] | None = None

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.presses += 1
        if self.presses > 1 or self._task.done():
            raise KeyboardInterrupt()
        # The signal may have landed in the middle of the loop's own
        # bookkeeping: hand the cancel over the thread-safe queue.
        self._loop.call_soon_threadsafe(self._cancel_task)

    def _cancel_task(self) -> None:
        # It counts only if it reached the task before the task finished
        # (cancelled by someone else, say).
        self._cancel_landed = bool(self._task.cancel())

    def __enter__(self) -> _CtrlC:
        if threading.current_thread() is not threading.main_thread():
            return self
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return self  # the program handles SIGINT itself
        try:
            signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:
            return self  # signals are not available here
        self._installed = self._on_sigint
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Only undo our own handler: code inside may have replaced it.
        if self._installed is not None and signal.getsignal(signal.SIGINT) == self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        # (A bound method of this object, which refers to the loop and the
        # task: kept, it would hold them all in a cycle.)
        self._installed = None

    def caused(self, task: asyncio.Task[Any]) -> bool:
        """True if the task's cancellation came from Ctrl-C alone (no other
        cancel request remains once ours is withdrawn)."""
        if not self._cancel_landed:
            return False
        withdraw = getattr(task, "uncancel", None)
        return withdraw is not None and withdraw() == 0


class Runner:
    """A context manager that owns an event loop and runs coroutines in it.

    ``with Runner() as runner: runner.run(main())`` is `run` in two steps;
    `run` may be called several times, and tasks created by one call keep
    running in the next. Exiting the block closes the loop (see `close`).

    Args:
      debug: turn the loop's debug mode on or off (default: unchanged).
      loop_factory: a callable returning a new event loop; default
        `tether.aio.new_event_loop`.
      clock: a tether clock for the loop (when `loop_factory` is not given),
        such as ``tether.testing.MockClock(autojump_threshold=0)`` for
        virtual time. A tether extension.
    """

    def __init__(
        self,
        *,
        debug: bool | None = None,
        loop_factory: Callable[[], Any] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if clock is not None and loop_factory is not None:
            raise ValueError(
                "Runner() takes clock= or loop_factory=, not both: a loop from a "
                "factory brings its own clock"
            )
        self._debug = debug
        self._make_loop = loop_factory
        self._clock = clock
        self._loop: Any = None
        self._closed = False
        self._made_current = False
        self._context: contextvars.Context | None = None

    def __enter__(self) -> Runner:
        self._ensure_loop()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ensure_loop(self) -> Any:
        if self._closed:
            raise RuntimeError("Runner is closed")
        if self._loop is not None:
            return self._loop
        if self._make_loop is not None:
            loop = self._make_loop()
        else:
            # Only a loop the runner made itself becomes the thread's
            # current loop (a factory's loop is the caller's business).
            loop = new_event_loop(clock=self._clock)
            set_event_loop(loop)
            self._made_current = True
        if self._debug is not None:
            loop.set_debug(self._debug)
        self._context = contextvars.copy_context()
        self._loop = loop
        return loop

    def get_loop(self) -> Any:
        """The runner's event loop (created on first use)."""
        return self._ensure_loop()

    def run(self, coro: Coroutine[Any, Any, T], *, context: contextvars.Context | None = None) -> T:
        """Run `coro` as a task in the runner's loop until it is done; return
        its result or raise its exception.

        The first Ctrl-C (SIGINT, in the main thread, if Python's default
        handler is installed) cancels the task, which then raises
        `KeyboardInterrupt` from here (`CancelledError` if something else
        had already cancelled the task); a second one raises at once.

        Raises `ValueError` if `coro` is not a coroutine and `RuntimeError`
        when called with an event loop running in this thread, or inside
        `tether.run` (use `run_hosted` there)."""
        _require_coroutine(coro)
        if get_running_loop_or_none() is not None:
            raise RuntimeError("Runner.run() cannot be called from a running event loop")
        if lowlevel.in_tether_run():
            # (Before the task is made: it would never run.)
            raise RuntimeError(IN_TETHER_RUN)
        loop = self._ensure_loop()
        task = loop.create_task(coro, context=self._context if context is None else context)
        with _CtrlC(loop, task) as ctrl_c:
            try:
                return loop.run_until_complete(task)  # type: ignore[no-any-return]
            except asyncio.CancelledError:
                if ctrl_c.caused(task):
                    raise KeyboardInterrupt() from None
                raise

    def close(self) -> None:
        """Cancel the tasks still running and wait for them, close the async
        generators, shut the default executor down, and close the loop.
        Errors of cancelled tasks other than `CancelledError` go to the
        loop's exception handler. Closing again does nothing."""
        loop = self._loop
        if loop is None:
            return  # never started (it may still be), or already closed
        wind_down = _wind_down(loop, all_tasks(loop))
        try:
            loop.run_until_complete(wind_down)
        finally:
            if inspect.getcoroutinestate(wind_down) == inspect.CORO_CREATED:
                # The loop refused to run it (e.g. called inside another
                # run): close it, or it warns that it was never awaited.
                wind_down.close()
            if self._made_current:
                set_event_loop(None)
            loop.close()
            self._loop = None
            self._closed = True


def run(
    main: Coroutine[Any, Any, T],
    *,
    debug: bool | None = None,
    loop_factory: Callable[[], Any] | None = None,
    clock: Clock | None = None,
) -> T:
    """Run the coroutine `main` in a new tether event loop and return its
    result (or raise its exception), as `asyncio.run` does: then cancel the
    tasks still running, close async generators, shut the default executor
    down and close the loop.

    Args:
      debug: run the loop in debug mode.
      loop_factory: create the loop with this instead of
        `tether.aio.new_event_loop` (an asyncio 3.12 argument, accepted on
        every version).
      clock: a tether clock, such as
        ``tether.testing.MockClock(autojump_threshold=0)`` for tests in
        virtual time. A tether extension.

    Raises `RuntimeError` when called with an event loop (or a tether run)
    already running in this thread.
    """
    if get_running_loop_or_none() is not None:
        raise RuntimeError("asyncio.run() cannot be called from a running event loop")
    with Runner(debug=debug, loop_factory=loop_factory, clock=clock) as runner:
        return runner.run(main)


async def run_hosted(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """`run` for the inside of a `tether.run`: ``await run_hosted(main())``
    from a trio-style task runs the asyncio coroutine `main` in a new aio
    event loop hosted by the current tether run, and returns its result (or
    raises its exception). Like `run`, it then cancels the tasks left over,
    closes async generators, shuts the default executor down and closes the
    loop. The loop uses the run's clock (a `MockClock` too). A tether
    extension.

    Cancellation: if the calling task is cancelled (a trio-style scope), the
    aio tasks are cancelled the asyncio way (`CancelledError`), waited for
    (shielded), and then `tether.Cancelled` propagates to its scope.

    Raises `RuntimeError` if an event loop is already running in this thread
    (inside an aio task, await `main` directly instead).
    """
    if get_running_loop_or_none() is not None:
        if asyncio.iscoroutine(main):
            main.close()  # never to run: no "never awaited" warning
        raise RuntimeError(
            "run_hosted() cannot be called from a running event loop: inside "
            "tether.aio.run(), await the coroutine directly (trio-style tasks there can "
            "use tether.aio and asyncio themselves; run_hosted is for trio-style code "
            "under tether.run())"
        )
    _require_coroutine(main)
    loop = TetherEventLoop(clock=lowlevel.current_clock())
    if debug is not None:
        loop.set_debug(debug)
    try:
        # The asyncio code runs in a copy of the caller's context, in which
        # sniffio reports tether (a trio-style task's); asyncio code must see
        # "asyncio" instead (its libraries pick their asyncio backend by it).
        context = contextvars.copy_context()
        sniffio = sys.modules.get("sniffio")
        if sniffio is not None:
            context.run(sniffio.current_async_library_cvar.set, None)
        main_task = loop.create_task(main, context=context)
        loop_done = tether.Event()

        async def drive_loop() -> None:
            # Shielded from the caller's scopes: the loop's tasks see
            # asyncio's cancellation, never the kernel's, and the wind-down
            # always completes.
            with tether.CancelScope(shield=True):
                try:
                    await _drive_until_done(loop, main_task)
                finally:
                    try:
                        wind_down = _wind_down(loop, all_tasks(loop))
                        await _drive_until_done(loop, loop.create_task(wind_down))
                    finally:
                        loop_done.set()

        async with tether.open_nursery() as nursery:
            nursery.start_soon(drive_loop, name="tether.aio hosted loop")
            try:
                await loop_done.wait()
            except BaseException:
                # The caller was cancelled (or interrupted): cancel the
                # asyncio side the asyncio way; the nursery waits for it.
                main_task.cancel()
                raise
        return main_task.result()
    finally:
        loop.close()


async def _drive_until_done(loop: Any, future: asyncio.Future[Any]) -> None:
    """Run segments of the hosted loop until `future` is done."""

    def stop_loop(_: object) -> None:
        loop.stop()

    future.add_done_callback(stop_loop)
    try:
        while not future.done():
            await loop._run_forever_hosted()
    finally:
        future.remove_done_callback(stop_loop)
