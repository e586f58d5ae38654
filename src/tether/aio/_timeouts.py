"""Time: `sleep`, `timeout` / `timeout_at` / `Timeout`, and `wait_for`.

What they must do (asyncio's documented behaviour):

- ``sleep(delay, result)`` suspends for `delay` seconds of loop time and
  returns `result`; a delay of zero or less just lets everything else that
  is ready run once. NaN is refused.
- A `Timeout` is entered once, in a task. While its block runs, reaching
  the deadline cancels that task once (``task.cancel()``, edge-triggered:
  cleanup may await afterwards). When the block exits after that, the
  timeout withdraws its cancel request (``task.uncancel()``); if no other
  request is left over from inside the block, a `CancelledError` leaving
  the block becomes `TimeoutError` (raised from it). From Python 3.13 on,
  another exception leaving an expired block also records the timeout: a
  `TimeoutError` is slotted into its ``__context__`` chain just above the
  `CancelledError` the expiry caused (for an `ExceptionGroup`, in the
  group's chain and in each direct member's).
- Its phases, which its ``repr`` and its errors name, and which CPython's
  tests match word for word: created, active, expiring (deadline passed,
  block still running), expired, finished. `reschedule` works only while
  active; ``when=None`` means no deadline; a deadline already past fires at
  the next loop iteration.
- ``wait_for(aw, timeout)`` returns the result of `aw`, or cancels it at
  the deadline, waits for it to finish, and raises `TimeoutError` (unless
  it still produced a value). Cancelling the caller cancels `aw` too. On
  3.12+ a coroutine runs in the calling task, under a `Timeout`; on 3.11 it
  runs in a task of its own, watched with `wait`.

Design: the timer is a loop handle (`call_at` / `call_soon`) that the
timeout swaps on every reschedule and drops on exit. Expiry is a kernel
cancel scope nowhere: a scope is level-triggered (every await in the block
would fail again after expiry, and ``except CancelledError`` would see
`tether.Cancelled`), which asyncio code would notice. See docs/aio.md.
"""

from __future__ import annotations

import math
import sys
import types
from asyncio import CancelledError
from collections.abc import Awaitable, Generator
from functools import partial
from types import TracebackType
from typing import Any, Literal, TypeVar

import tether

from .. import lowlevel
from ._callbacks import LoopCallback
from ._loop_core import creates_plain_tasks
from ._stdlib import current_task, current_task_of, get_running_loop, get_running_loop_or_none
from ._task import new_task
from ._task_functions import ensure_future
from ._wait import wait

T = TypeVar("T")

#: Python 3.13 also records an expiry on errors other than CancelledError
#: that leave the block.
RECORD_EXPIRY_ON_OTHER_ERRORS = sys.version_info >= (3, 13)

#: From 3.12, `wait_for` runs a coroutine in the calling task (under a
#: `Timeout`) instead of in a task of its own.
WAIT_FOR_IN_CALLER = sys.version_info >= (3, 12)

Phase = Literal["created", "active", "expiring", "expired", "finished"]


@types.coroutine
def _yield_once() -> Generator[None, None, None]:
    # A bare yield: the task's stepper turns it into a kernel checkpoint.
    yield


def _resolve(future: Any, value: Any) -> None:
    if not future.done():
        future.set_result(value)


async def sleep(delay: float, result: T = None) -> T:  # type: ignore[assignment]
    """Suspend the task for `delay` seconds, then return `result`.

    ``sleep(0)`` (or a negative delay) lets the other tasks and callbacks
    that are ready run once: it is a kernel checkpoint. Cancellable: a
    cancelled sleep raises `asyncio.CancelledError`.

    Outside a task of an event loop (in a trio-style task of
    `tether.run`), it sleeps the tether way (`tether.sleep`)."""
    if math.isnan(delay):
        raise ValueError("sleep() got a delay of NaN (not a number); pass seconds as a number")
    loop = get_running_loop_or_none()
    if current_task_of(loop) is None:
        # A trio-style task of tether.run, not an aio task.
        if delay > 0:
            await tether.sleep(delay)
        else:
            await lowlevel.checkpoint()
        return result
    if delay <= 0:
        await _yield_once()
        return result
    wake_up = loop.create_future()
    timer = loop.call_later(delay, _resolve, wake_up, result)
    try:
        return await wake_up  # type: ignore[no-any-return]
    finally:
        timer.cancel()


