"""The worker-thread jobs of a tether.aio loop, counted for the kernel.

A job the loop hands to a thread (`run_in_executor`, so also `to_thread`
and `getaddrinfo`; the default executor's shutdown) ends with a callback
from that thread (``call_soon_threadsafe``) that wakes the task waiting for
it. Until then the kernel must not think the run stuck: a `Schedule` and
the pytest plugin's deadlock check report "every task is blocked and
nothing can wake one" when the kernel sees nothing that could. So each job
still out is counted in the kernel run that hosts the loop, as a
`to_thread` job is (`lowlevel.expect_thread_report`).

A job can outlive the segment of the loop's run that started it, and the
next segment may run under another kernel run. So the count is taken for
each segment: at its start for every job still out, and when a job starts
during it; it is given back when a job's callback runs, and, for the jobs
still out, when the segment ends. A job whose callback never comes (its
loop was closed first) is given back by that end too.
"""

from __future__ import annotations

from .. import lowlevel


class ThreadReports:
    """The loop's count of worker-thread jobs whose callback has not run."""

    __slots__ = ("_counted", "_out")

    def __init__(self) -> None:
        #: Jobs started and not reported.
        self._out = 0
        #: Of those, how many the current segment's run counts (0 between
        #: segments; `_out` during one).
        self._counted = 0

    def job_started(self, in_segment: bool) -> None:
        """A job was handed to a thread (in the loop's thread); `in_segment`:
        the loop is running now."""
        self._out += 1
        if in_segment:
            lowlevel.expect_thread_report()
            self._counted += 1

    def job_reported(self) -> None:
        """A job's callback runs (in the loop's thread, while it runs)."""
        self._out -= 1
        if self._counted:
            self._counted -= 1
            lowlevel.thread_report_received()

    def segment_started(self) -> None:
        """The loop starts running (inside the segment's kernel run)."""
        # (Nothing is counted between segments.)
        for _ in range(self._out):
            lowlevel.expect_thread_report()
        self._counted = self._out

    def segment_ended(self) -> None:
        """The loop stops running (still inside the segment's kernel run)."""
        for _ in range(self._counted):
            lowlevel.thread_report_received()
        self._counted = 0
