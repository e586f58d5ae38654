"""Handing a task's coroutine to another coroutine runner, and back.

For code that drives a tether task's coroutine with a runner of its own for
a while (a bridge to another event loop, say). The coroutine talks to
whichever runner is stepping it through `yield_to_runner`:

- `permanently_detach_coroutine_object`: the task ends now (with the given
  outcome, which its nursery sees as usual); the coroutine carries on under
  the new runner and tether never steps it again.
- `temporarily_detach_coroutine_object` parks the task (as
  `wait_task_rescheduled` does) while another runner steps its coroutine;
  `reattach_detached_coroutine_object`, called from inside that coroutine,
  reschedules the task and yields one last value to the other runner, after
  which tether steps the coroutine again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import outcome

from ._run_context import GLOBAL_RUN_CONTEXT, current_task
from ._traps import (
    Abort,
    AbortFn,
    PermanentlyDetach,
    RaiseCancelT,
    WaitTaskRescheduled,
    yield_to_runner,
)

if TYPE_CHECKING:
    from ._task import Task

_REATTACHING = "reattaching"


async def permanently_detach_coroutine_object(final_outcome: outcome.Outcome[Any]) -> Any:
    """End the current task now, as if its coroutine had finished with
    `final_outcome` (an `outcome.Value` or `outcome.Error`), and leave the
    coroutine to another runner: this returns (or raises) whatever that
    runner first sends (or throws) into the coroutine. Release anything
    tether-specific first; the task must have no nursery open.

    Not a checkpoint and cannot be cancelled: the task is over for tether.

    Raises:
      RuntimeError: if the task has a nursery open.
    """
    if current_task()._child_nurseries:
        raise RuntimeError(
            "can't permanently detach a coroutine object with open nurseries: "
            "exit them first (the task ends when it detaches)"
        )
    return await yield_to_runner(PermanentlyDetach(final_outcome))


async def temporarily_detach_coroutine_object(abort_func: AbortFn) -> Any:
    """Park the current task and let another runner step its coroutine:
    this returns (or raises) whatever that runner first sends (or throws)
    in. The `Task` stays alive, blocked; the coroutine (``task.coro``) comes
    back under tether through `reattach_detached_coroutine_object`.

    Cancellation: if the task is cancelled while detached, tether calls
    ``abort_func(raise_cancel)``, which must arrange for the other runner to
    stop, reattach, and raise (for instance by calling ``raise_cancel``),
    and must return `Abort.FAILED`: tether cannot take the coroutine back
    itself. An abort function that returns anything else crashes the run.
    """

    def abort(raise_cancel: RaiseCancelT) -> Abort:
        result = abort_func(raise_cancel)
        if result is not Abort.FAILED:
            raise RuntimeError(
                f"the abort function {abort_func!r} of a detached coroutine returned "
                f"{result!r}; it must return Abort.FAILED and reattach the coroutine "
                "(reattach_detached_coroutine_object) to raise the cancellation"
            )
        return result

    return await yield_to_runner(WaitTaskRescheduled(abort))


async def reattach_detached_coroutine_object(task: Task, yield_value: object) -> None:
    """Give the coroutine of `task`, detached by
    `temporarily_detach_coroutine_object`, back to tether. Call it from
    inside that coroutine, while the other runner steps it: it yields
    `yield_value` to the other runner (which should then stop stepping the
    coroutine), and returns once tether steps the task again.

    Not a cancel point (a cancellation of the task is seen at its next
    checkpoint).

    Raises:
      RuntimeError: if `task` is not the task whose coroutine is running
        this call.
    """
    coro = task._code_coroutine()
    if not getattr(coro, "cr_running", False):
        raise RuntimeError(
            "given task does not match calling coroutine: pass the task that was "
            "detached (lowlevel.current_task() before detaching)"
        )
    GLOBAL_RUN_CONTEXT.runner.reschedule(task, outcome.Value(_REATTACHING))
    value = await yield_to_runner(yield_value)
    assert value == outcome.Value(_REATTACHING), value
