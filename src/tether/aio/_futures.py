"""Futures: asyncio's own `Future` class, and bridges to `concurrent.futures`.

`tether.aio.Future` *is* `asyncio.Future` (its C implementation): a future
created on a tether loop is an ordinary asyncio future whose callbacks the
loop schedules. A task awaiting one is blocked in the kernel until it is
done (`_Stepper._send`, `Task._on_foreign_yield`). `wrap_future` and
`run_coroutine_threadsafe` connect it with `concurrent.futures.Future`, the
thread-safe kind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

from ._events import get_event_loop

T = TypeVar("T")

Future = asyncio.Future


def loop_of(future: Any) -> Any:
    """The loop of an asyncio-compatible `future`: its ``get_loop()``, or
    for an older kind of future without one, its ``_loop`` (as asyncio's
    tasks accept)."""
    try:
        get_loop = future.get_loop
    except AttributeError:
        return future._loop
    return get_loop()


def isfuture(obj: object) -> bool:
    """Whether `obj` is an asyncio-compatible future: an instance of a class
    with a non-None ``_asyncio_future_blocking`` attribute (duck typing, as
    in asyncio)."""
    return (
        hasattr(type(obj), "_asyncio_future_blocking")
        and getattr(obj, "_asyncio_future_blocking", None) is not None
    )


def _to_asyncio_error(exc: BaseException) -> BaseException:
    """An error from `concurrent.futures` as the matching asyncio error
    (their ``CancelledError`` and ``InvalidStateError`` are other classes),
    so that ``except asyncio.CancelledError`` catches a cancellation that
    happened in a thread."""
    kind = type(exc)
    if kind is concurrent.futures.CancelledError:
        return asyncio.CancelledError(*exc.args)
    if kind is concurrent.futures.InvalidStateError:
        return asyncio.InvalidStateError(*exc.args)
    return exc


def _to_concurrent_error(exc: BaseException) -> BaseException:
    """The other way round: an asyncio error as `concurrent.futures`' own."""
    kind = type(exc)
    if kind is asyncio.CancelledError:
        return concurrent.futures.CancelledError(*exc.args)
    if kind is asyncio.InvalidStateError:
        return concurrent.futures.InvalidStateError(*exc.args)
    return exc


def _copy_state_to_asyncio(source: concurrent.futures.Future[Any], dest: Future[Any]) -> None:
    if dest.cancelled():
        return
    assert not dest.done()
    if source.cancelled():
        dest.cancel()
        return
    exc = source.exception()
    if exc is not None:
        dest.set_exception(_to_asyncio_error(exc))
    else:
        dest.set_result(source.result())


def _report_and_copy(
    reported: Callable[[], None], source: concurrent.futures.Future[Any], dest: Future[Any]
) -> None:
    reported()
    _copy_state_to_asyncio(source, dest)


def _copy_state_to_concurrent(source: Future[Any], dest: concurrent.futures.Future[Any]) -> None:
    if source.cancelled():
        dest.cancel()
    if not dest.set_running_or_notify_cancel():
        return
    exc = source.exception()
    if exc is not None:
        dest.set_exception(_to_concurrent_error(exc))
    else:
        dest.set_result(source.result())


def wrap_future(future: Any, *, loop: Any = None) -> Future[Any]:
    """Wrap a `concurrent.futures.Future` in an asyncio future of `loop`
    (default: the current loop); an asyncio future is returned unchanged.

    The result or exception is copied over (through
    ``call_soon_threadsafe``) when the concurrent future finishes;
    cancelling the asyncio future cancels the concurrent one."""
    if isfuture(future):
        return future  # type: ignore[no-any-return]
    if not isinstance(future, concurrent.futures.Future):
        raise TypeError(f"concurrent.futures.Future is expected, got {future!r}")
    if loop is None:
        loop = get_event_loop()
    return wrap_reported(future, loop, None)


def wrap_reported(
    future: concurrent.futures.Future[Any], loop: Any, reported: Callable[[], None] | None
) -> Future[Any]:
    """`wrap_future`, calling `reported` (if not None) in the loop's thread
    just before the outcome is copied over (never, if the loop is closed by
    then)."""
    wrapped: Future[Any] = loop.create_future()
    source = future

    def cancel_source(dest: Future[Any]) -> None:
        if dest.cancelled():
            source.cancel()

    def copy_over(done: concurrent.futures.Future[Any]) -> None:
        if loop.is_closed():
            return
        if reported is None:
            loop.call_soon_threadsafe(_copy_state_to_asyncio, done, wrapped)
        else:
            loop.call_soon_threadsafe(_report_and_copy, reported, done, wrapped)

    wrapped.add_done_callback(cancel_source)
    source.add_done_callback(copy_over)
    return wrapped


def chain_to_concurrent(
    source: Future[Any], dest: concurrent.futures.Future[Any], loop: Any
) -> Callable[[], None]:
    """Copy the outcome of asyncio future `source` (of `loop`) into the
    concurrent future `dest`; cancelling `dest` (from any thread) cancels
    `source`. Returns nothing useful; used by `run_coroutine_threadsafe`."""

    def cancel_source(done: concurrent.futures.Future[Any]) -> None:
        if done.cancelled() and not loop.is_closed():
            loop.call_soon_threadsafe(source.cancel)

    def copy_over(done: Future[Any]) -> None:
        _copy_state_to_concurrent(done, dest)

    dest.add_done_callback(cancel_source)
    source.add_done_callback(copy_over)
    return lambda: None