def _slot_timeout_into_chain(error: BaseException) -> None:
    """Put a TimeoutError between `error`'s context chain and the first
    CancelledError in it (the one the expiry caused)."""
    link = error
    while link.__context__ is not None:
        below = link.__context__
        if isinstance(below, CancelledError):
            marker = TimeoutError()
            marker.__cause__ = below
            marker.__context__ = below
            link.__context__ = marker
            return
        link = below


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
        self._deadline = when
        self._phase: Phase = "created"
        self._timer: Any = None
        self._owner: Any = None
        # The owner's pending cancel requests when the block began: only
        # requests above this many are the block's own.
        self._requests_before = 0

    def when(self) -> float | None:
        """The deadline (loop time), or None."""
        return self._deadline

    def expired(self) -> bool:
        """Whether the deadline passed while the block was active."""
        return self._phase == "expiring" or self._phase == "expired"

    def __repr__(self) -> str:
        if self._phase != "active":
            return f"<Timeout [{self._phase}]>"
        shown = None if self._deadline is None else round(self._deadline, 3)
        return f"<Timeout [active] when={shown}>"

    def reschedule(self, when: float | None) -> None:
        """Move the deadline to `when` (loop time; None: no deadline).
        Raises `RuntimeError` unless the block is active."""
        if self._phase == "created":
            raise RuntimeError(
                "Timeout has not been entered: reschedule() works inside its `async with` block"
            )
        if self._phase != "active":
            raise RuntimeError(
                f"Timeout is {self._phase}: reschedule() works only while its block is active"
            )
        self._deadline = when
        self._drop_timer()
        if when is not None:
            loop = get_running_loop()
            if when > loop.time():
                self._timer = loop.call_at(when, self._expire)
            else:
                self._timer = loop.call_soon(self._expire)

    def _drop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._phase == "active":
            self._phase = "expiring"
            self._owner.cancel()

    async def __aenter__(self) -> Timeout:
        if self._phase != "created":
            raise RuntimeError("Timeout has already been entered: a Timeout is good for one block")
        owner = current_task()
        if owner is None:
            raise RuntimeError("Timeout should be used inside a task")
        self._owner = owner
        self._requests_before = owner.cancelling()
        self._phase = "active"
        self.reschedule(self._deadline)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        self._drop_timer()
        if self._phase == "active":
            self._phase = "finished"
            return None
        if self._phase != "expiring":
            return None
        self._phase = "expired"
        ours_only = self._owner.uncancel() <= self._requests_before
        if not ours_only or exc_val is None:
            return None
        if isinstance(exc_val, CancelledError):
            raise TimeoutError from exc_val
        if RECORD_EXPIRY_ON_OTHER_ERRORS:
            _slot_timeout_into_chain(exc_val)
            if isinstance(exc_val, ExceptionGroup):
                for member in exc_val.exceptions:
                    _slot_timeout_into_chain(member)
        return None


def timeout(delay: float | None) -> Timeout:
    """``async with timeout(delay):`` cancels the block after `delay`
    seconds and raises `TimeoutError` from it; None: no timeout. See
    `Timeout`. Must be used in a task."""
    if delay is None:
        return Timeout(None)
    return Timeout(get_running_loop().time() + delay)


def timeout_at(when: float | None) -> Timeout:
    """Like `timeout`, with an absolute deadline in loop time
    (``loop.time()``)."""
    return Timeout(when)


async def _cancel_and_wait(target: Any) -> None:
    """Cancel `target` and wait until it has finished. Cancelling this
    wait leaves `target` to finish on its own."""
    target.cancel()
    await wait([target])


async def _out_of_time(target: Any) -> Any:
    """The deadline has passed for `target` (a future or task): its result
    if it has one already, else cancel it, wait, and raise TimeoutError
    unless it finished with a value anyway."""
    if target.done():
        return target.result()
    await _cancel_and_wait(target)
    try:
        return target.result()
    except CancelledError as exc:
        raise TimeoutError from exc


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
    if timeout is not None and timeout <= 0:
        return await _out_of_time(ensure_future(fut))  # type: ignore[no-any-return]
    if WAIT_FOR_IN_CALLER:
        async with timeout_at(None if timeout is None else get_running_loop().time() + timeout):
            return await fut
    if timeout is None:
        return await fut
    # Python 3.11: `fut` runs as a task of its own; this task sleeps on a
    # gate that opens when the target finishes or the time is up.
    loop = get_running_loop()
    gate = _Gate(loop)
    if type(fut) is types.CoroutineType and creates_plain_tasks(loop):
        # A new task has no done callbacks: the gate can be its first one
        # without a trip through the callback list (see `Task._done_hook`).
        target: Any = new_task(fut, loop, None, None)
        target._done_hook = gate.on_target_done
    else:
        target = ensure_future(fut)
        target.add_done_callback(gate.on_target_done)
    alarm = loop.call_later(timeout, gate.open)
    try:
        await gate.future
    except CancelledError:
        if target.done():
            # It finished in the same iteration: its outcome wins (3.11).
            return target.result()  # type: ignore[no-any-return]
        gate.detach_from(target)
        await _cancel_and_wait(target)
        raise
    finally:
        alarm.cancel()
    if not target.done():
        gate.detach_from(target)
    return await _out_of_time(target)  # type: ignore[no-any-return]


class _Gate:
    """What 3.11's `wait_for` sleeps on: a future of the loop that the
    target's first done callback or the alarm resolves, whichever comes
    first."""

    __slots__ = ("future", "on_target_done")

    def __init__(self, loop: Any) -> None:
        self.future = future = loop.create_future()
        # (A `LoopCallback`: queued without an asyncio Handle. It opens the
        # future, not this object: a bound method of it would keep the two
        # in a cycle, garbage for the collector after every call.)
        self.on_target_done = LoopCallback(partial(_open, future))

    def open(self, *_: object) -> None:
        _open(self.future)

    def detach_from(self, target: Any) -> None:
        """The target has not finished and is about to be cancelled: it
        must not open the gate any more."""
        if getattr(target, "_done_hook", None) is self.on_target_done:
            target._done_hook = None
        else:
            target.remove_done_callback(self.on_target_done)


def _open(future: Any, *_: object) -> None:
    """Resolve a `_Gate`'s future, if nothing has yet."""
    if not future.done():
        future.set_result(None)
