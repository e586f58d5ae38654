"""Noticing that a test's run hangs, and saying where.

Three detectors feed one report:

* a **hang timeout**, in real time: a watchdog thread waits that long, then
  asks the run loop (through `TetherToken.run_sync_soon`) to draw the task
  tree and cancel the test;
* **deadlock detection** on an autojump `MockClock`: when every task has been
  blocked, with no deadline that a clock jump could reach, no I/O wait and no
  pending callback and no `to_thread` job running, for ``deadlock_grace``
  real seconds, nothing inside the run can ever wake a task. An instrument
  watches the loop for that state. (Under a `Schedule` the kernel reports
  that state itself, with no grace: see `_explorer`.)
* a task **blocking the loop** in synchronous code (``time.sleep``, a busy
  loop): if the loop does not take the hang report within `SYNC_PROBE`
  seconds while it is stepping a task, the watchdog names that task and
  writes its stack to stderr at once, before a short test timeout can end
  the test, and the report becomes the test's failure if the loop recovers.

Only things the kernel cannot see (a thread the test started itself, a
signal) could still wake a task in the deadlock state, which is why there is
a grace period at all.

The report is drawn in the run loop's thread between task steps, where the
task tree is consistent. If the loop never gets there or the tasks do not
unwind after the cancellation, the watchdog thread writes what it can to
stderr, where pytest shows it next to pytest-timeout's own report.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import traceback
from collections.abc import Callable

from .. import RunFinishedError, run
from .._threads import thread_jobs_running
from ..abc import Instrument
from ..lowlevel import (
    SteppingState,
    Task,
    TetherToken,
    add_instrument,
    current_clock,
    current_root_task,
    current_statistics,
    current_stepping_state,
    current_tether_token,
)
from ._mock_clock import MockClock
from ._task_tree import format_task_tree

#: A wait for I/O at least this long (in real seconds) means the run loop has
#: nothing scheduled to wake it.
_ENDLESS_SLEEP = 3600.0

#: After a report, how long the tasks get to unwind before the watchdog
#: writes the report to stderr as well.
UNWIND_GRACE = 2.0

#: At the hang timeout, how long the run loop gets to take the report before
#: the watchdog decides that a task is blocking it in synchronous code (and
#: says so at once: a short test timeout may be only a little later).
SYNC_PROBE = 0.05

# The kernel's step loop: frames above it on the loop thread's stack are the
# stepped task's own.
_STEP_LOOP_FILE = run.__code__.co_filename


class HangError(Exception):
    """A tether test hung: it ran past its hang timeout, or deadlocked.

    Raised by the pytest plugin (``tether_hang_timeout``,
    ``tether_deadlock_grace``), and by a run under a `Schedule` that
    deadlocks. The message holds the task tree at the moment the hang was
    noticed: every task, the nursery it lives in, and the await frames where
    it was blocked (or, for a task blocking the run loop in synchronous code,
    that task's stack).

    Attributes:
      reason: ``"timeout"`` or ``"deadlock"``.
      task_tree: the drawing of the task tree.
    """

    def __init__(self, message: str, reason: str, task_tree: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.task_tree = task_tree


def hang_error(what: str, reason: str, detail: str, root: Task | None = None) -> HangError:
    """A `HangError` for `what` (the test), with the tree of the tasks under
    `root` (default: the current run's root task). Call it in the run's
    thread, between task steps."""
    tree = format_task_tree(root)
    if reason == "deadlock":
        headline = f"tether: {what} deadlocked: {detail}."
    else:
        headline = f"tether: {what} hung: {detail}."
    message = f"{headline}\nThe tasks, and where each one was blocked:\n{tree}"
    return HangError(message, reason, tree)


class HangWatchdog:
    """Watches one run. `start` it inside the run, `stop` it after the run
    has returned; then `error` tells whether it saw a hang."""

    def __init__(
        self,
        *,
        hang_timeout: float | None,
        deadlock_grace: float | None,
        what: str = "the test",
    ) -> None:
        self.hang_timeout = hang_timeout
        self.deadlock_grace = deadlock_grace
        self.what = what
        self.error: HangError | None = None
        self._cancel: Callable[[], None] = lambda: None
        self._token: TetherToken | None = None
        self._stepping: SteppingState | None = None
        self._root: Task | None = None
        self._loop_thread = threading.get_ident()
        self._detector: _DeadlockDetector | None = None
        self._thread: threading.Thread | None = None
        # Shared between the loop's thread and the watchdog thread:
        self._condition = threading.Condition()
        self._finished = False
        self._reported_at: float | None = None
        #: What the watchdog wrote about a task blocking the loop (and the
        #: task tree then), if it did.
        self._sync_report: tuple[str, str] | None = None
        #: When the run became idle (see `_DeadlockDetector`), and which idle
        #: period that is; None while it is not idle.
        self._idle_since: float | None = None
        self._idle_period = 0

    def start(self, cancel: Callable[[], None]) -> None:
        """Start watching the current run; `cancel` is called (in the run's
        thread) to stop the test when it hangs."""
        self._cancel = cancel
        self._token = current_tether_token()
        self._stepping = current_stepping_state()
        self._root = current_root_task()
        self._loop_thread = threading.get_ident()
        clock = current_clock()
        if self.deadlock_grace is not None and isinstance(clock, MockClock):
            self._detector = _DeadlockDetector(self, clock)
            add_instrument(self._detector)
        if self.hang_timeout is not None or self._detector is not None:
            self._thread = threading.Thread(
                target=self._watch, name="tether hang watchdog", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """The run is over: stop the watchdog thread."""
        with self._condition:
            self._finished = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join()

    # -- in the run's thread ---------------------------------------------------

    def idle_started(self, period: int) -> None:
        with self._condition:
            self._idle_since = time.monotonic()
            self._idle_period = period
            self._condition.notify_all()

    def idle_ended(self) -> None:
        with self._condition:
            self._idle_since = None
            self._condition.notify_all()

    def _confirm_deadlock(self, period: int) -> None:
        # A run_sync_soon callback: the run may have woken up in the meantime.
        detector = self._detector
        if detector is None or not detector.idle or detector.period != period:
            return
        if current_statistics().tasks_runnable:
            return  # an earlier callback (a thread reporting back) woke a task
        self.report(
            "deadlock",
            "every task is blocked and nothing can wake one (no deadline for the "
            "autojump MockClock to jump to, no I/O wait, no pending callback, no "
            f"to_thread job) for {self.deadlock_grace:g} s of real time "
            "(tether_deadlock_grace; raise it if a thread or signal handler of your "
            "own was going to wake a task)",
        )

    def report(self, reason: str, detail: str) -> None:
        """Draw the task tree, record the hang and cancel the test. Runs in
        the loop's thread, between task steps (a `run_sync_soon` callback)."""
        if self.error is not None:
            return
        with self._condition:
            self._reported_at = time.monotonic()
            self._condition.notify_all()
            sync_report = self._sync_report
        if sync_report is not None:
            # A task blocked the loop until now: what the watchdog saw then
            # is the report (the tree drawn now would show it unwound).
            text, tree = sync_report
            error = HangError(text, reason, tree)
        else:
            error = hang_error(self.what, reason, detail, self._root)
        self.error = error
        self._cancel()

    def report_deadlock(self, detail: str) -> HangError:
        """`report` a deadlock that a schedule noticed; return the error."""
        self.report("deadlock", detail)
        assert self.error is not None
        return self.error

    # -- in the watchdog thread ------------------------------------------------

    def _watch(self) -> None:
        token = self._token
        assert token is not None
        hang_at = math.inf
        if self.hang_timeout is not None:
            hang_at = time.monotonic() + self.hang_timeout
        grace = self.deadlock_grace if self.deadlock_grace is not None else math.inf
        posted_period = -1
        asked_at: float | None = None
        while asked_at is None:
            callback: tuple[Callable[..., None], tuple[object, ...]] | None = None
            with self._condition:
                if self._finished:
                    return
                if self._reported_at is not None:
                    break
                now = time.monotonic()
                deadlock_at = math.inf
                if self._idle_since is not None and self._idle_period != posted_period:
                    deadlock_at = self._idle_since + grace
                if now >= hang_at:
                    detail = (
                        f"still running after {self.hang_timeout:g} s of real time "
                        "(tether_hang_timeout)"
                    )
                    callback = (self.report, ("timeout", detail))
                    asked_at = now
                elif now >= deadlock_at:
                    posted_period = self._idle_period
                    callback = (self._confirm_deadlock, (posted_period,))
                else:
                    wake_at = min(hang_at, deadlock_at)
                    self._condition.wait(None if wake_at == math.inf else wake_at - now)
            if callback is not None:
                try:
                    token.run_sync_soon(callback[0], *callback[1])
                except RunFinishedError:
                    return
        # A report is drawn or asked for: give the loop time to draw it and
        # the tasks time to unwind. If it does not even take the report, a
        # task is blocking it: say which, now.
        with self._condition:
            if self._reported_at is None and asked_at is not None:
                probe_end = time.monotonic() + SYNC_PROBE
                while self._reported_at is None and not self._finished:
                    left = probe_end - time.monotonic()
                    if left <= 0:
                        break
                    self._condition.wait(left)
                if self._reported_at is None and not self._finished:
                    self._sync_report = self._blocked_task_report()
                    if self._sync_report is not None:
                        print(self._sync_report[0], file=sys.stderr, flush=True)
            while not self._finished:
                since = self._reported_at if self._reported_at is not None else asked_at
                assert since is not None
                remaining = since + UNWIND_GRACE - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            if self._finished or (self._sync_report is not None and self.error is None):
                return
        self._write_to_stderr()

    def _blocked_task_report(self) -> tuple[str, str] | None:
        """Called from the watchdog thread: if the loop is in the middle of
        stepping a task, the report naming it, with its stack, and the task
        tree."""
        stepping = self._stepping
        task = None
        if stepping is not None:
            # (A face's callbacks run in a step with no current task: the
            # task running them is the one stuck.)
            task = stepping.current_task or stepping.no_task_stepping
        frame = sys._current_frames().get(self._loop_thread)
        if task is None or frame is None:
            return None
        stack = traceback.extract_stack(frame)
        kernel = [i for i, entry in enumerate(stack) if entry.filename == _STEP_LOOP_FILE]
        if kernel:
            stack = traceback.StackSummary.from_list(stack[kernel[-1] + 1 :])
        try:
            tree = format_task_tree(self._root) if self._root is not None else "?"
        except Exception as exc:  # the tree changed under us; it is a best effort
            tree = f"(could not draw the task tree: {exc!r})"
        text = (
            f"tether: {self.what} is stuck in synchronous code: task {task.name!r} has not "
            f"yielded to the run loop since before the hang timeout ({self.hang_timeout:g} s). "
            "A blocking call (time.sleep, a lock, blocking I/O) or a busy loop in an async "
            "function stops every task; await tether.sleep or tether.to_thread.run_sync "
            f"instead. The task is at (most recent call last):\n{''.join(stack.format())}"
            f"The tasks (drawn from another thread, may be inexact):\n{tree}"
        )
        return text, tree

    def _write_to_stderr(self) -> None:
        error = self.error
        if error is not None:
            text = f"{error}\n(the tasks did not finish after being cancelled)"
        else:
            frame = sys._current_frames().get(self._loop_thread)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
            try:
                tree = format_task_tree(self._root) if self._root is not None else "?"
            except Exception as exc:  # the tree changed under us; it is a best effort
                tree = f"(could not draw the task tree: {exc!r})"
            text = (
                f"tether: {self.what} is stuck in synchronous code: the run loop has not "
                f"run for {UNWIND_GRACE:g} s. The loop's thread is at:\n{stack}"
                f"The tasks (drawn from another thread, may be inexact):\n{tree}"
            )
        print(text, file=sys.stderr, flush=True)


class _DeadlockDetector(Instrument):
    """Tells the watchdog when the run loop goes idle for good ("every task
    blocked, nothing to wake one") and when that ends."""

    __slots__ = ("_clock", "_watchdog", "idle", "period")

    def __init__(self, watchdog: HangWatchdog, clock: MockClock) -> None:
        self._watchdog = watchdog
        self._clock = clock
        self.idle = False
        #: Counts idle periods, so that a late confirmation is not mistaken
        #: for one about the current period.
        self.period = 0

    def before_task_step(self, task: Task) -> None:
        if self.idle:
            self.idle = False
            self._watchdog.idle_ended()

    def before_io_wait(self, timeout: float) -> None:
        idle = (
            self._clock.autojump_threshold != math.inf
            # A shorter sleep means the loop expects something (a task in
            # wait_all_tasks_blocked, say) to wake it.
            and timeout >= _ENDLESS_SLEEP
            and self._nothing_can_wake_a_task()
        )
        if idle and not self.idle:
            self.idle = True
            self.period += 1
            self._watchdog.idle_started(self.period)
        elif self.idle and not idle:
            self.idle = False
            self._watchdog.idle_ended()

    @staticmethod
    def _nothing_can_wake_a_task() -> bool:
        stats = current_statistics()
        io = stats.io_statistics
        return not (
            stats.tasks_runnable
            or stats.run_sync_soon_queue_size
            or stats.seconds_to_next_deadline != math.inf
            or io.tasks_waiting_read
            or io.tasks_waiting_write
            # A worker thread that will report back (any limiter's):
            or thread_jobs_running()
        )
