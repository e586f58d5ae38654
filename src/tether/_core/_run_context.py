"""Per-thread pointer to the running kernel (and through it, the task it is
stepping).

A thread-local, so that a second thread can run its own `tether.run` at the
same time, and so that worker threads can ask whether they are inside a run.
`current_runner` and `current_task` are the two lookups through it that
raise `RuntimeError` outside a run (outside a task).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._run import Runner
    from ._task import Task


class RunContext(threading.local):
    """The thread's pointer to its run."""

    #: The `Runner` of the run in this thread; unset (an `AttributeError`
    #: to read) when no run is active here. Set by `run` for its duration.
    runner: Runner


GLOBAL_RUN_CONTEXT = RunContext()


def current_task() -> Task:
    """The `Task` running this code. `RuntimeError` outside a task."""
    # The task being stepped lives on the runner rather than in the
    # thread-local itself: writing a plain attribute on every step is several
    # times cheaper than writing a thread-local one.
    try:
        task = GLOBAL_RUN_CONTEXT.runner.current_task
    except AttributeError:
        task = None
    if task is None:
        raise outside_task_error(
            getattr(GLOBAL_RUN_CONTEXT, "runner", None), "async code running under tether.run"
        )
    return task


def outside_task_error(runner: object, default: str | None = None) -> RuntimeError:
    """The error for code that needs the current task and runs in none,
    with the reason a face gave (``Runner.no_task_reason``) when it runs
    code outside any task in the middle of a step, else with `default`."""
    reason = getattr(runner, "no_task_reason", None) or default
    message = "must be called from inside a tether task"
    return RuntimeError(message if reason is None else f"{message} ({reason})")


def current_runner() -> Runner:
    """The `Runner` of the run this thread is in. `RuntimeError` outside a
    run."""
    try:
        return GLOBAL_RUN_CONTEXT.runner
    except AttributeError:
        raise RuntimeError("must be called from inside tether.run()") from None
