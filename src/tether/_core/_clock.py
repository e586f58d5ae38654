"""Clocks: where the kernel gets "now" and how long it may sleep."""

from __future__ import annotations

import abc
import random
import time


class Clock(abc.ABC):
    """The interface a clock passed to ``tether.run(clock=...)`` provides.

    A clock may also have an ``autojump_threshold`` attribute (seconds): when
    every task has been blocked that long in real time, the kernel calls the
    clock's ``_autojump()`` method. `tether.testing.MockClock` uses this.
    """

    __slots__ = ()

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
    than working by accident."""

    __slots__ = ("offset",)

    def __init__(self) -> None:
        self.offset = random.uniform(10_000, 200_000)

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self.offset + time.perf_counter()

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return deadline - self.current_time()
