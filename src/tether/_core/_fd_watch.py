"""`FdWatchSet`: standing, level-triggered interest in many file descriptors,
for one task to wait on.

`wait_readable` and `wait_writable` are one-shot: a task waits for one fd
and the wait ends when it is ready. An event loop built on the kernel (the
aio face's ``add_reader`` / ``add_writer``) needs what a selector gives:
many fds registered for as long as their callbacks are, and, each time it
wakes, which of them are ready. A watch set is that, inside the run's own
poller (`IOManager.set_watch`): a watched fd stays registered
(level-triggered) until its watch is withdrawn, and the run's I/O phase
hands the set the events of its fds (`IOManager.process_events`),
waking the task in `wait` (or, in a run that is otherwise idle, calling the
set's ``on_ready`` hook in its place, from the run loop:
`call_ready_hooks`). So the loop costs no second poller, no wait
on that poller's fd and no re-arming per wakeup: one poll serves the run's
tasks and the loop's callbacks.

Invariants: ``_ready`` holds the fds reported since the last `wait`
returned, each with the union of its events; ``_task`` is the task blocked
in `wait`, or None; ``_fds`` holds every fd this set watches (it may also
hold fds whose watch the run dropped because they were closed, see
`notify_closing`).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import outcome

from ._exceptions import BusyResourceError, ClosedResourceError
from ._io import _READ_BIT, _WRITE_BIT
from ._run_context import GLOBAL_RUN_CONTEXT, current_runner, outside_task_error
from ._traps import Abort, WaitTaskRescheduled, checkpoint

if TYPE_CHECKING:
    from ._io import IOManager
    from ._run import Runner
    from ._task import Task

#: Every event a watch may ask for. (The I/O manager's bits are the values
#: of `selectors.EVENT_READ` and `selectors.EVENT_WRITE`; `_io.py` checks.)
_EVENTS = _READ_BIT | _WRITE_BIT


class FdWatchSet:
    """File descriptors watched together, level-triggered, by one task.

    Create it inside a run; it belongs to that run. `watch` adds, changes or
    withdraws the interest in an fd; `wait` blocks until at least one
    watched fd is ready and returns which, with their events
    (``selectors.EVENT_READ`` and/or ``selectors.EVENT_WRITE``; an error or
    hang-up reports both). Level-triggered: an fd that is still ready is
    reported again by the next `wait`, until it is read (or written), or
    its watch is withdrawn. An fd closed while watched stops being watched
    (as in an epoll set); call `notify_closing` before closing it if a task
    may be waiting on it the one-shot way.

    An fd can be in one watch set at a time, and can also have tasks
    waiting on it with `wait_readable` / `wait_writable`.

    `on_ready`, if given, lets a report skip the task switch: when the
    run's I/O step finds watched fds ready while a task waits in `wait`
    and no task of the run is runnable, the run does not wake that task.
    It calls ``on_ready(report)`` itself (``report`` is the ``{fd:
    events}`` that `wait` would have returned), from the run loop, just
    before the next batch of task steps, and the task keeps waiting. So an
    event loop's fd callbacks can run without a kernel task switch when
    the run is otherwise idle; when other tasks are runnable the task is
    woken as usual, so that it takes its turn after them. The hook runs
    outside any task, like a `TetherToken.run_sync_soon` callback: it must
    not block or await, and an exception escaping it crashes the run
    (`TetherInternalError`). With a scheduler installed
    (`tether.testing`'s exploration) the hook is never used.
    """

    __slots__ = (
        "_closed",
        "_fds",
        "_hook_pending",
        "_manager",
        "_on_ready",
        "_ready",
        "_task",
        "_trap",
    )

    _manager: IOManager
    _fds: set[int]
    _ready: dict[int, int]
    _task: Task | None
    _trap: WaitTaskRescheduled
    _closed: bool
    _on_ready: Callable[[dict[int, int]], object] | None
    #: In the run's ``ready_watches``, for its hook to be called.
    _hook_pending: bool

    def __init__(self, *, on_ready: Callable[[dict[int, int]], object] | None = None) -> None:
        if on_ready is not None and not callable(on_ready):
            raise TypeError(f"on_ready must be a callable or None, got {on_ready!r}")
        self._manager = current_runner().io_manager
        self._fds = set()
        self._ready = {}
        self._task = None
        self._trap = WaitTaskRescheduled(self._abort)
        self._closed = False
        self._on_ready = on_ready
        self._hook_pending = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._fds)} fds"
        return f"<tether.lowlevel.FdWatchSet, {state}>"

    def watch(self, fd: Any, events: int) -> int:
        """Watch `fd` (an int, or an object with ``fileno()``) for `events`
        (a mask of ``selectors.EVENT_READ`` and ``EVENT_WRITE``), replacing
        what it was watched for; 0 stops watching it. Returns the fd's
        number. Not a checkpoint.

        Raises the OS's `OSError` if the fd cannot be watched (EBADF: it is
        closed), `ValueError` for a negative fd or one of the run's own,
        `BusyResourceError` if another watch set watches it, and
        `ClosedResourceError` once this set is closed."""
        if self._closed:
            raise ClosedResourceError("this FdWatchSet was closed")
        if type(events) is not int or events & ~_EVENTS:
            raise ValueError(
                f"events must be a mask of selectors.EVENT_READ and EVENT_WRITE, got {events!r}"
            )
        number = self._manager.set_watch(self, fd, events)
        if events:
            self._fds.add(number)
        else:
            self._fds.discard(number)
            self._ready.pop(number, None)
        return number

    @types.coroutine
    def wait(self) -> Generator[Any, Any, dict[int, int]]:
        """Block until a watched fd is ready; return ``{fd: events}`` for
        every fd reported since the last call. Use as ``await
        watch_set.wait()``. A checkpoint: cancellable (nothing is lost: what
        was reported stays for the next call), and with a pending report it
        still checks for cancellation and yields.

        Raises `BusyResourceError` if another task is waiting on this set,
        `ClosedResourceError` if it is (or gets) closed, `RuntimeError`
        outside a task (in code a face runs for no task, such as a
        tether.aio loop callback).

        (A generator-based coroutine, as the kernel's checkpoints are: an
        event loop's watcher calls it once per wakeup, and this costs one
        frame instead of two.)"""
        runner = GLOBAL_RUN_CONTEXT.runner
        task = runner.current_task
        if task is None:
            # (Code of no task, which a face runs in the middle of a step:
            # it could not block, and no task would be woken.)
            raise outside_task_error(runner)
        if self._closed:
            yield from checkpoint()
            raise ClosedResourceError("this FdWatchSet was closed")
        if self._task is not None:
            yield from checkpoint()
            raise BusyResourceError("another task is already waiting on this FdWatchSet")
        if self._ready:
            yield from checkpoint()
        else:
            self._task = task
            del task, runner
            next_send = yield self._trap
            if type(next_send) is not outcome.Value:
                try:
                    next_send.unwrap()
                finally:
                    # (No cycle through the error's traceback.)
                    del next_send
        ready = self._ready
        self._ready = {}
        return ready

    def close(self) -> None:
        """Stop watching every fd (each leaves the run's poller at once, so
        it can then be closed). A task in `wait` gets
        `ClosedResourceError`. Idempotent; not a checkpoint."""
        if self._closed:
            return
        self._closed = True
        manager = self._manager
        for fd in self._fds:
            try:
                manager.set_watch(self, fd, 0)
            except (OSError, ValueError):
                pass
        self._fds.clear()
        self._ready.clear()
        # (It refers back to the set through its abort function: a cycle.
        # Only `wait`, which refuses a closed set first, takes it.)
        del self._trap
        task = self._task
        if task is not None:
            self._task = None
            error = ClosedResourceError("the FdWatchSet was closed while a task waited on it")
            GLOBAL_RUN_CONTEXT.runner.reschedule(task, outcome.Error(error))

    # -- the run's side --------------------------------------------------------
    # (`IOManager.process_events` adds the reported fds to ``_ready`` and
    # wakes ``_task``, or queues the set for its hook.)

    def _abort(self, _: Callable[[], Any]) -> Abort:
        self._task = None
        return Abort.SUCCEEDED


def call_ready_hooks(runner: Runner) -> None:
    """Call the ``on_ready`` hook of each watch set in ``runner.ready_watches``
    with its report, in place of waking the task that waits on it (which
    keeps waiting); the run loop does this before each batch. A set whose
    task stopped waiting since the I/O step keeps its report for the next
    `FdWatchSet.wait`."""
    watches = runner.ready_watches
    for watch in watches:
        watch._hook_pending = False
        if watch._task is None or not watch._ready:
            continue
        report = watch._ready
        watch._ready = {}
        try:
            watch._on_ready(report)  # type: ignore[misc]
        except BaseException as exc:
            runner.crash(exc, f"the on_ready hook of {watch!r} raised")
            del exc
    watches.clear()
