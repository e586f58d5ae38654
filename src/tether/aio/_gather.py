"""`gather` and `shield`: futures that follow other futures.

Both keep asyncio's documented semantics, including the unstructured parts
(after `gather` raises the first error, the other awaitables keep running;
a shielded task outlives its canceller): code written for asyncio relies on
them. The children are ordinary aio tasks, owned by the loop's root nursery,
so nothing outlives the loop's run.
"""

from __future__ import annotations

import contextvars
import inspect
import types
from asyncio import CancelledError
from collections.abc import Awaitable, Coroutine
from typing import Any, Literal, TypeVar, overload

from ._callbacks import CountingHook, LoopCallback
from ._events import get_event_loop
from ._futures import Future, isfuture
from ._loop_core import creates_plain_tasks
from ._task import Task, new_task
from ._task_functions import ensure_future

_NO_CONTEXT = contextvars.Context()
_CoroutineType = types.CoroutineType

T = TypeVar("T")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")
T6 = TypeVar("T6")


class _GatheringFuture(Future[list[Any]]):
    """The future `gather` returns: cancelling it cancels the children that
    are not done yet."""

    __slots__ = ("_cancel_requested", "_children")

    def __init__(self, children: list[Future[Any]], *, loop: Any) -> None:
        super().__init__(loop=loop)
        self._children = children
        self._cancel_requested = False

    def cancel(self, msg: Any = None) -> bool:
        """Cancel every child that is not done. Returns whether any was;
        the gather then raises `CancelledError` once they have finished."""
        if self.done():
            return False
        cancelled = False
        for child in self._children:
            if child.cancel(msg=msg):
                cancelled = True
        if cancelled:
            self._cancel_requested = True
        return cancelled


def _as_future(arg: Any, loop: Any) -> Future[Any]:
    if isfuture(arg):
        if loop is not None and arg.get_loop() is not loop:
            raise ValueError(
                "The future belongs to a different loop than the one specified as the loop argument"
            )
        return arg  # type: ignore[no-any-return]
    if loop is None:
        loop = get_event_loop()
    if isinstance(arg, Coroutine) or inspect.iscoroutine(arg):
        return loop.create_task(arg)  # type: ignore[no-any-return]

    return ensure_future(arg, loop=loop)


def _result_or_error(child: Future[Any]) -> Any:
    if child.cancelled():
        message = child._cancel_message  # type: ignore[attr-defined]
        return CancelledError("" if message is None else message)
    error = child.exception()
    return child.result() if error is None else error


# For type checkers, as typeshed types asyncio.gather: up to six awaitables
# give a tuple of their result types (the value is a list, as in asyncio;
# both unpack the same); with return_exceptions=True each may be an error.
# The overloads without errors overlap those with (an argument typed plain
# bool matches both): the first that matches wins, which is meant.


@overload
def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1], /, *, return_exceptions: Literal[False] = False
) -> Future[tuple[T1]]: ...


@overload
def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1], aw2: Awaitable[T2], /, *, return_exceptions: Literal[False] = False
) -> Future[tuple[T1, T2]]: ...


@overload
def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    /,
    *,
    return_exceptions: Literal[False] = False,
) -> Future[tuple[T1, T2, T3]]: ...


@overload
def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    /,
    *,
    return_exceptions: Literal[False] = False,
) -> Future[tuple[T1, T2, T3, T4]]: ...


@overload
def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    aw5: Awaitable[T5],
    /,
    *,
    return_exceptions: Literal[False] = False,
) -> Future[tuple[T1, T2, T3, T4, T5]]: ...


@overload
def gather(  # type: ignore[overload-overlap]
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    aw5: Awaitable[T5],
    aw6: Awaitable[T6],
    /,
    *,
    return_exceptions: Literal[False] = False,
) -> Future[tuple[T1, T2, T3, T4, T5, T6]]: ...


@overload
def gather(  # type: ignore[overload-overlap]
    *coros_or_futures: Awaitable[T], return_exceptions: Literal[False] = False
) -> Future[list[T]]: ...


@overload
def gather(
    aw1: Awaitable[T1], /, *, return_exceptions: bool
) -> Future[tuple[T1 | BaseException]]: ...


@overload
def gather(
    aw1: Awaitable[T1], aw2: Awaitable[T2], /, *, return_exceptions: bool
) -> Future[tuple[T1 | BaseException, T2 | BaseException]]: ...


@overload
def gather(
    aw1: Awaitable[T1], aw2: Awaitable[T2], aw3: Awaitable[T3], /, *, return_exceptions: bool
) -> Future[tuple[T1 | BaseException, T2 | BaseException, T3 | BaseException]]: ...


@overload
def gather(
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    /,
    *,
    return_exceptions: bool,
) -> Future[
    tuple[T1 | BaseException, T2 | BaseException, T3 | BaseException, T4 | BaseException]
]: ...


@overload
def gather(
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    aw5: Awaitable[T5],
    /,
    *,
    return_exceptions: bool,
) -> Future[
    tuple[
        T1 | BaseException,
        T2 | BaseException,
        T3 | BaseException,
        T4 | BaseException,
        T5 | BaseException,
    ]
]: ...


@overload
def gather(
    aw1: Awaitable[T1],
    aw2: Awaitable[T2],
    aw3: Awaitable[T3],
    aw4: Awaitable[T4],
    aw5: Awaitable[T5],
    aw6: Awaitable[T6],
    /,
    *,
    return_exceptions: bool,
) -> Future[
    tuple[
        T1 | BaseException,
        T2 | BaseException,
        T3 | BaseException,
        T4 | BaseException,
        T5 | BaseException,
        T6 | BaseException,
    ]
]: ...


@overload
def gather(
    *coros_or_futures: Awaitable[T], return_exceptions: bool
) -> Future[list[T | BaseException]]: ...


