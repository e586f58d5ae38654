"""The loop's timers: one kernel task runs the due ones.

`LoopCore.call_at` keeps the loop's `asyncio.TimerHandle`s in a heap (by
their ``_when``, compared as asyncio's heap compares them, so timers due at
the same time run in asyncio's order); `run_timers` sleeps with a kernel
deadline until the earliest, runs those due, and sleeps again.
"""

from __future__ import annotations

import heapq
import time
from typing import TYPE_CHECKING, Any

import tether

from .. import lowlevel
from ._callbacks import run_callbacks

if TYPE_CHECKING:
    from ._loop_core import LoopCore

#: The resolution of the loop's default clock (asyncio uses it the same way).
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution


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


async def run_timers(loop: LoopCore, due: list[Any]) -> None:
    """The body of the loop's timer task, for one segment: runs the due
    timers in order, then sleeps until the next (woken early by `call_at`,
    which moves the deadline of its cancel scope).

    `due` are the timers that were due when the segment started, which
    asyncio's first iteration runs after what was queued before it (the
    task starts after that). What fell due since, and what that queued, take
    their turns from the kernel's next batch on: asyncio's next iteration
    runs what was queued in this one first, then the timers due by then."""
    if due:
        run_callbacks(loop, due)
        # (Not kept by this frame until the next timer.)
        due.clear()
    await lowlevel.cancel_shielded_checkpoint()
    while True:
        timers = loop._timers
        if not loop._frozen:
            due = pop_due_timers(loop)
            if due:
                run_callbacks(loop, due)
                due.clear()
        while timers and timers[0]._cancelled:
            heapq.heappop(timers)._scheduled = False
            loop._timer_cancelled_count -= 1
        if timers:
            loop._timer_wake_at = when = timers[0]._when
            deadline = loop._kernel_deadline(when)
        else:
            loop._timer_wake_at = deadline = float("inf")
        with tether.CancelScope(deadline=deadline) as scope:
            loop._timer_scope = scope
            await tether.sleep_forever()
        loop._timer_scope = None
