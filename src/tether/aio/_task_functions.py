"""The module-level task functions of tether.aio: `current_task`,
`all_tasks`, `create_task` and `ensure_future` (the `Task` class and how a
task is made are in `_task.py`; how it is stepped, in `_stepper.py`)."""

from __future__ import annotations

import contextvars
import inspect
from asyncio import all_tasks as stdlib_all_tasks
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, TypeVar

from ._events import get_event_loop
from ._futures import isfuture
from ._stdlib import Future, get_running_loop
from ._stdlib import current_task as stdlib_current_task
from ._task import Task, _is_coroutine

T = TypeVar("T")


def current_task(loop: Any = None) -> Task[Any] | None:
    """The aio task running the calling code, or None (in a callback, or in
    a trio-style task). Not a checkpoint.

    Raises `RuntimeError` when called without a loop outside a running loop.
    """

    task: Any = stdlib_current_task(loop)
    return task  # type: ignore[no-any-return]


def all_tasks(loop: Any = None) -> set[Task[Any]]:
    """The set of tasks of the loop (default: the running loop) that are not
    done yet. Not a checkpoint."""

    if loop is None:
        loop = get_running_loop()

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
