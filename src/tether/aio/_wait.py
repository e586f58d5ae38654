"""`wait` and `as_completed`: waiting on a set of futures.

Like asyncio's: they watch the futures through done callbacks (so they see
completions in the order the loop reports them) and never cancel anything;
on timeout they return or raise and leave the futures running.
"""

from __future__ import annotations

import concurrent.futures
import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

from ._events import get_event_loop
from ._futures import Future, isfuture
from ._stdlib import get_running_loop
from ._task_functions import ensure_future

T = TypeVar("T")

#: ``wait(..., return_when=FIRST_COMPLETED)``: return when any awaitable
#: finishes or is cancelled.
FIRST_COMPLETED = concurrent.futures.FIRST_COMPLETED
#: ``wait(..., return_when=FIRST_EXCEPTION)``: return when any awaitable
#: raises, or when all have finished.
FIRST_EXCEPTION = concurrent.futures.FIRST_EXCEPTION
#: ``wait(..., return_when=ALL_COMPLETED)`` (the default): return when all
#: awaitables have finished.
ALL_COMPLETED = concurrent.futures.ALL_COMPLETED


def _release(waiter: Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def wait(
    fs: Iterable[Any], *, timeout: float | None = None, return_when: str = ALL_COMPLETED
) -> tuple[set[Any], set[Any]]:
    """Wait until the futures/tasks in `fs` are done (`ALL_COMPLETED`), one
    is (`FIRST_COMPLETED`) or one raises (`FIRST_EXCEPTION`), or `timeout`
    seconds have passed; return the sets ``(done, pending)``.

    It never raises `TimeoutError` and never cancels the futures. Cancelling
    the wait raises `CancelledError` in the caller only.

    Raises `TypeError` for a single future or coroutine, or for coroutines in
    `fs` (wrap them in tasks), and `ValueError` for an empty `fs` or an
    unknown `return_when`."""
    if isfuture(fs) or inspect.iscoroutine(fs):
        raise TypeError(f"expect a list of futures, not {type(fs).__name__}")
    if not fs:
        raise ValueError("Set of Tasks/Futures is empty.")
    if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
        raise ValueError(f"Invalid return_when value: {return_when}")
    futures = set(fs)
    if any(inspect.iscoroutine(f) for f in futures):
        raise TypeError("Passing coroutines is forbidden, use tasks explicitly.")
    loop = get_running_loop()
    waiter: Future[None] = loop.create_future()
    timeout_handle = None
    if timeout is not None:
        timeout_handle = loop.call_later(timeout, _release, waiter)
    remaining = len(futures)

    def on_done(future: Future[Any]) -> None:
        nonlocal remaining
        remaining -= 1
        if (
            remaining <= 0
            or return_when == FIRST_COMPLETED
            or (
                return_when == FIRST_EXCEPTION
                and not future.cancelled()
                and future.exception() is not None
            )
        ):
            if timeout_handle is not None:
                timeout_handle.cancel()
            _release(waiter)

    for future in futures:
        future.add_done_callback(on_done)
    try:
        await waiter
    finally:
        if timeout_handle is not None:
            timeout_handle.cancel()
        for future in futures:
            future.remove_done_callback(on_done)
    done: set[Any] = set()
    pending: set[Any] = set()
    for future in futures:
        (done if future.done() else pending).add(future)
    return done, pending


class _AsCompleted(Iterator[Any], AsyncIterator[Any]):
    """What `as_completed` returns: iterate it (``for``: awaitables giving
    each result; ``async for``: the futures themselves) in completion
    order."""

    def __init__(self, aws: Iterable[Awaitable[Any]], timeout: float | None) -> None:

        loop = get_event_loop()
        self._loop = loop
        self._done: deque[Future[Any] | None] = deque()
        self._getter: Future[None] | None = None
        self._timeout_handle: Any = None
        todo = {ensure_future(aw, loop=loop) for aw in set(aws)}
        for future in todo:
            future.add_done_callback(self._on_completion)
        if todo and timeout is not None:
            self._timeout_handle = loop.call_later(timeout, self._on_timeout)
        self._todo = todo
        self._left = len(todo)

    def __iter__(self) -> _AsCompleted:
        return self

    def __aiter__(self) -> _AsCompleted:
        return self

    def __next__(self) -> Coroutine[Any, Any, Any]:
        if not self._left:
            raise StopIteration
        self._left -= 1
        return self._wait_for_one(resolve=True)

    async def __anext__(self) -> Any:
        if not self._left:
            raise StopAsyncIteration
        self._left -= 1
        return await self._wait_for_one(resolve=False)

    def _put(self, item: Future[Any] | None) -> None:
        self._done.append(item)
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)

    def _on_timeout(self) -> None:
        # (The handle refers back to this object through its callback: a
        # cycle, dropped here.)
        self._timeout_handle = None
        for future in self._todo:
            future.remove_done_callback(self._on_completion)
            self._put(None)
        self._todo.clear()

    def _on_completion(self, future: Future[Any]) -> None:
        if not self._todo:
            return
        self._todo.remove(future)
        self._put(future)
        if not self._todo and self._timeout_handle is not None:
            self._timeout_handle.cancel()

    async def _wait_for_one(self, resolve: bool) -> Any:
        while not self._done:
            getter: Future[None] = self._loop.create_future()
            self._getter = getter
            try:
                await getter
            finally:
                if self._getter is getter:
                    self._getter = None
        future = self._done.popleft()
        if future is None:
            raise TimeoutError
        return future.result() if resolve else future


def as_completed(fs: Iterable[Awaitable[T]], *, timeout: float | None = None) -> _AsCompleted:
    """Run the awaitables in `fs` concurrently (coroutines in tasks) and
    iterate over them in the order they finish.

    ``for aw in as_completed(fs): result = await aw`` gives each result (or
    raises its exception). ``async for future in as_completed(fs)`` gives
    the futures themselves (Python 3.13's addition, available on every
    version). If `timeout` seconds pass first, the next wait raises
    `TimeoutError`. Nothing is cancelled.

    Raises `TypeError` for a single future or coroutine."""
    if isfuture(fs) or inspect.iscoroutine(fs):
        raise TypeError(f"expect an iterable of futures, not {type(fs).__name__}")
    return _AsCompleted(fs, timeout)
