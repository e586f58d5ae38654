"""The loop's timers: a heap of them, and one kernel task that runs the due
ones.

`TimerMethods.call_at` (a method of every loop) keeps the loop's
`asyncio.TimerHandle`s in a heap (by their ``_when``, as asyncio's);
`run_timers` sleeps with a kernel deadline until the earliest, runs those
due, and sleeps again. A cancelled timer stays in the heap, counted, until it
comes due or the heap is rebuilt without the cancelled ones.
"""

from __future__ import annotations

import contextvars
import heapq
import math
import threading
import time
from asyncio import events
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVarTuple, Unpack

import tether

from .. import lowlevel
from ._callbacks import run_callbacks

if TYPE_CHECKING:
    from ..abc import Clock
    from ._loop_core import LoopCore

Ts = TypeVarTuple("Ts")

#: The resolution of the loop's default clock (asyncio uses it the same way).
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution
#: Cancelled timers stay in the heap (dropped when they come due) until
#: there are more than this many and they are more than this fraction of
#: the heap: then it is rebuilt without them (what asyncio does too).
_MIN_CANCELLED_TIMERS = 100
_CANCELLED_TIMERS_FRACTION = 0.5


class MonotonicClock(tether.abc.Clock):
    """The loop's default clock: `time.monotonic`, what asyncio's loop
    reads, so that a deadline computed from ``time.monotonic()`` means the
    same on both loops. (The kernel's own default clock adds a random
    offset, to catch code that mixes clocks; asyncio code mixes these two
    knowingly.)"""

    __slots__ = ()

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return time.monotonic()

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return deadline - time.monotonic()


class TimerMethods:
    """The loop's timer methods (`LoopCore` has them): ``time``,
    ``call_later``, ``call_at``, and the bookkeeping of cancelled timers
    (``TimerHandle.cancel`` calls ``_timer_handle_cancelled``)."""

    # (Set by LoopCore.)
    _clock: Clock
    _debug: bool
    _timers: list[Any]
    _timer_scope: tether.CancelScope | None
    _timer_wake_at: float
    _timer_cancelled_count: int
    _thread_id: int | None
    _time_watch: lowlevel.Instrument | None
    _token: lowlevel.TetherToken | None

    if TYPE_CHECKING:

        def _check_closed(self) -> None: ...
        def _check_thread(self) -> None: ...
        def _check_callback(self, callback: Any, method: str) -> None: ...

    def time(self) -> float:
        """The loop's time, in seconds, on its clock (also outside a run)."""
        return self._clock.current_time()

    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> events.TimerHandle:
        """Call ``callback(*args)`` after `delay` seconds; return an
        `asyncio.TimerHandle` (``cancel()``, ``when()``)."""
        if delay is None:
            raise TypeError("delay must not be None")
        timer: Any = self.call_at(self.time() + delay, callback, *args, context=context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        return timer  # type: ignore[no-any-return]

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[Ts]], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> events.TimerHandle:
        """Call ``callback(*args)`` at loop time `when`; return an
        `asyncio.TimerHandle`. The order of timers due at the same time is
        not defined (in asyncio neither: its heap's order, which is not
        always the order in which they were scheduled)."""
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
        timer: Any = events.TimerHandle(when, callback, args, self, context)  # type: ignore[arg-type]
        if timer._source_traceback:
            del timer._source_traceback[-1]
        heapq.heappush(self._timers, timer)
        timer._scheduled = True
        if self._timer_scope is not None:
            if when < self._timer_wake_at:
                thread_id = self._thread_id
                if thread_id is None or thread_id == threading.get_ident():
                    self._wake_timers_at(when)
                else:
                    # From another thread while the loop runs (not thread-safe
                    # on asyncio either, which accepts it outside debug mode):
                    # the loop's thread moves its wait.
                    token = self._token
                    try:
                        if token is not None:
                            token.run_sync_soon(self._wake_timers_at, when)
                    except tether.RunFinishedError:
                        pass
                    # (With no token, or a finished run, the segment is
                    # ending: the next one reads the heap.)
            elif "time" in self.__dict__ and self._thread_id == threading.get_ident():
                # A later timer, with ``time()`` patched (see `_kernel_deadline`).
                self._watch_replaced_time()
        return timer  # type: ignore[no-any-return]

    def _wake_timers_at(self, when: float) -> None:
        """Make the timer task wake at loop time `when` if that is sooner
        than it would (in the loop's thread)."""
        scope = self._timer_scope
        if scope is not None and when < self._timer_wake_at:
            self._timer_wake_at = when
            scope.deadline = self._kernel_deadline(when)

    def _kernel_deadline(self, when: float) -> float:
        """The kernel deadline (on the clock) for loop time `when`. The same
        number, unless `time()` was replaced (test suites patch
        ``loop.time`` to fake time) or overridden: then the loop waits, as
        asyncio's does, for ``when - loop.time()`` seconds from now."""
        if not self._time_replaced():
            return when
        self._watch_replaced_time()
        return self._clock.current_time() + (when - self.time())

    def _time_replaced(self) -> bool:
        """Whether ``time()`` is not the loop's own: patched on the loop
        (test suites fake time that way) or overridden by a subclass."""
        return "time" in self.__dict__ or type(self).time is not TimerMethods.time

    def _watch_replaced_time(self) -> None:
        """``time()`` is replaced: asyncio reads it at every iteration to
        find the due timers, and a kernel deadline computed once from it
        does not see it move. Install a `_ReplacedTimeWatch` in this run
        (in the loop's thread), unless there is one."""
        if self._time_watch is None:
            watch = self._time_watch = _ReplacedTimeWatch(self)  # type: ignore[arg-type]
            lowlevel.add_instrument(watch)

    def _drop_time_watch(self) -> None:
        """Remove the `_ReplacedTimeWatch`, if any (at the end of a segment:
        a loop hosted in a longer run must not leave it behind)."""
        watch = self._time_watch
        if watch is not None:
            self._time_watch = None
            try:
                lowlevel.remove_instrument(watch)
            except KeyError:
                pass  # (Removed after one of its hooks raised.)

    def _timer_handle_cancelled(self, handle: Any) -> None:
        if handle._scheduled:
            count = self._timer_cancelled_count = self._timer_cancelled_count + 1
            if count > _MIN_CANCELLED_TIMERS and count > _CANCELLED_TIMERS_FRACTION * len(
                self._timers
            ):
                # Mostly cancelled timers: rebuild the heap without them.
                kept = []
                for timer in self._timers:
                    if timer._cancelled:
                        timer._scheduled = False
                    else:
                        kept.append(timer)
                heapq.heapify(kept)
                self._timers = kept
                self._timer_cancelled_count = 0


