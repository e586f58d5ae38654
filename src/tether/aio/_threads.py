"""Threads: `to_thread` and `run_coroutine_threadsafe`.

Worker threads come from the loop's default executor, as in asyncio
(`loop.run_in_executor`); results come back through
``call_soon_threadsafe``, which wakes the kernel through its thread-safe
entry queue.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._futures import chain_to_concurrent
from ._stdlib import get_running_loop
from ._task_functions import ensure_future

T = TypeVar("T")


async def to_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``func(*args, **kwargs)`` in a worker thread (the loop's default
    executor), in a copy of the current `contextvars` context, and return
    its result.

    Cancellation: the wait is cancellable (`CancelledError`), but the thread
    cannot be stopped; it runs to the end and its result is discarded."""
    loop = get_running_loop()
    context = contextvars.copy_context()
    call = functools.partial(context.run, func, *args, **kwargs)
    return await loop.run_in_executor(None, call)  # type: ignore[no-any-return]


def run_coroutine_threadsafe(
    coro: Coroutine[Any, Any, T], loop: Any
) -> concurrent.futures.Future[T]:
    """From another thread, run `coro` as a task of `loop` and return a
    `concurrent.futures.Future` of its result. Cancelling that future
    cancels the task.

    Raises `TypeError` if `coro` is not a coroutine."""
    if not inspect.iscoroutine(coro):
        raise TypeError("A coroutine object is required")
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def start() -> None:

        try:
            task = ensure_future(coro, loop=loop)
            chain_to_concurrent(task, future, loop)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)
            raise

    loop.call_soon_threadsafe(start)
    return future
