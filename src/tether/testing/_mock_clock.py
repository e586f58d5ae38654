"""`MockClock`: virtual time for tests."""

from __future__ import annotations

import math
import time

from .. import RunFinishedError
from ..abc import Clock
from ..lowlevel import (
    current_clock,
    current_statistics,
    current_tether_token,
    in_tether_run,
    in_tether_task,
)


class MockClock(Clock):
    """A clock whose time moves only when told to, for fast, deterministic tests.

    Virtual time starts at 0 and advances at ``rate`` times real time (0, the
    default, means it stands still) plus whatever `jump` adds. With
    ``autojump_threshold=t``, whenever every task has been blocked for ``t``
    real seconds, the clock jumps straight to the nearest deadline (a task
    waiting for a `to_thread` job counts as blocked, as in trio); with
    ``t=0``, timeouts in a test run instantly, in the same order as they
    would in real time.

    Pass it as ``tether.run(main, clock=MockClock(autojump_threshold=0))``.
    Both attributes can be changed while the run is going.
    """

    def __init__(self, rate: float = 0.0, autojump_threshold: float = math.inf) -> None:
        self._real_clock = time.perf_counter
        self._real_base = 0.0
        self._virtual_base = 0.0
        self._rate = 0.0
        self._autojump_threshold = math.inf
        self.rate = rate
        self.autojump_threshold = autojump_threshold

    def __repr__(self) -> str:
        return f"<MockClock, time={self.current_time():.7f}, rate={self._rate} @ {id(self):#x}>"

    @property
    def rate(self) -> float:
        """How many virtual seconds pass per real second. Non-negative."""
        return self._rate

    @rate.setter
    def rate(self, new_rate: float) -> None:
        if math.isnan(new_rate) or new_rate < 0:
            raise ValueError(f"rate must be a non-negative number, got {new_rate!r}")
        real = self._real_clock()
        self._virtual_base += self._rate * (real - self._real_base)
        self._real_base = real
        self._rate = float(new_rate)
        self._wake_waiting_run_loop()

    @property
    def autojump_threshold(self) -> float:
        """Real seconds of every task being blocked after which the clock jumps
        to the next deadline; ``inf`` disables autojumping."""
        return self._autojump_threshold

    @autojump_threshold.setter
    def autojump_threshold(self, new_threshold: float) -> None:
        if math.isnan(new_threshold) or new_threshold < 0:
            raise ValueError(
                f"autojump_threshold must be a non-negative number, got {new_threshold!r}"
            )
        self._autojump_threshold = float(new_threshold)
        self._wake_run_loop()

    def _wake_waiting_run_loop(self) -> None:
        # Time moved (or will move faster) outside a task: in host code of a
        # guest run, the loop may be waiting for the old next deadline (for
        # ever, if time stood still). Inside a task the loop looks at the
        # deadlines again before it waits: no wake-up needed.
        if not in_tether_task():
            self._wake_run_loop()

    def _wake_run_loop(self) -> None:
        # The run loop reads the threshold when it is about to wait. A loop
        # that waits already (a guest run's, while its host changes the
        # threshold) gets a turn, so that it reads the new one now.
        if in_tether_run() and current_clock() is self:
            try:
                current_tether_token().run_sync_soon(_nothing, idempotent=True)
            except RunFinishedError:
                pass

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self._virtual_base + self._rate * (self._real_clock() - self._real_base)

    def deadline_to_sleep_time(self, deadline: float) -> float:
        virtual_timeout = deadline - self.current_time()
        if virtual_timeout <= 0:
            return 0.0
        if self._rate > 0:
            return virtual_timeout / self._rate
        # Time stands still: only a jump() can reach the deadline.
        return 999_999_999.0

    def jump(self, seconds: float) -> None:
        """Move virtual time forward by `seconds` at once. Deadlines that
        pass are handled at the run loop's next turn; called outside a task
        (host code of a guest run, say) it gives the run loop a turn, so
        that a loop waiting for a deadline sees the new time. From another
        thread it cannot: wake the run yourself (`TetherToken.run_sync_soon`).
        """
        if math.isnan(seconds) or seconds < 0:
            raise ValueError(f"time can't go backwards: jump({seconds!r})")
        self._virtual_base += seconds
        self._wake_waiting_run_loop()

    def _reset(self) -> None:
        # Back to virtual time 0, keeping rate and threshold: a `Schedule`
        # does this before each run, so that every replay has the same times.
        self._real_base = self._real_clock()
        self._virtual_base = 0.0

    def autojump(self) -> None:
        """The `Clock` hook the run loop calls when every task has been
        blocked for `autojump_threshold` real seconds while a deadline is
        pending: jump virtual time to the nearest deadline, so that it
        expires at once. Called inside a run only (it asks the run how far
        that deadline is)."""
        jump = current_statistics().seconds_to_next_deadline
        if 0 < jump < math.inf:
            # Not `jump()`: the run loop itself calls this, about to look at
            # the deadlines; it needs no wake-up.
            self._virtual_base += jump


def _nothing() -> None:
    pass
