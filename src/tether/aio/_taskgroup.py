"""`TaskGroup`: asyncio's structured group of tasks.

What it must do (asyncio's documented behaviour, with the rules of the
running Python version):

- Entered once, inside a task (the *host*). ``create_task`` works from
  entry until the group has finished, and not while the group is
  cancelling its members after a failure. The words of the RuntimeErrors
  ("has already been entered", "has not been entered", "is finished",
  "parent task") are the ones CPython's tests match. On 3.13 a refused
  coroutine is closed (so it does not warn that it was never awaited).
- The block does not end before every member task has.
- The first member to fail (anything but CancelledError) makes the group
  cancel the other members and the host once (the host's cancel is taken
  back with ``uncancel`` when the block ends, so it does not leak). An
  error leaving the body does the same for the members.
- At the end: a SystemExit/KeyboardInterrupt (from a member or the body)
  is raised alone; else the failures (members' and the body's) are raised
  together as an ``ExceptionGroup``; else a cancellation of the host from
  outside the group propagates. 3.11 decides whether the host's
  cancellation was only the group's before waiting for the members, 3.13
  after; 3.13 also re-requests an outside cancellation of the host when it
  raises the group, to keep the host's cancel count stable.
- A member that fails after its host finished cannot reach anyone: its
  error goes to the loop's exception handler.

Tether addition: when a trio-style cancel scope around the group is
cancelled, the kernel's `tether.Cancelled` arrives in the body (or while
the group waits); the group then cancels its members the asyncio way,
waits for them shielded from the scope, and lets `tether.Cancelled`
continue to its scope.

Design: members are a set; each one's completion runs `_member_finished`
(as the task's first done callback when tether makes the task itself, see
`Task._done_hook`). The exit waits on `_all_done`, a future made for each
wait and resolved when the set empties.
"""

from __future__ import annotations

import contextvars
import sys
from asyncio import CancelledError
from collections.abc import Coroutine, Generator
from types import TracebackType
from typing import Any, TypeVar

import tether

from ._callbacks import LoopCallback
from ._loop_core import LoopCore
from ._stdlib import current_task, get_running_loop
from ._task import new_task

T = TypeVar("T")

#: The 3.13 rules: the host's uncancel after the wait, any CancelledError
#: subclass counts as a cancellation, refused coroutines are closed, the
#: host's outside cancellation is re-requested when the group raises.
RULES_313 = sys.version_info >= (3, 13)

# Done callbacks added by the group use no context variables.
_EMPTY_CONTEXT = contextvars.Context()


def _is_fatal(error: BaseException) -> bool:
    """Errors that are raised alone, never inside an ExceptionGroup."""
    return isinstance(error, SystemExit | KeyboardInterrupt)


