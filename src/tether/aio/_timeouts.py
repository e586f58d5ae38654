"""Time: `sleep`, `timeout` / `timeout_at` / `Timeout`, and `wait_for`.

Timers are the loop's (see `_loop_core.py`: one heap, served by a kernel task
that sleeps on a kernel deadline). A timeout that expires cancels its task
the asyncio way, once (`Task.cancel`), and turns the resulting
`CancelledError` into `TimeoutError` when it leaves the block. It does not
use a kernel cancel scope for the block: a scope is level-triggered (every
await inside it would fail again after expiry, and `except CancelledError`
handlers would see `tether.Cancelled` instead), which asyncio code would
notice. See docs/aio.md.
"""

from __future__ import annotations

import contextvars
import enum
import math
import sys
import types
from asyncio import CancelledError
from collections.abc import Awaitable, Generator
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import tether

from .. import lowlevel
from ._callbacks import LoopCallback
from ._loop_core import creates_plain_tasks
from ._stdlib import current_task, current_task_of, get_running_loop, get_running_loop_or_none
from ._task import ensure_future, new_task

T = TypeVar("T")

_CoroutineType = types.CoroutineType
_NO_CONTEXT = contextvars.Context()


@types.coroutine
def _yield_once() -> Generator[None, None, None]:
    # A bare yield: the task's stepper turns it into a kernel checkpoint.
    yield


def _set_result_unless_cancelled(future: Any, result: Any) -> None:
    if not future.cancelled():
        future.set_result(result)


async def sleep(delay: float, result: T = None) -> T:  # type: ignore[assignment]
    """Suspend the task for `delay` seconds, then return `result`.

    ``sleep(0)`` (or a negative delay) lets the other tasks and callbacks
    that are ready run once: it is a kernel checkpoint. Cancellable: a
    cancelled sleep raises `asyncio.CancelledError`.

    Outside a task of an event loop (in a trio-style task of
    `tether.run`), it sleeps the tether way (`tether.sleep`)."""
    if delay <= 0:
        if current_task_of(get_running_loop_or_none()) is None:
            # Not in an aio task: a trio-style task of tether.run.
            await lowlevel.checkpoint()
            return result
        await _yield_once()
        return result
    if math.isnan(delay):
        raise ValueError("Invalid delay: NaN (not a number)")
    loop = get_running_loop_or_none()
    if current_task_of(loop) is None:
        await tether.sleep(delay)
        return result
    future = loop.create_future()
    handle = loop.call_later(delay, _set_result_unless_cancelled, future, result)
    try:
        return await future  # type: ignore[no-any-return]
    finally:
        handle.cancel()


class _State(enum.Enum):
    CREATED = "created"
    ENTERED = "active"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    EXITED = "finished"


class Timeout:
    """An asynchronous context manager that cancels the current task when its
    deadline passes, as `asyncio.Timeout`. Create it with `timeout` or
    `timeout_at`.

    When the deadline passes inside the block, the task is cancelled once
    (edge-triggered, exactly as ``task.cancel()``); if the resulting
    `CancelledError` leaves the block, it becomes `TimeoutError`. A
    cancellation that came from elsewhere passes through unchanged. Cleanup
    code in the block (``finally``, ``except CancelledError``) may await
    normally after expiry.
    """

    def __init__(self, when: float | None) -> None:
        self._state = _State.CREATED
        self._timeout_handler: Any = None
        self._task: Any = None
        self._when = when
        self._cancelling = 0

    def when(self) -> float | None:
        """The deadline (loop time), or None."""
        return self._when

    def reschedule(self, when: float | None) -> None:
        """Move the deadline to `when` (loop time; None: no deadline).
        Raises `RuntimeError` unless the block is active."""
        if self._state is not _State.ENTERED:
            if self._state is _State.CREATED:
                raise RuntimeError("Timeout has not been entered")
            raise RuntimeError(f"Cannot change state of {self._state.value} Timeout")
        self._when = when
        if self._timeout_handler is not None:
            self._timeout_handler.cancel()
        if when is None:
            self._timeout_handler = None
        else:
            loop = get_running_loop()
            if when <= loop.time():
                self._timeout_handler = loop.call_soon(self._on_timeout)
            else:
                self._timeout_handler = loop.call_at(when, self._on_timeout)

    def expired(self) -> bool:
        """Whether the deadline passed while the block was active."""
        return self._state in (_State.EXPIRING, _State.EXPIRED)

    def __repr__(self) -> str:
        info = [""]
        if self._state is _State.ENTERED:
            when = round(self._when, 3) if self._when is not None else None
            info.append(f"when={when}")
        return f"<Timeout [{self._state.value}]{' '.join(info)}>"

    async def __aenter__(self) -> Timeout:
        if self._state is not _State.CREATED:
            raise RuntimeError("Timeout has already been entered")
        task = current_task()
        if task is None:
            raise RuntimeError("Timeout should be used inside a task")
        self._state = _State.ENTERED
        self._task = task
        self._cancelling = task.cancelling()
        self.reschedule(self._when)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        assert self._state in (_State.ENTERED, _State.EXPIRING)
        if self._timeout_handler is not None:
            self._timeout_handler.cancel()
            self._timeout_handler = None
        if self._state is _State.EXPIRING:
            self._state = _State.EXPIRED
            if _NEW_TIMEOUT_RULES:
                if self._task.uncancel() <= self._cancelling and exc_type is not None:
                    if issubclass(exc_type, CancelledError):
                        raise TimeoutError from exc_val
                    if exc_val is not None:
                        _insert_timeout_error(exc_val)
                        if isinstance(exc_val, ExceptionGroup):
                            for exc in exc_val.exceptions:
                                _insert_timeout_error(exc)
            elif self._task.uncancel() <= self._cancelling and exc_type is CancelledError:
                raise TimeoutError from exc_val
        elif self._state is _State.ENTERED:
            self._state = _State.EXITED
        return None

    def _on_timeout(self) -> None:
        assert self._state is _State.ENTERED
        self._task.cancel()
        self._state = _State.EXPIRING


