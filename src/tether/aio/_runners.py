"""`run` and `Runner`: the entry points, as in asyncio.

They drive a `TetherEventLoop` exactly the way asyncio's own `run` and
`Runner` drive an asyncio loop: run the main coroutine as a task until it is
done; then cancel the tasks left over and wait for them, close async
generators, shut the default executor down, and close the loop. Each of
those steps is one segment of the loop, i.e. one `tether.run`.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
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
from ._stdlib import get_running_loop_or_none
from ._task import all_tasks

T = TypeVar("T")


class _State(enum.Enum):
    CREATED = "created"
    INITIALIZED = "initialized"
    CLOSED = "closed"


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
            raise ValueError("pass clock= or loop_factory=, not both")
        self._state = _State.CREATED
        self._debug = debug
        self._loop_factory = loop_factory
        self._clock = clock
        self._loop: Any = None
        self._context: contextvars.Context | None = None
        self._interrupt_count = 0
        self._set_event_loop = False

    def __enter__(self) -> Runner:
        self._lazy_init()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Cancel the tasks still running and wait for them, close the async
        generators, shut the default executor down, and close the loop.
        Errors of cancelled tasks other than `CancelledError` go to the
        loop's exception handler."""
        if self._state is not _State.INITIALIZED:
            return
        try:
            loop = self._loop
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            if self._set_event_loop:
                set_event_loop(None)
            loop.close()
            self._loop = None
            self._state = _State.CLOSED

    def get_loop(self) -> Any:
        """The runner's event loop (created on first use)."""
        self._lazy_init()
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T], *, context: contextvars.Context | None = None) -> T:
        """Run `coro` as a task in the runner's loop until it is done; return
        its result or raise its exception.

        The first Ctrl-C (SIGINT, in the main thread, if Python's default
        handler is installed) cancels the task, which then raises
        `KeyboardInterrupt` from here; a second one raises at once.

        Raises `ValueError` if `coro` is not a coroutine and `RuntimeError`
        when called with an event loop running in this thread."""

        if not asyncio.iscoroutine(coro):
            raise ValueError(f"a coroutine was expected, got {coro!r}")
        if get_running_loop_or_none() is not None:
            raise RuntimeError("Runner.run() cannot be called from a running event loop")
        self._lazy_init()
        if context is None:
            context = self._context
        task = self._loop.create_task(coro, context=context)

        sigint_handler: Callable[[int, FrameType | None], None] | None = None
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):

            def on_sigint(signum: int, frame: FrameType | None) -> None:
                self._interrupt_count += 1
                if self._interrupt_count == 1 and not task.done():
                    # Through the thread-safe queue: the signal may have
                    # interrupted the loop's own bookkeeping.
                    self._loop.call_soon_threadsafe(task.cancel)
                    return
                raise KeyboardInterrupt()

            sigint_handler = on_sigint
            try:
                signal.signal(signal.SIGINT, sigint_handler)
            except ValueError:
                sigint_handler = None

        self._interrupt_count = 0
        try:
            return self._loop.run_until_complete(task)  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            if self._interrupt_count > 0:
                uncancel = getattr(task, "uncancel", None)
                if uncancel is not None and uncancel() == 0:
                    raise KeyboardInterrupt() from None
            raise
        finally:
            if sigint_handler is not None and signal.getsignal(signal.SIGINT) is sigint_handler:
                signal.signal(signal.SIGINT, signal.default_int_handler)

    def _lazy_init(self) -> None:
        if self._state is _State.CLOSED:
            raise RuntimeError("Runner is closed")
        if self._state is _State.INITIALIZED:
            return
        if self._loop_factory is None:
            self._loop = new_event_loop(clock=self._clock)
            if not self._set_event_loop:
                set_event_loop(self._loop)
                self._set_event_loop = True
        else:
            self._loop = self._loop_factory()
        if self._debug is not None:
            self._loop.set_debug(self._debug)
        self._context = contextvars.copy_context()
        self._state = _State.INITIALIZED


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
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
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
        task = loop.create_task(main, context=context)
        finished = tether.Event()

        async def drive() -> None:
            # The loop runs in a child task shielded from the caller's
            # scopes: its tasks see asyncio's cancellation, never the
            # kernel's, and its cleanup always completes.
            with tether.CancelScope(shield=True):
                try:
                    await _hosted_run_until_complete(loop, task)
                finally:
                    try:
                        await _hosted_cleanup(loop)
                    finally:
                        finished.set()

        async with tether.open_nursery() as nursery:
            nursery.start_soon(drive, name="tether.aio hosted loop")
            try:
                await finished.wait()
            except BaseException:
                # The caller was cancelled (or interrupted): cancel the
                # asyncio side the asyncio way; the nursery waits for it.
                task.cancel()
                raise
        return task.result()
    finally:
        loop.close()


async def _hosted_run_until_complete(loop: Any, future: Any) -> None:
    def stop(_: object) -> None:
        loop.stop()

    future.add_done_callback(stop)
    try:
        while not future.done():
            await loop._run_forever_hosted()
    finally:
        future.remove_done_callback(stop)


async def _hosted_cleanup(loop: Any) -> None:

    to_cancel = all_tasks(loop)
    if to_cancel:
        for task in to_cancel:
            task.cancel()
        await _hosted_run_until_complete(loop, gather(*to_cancel, return_exceptions=True))
        for task in to_cancel:
            if not task.cancelled() and task.exception() is not None:
                loop.call_exception_handler(
                    {
                        "message": "unhandled exception during asyncio.run() shutdown",
                        "exception": task.exception(),
                        "task": task,
                    }
                )
    await _hosted_run_until_complete(loop, loop.create_task(loop.shutdown_asyncgens()))
    await _hosted_run_until_complete(loop, loop.create_task(loop.shutdown_default_executor()))


def _cancel_all_tasks(loop: Any) -> None:

    to_cancel = all_tasks(loop)
    if not to_cancel:
        return
    for task in to_cancel:
        task.cancel()
    loop.run_until_complete(gather(*to_cancel, return_exceptions=True))
    for task in to_cancel:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during asyncio.run() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
