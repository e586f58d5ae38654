"""Misnested cancel scopes and nurseries: report the mistake, keep running.

Cancel scopes (and the nurseries that contain one) form a stack per task:
each must be exited in the reverse order it was entered, by the task that
entered it. Code can break that (a ``with`` block entered in one task and
exited in another, a generator or ``AsyncExitStack`` that leaves a block
open across a ``yield``). The kernel never crashes on it; it raises an error
that says what went wrong and leaves the rest in a state that unwinds:

- Exiting a scope while an inner one is still open (`CancelScope._close`):
  ``RuntimeError("Cancel scope stack corrupted: ...")``. The inner part of
  the scope tree is *abandoned*: detached, left cancelled (its `Cancelled`
  says ``cancelled due to unknown with reason 'misnesting'``), so the code
  still inside unwinds instead of running on.
- A task that exits while a scope around it was closed by someone else, or
  while a nursery it opened is still open: the task's result becomes
  ``RuntimeError("... stack corrupted: ...")`` (with its own error, if it had
  one, as the context). Each nursery left open is cancelled and closed to
  new tasks; its remaining children unwind on their own. Their errors reach
  the nursery's block if some code still exits it (an ``AsyncExitStack``
  closed by another task); errors that never reach anyone are logged on the
  ``"tether"`` logger rather than dropped silently: at once if the block
  already exited, at the end of the run otherwise (`report_lost_errors`).
  The `Cancelled` that the abandonment itself caused are not logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._cancel_reason import CancelReason
from ._exceptions import Cancelled

if TYPE_CHECKING:
    from ._nursery import Nursery
    from ._task import Task, TaskResult

#: The second part of every misnesting error: the rule, and where to look.
MISNESTING_ADVICE = """
The rule: the task that enters a cancel scope or a nursery is the one that
leaves it, innermost first. Usual ways to break it: a generator or async
generator that yields inside 'with CancelScope()' or 'async with
open_nursery()' (write such a helper with @contextmanager or
@asynccontextmanager), an ExitStack or AsyncExitStack that closes blocks out
of order or from another task, or __enter__/__exit__ (__aenter__/__aexit__)
called by hand.
"""

LOGGER = logging.getLogger("tether")


def log_lost_error(task: Task, error: BaseException) -> None:
    """Report an error from a nursery abandoned by misnesting that nobody
    can catch any more (`task`: the one that raised it, or the nursery's)."""
    LOGGER.error(
        "an error from %r could not be raised anywhere: its nursery was abandoned "
        "by misnested scopes",
        task,
        exc_info=error,
    )


def report_lost_errors(nurseries: list[Nursery]) -> None:
    """At the end of a run: log the errors that children of these abandoned
    nurseries raised, if no code exited the nursery's block to raise them."""
    for nursery in nurseries:
        errors = nursery._pending_excs
        if not errors:
            continue
        nursery._pending_excs = None
        for error in errors:
            if not isinstance(error, Cancelled):
                log_lost_error(nursery.parent_task, error)


def misnested_task_exit(task: Task, result: TaskResult) -> BaseException:
    """The result of `task`, which exits with nurseries it opened still
    open, or inside a scope that another task closed: abandon the
    nurseries and return the error that reports it."""
    nurseries = task._child_nurseries
    task._runner.abandoned_nurseries.extend(nurseries)
    for nursery in nurseries:
        nursery.cancel_scope._cancel(
            CancelReason(
                "nursery",
                source_task=repr(task),
                reason="abandoned: the task that opened this nursery finished "
                "without leaving its block",
            )
        )
        # No new tasks; the block's exit (if it ever runs) waits for none.
        nursery._closed = True
    # (Each message keeps the words trio's tests match on: "Nursery stack
    # corrupted", "closed before the task exited".)
    if nurseries:
        what = (
            f"Nursery stack corrupted: {task!r} finished with {nurseries[-1]!r}, "
            "which it opened, still open. That nursery is now cancelled and takes "
            "no new tasks; the tasks left in it unwind on their own"
        )
    else:
        what = (
            f"Cancel scope stack corrupted: {task!r} was still inside a cancel "
            "scope that was closed before the task exited (by another task, or "
            "by an exit out of order)"
        )
    error = RuntimeError(f"{what}\n{MISNESTING_ADVICE}")
    if isinstance(result, BaseException):
        error.__context__ = result
    return error
