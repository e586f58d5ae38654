"""Clocks: where the kernel gets "now" and how long it may sleep.

A clock has three required methods, and an optional hook for clocks that
move their own time (virtual time in tests): `Clock.autojump_threshold` and
`Clock.autojump`. The run loop reads the threshold only when it is about to
wait, and calls ``autojump()`` only when the run was idle that long.
"""

from __future__ import annotations

import abc
import math
import random
import time

#: The range of `SystemClock`'s random offset, in seconds: far from zero and
#: from `time.perf_counter`'s own values, so mixing the clocks shows.
_SYSTEM_CLOCK_OFFSET_RANGE = (10_000.0, 200_000.0)


class Clock(abc.ABC):
    """The interface a clock passed to ``tether.run(clock=...)`` provides.

    Subclasses implement `start_clock`, `current_time` and
    `deadline_to_sleep_time`. A clock whose time moves by itself when the
    run is idle (`tether.testing.MockClock` with its autojump) also sets
    `autojump_threshold` and overrides `autojump`; for the others, the
    defaults mean "never".
    """

    __slots__ = ()

    #: Optional: real seconds the whole run must have been idle (every task
    #: blocked, no I/O, no callback) before the run loop calls `autojump`,
    #: and only when some cancel scope has a deadline. ``inf`` (the default)
    #: never autojumps. May change while the run is going; the loop reads it
    #: each time it is about to wait.
    autojump_threshold: float = math.inf

    def autojump(self) -> None:
        """Optional: called by the run loop, in the run's thread, when the run
        has been idle for `autojump_threshold` seconds of real time while a
        deadline is pending. The clock should move its time forward to the
        nearest deadline (``tether.lowlevel.current_statistics()
        .seconds_to_next_deadline`` says how far), so that the timeout fires
        at once. The default does nothing."""
        # (A clock whose time moves by itself has nothing to jump.)
        return

    @abc.abstractmethod
    def start_clock(self) -> None:
        """Called once at the start of the run."""

    @abc.abstractmethod
    def current_time(self) -> float:
        """The current time, in seconds, on this clock's own scale."""

    @abc.abstractmethod
    def deadline_to_sleep_time(self, deadline: float) -> float:
        """How many real seconds the run loop should sleep to reach
        `deadline` on this clock's scale (may be negative)."""


class SystemClock(Clock):
    """The default clock: `time.perf_counter` plus a random offset, so that code
    which mixes tether times with other clocks fails loudly in testing rather
    than working by accident.

    `tether.run` makes one when no clock is given. `tether.lowlevel` exports
    the class for code that needs the default clock as an object of its own
    before a run starts (`tether.aio`'s event loop tells the time outside
    its runs) or that falls back to it (the testing tools)."""

    __slots__ = ("offset",)

    #: Added to `time.perf_counter`; random per clock.
    offset: float

    def __init__(self) -> None:
        self.offset = random.uniform(*_SYSTEM_CLOCK_OFFSET_RANGE)

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self.offset + time.perf_counter()

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return deadline - self.current_time()
