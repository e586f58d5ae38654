"""What the step loop does with a yield it does not dispatch itself.

The step loop (`Runner._run_loop`) tests what a task yielded against the
common traps only (`CHECKPOINT`, `CANCEL_SHIELDED_CHECKPOINT`, a
`ParkingLot`, `WaitTaskRescheduled`, a face's `TASK_EXIT`), by identity or
exact type, and blocks a task that yielded a `ForeignWaitAbort` of a class in
the run's ``foreign_wait_kinds`` (as `block_at_foreign_wait` does).
Everything else lands in `foreign_yield`, which is off the hot path and may
take its time:

- `PermanentlyDetach`: the task ends, and its coroutine belongs to someone
  else from now on;
- a subclass of `ParkingLot`: queued like the exact class;
- `TASK_EXIT` from a kernel task (only a face's stepper may return it): a
  `TypeError` in the task;
- a `ForeignWaitAbort` of a class the step loop has not seen yet in this
  run: its class joins the run's ``foreign_wait_kinds`` (so the step loop
  blocks the next one itself), and the task is blocked on it with
  `block_at_foreign_wait`, as on what a handler returns;
- anything else: the task's ``foreign_yield_handler`` decides (the asyncio
  face parks the task on an asyncio future); with no handler, the task gets
  a `TypeError` naming the object, thrown in where it yielded.

Invariant: whatever happens, the task either exits, is blocked (its
``_abort_func`` set), or is back in the run queue with `THROW_ON_RESUME` in
``_next_send``; the run never hangs on an object it does not understand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import outcome

from ._ki import deliver_pending_ki
from ._parking_lot import ParkingLot, queue_in_lot
from ._traps import TASK_EXIT, THROW_ON_RESUME, AbortFn, ForeignWaitAbort, PermanentlyDetach

if TYPE_CHECKING:
    from ._run import Runner
    from ._task import Task


def _throw_on_resume(runner: Runner, task: Task, error: BaseException) -> None:
    """Queue `task` to have `error` thrown in where it yielded."""
    task._pending_throw = error
    task._next_send = THROW_ON_RESUME
    runner.runq.append(task)


def block_at_foreign_wait(runner: Runner, task: Task, abort_func: AbortFn) -> None:
    """Block `task` at the foreign wait it has just started (its handler
    returned `abort_func`, or it yielded a `ForeignWaitAbort`)."""
    task._abort_func = abort_func
    task._foreign_wait = True
    if runner.ki_pending and task is runner.main_task:
        deliver_pending_ki(runner)
    # Checked here, not only inside the call: most foreign waits start
    # uncancelled. (A KeyboardInterrupt that
    # aborted the wait has cleared `_abort_func`: the call below then
    # returns at once.)
    status = task._cancel_status
    if status is not None and status.effectively_cancelled:
        task._attempt_delivery_of_any_pending_cancel()


def foreign_yield(runner: Runner, task: Task, msg: object) -> None:
    """`task`, stepped by `runner`, yielded `msg`, which is none of the traps
    the step loop tests for (see the module docstring)."""
    if type(msg) is PermanentlyDetach:
        # The coroutine is someone else's now; the task ends here.
        final: Any = msg.final_outcome
        runner.task_exited(task, final.error if type(final) is outcome.Error else final)
        return
    if isinstance(msg, ForeignWaitAbort):
        # (A face's stepper started the wait: see the module docstring.)
        try:
            runner.foreign_wait_kinds.add(type(msg))
        except TypeError:
            pass  # (a class that cannot be hashed: it comes here every time)
        block_at_foreign_wait(runner, task, msg)
        return
    if isinstance(msg, ParkingLot):
        # A subclass of ParkingLot: the step loop only checks the exact type.
        queue_in_lot(runner, task, msg)
        return
    if msg is TASK_EXIT:
        # (Only a face's stepper may end its task this way.)
        _throw_on_resume(
            runner,
            task,
            TypeError(
                f"{task!r} yielded tether.lowlevel.TASK_EXIT, which only a face's "
                "stepper returns (see tether.lowlevel.spawn_task)"
            ),
        )
        return
    handler = task.foreign_yield_handler
    if handler is not None:
        try:
            abort_func = handler(task, msg)
        except BaseException as exc:
            # The handler refused the object: the task gets the error.
            _throw_on_resume(runner, task, exc)
            return
        block_at_foreign_wait(runner, task, abort_func)
        return
    # The task resumes in the next batch with the TypeError thrown in at the
    # point where it yielded.
    _throw_on_resume(
        runner,
        task,
        TypeError(
            f"{task!r} yielded {msg!r} to the tether kernel, which runs only tether "
            "traps. This usually means the task awaited something written for "
            "another async framework (an asyncio future, a bare 'yield' in a "
            "generator-based coroutine); use tether's equivalent or tether.aio."
        ),
    )
