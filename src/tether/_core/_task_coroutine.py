"""From the async function a user passes to the coroutine a task runs.

`coroutine_or_error` calls ``async_fn(*args)`` (inside the new task's
context) and returns the coroutine, or raises a `TypeError` that says what
was passed instead and what to write: a coroutine object (``fn(arg)`` for
``fn, arg``), an async generator, a synchronous function, an object from
another async framework. The checks run only after the call went wrong, so
a correct spawn pays for none of them.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

from ._sniffio import call_as_tether_task, sniffio_loaded

T = TypeVar("T")

_CoroutineType = types.CoroutineType

_OTHER_FRAMEWORKS = frozenset({"asyncio", "twisted", "tornado", "concurrent", "gevent"})


def task_name(async_fn: object) -> str:
    """The default name of a task running `async_fn`: its qualified name."""
    fn = async_fn
    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if qualname is None:
        return repr(async_fn)
    return f"{module}.{qualname}" if module else qualname


def coroutine_or_error(
    async_fn: Callable[..., Awaitable[T]], *args: object
) -> Coroutine[Any, Any, T]:
    """Call ``async_fn(*args)`` and check that it gave a coroutine, with an
    error that says what went wrong when it did not. Call it inside the new
    task's context (it tells sniffio that the context is tether's)."""
    if sniffio_loaded():
        return call_as_tether_task(_call, async_fn, args)
    return _call(async_fn, args)


def _call(
    async_fn: Callable[..., Awaitable[T]], args: tuple[object, ...]
) -> Coroutine[Any, Any, T]:
    try:
        coro = async_fn(*args)
    except TypeError:
        _explain_not_callable(async_fn)
        raise
    if type(coro) is _CoroutineType or isinstance(coro, Coroutine):
        return coro
    code = getattr(coro, "gi_code", None)
    if code is not None and code.co_flags & inspect.CO_ITERABLE_COROUTINE:
        # A generator-based coroutine (``@types.coroutine``), such as
        # `lowlevel.checkpoint`: the kernel steps it like a coroutine.
        return coro  # type: ignore[return-value]
    _explain_not_a_coroutine(async_fn, coro)


def _looks_like_other_framework(value: object) -> bool:
    if getattr(value, "_asyncio_future_blocking", None) is not None:
        return True
    module = type(value).__module__ or ""
    return module.split(".")[0] in _OTHER_FRAMEWORKS


def _explain_not_callable(async_fn: object) -> None:
    """Raise a better error than the `TypeError` of calling `async_fn`, when
    there is one to give."""
    if isinstance(async_fn, Coroutine):
        # (Closed, or Python warns that it was never awaited.)
        async_fn.close()
        raise TypeError(
            "tether was expecting an async function, but instead it got a coroutine "
            f"object {async_fn!r}. Probably you wrote 'nursery.start_soon(fn(arg))' or "
            "'tether.run(fn(arg))': pass the function and its arguments separately, "
            "'nursery.start_soon(fn, arg)'"
        ) from None
    if _looks_like_other_framework(async_fn):
        raise TypeError(
            f"tether was expecting an async function, but instead it got {async_fn!r}, "
            "an object from another async framework; tether runs async functions "
            "(tether.aio runs asyncio code)"
        ) from None


def _explain_not_a_coroutine(async_fn: object, value: object) -> NoReturn:
    if _looks_like_other_framework(value):
        raise TypeError(
            f"tether called {async_fn!r} and got {value!r}; it looks like it was "
            "written for asyncio or another framework, which tether cannot run "
            "directly (tether.aio runs asyncio code)"
        )
    if inspect.isasyncgen(value):
        raise TypeError(
            f"tether expected an async function but got an async generator {value!r}: "
            "iterate it ('async for') inside an async function instead"
        )
    raise TypeError(
        f"tether expected an async function, but {task_name(async_fn)!r} returned "
        f"{value!r}; is it a synchronous function?"
    )
