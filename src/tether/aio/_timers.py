"""The loop's timers: one kernel task runs the due ones.

`LoopCore.call_at` keeps the loop's `asyncio.TimerHandle`s in a heap (by
their ``_when``, compared as asyncio's heap compares them, so timers due at
the same time run in asyncio's order); `run_timers` sleeps with a kernel
deadline until the earliest, runs those due, and sleeps again.
"""

from __future__ import annotations

import heapq
import time
from typing import TYPE_CHECKING

import tether

from ._callbacks import run_callbacks

if TYPE_CHECKING:
    from ._loop_core import LoopCore

#: Timers up to one clock tick ahead are due, as in asyncio.
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution


async def run_timers(loop: LoopCore) -> None:
    """The body of the loop's timer task, for one segment: runs the due
    timers in order, then sleeps until the next (woken early by `call_at`,
    which moves the deadline of its cancel scope)."""
    while True:
        timers = loop._timers
        if not loop._frozen:
            # Timers up to one clock tick ahead are due, as in asyncio
            # (so that waking at a deadline computed from a patched
            # `time()` does not fall a rounding error short).
            end = loop.time() + _CLOCK_RESOLUTION
            due = []
            while timers and timers[0]._when <= end:
                timer = heapq.heappop(timers)
                timer._scheduled = False
                if timer._cancelled:
                    loop._timer_cancelled_count -= 1
                else:
                    due.append(timer)
            if due:
                run_callbacks(loop, due)
                # (Not kept by this frame until the next timer.)
                due.clear()
            timer = None
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