class _ReplacedTimeWatch(lowlevel.Instrument):
    """Installed in a segment's run once the loop's ``time()`` is found
    replaced (a test suite patched it, or a subclass overrides it): after
    every I/O wait, that is at every turn of the kernel (an I/O-wait hook
    makes it poll on every turn), if the first timer is due by ``time()``
    now, the timer task's deadline moves to now, so the due timers run in
    this turn, as asyncio runs them at the iteration in which ``time()``
    reaches them. Removed at the end of the segment, or as soon as
    ``time()`` is the loop's own again."""

    __slots__ = ("loop",)

    def __init__(self, loop: LoopCore) -> None:
        self.loop = loop

    def after_io_wait(self, timeout: float) -> None:
        loop = self.loop
        if not loop._time_replaced():
            loop._drop_time_watch()
            return
        scope = loop._timer_scope
        timers = loop._timers
        if (
            scope is not None
            and not loop._frozen
            and timers
            and timers[0]._when <= loop.time() + _CLOCK_RESOLUTION
        ):
            # (Expires at this turn's deadline check, which comes next.)
            scope.deadline = -math.inf


def pop_due_timers(loop: LoopCore) -> list[Any]:
    """Take the timers that are due now off the heap, in order, and return
    those not cancelled. (Up to one clock tick ahead counts as due, as in
    asyncio, so that waking at a deadline computed from a patched ``time()``
    does not fall a rounding error short.)"""
    timers = loop._timers
    end = loop.time() + _CLOCK_RESOLUTION
    due = []
    while timers and timers[0]._when <= end:
        timer = heapq.heappop(timers)
        timer._scheduled = False
        if timer._cancelled:
            loop._timer_cancelled_count -= 1
        else:
            due.append(timer)
    return due


@lowlevel.enable_ki_protection
async def run_timers(loop: LoopCore, due: list[Any]) -> None:
    """The body of the loop's timer task, for one segment: runs the due
    timers in order, then sleeps until the next is due (woken early by
    `call_at`, which moves the deadline of its cancel scope).

    Which timers are due is decided where asyncio decides it, at the start
    of an iteration: `due` when the segment starts (the task starts after
    what was queued before, so they run after it), and then when the
    kernel finds the scope's deadline passed, between two batches, in the
    abort function of the task's wait. The task's step that runs them comes
    after what was queued before that, as asyncio runs due timers after the
    callbacks already ready; a timer made in the meantime, even one already
    due, waits for the next such check."""
    try:
        await _serve_timers(loop, due)
    except BaseException:
        # The segment's nursery was cancelled before the loop froze (one of
        # the loop's own tasks raised): what was taken off the heap is due.
        _put_back(loop, due)
        raise


def _put_back(loop: LoopCore, due: list[Any]) -> None:
    """Put the due timers that have not run back on the heap, for the next
    run, and empty `due`. (The heap is read now: a rebuild replaces the
    list.)"""
    for timer in due:
        if not timer._cancelled:
            # (One cancelled since it was taken off the heap is not put
            # back: it was not counted among the cancelled timers in it.)
            timer._scheduled = True
            heapq.heappush(loop._timers, timer)
    due.clear()


@lowlevel.enable_ki_protection
async def _serve_timers(loop: LoopCore, due: list[Any]) -> None:
    """`run_timers`, but for putting back what is due if it raises."""
    while True:
        if due:
            if loop._frozen:
                # The run is ending (stop(), or a callback raised
                # KeyboardInterrupt or SystemExit): they stay due.
                _put_back(loop, due)
            else:
                run_callbacks(loop, due)
            # (Not kept by this frame until the next timer.)
            due.clear()
        timers = loop._timers
        while timers and timers[0]._cancelled:
            heapq.heappop(timers)._scheduled = False
            loop._timer_cancelled_count -= 1
        if timers:
            loop._timer_wake_at = when = timers[0]._when
            deadline = loop._kernel_deadline(when)
        else:
            loop._timer_wake_at = deadline = float("inf")

        def take_due(raise_cancel: Any) -> lowlevel.Abort:
            if not loop._frozen:
                due.extend(pop_due_timers(loop))
            return lowlevel.Abort.SUCCEEDED

        with tether.CancelScope() as scope:
            loop._timer_scope = scope
            # (Set once entered: a deadline already passed then expires at
            # the kernel's next check, not at once.)
            scope.deadline = deadline
            await lowlevel.wait_task_rescheduled(take_due)
        loop._timer_scope = None