class TaskGroup:
    """``async with TaskGroup() as tg: tg.create_task(coro)``: run tasks
    that all finish before the block exits.

    If a task raises (other than `CancelledError`), the remaining tasks and
    the body are cancelled, and once all have finished the errors are raised
    in an `ExceptionGroup` (a `KeyboardInterrupt` or `SystemExit` is raised
    alone). If the task running the block is cancelled, the group's tasks
    are cancelled too and `CancelledError` propagates after they finish.
    """

    def __init__(self) -> None:
        self._loop: Any = None
        self._host: Any = None
        self._entered = False
        self._exiting = False
        self._cancelling_members = False
        self._host_cancelled_by_group = False
        self._members: set[Any] = set()
        self._failures: list[BaseException] = []
        self._fatal: BaseException | None = None
        self._all_done: Any = None
        # Whether the loop's class keeps LoopCore's create_task (set on
        # entry; a class does not change): then, with no task factory set,
        # create_task makes a plain Task itself (see `creates_plain_tasks`).
        self._plain_loop = False
        self._on_member_done = LoopCallback(self._member_finished)

    def __repr__(self) -> str:
        parts = ["<TaskGroup"]
        if self._members:
            parts.append(f"tasks={len(self._members)}")
        if self._failures:
            parts.append(f"errors={len(self._failures)}")
        if self._cancelling_members:
            parts.append("cancelling")
        elif self._entered:
            parts.append("entered")
        return " ".join(parts) + ">"

    async def __aenter__(self) -> TaskGroup:
        if self._entered:
            raise RuntimeError(
                f"TaskGroup {self!r} has already been entered; use a new TaskGroup per block"
            )
        loop = get_running_loop()
        host = current_task(loop)
        if host is None:
            raise RuntimeError(
                f"TaskGroup {self!r} cannot determine the parent task: enter it inside a task"
            )
        self._loop = loop
        self._host = host
        self._plain_loop = getattr(type(loop), "create_task", None) is LoopCore.create_task
        self._entered = True
        return self

    def create_task(
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
        *,
        name: object = None,
        context: contextvars.Context | None = None,
    ) -> Any:
        """Create a task in the group (like `tether.aio.create_task`) and
        return it. Raises `RuntimeError` if the group was not entered, has
        finished, or is shutting down after an error."""
        # (Tested inline first: this runs once per task.)
        if not self._entered or self._exiting or self._cancelling_members:
            refusal = self._refusal()
            if refusal is not None:
                if RULES_313:
                    coro.close()
                raise RuntimeError(refusal)
        loop = self._loop
        if self._plain_loop and loop._task_factory is None:
            task = new_task(coro, loop, name, context)
            self._members.add(task)
            task._done_hook = self._on_member_done
            return task
        options = {} if context is None else {"context": context}
        task = loop.create_task(coro, **options)
        if name is not None:
            task.set_name(name)
        # An eager task factory may have finished it already.
        if task.done():
            self._member_finished(task)
        else:
            self._members.add(task)
            task.add_done_callback(self._on_member_done, context=_EMPTY_CONTEXT)
        return task

    def _refusal(self) -> str | None:
        """Why `create_task` must refuse now, or None."""
        if not self._entered:
            return f"TaskGroup {self!r} has not been entered: create tasks inside its block"
        if self._exiting and not self._members:
            return f"TaskGroup {self!r} is finished: its block has ended"
        if self._cancelling_members:
            return f"TaskGroup {self!r} is shutting down after an error; no new tasks"
        return None

    def _cancel_members(self) -> None:
        if self._cancelling_members:
            return
        self._cancelling_members = True
        for member in self._members:
            if not member.done():
                member.cancel()

    def _member_finished(self, task: Any) -> None:
        self._members.discard(task)
        if not self._members and self._all_done is not None and not self._all_done.done():
            self._all_done.set_result(None)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        self._failures.append(error)
        if self._fatal is None and _is_fatal(error):
            self._fatal = error
        if self._host.done():
            self._loop.call_exception_handler(
                {
                    "message": f"{task!r} of a TaskGroup failed after the group's parent "
                    f"task {self._host!r} had finished: nothing is left to raise it in",
                    "exception": error,
                    "task": task,
                }
            )
            return
        if not self._cancelling_members and not self._host_cancelled_by_group:
            self._cancel_members()
            # Interrupt the body too; the exit withdraws this request.
            self._host_cancelled_by_group = True
            self._host.cancel()

    def _host_cancel_was_ours_only(self) -> bool:
        return self._host_cancelled_by_group and self._host.uncancel() == 0

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._exiting = True
        if exc is not None and self._fatal is None and _is_fatal(exc):
            self._fatal = exc
        scope_cancel = exc if isinstance(exc, tether.Cancelled) else None
        # The host's cancellation, to re-raise if nothing else is raised.
        host_cancel: BaseException | None
        if RULES_313:
            host_cancel = exc if isinstance(exc, CancelledError) else None
        else:
            host_cancel = exc if et is CancelledError else None
            if self._host_cancel_was_ours_only():
                host_cancel = None
        if et is not None:
            self._cancel_members()

        while self._members:
            self._all_done = self._loop.create_future()
            try:
                if scope_cancel is None:
                    await self._all_done
                else:
                    with tether.CancelScope(shield=True):
                        await self._all_done
            except CancelledError as cancel:
                # The host was cancelled while the group waited.
                if not self._cancelling_members:
                    host_cancel = cancel
                    self._cancel_members()
            except tether.Cancelled as cancel:
                scope_cancel = cancel
                self._cancel_members()
        self._all_done = None
        # Every member is done and no task can join any more: drop the done
        # callback, a bound method of this group (a cycle otherwise).
        del self._on_member_done

        if self._fatal is not None:
            raise self._fatal
        if scope_cancel is not None:
            raise scope_cancel
        if RULES_313 and self._host_cancel_was_ours_only():
            host_cancel = None
        failures, self._failures = self._failures, []
        if host_cancel is not None and not failures:
            raise host_cancel
        if exc is not None and not isinstance(exc, CancelledError):
            failures.append(exc)
        if not failures:
            return None
        if RULES_313 and self._host.cancelling():
            # Cancelled from outside as well: withdraw and renew that
            # request so that the count the host sees stays the same.
            self._host.uncancel()
            self._host.cancel()
        raise BaseExceptionGroup("unhandled errors in a TaskGroup", failures) from None
