"""The public functions that read or act on the calling thread's run.

Each looks up the thread's `Runner` (`current_runner`, a `RuntimeError`
outside a run) and reads or changes one thing in it. They are exported by
`tether` and `tether.lowlevel`; the `Runner` itself stays private.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import outcome

from ._clock import Clock
from ._entry_queue import TetherToken
from ._instrumentation import Instrument
from ._run_context import GLOBAL_RUN_CONTEXT, current_runner, current_task
from ._task import Task
from ._traps import Abort, wait_task_rescheduled

_VALUE_NONE = outcome.Value(None)


@dataclass(frozen=True)
class IOStatistics:
    """The ``io_statistics`` of `current_statistics`: how many tasks wait in
    `wait_readable` (``tasks_waiting_read``) and `wait_writable`
    (``tasks_waiting_write``), and which readiness mechanism the run uses
    (``backend``: ``"epoll"``, or the name of the `selectors` class).

    Only tasks are counted. (trio's figures include one reader more: its
    run_sync_soon task, which waits on the run's wakeup socket. tether has
    no such task; the loop watches that socket itself.)"""

    tasks_waiting_read: int
    tasks_waiting_write: int
    backend: str


@dataclass(frozen=True)
class RunStatistics:
    """What `current_statistics` reports about the current run (trio's
    fields, in trio's order).

    Attributes:
      tasks_living: tasks started and not yet finished, the run's own root
        task included (tether runs `run_sync_soon` callbacks in the loop
        itself, not in a task as trio does, so a run has one task fewer).
      tasks_runnable: tasks queued to take a step in the next batch.
      seconds_to_next_deadline: time until the nearest cancel-scope deadline
        (``inf`` for none; negative if it passed and is not processed yet).
      io_statistics: the I/O backend's numbers (``backend`` names it).
      run_sync_soon_queue_size: callbacks queued with
        `TetherToken.run_sync_soon` and not run yet.
    """

    tasks_living: int
    tasks_runnable: int
    seconds_to_next_deadline: float
    io_statistics: IOStatistics
    run_sync_soon_queue_size: int


def current_root_task() -> Task | None:
    """The run's root task, which every other task descends from."""
    return current_runner().init_task


def current_time() -> float:
    """The current time on the run's clock, in seconds. Not a checkpoint."""
    return current_runner().clock.current_time()


def current_clock() -> Clock:
    """The clock the current run uses."""
    return current_runner().clock


def current_effective_deadline() -> float:
    """The deadline that applies to the calling code: the earliest deadline of
    the enclosing cancel scopes (stopping at a shield); ``-inf`` if it is
    already cancelled, ``inf`` if there is none. Not a checkpoint."""
    status = current_task()._cancel_status
    if status is None:
        return math.inf
    return status.effective_deadline()


#: (A tuple: a `|` union is built anew at every call.)
_OUTCOMES = (outcome.Value, outcome.Error)


def reschedule(task: Task, next_send: outcome.Outcome[Any] = _VALUE_NONE) -> None:
    """Wake `task`, which is blocked in `wait_task_rescheduled`, with
    `next_send` (an `outcome.Value` or `outcome.Error`) as the result of its
    wait. Raises `RuntimeError` if the task is not blocked."""
    if not isinstance(next_send, _OUTCOMES):
        raise TypeError(f"next_send must be an outcome.Value or outcome.Error, got {next_send!r}")
    current_runner().reschedule(task, next_send)


def spawn_system_task(
    async_fn: Callable[..., Awaitable[Any]],
    *args: object,
    name: object = None,
    context: contextvars.Context | None = None,
) -> Task:
    """Start a task in the run's system nursery, outside the main task's tree.

    System tasks are cancelled when the main task finishes, and must then
    exit promptly. An exception escaping a system task crashes the whole run
    with `TetherInternalError`: catch what you expect inside the task. By
    default it runs in a copy of the context the run started with.
    """
    runner = current_runner()
    if runner.system_nursery is None:
        raise RuntimeError("the system nursery is not open yet")
    return runner.spawn_impl(
        async_fn, args, runner.system_nursery, name, system_task=True, context=context
    )


def current_statistics() -> RunStatistics:
    """Numbers about the current run, for debugging and monitoring."""
    runner = current_runner()
    io_manager = runner.io_manager
    return RunStatistics(
        tasks_living=runner.tasks_living,
        tasks_runnable=len(runner.runq),
        seconds_to_next_deadline=runner.deadlines.next_deadline() - runner.clock.current_time(),
        run_sync_soon_queue_size=len(runner.entry_queue),
        io_statistics=IOStatistics(*io_manager.waiting_counts(), io_manager.backend),
    )


def expect_thread_report() -> None:
    """The calling code is starting a worker-thread job that will report
    back to this run with `TetherToken.run_sync_soon`: until it has, the run
    counts as not stuck (no deadlock report, no scheduler told every task is
    blocked). Call it in the run's
    thread, and `thread_report_received` exactly once when the report has
    arrived (or the thread could not be started)."""
    current_runner().entry_queue.reports_due += 1


def thread_report_received() -> None:
    """The report of a job counted by `expect_thread_report` has arrived (in
    the run's thread)."""
    queue = current_runner().entry_queue
    assert queue.reports_due > 0, "thread_report_received without expect_thread_report"
    queue.reports_due -= 1


def thread_reports_due() -> int:
    """How many worker-thread jobs started from this run have not reported
    back yet (see `expect_thread_report`). Not a checkpoint."""
    return current_runner().entry_queue.reports_due


def current_tether_token() -> TetherToken:
    """The `TetherToken` of the current run, for use from other threads."""
    return current_runner().token


def in_tether_run() -> bool:
    """Whether this thread is inside a `tether.run` (in a task or not)."""
    return getattr(GLOBAL_RUN_CONTEXT, "runner", None) is not None


def in_tether_task() -> bool:
    """Whether this code runs inside a tether task."""
    runner = getattr(GLOBAL_RUN_CONTEXT, "runner", None)
    return runner is not None and runner.current_task is not None


def add_instrument(instrument: Instrument) -> None:
    """Install `instrument` in the current run (nothing happens if it is
    already installed). The hooks it implements are read now."""
    current_runner().instruments.add_instrument(instrument)


def remove_instrument(instrument: Instrument) -> None:
    """Remove `instrument` from the current run; `KeyError` if it is not
    installed (never added, or removed after one of its hooks raised)."""
    current_runner().instruments.remove_instrument(instrument)


async def wait_all_tasks_blocked(cushion: float = 0.0) -> None:
    """Block until every other task of the run is blocked (waiting on
    something other than a checkpoint), and has been for `cushion` seconds
    of real time. Mostly for tests: "let everything settle, then check".
    Cancellable.

    Users find it as `tether.testing.wait_all_tasks_blocked`; `tether.lowlevel`
    exports it too, for tools built on the kernel from outside it (the
    testing tools themselves)."""
    runner = current_runner()
    if cushion < 0 or math.isnan(cushion):
        raise ValueError(f"cushion must be a non-negative number, got {cushion!r}")
    task = current_task()
    key = runner.add_idle_waiter(cushion, task)

    def abort(_: Callable[[], Any]) -> Abort:
        del runner.waiting_for_idle[key]
        return Abort.SUCCEEDED

    await wait_task_rescheduled(abort)
