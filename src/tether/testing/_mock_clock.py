"""`MockClock`: virtual time for tests.

What it must do (tether's tests and trio's public tests are the judge):

* Virtual time starts at 0. It moves forward by `MockClock.jump`, and at
  ``rate`` virtual seconds per real second (default 0: it stands still).
  Nothing ever moves it backwards; negative or NaN inputs are refused.
* With ``autojump_threshold=t``, once the run has been idle (every task
  blocked) for ``t`` real seconds while some deadline is pending, the clock
  skips straight to that deadline. The kernel does the waiting: it reads
  `Clock.autojump_threshold` when it is about to wait and calls
  `Clock.autojump` if the wait ran out, so this class only has to say how
  far to skip.
* Changing ``rate``, the threshold, or jumping from *outside* a task (host
  code between the turns of a guest run) must reach a run loop that is
  already waiting on the old numbers: the clock then queues a no-op
  callback on the run it belongs to, which ends that wait.

Design: time is a line through an *anchor* point. ``_anchor_real`` is a
reading of the real clock and ``_anchor_virtual`` the virtual time at that
reading; now = anchor_virtual + speed * (real_now - anchor_real). A jump
shifts the anchor's virtual coordinate; a change of speed first moves the
anchor to "now" (`_re_anchor`) so that the time already passed keeps the old
speed. `_reset` (used by `Schedule` before each replay) moves it back to 0.
"""

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


def _require_non_negative(value: float, what: str) -> float:
    """`value` as a float, or ValueError naming `what` if it is negative/NaN."""
    number = float(value)
    if not number >= 0:  # also catches NaN, which compares false to anything
        raise ValueError(f"MockClock: {what} must be a number >= 0, not {value!r}")
    return number


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
        self._speed = _require_non_negative(rate, "rate")
        self._threshold = _require_non_negative(autojump_threshold, "autojump_threshold")
        self._anchor_virtual = 0.0
        self._anchor_real = time.perf_counter()

    def __repr__(self) -> str:
        return (
            f"MockClock(now={self.current_time()!r}, rate={self._speed!r}, "
            f"autojump_threshold={self._threshold!r})"
        )

    # -- the numbers a test may change

    @property
    def rate(self) -> float:
        """How many virtual seconds pass per real second. Non-negative."""
        return self._speed

    @rate.setter
    def rate(self, new_rate: float) -> None:
        speed = _require_non_negative(new_rate, "rate")
        self._re_anchor()
        self._speed = speed
        if not in_tether_task():
            self._poke_run()

    @property
    def autojump_threshold(self) -> float:
        """Real seconds of every task being blocked after which the clock jumps
        to the next deadline; ``inf`` disables autojumping."""
        return self._threshold

    @autojump_threshold.setter
    def autojump_threshold(self, new_threshold: float) -> None:
        self._threshold = _require_non_negative(new_threshold, "autojump_threshold")
        # Unlike time, the threshold matters to a loop that is waiting even
        # when a task set it (the loop read it before the task's step), so
        # poke in every case.
        self._poke_run()

    def jump(self, seconds: float) -> None:
        """Move virtual time forward by `seconds` at once. Deadlines that
        pass are handled at the run loop's next turn; called outside a task
        (host code of a guest run, say) it gives the run loop a turn, so
        that a loop waiting for a deadline sees the new time. From another
        thread it cannot: wake the run yourself (`TetherToken.run_sync_soon`).
        """
        self._anchor_virtual += _require_non_negative(seconds, "jump() seconds")
        # Inside a task, the loop looks at the deadlines again after this
        # step before it waits; outside one it may be waiting already.
        if not in_tether_task():
            self._poke_run()

    # -- the Clock protocol

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        elapsed_real = time.perf_counter() - self._anchor_real
        return self._anchor_virtual + elapsed_real * self._speed

    def deadline_to_sleep_time(self, deadline: float) -> float:
        ahead = deadline - self.current_time()
        if ahead <= 0:
            return 0.0
        # With the clock standing still, waiting never reaches the deadline;
        # only a jump (or an autojump) can. The run loop caps the wait.
        return ahead / self._speed if self._speed else math.inf

    def autojump(self) -> None:
        """The `Clock` hook the run loop calls when every task has been
        blocked for `autojump_threshold` real seconds while a deadline is
        pending: jump virtual time to the nearest deadline, so that it
        expires at once. Called inside a run only (it asks the run how far
        that deadline is)."""
        gap = current_statistics().seconds_to_next_deadline
        if math.isfinite(gap) and gap > 0:
            # The loop calls this itself, right before it looks at the
            # deadlines: no poke needed, unlike `jump`.
            self._anchor_virtual += gap

    # -- internals

    def _re_anchor(self) -> None:
        real_now = time.perf_counter()
        self._anchor_virtual += (real_now - self._anchor_real) * self._speed
        self._anchor_real = real_now

    def _reset(self) -> None:
        # Back to virtual time 0, keeping rate and threshold: a `Schedule`
        # does this before each run, so that every replay has the same times.
        self._anchor_real = time.perf_counter()
        self._anchor_virtual = 0.0

    def _poke_run(self) -> None:
        # Give the run this clock drives (if the caller is in one) a turn,
        # so that a loop waiting on the old time/speed/threshold reads the
        # new ones. A clock that is not the run's own clock changes nothing.
        if not in_tether_run() or current_clock() is not self:
            return
        try:
            current_tether_token().run_sync_soon(_no_op, idempotent=True)
        except RunFinishedError:
            pass  # the run is ending; there is no wait left to cut short


def _no_op() -> None:
    pass
