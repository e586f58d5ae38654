"""How work gets into a run from outside it: `TetherToken.run_sync_soon`.

What it must do:

* Any thread, and a signal handler interrupting the run's own thread, can
  hand the run a call ``sync_fn(*args)``; handing it over never blocks.
* The run makes those calls in its own thread, soon, between task steps:
  plain calls in the order they were handed over; ``idempotent`` calls also
  in order, and one equal to a call still waiting is dropped. (A call that
  has started may be handed over again, and then runs again.)
* Once the run has finished, handing over a call raises `RunFinishedError`;
  every call accepted before that still runs.
* If the run loop is asleep waiting for I/O, handing over a call wakes it.

Design: one `CallbackInbox` per run, made by the run with the I/O
manager's thread-safe wake-up. It holds two containers that the run loop
tests for truth at every batch without calling anything: ``ordered`` (a
deque, whose ``append`` and ``popleft`` are atomic, so the SIGINT handler
appends to it directly) and ``coalesced`` (a dict used as an ordered set, so
an equal waiting call is found by hashing). The loop empties both with
`take_all` and makes the calls itself; there is no helper task. The
containers are never replaced (the loop keeps references to them), only
emptied, one item at a time, because a signal handler may add to them
between any two statements.

``accepting`` goes False once, under ``guard``, when the run ends; `submit`
checks it under the same guard, so a call is either refused or is in the
inbox before the run's last `take_all`. The guard is reentrant because a
signal handler may call `submit` while the interrupted code holds it.

Handing over a call writes to the wake-up socket (a system call, which
also lets other threads take the GIL) only while ``loop_may_sleep`` is
set: the loop sets it before it last looks at the inbox ahead of an I/O
wait and clears it when the wait returns; the submitter that writes
clears it too, since one write ends the wait. A call that arrives while
the loop runs (or after that write) is found without a wake-up, at the
next batch or by that last look (which then waits with timeout 0). Every
clear by a submitter is followed by its write, so a clear that lands late
(after the loop set the flag again) still wakes that wait. With many
worker threads reporting at once, most of them thus skip the write.

The inbox also counts the reports that worker threads owe the run
(`reports_due`): a `to_thread` job hands the run a call when its thread is
done, so until it has, the run is not stuck even if nothing else can wake
a task.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from ._exceptions import RunFinishedError

if TYPE_CHECKING:
    from ._run import Runner

#: A call waiting in the inbox: the function and its positional arguments.
Call: TypeAlias = tuple[Callable[..., object], tuple[Any, ...]]


class CallbackInbox:
    """The calls handed to one run from outside it, until the loop makes
    them."""

    __slots__ = (
        "accepting",
        "coalesced",
        "guard",
        "loop_may_sleep",
        "ordered",
        "reports_due",
        "wake_loop",
    )

    #: Plain calls, oldest first.
    ordered: deque[Call]
    #: Idempotent calls, oldest first (the values are unused).
    coalesced: dict[Call, None]
    #: Wakes the run loop if it sleeps in its wait for I/O (thread-safe).
    wake_loop: Callable[[], None]
    #: True from just before the loop's last look at the inbox ahead of
    #: an I/O wait until that wait returns or a `submit` has woken it:
    #: only then does `submit` wake it. (Starts True: conservative until
    #: the loop runs.)
    loop_may_sleep: bool
    #: False once the run has ended: `submit` refuses calls.
    accepting: bool
    #: Held while `accepting` is read or cleared, and while `coalesced`
    #: changes (a dict must not be changed by two threads at once).
    guard: threading.RLock
    #: Worker-thread jobs started from this run whose report (a call in
    #: this inbox) has not been made yet. Changed in the run's thread only
    #: (`expect_thread_report`, `thread_report_received`).
    reports_due: int

    def __init__(self, wake_loop: Callable[[], None]) -> None:
        self.ordered = deque()
        self.coalesced = {}
        self.wake_loop = wake_loop
        self.accepting = True
        self.loop_may_sleep = True
        self.guard = threading.RLock()
        self.reports_due = 0

    def __len__(self) -> int:
        return len(self.coalesced) + len(self.ordered)

    def submit(self, sync_fn: Callable[..., object], *args: Any, idempotent: bool = False) -> None:
        """Queue ``sync_fn(*args)`` and wake the loop (see
        `TetherToken.run_sync_soon`)."""
        call = (sync_fn, args)
        with self.guard:
            if not self.accepting:
                raise RunFinishedError(
                    f"cannot schedule {sync_fn!r}: the tether run this token belongs "
                    "to has finished"
                )
            if idempotent:
                self.coalesced[call] = None
            else:
                self.ordered.append(call)
            if self.loop_may_sleep:
                # One write is enough to end the wait; the calls handed over
                # until the loop has woken are taken with this one.
                self.loop_may_sleep = False
                self.wake_loop()

    def stop_accepting(self) -> None:
        """The run is ending: refuse calls from now on. The caller then
        makes what `take_all` returns."""
        with self.guard:
            self.accepting = False

    def take_all(self) -> list[Call]:
        """Empty the inbox: the plain calls, then the idempotent ones, each
        group oldest first."""
        taken: list[Call] = []
        ordered = self.ordered
        while ordered:
            taken.append(ordered.popleft())
        if self.coalesced:
            coalesced = self.coalesced
            # A snapshot of the keys (one C call, which no signal handler
            # can interrupt), then one removal per key: a call added
            # meanwhile stays for the next round. Once a call is removed, an
            # equal one handed over is queued again, and so runs again.
            for call in list(coalesced):
                del coalesced[call]
                taken.append(call)
        return taken


class TetherToken:
    """A handle to a running `tether.run`, usable from any thread.

    Get it with `tether.lowlevel.current_tether_token()` inside the run and
    hand it to other threads. It is hashable, equal only to itself, and
    weak-referenceable (so a registry keyed by run can let it go).
    """

    __slots__ = ("__weakref__", "_runner")

    #: The run it is a handle to (kept after the run ends, when its inbox
    #: refuses calls).
    _runner: Runner

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def run_sync_soon(
        self, sync_fn: Callable[..., object], *args: Any, idempotent: bool = False
    ) -> None:
        """Schedule ``sync_fn(*args)`` to run soon in the run's thread.

        Safe to call from any thread and from signal handlers; never blocks.
        Callbacks run in the order they were scheduled (per calling thread).
        With ``idempotent=True``, ``sync_fn`` and ``args`` must be hashable;
        a call equal to one already waiting is dropped, and such calls run
        in their own order (none is promised relative to the other kind).

        If `sync_fn` raises, the run is crashed with `TetherInternalError`,
        because there is nobody else to report the error to.

        Raises:
          RunFinishedError: the run has finished. (A call that did not raise
            this is made before `tether.run` returns.)
        """
        self._runner.entry_queue.submit(sync_fn, *args, idempotent=idempotent)