def gather(*coros_or_futures: Awaitable[Any], return_exceptions: bool = False) -> Future[Any]:
    """Run the awaitables concurrently (coroutines are wrapped in tasks) and
    return a future of the list of their results, in argument order. (Type
    checkers see a tuple of the results' types for up to six awaitables,
    as for `asyncio.gather`.)

    With ``return_exceptions=False`` the first exception (or a child's
    cancellation, as `CancelledError`) is raised at once and the other
    awaitables keep running; with True, exceptions are returned in the list
    like results.

    Cancelling the returned future cancels every child not done yet (it then
    raises `CancelledError` once they have all finished). A cancelled child
    on its own does not cancel the gather: it counts as a `CancelledError`
    result.
    """
    if not coros_or_futures:
        outer: Future[list[Any]] = get_event_loop().create_future()
        outer.set_result([])
        return outer

    children: list[Future[Any]] = []
    by_arg: dict[Any, Future[Any]] = {}
    loop: Any = None
    count = 0
    outer_ref: list[_GatheringFuture] = []

    def on_future_done(child: Future[Any]) -> None:
        # The callback of a child that is not a task made here.
        hook.count_one(child)
        on_child_done(child)

    def on_child_done(child: Future[Any]) -> None:
        # (For a task made here, the hook has counted it, and this runs only
        # if it raised, was cancelled or is the last child to finish.)
        if hook.finished == hook.count:
            # Every child is counted: no more callbacks will be queued, so
            # break the cycle on_child_done -> hook -> LoopCallback.
            hook.callback = None
        gathering = outer_ref[0] if outer_ref else None
        if gathering is None or gathering.done():
            if not child.cancelled():
                # Mark the exception retrieved: nobody else will.
                child.exception()
            return
        if not return_exceptions:
            if child.cancelled():
                gathering.set_exception(child._make_cancelled_error())  # type: ignore[attr-defined]
                return
            exc = child.exception()
            if exc is not None:
                gathering.set_exception(exc)
                return
        if child is hook.last:
            if return_exceptions:
                results = [_result_or_error(each) for each in children]
            else:
                # Every child succeeded: a failed or cancelled one's callback
                # ran before this one (callbacks run in the order the children
                # finished) and completed the gathering.
                results = [each.result() for each in children]
            if gathering._cancel_requested:
                gathering.set_exception(child._make_cancelled_error())
            else:
                gathering.set_result(results)

    hook = CountingHook(LoopCallback(on_child_done))
    done_callback = LoopCallback(on_future_done)
    mixed = False
    if type(coros_or_futures[0]) is _CoroutineType:
        loop = get_event_loop()
    # Whether coroutines can be wrapped the fast way: new tether.aio Tasks.
    plain = creates_plain_tasks(loop)
    for arg in coros_or_futures:
        child = by_arg.get(arg)
        if child is None:
            if plain and type(arg) is _CoroutineType:
                # The common case, without the general checks. The new task
                # has no callbacks yet: the hook is its first one (see
                # `Task._done_hook`). As in asyncio, a task gather made
                # itself is not reported if destroyed while pending.
                child = new_task(arg, loop, None, None)
                child._done_hook = hook
                child._log_destroy_pending = False
            elif (
                type(arg) is Task
                and (loop is None or arg._loop is loop)
                and arg._done_hook is None
                and not arg._callbacks
                and not arg.done()
            ):
                # A pending task of this loop (made with create_task) with no
                # done callbacks yet: the hook can be its first one too, and
                # counts it without a callback unless it fails or is last.
                child = arg
                child._done_hook = hook
                if loop is None:
                    loop = child._loop
                    plain = creates_plain_tasks(loop)
            else:
                mixed = True
                child = _as_future(arg, loop)
                if loop is None:
                    loop = child.get_loop()
                    plain = creates_plain_tasks(loop)
                if child is not arg:
                    # A task made here: its errors are reported by the gather.
                    child._log_destroy_pending = False  # type: ignore[attr-defined]
                child.add_done_callback(done_callback, context=_NO_CONTEXT)
            count += 1
            by_arg[arg] = child
        children.append(child)
    hook.count = count
    if mixed:
        # Other children are counted when their callbacks run: count the
        # tasks made here the same way, or the last count may come before
        # an earlier child's callback (see CountingHook).
        for child in children:
            if type(child) is Task and child._done_hook is hook:
                child._done_hook = done_callback
    gathering = _GatheringFuture(children, loop=loop)
    outer_ref.append(gathering)
    return gathering


def shield(arg: Awaitable[T]) -> Future[T]:
    """Wait for `arg` without letting the waiter's cancellation cancel it.

    ``await shield(aw)`` is like ``await aw``, except that cancelling the
    awaiting task raises `CancelledError` in it while `aw` (wrapped in a task
    if it is a coroutine) keeps running. If `aw` itself is cancelled, the
    shield is cancelled too. Keep a reference to the task if it must be
    awaited later.
    """
    inner = _as_future(arg, None)
    if inner.done():
        return inner
    loop = inner.get_loop()
    outer: Future[T] = loop.create_future()

    def on_inner_done(done: Future[T]) -> None:
        if outer.cancelled():
            if not done.cancelled():
                # Mark the exception retrieved: nobody else will.
                done.exception()
            return
        if done.cancelled():
            outer.cancel()
        else:
            exc = done.exception()
            if exc is not None:
                outer.set_exception(exc)
            else:
                outer.set_result(done.result())

    def on_outer_done(done: Future[T]) -> None:
        if not inner.done():
            inner.remove_done_callback(on_inner_done)

    inner.add_done_callback(on_inner_done)
    outer.add_done_callback(on_outer_done)
    return outer
