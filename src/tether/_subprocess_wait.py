"""Waiting for a child process to exit, without reaping it.

`ChildExitWaiter.wait_until_reapable` returns once the child has exited, so
that ``Popen.wait()`` then returns at once. It never collects the exit
status itself: `subprocess.Popen` does that, and keeps it. Three ways, the
best the platform has:

1. **pidfd** (Linux 5.3+): ``os.pidfd_open(pid)`` gives a descriptor that
   becomes readable when the child exits; the task parks on it with
   `wait_readable`, like on a socket. No thread, cancellable at once.
2. **waitid in a thread**: ``os.waitid(P_PID, pid, WEXITED | WNOWAIT)``
   blocks until the child exits without reaping it. It runs in a worker
   thread owned by a *system task*, not by the waiting task, so cancelling
   a wait never leaves a second thread behind: every later wait in the run
   shares the same `Event`. That event belongs to the run (a `RunVar`),
   like the system task: when a run ends its watcher is cancelled without
   setting it, and a wait in a later `tether.run` starts a watcher of its
   own instead of taking the child for exited (and then blocking the
   whole run in ``Popen.wait()``).
3. **polling** (no pidfd and no waitid, e.g. macOS or Windows): ask
   ``Popen.poll()`` every `POLL_INTERVAL` seconds.

Invariant: the pidfd is closed at most once, and `notify_closing` is called
first when inside a run, so a task parked on it wakes (with
`ClosedResourceError`, which the waiter treats as "exited").
"""

from __future__ import annotations

import math
import os
import subprocess

# The kernel's public names, not `tether.lowlevel`, which re-exports
# open_process (an import cycle otherwise).
from ._core import (
    ClosedResourceError,
    RunVar,
    in_tether_run,
    notify_closing,
    spawn_system_task,
    wait_readable,
)
from ._sync import CapacityLimiter, Event
from ._threads import to_thread_run_sync
from ._timeouts import sleep

#: Seconds between two ``Popen.poll()`` calls on platforms that have neither
#: pidfds nor ``os.waitid``.
POLL_INTERVAL = 0.05

# Module-level switches, so that tests can force the fallbacks that other
# operating systems use.
_pidfd_usable = hasattr(os, "pidfd_open")
_waitid_usable = hasattr(os, "waitid") and hasattr(os, "WNOWAIT")

# The waitid threads block until their child exits, which can be for ever:
# they must not take tokens from the default thread limiter (that would
# starve `to_thread.run_sync`), so they get an unbounded one per run.
_waitid_limiter: RunVar[CapacityLimiter] = RunVar("tether subprocess waitid limiter")

# The waitid watches of the current run: the event each waiter's watcher
# sets once its child has exited. An entry leaves when its watcher finishes.
_waitid_watches: RunVar[dict[ChildExitWaiter, Event]] = RunVar("tether subprocess waitid watches")


def _current_waitid_limiter() -> CapacityLimiter:
    try:
        return _waitid_limiter.get()
    except LookupError:
        limiter = CapacityLimiter(math.inf)
        _waitid_limiter.set(limiter)
        return limiter


def _current_waitid_watches() -> dict[ChildExitWaiter, Event]:
    try:
        return _waitid_watches.get()
    except LookupError:
        watches: dict[ChildExitWaiter, Event] = {}
        _waitid_watches.set(watches)
        return watches


def _block_until_reapable(pid: int) -> None:
    # In a worker thread. WNOWAIT leaves the child a zombie, for Popen to
    # reap; the interpreter retries on EINTR itself (PEP 475).
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


async def _watch_with_waitid(waiter: ChildExitWaiter, pid: int) -> None:
    """System task: run the blocking waitid in a thread, then set the
    waiter's event in this run's watches.

    The thread may be abandoned only when the run itself is shutting down
    (system tasks are cancelled then); it ends when the child does. A
    cancelled watcher sets nothing: the child has not exited."""
    try:
        await to_thread_run_sync(
            _block_until_reapable,
            pid,
            abandon_on_cancel=True,
            limiter=_current_waitid_limiter(),
        )
    except OSError:
        # waitid failed, so Popen.wait() will not block either (typically
        # ECHILD: SIGCHLD is ignored and the kernel reaped the child).
        pass
    _current_waitid_watches().pop(waiter).set()


class ChildExitWaiter:
    """Knows how to wait for one child process to exit (see the module
    docstring for the three ways). Created right after the child is
    spawned, before anyone could have reaped it."""

    __slots__ = ("_pidfd", "_popen")

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self._pidfd = -1
        if _pidfd_usable:
            try:
                self._pidfd = os.pidfd_open(popen.pid)
            except OSError:
                # An old kernel (ENOSYS) or a sandbox refusing the call:
                # fall back to waitid.
                pass

    @property
    def uses_pidfd(self) -> bool:
        """Whether this waiter still holds a pidfd (False once closed)."""
        return self._pidfd != -1

    async def wait_until_reapable(self) -> None:
        """Block until the child has exited. Cancellable: a cancelled wait
        leaves nothing behind but (on the waitid path) the shared thread,
        which later waits in the same run reuse."""
        if self._pidfd != -1:
            try:
                await wait_readable(self._pidfd)
            except ClosedResourceError:
                # `close` ran in another task because `poll()` saw the exit.
                pass
        elif _waitid_usable:
            watches = _current_waitid_watches()
            exited = watches.get(self)
            if exited is None:
                exited = watches[self] = Event()
                spawn_system_task(
                    _watch_with_waitid,
                    self,
                    self._popen.pid,
                    name=f"<waitid for process {self._popen.pid}>",
                )
            await exited.wait()
        else:
            while self._popen.poll() is None:
                await sleep(POLL_INTERVAL)

    def close(self) -> None:
        """Release the pidfd (once the child was reaped). Idempotent."""
        fd = self._pidfd
        if fd == -1:
            return
        self._pidfd = -1
        if in_tether_run():
            notify_closing(fd)
        os.close(fd)

    def __del__(self) -> None:
        # A Process dropped without being waited for: do not leak the fd.
        # No task can be parked on it (it would hold a reference to us).
        fd = self._pidfd
        if fd != -1:
            self._pidfd = -1
            os.close(fd)
