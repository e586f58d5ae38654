"""Getting work into a run from outside it: `TetherToken.run_sync_soon`.

Callbacks go into a deque (whose append is atomic, so any thread, and a
signal handler, may add to it) and the run loop is woken through the I/O
manager's wakeup socket. The loop runs them between task steps, in order.

The queue also counts the reports that worker threads owe the run
(`reports_due`): a `to_thread` job will queue a callback when its thread is
done, so until it has, the run is not stuck even if nothing else can wake a
task.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._exceptions import RunFinishedError

if TYPE_CHECKING:
    from ._run import Runner


class EntryQueue:
    """The run's queue of callbacks from outside it."""

    __slots__ = ("done", "idempotent_queue", "lock", "queue", "reports_due", "wakeup")

    #: Callbacks in the order they came, as ``(sync_fn, args)``. Appended
    #: to without the lock by the SIGINT handler (a deque's append is
    #: atomic), so a reader takes items one at a time.
    queue: deque[tuple[Callable[..., object], tuple[Any, ...]]]
    #: Callbacks queued with ``idempotent=True``: a dict, so that an equal
    #: call already waiting is not queued twice.
    idempotent_queue: dict[tuple[Callable[..., object], tuple[Any, ...]], None]
    #: Wakes the run loop (the I/O manager's `wakeup_threadsafe`).
    wakeup: Callable[[], None]
    #: The run has finished: new callbacks are refused with
    #: `RunFinishedError`. Set once, under `lock`.
    done: bool
    #: Guards `done` against a race with the run finishing, and the dict
    #: (dicts are not safe to mutate from several threads at once).
    #: Reentrant: a signal handler may queue while this thread holds it.
    lock: threading.RLock
    #: Worker-thread jobs started from this run whose report (a callback
    #: in this queue) has not run yet. Changed in the run's thread only
    #: (`expect_thread_report`, `thread_report_received`).
    reports_due: int

    def __init__(self, wakeup: Callable[[], None]) -> None:
        self.queue = deque()
        self.idempotent_queue = {}
        self.wakeup = wakeup
        self.done = False
        self.lock = threading.RLock()
        self.reports_due = 0

    def __len__(self) -> int:
        return len(self.queue) + len(self.idempotent_queue)

    def run_sync_soon(
        self, sync_fn: Callable[..., object], *args: Any, idempotent: bool = False
    ) -> None:
        with self.lock:
            if self.done:
                raise RunFinishedError("the tether run this token belongs to has finished")
            if idempotent:
                self.idempotent_queue[(sync_fn, args)] = None
            else:
                self.queue.append((sync_fn, args))
            self.wakeup()

    def drain(self) -> list[tuple[Callable[..., object], tuple[Any, ...]]]:
        """Take every queued callback, oldest first."""
        batch = []
        queue = self.queue
        while queue:
            batch.append(queue.popleft())
        # One at a time: a signal handler may add to the dict between any
        # two statements here (the lock is reentrant for this thread), and a
        # bulk extend-then-clear would drop what it added in between.
        idempotent = self.idempotent_queue
        while idempotent:
            key = next(iter(idempotent))
            del idempotent[key]
            batch.append(key)
        return batch


class TetherToken:
    """A handle to a running `tether.run`, usable from any thread.

    Get it with `tether.lowlevel.current_tether_token()` inside the run and
    hand it to other threads. It is hashable, equal only to itself, and
    weak-referenceable (so a registry keyed by run can let it go).
    """

    __slots__ = ("__weakref__", "_runner")

    #: The run it is a handle to (kept after the run ends: its entry queue
    #: then refuses callbacks).
    _runner: Runner

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def run_sync_soon(
        self, sync_fn: Callable[..., object], *args: Any, idempotent: bool = False
    ) -> None:
        """Schedule ``sync_fn(*args)`` to run soon in the run's thread.

        Safe to call from any thread and from signal handlers; never blocks.
        Callbacks run in the order they were scheduled (per calling thread).
        With ``idempotent=True``, a call equal to one already waiting in the
        queue is dropped, and those calls have no ordering guarantee.

        If `sync_fn` raises, the run is crashed with `TetherInternalError`,
        because there is nobody else to report the error to.

        Raises:
          RunFinishedError: the run has finished.
        """
        self._runner.entry_queue.run_sync_soon(sync_fn, *args, idempotent=idempotent)