# Python 3.13 also marks a timeout on errors other than CancelledError that
# leave an expired block (the TimeoutError goes into their context chain).
_NEW_TIMEOUT_RULES = sys.version_info >= (3, 13)


def _insert_timeout_error(exc_val: BaseException) -> None:
    while exc_val.__context__ is not None:
        if isinstance(exc_val.__context__, CancelledError):
            te = TimeoutError()
            te.__context__ = te.__cause__ = exc_val.__context__
            exc_val.__context__ = te
            break
        exc_val = exc_val.__context__


def timeout(delay: float | None) -> Timeout:
    """``async with timeout(delay):`` cancels the block after `delay`
    seconds and raises `TimeoutError` from it; None: no timeout. See
    `Timeout`. Must be used in a task."""
    loop = get_running_loop()
    return Timeout(loop.time() + delay if delay is not None else None)


def timeout_at(when: float | None) -> Timeout:
    """Like `timeout`, with an absolute deadline in loop time
    (``loop.time()``)."""
    return Timeout(when)


async def wait_for(fut: Awaitable[T], timeout: float | None) -> T:
    """Wait for the awaitable `fut`, at most `timeout` seconds (None: no
    limit); return its result.

    On timeout, `fut` is cancelled, waited for, and `TimeoutError` raised
    (unless it returned a value despite the cancellation: then that value
    is returned). Cancelling the wait cancels `fut` too. Wrap `fut` in
    `shield` to keep it running.

    From Python 3.12 on a coroutine runs in the calling task (inside a
    `timeout` block); on 3.11 it runs in a task of its own, as in each
    version's asyncio."""
    if not _NEW_WAIT_FOR:
        # (3.11's way, written out here rather than in a helper coroutine:
        # one frame less per call.)
        loop = get_running_loop()
        if timeout is None:
            return await fut
        if timeout <= 0:
            return await _wait_for_now(ensure_future(fut, loop=loop))  # type: ignore[no-any-return]
        waiter = loop.create_future()
        timeout_handle = loop.call_later(timeout, _release_waiter, waiter)
        release = LoopCallback(partial(_release_waiter, waiter))
        if type(fut) is _CoroutineType and creates_plain_tasks(loop):
            # The common case: a new task, whose first done callback (see
            # `Task._done_hook`) releases the waiter, queued where asyncio
            # queues that callback but without a Handle.
            task: Any = new_task(fut, loop, None, None)
            task._done_hook = release
        else:
            task = ensure_future(fut, loop=loop)
            task.add_done_callback(release, context=_NO_CONTEXT)
        try:
            try:
                await waiter
            except CancelledError:
                if task.done():
                    return task.result()  # type: ignore[no-any-return]
                _forget_release(task, release)
                await _cancel_and_wait(task)
                raise
            if task.done():
                return task.result()  # type: ignore[no-any-return]
            _forget_release(task, release)
            await _cancel_and_wait(task)
            try:
                return task.result()  # type: ignore[no-any-return]
            except CancelledError as exc:
                raise TimeoutError() from exc
        finally:
            timeout_handle.cancel()

    if timeout is not None and timeout <= 0:
        return await _wait_for_now(ensure_future(fut))  # type: ignore[no-any-return]
    async with Timeout(get_running_loop().time() + timeout if timeout is not None else None):
        return await fut


_NEW_WAIT_FOR = sys.version_info >= (3, 12)


def _release_waiter(waiter: Any, *args: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _forget_release(task: Any, release: LoopCallback) -> None:
    """Take `release` off the done callbacks of the unfinished `task`."""
    if getattr(task, "_done_hook", None) is release:
        task._done_hook = None
    else:
        task.remove_done_callback(release)


async def _wait_for_now(future: Any) -> Any:
    """`wait_for` with a timeout that has passed already: the result of
    `future` if it is done; else cancel it, wait for it, and raise
    `TimeoutError` if it ended cancelled."""
    if future.done():
        return future.result()
    await _cancel_and_wait(future)
    try:
        return future.result()
    except CancelledError as exc:
        raise TimeoutError() from exc


async def _cancel_and_wait(fut: Any) -> None:
    """Cancel `fut` and wait for it to finish; cancelling this wait does not
    wait for `fut`."""
    loop = get_running_loop()
    waiter = loop.create_future()

    def release(_: Any) -> None:
        _release_waiter(waiter)

    fut.add_done_callback(release)
    try:
        fut.cancel()
        await waiter
    finally:
        fut.remove_done_callback(release)
