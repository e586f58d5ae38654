"""`TaskGroup`: asyncio's structured group of tasks.

The block does not exit until every task of the group is done. The first
task to fail (with anything but `CancelledError`) cancels the others and the
body; the errors are raised together as an `ExceptionGroup`. Cancellation is
asyncio's (`Task.cancel`, `uncancel`), with the rules of the running Python
version's asyncio.

Tether addition: when a trio-style cancel scope around the group is
cancelled, the kernel's `tether.Cancelled` arrives in the body; the group
then cancels its tasks the asyncio way, waits for them (shielded from the
scope) and lets `tether.Cancelled` continue to its scope.
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
from ._loop_core import creates_plain_tasks
from ._stdlib import current_task, get_running_loop
from ._task import new_task

_NO_CONTEXT = contextvars.Context()

T = TypeVar("T")

_PY313 = sys.version_info >= (3, 13)


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
        self._entered = False
        self._exiting = False
        self._aborting = False
        self._loop: Any = None
        self._parent_task: Any = None
        self._parent_cancel_requested = False
        self._tasks: set[Any] = set()
        self._errors: list[BaseException] | None = []
        self._base_error: BaseException | None = None
        self._on_completed_fut: Any = None
        self._done_callback = LoopCallback(self._on_task_done)

    def __repr__(self) -> str:
        info = [""]
        if self._tasks:
            info.append(f"tasks={len(self._tasks)}")
        if self._errors:
            info.append(f"errors={len(self._errors)}")
        if self._aborting:
            info.append("cancelling")
        elif self._entered:
            info.append("entered")
        return f"<TaskGroup{' '.join(info)}>"

    async def __aenter__(self) -> TaskGroup:
        if self._entered:
            raise RuntimeError(f"TaskGroup {self!r} has already been entered")
        if self._loop is None:
            self._loop = get_running_loop()
        self._parent_task = current_task(self._loop)
        if self._parent_task is None:
            raise RuntimeError(f"TaskGroup {self!r} cannot determine the parent task")
        self._entered = True
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._exiting = True
        if exc is not None and _is_base_error(exc) and self._base_error is None:
            self._base_error = exc
        kernel_cancel: BaseException | None = exc if isinstance(exc, tether.Cancelled) else None
        if _PY313:
            propagate: BaseException | None = (
                exc if et is not None and issubclass(et, CancelledError) else None
            )
        else:
            propagate = exc if et is CancelledError else None
            if self._parent_cancel_requested and self._parent_task.uncancel() == 0:
                propagate = None
        if et is not None and not self._aborting:
            self._abort()
        while self._tasks:
            if self._on_completed_fut is None:
                self._on_completed_fut = self._loop.create_future()
            try:
                if kernel_cancel is not None:
                    with tether.CancelScope(shield=True):
                        await self._on_completed_fut
                else:
                    await self._on_completed_fut
            except CancelledError as ex:
                if not self._aborting:
                    propagate = ex
                    self._abort()
            except tether.Cancelled as ex:
                kernel_cancel = ex
                if not self._aborting:
                    self._abort()
            self._on_completed_fut = None
        assert not self._tasks
        if self._base_error is not None:
            raise self._base_error
        if kernel_cancel is not None:
            raise kernel_cancel
        errors = self._errors
        assert errors is not None
        if _PY313 and self._parent_cancel_requested and self._parent_task.uncancel() == 0:
            propagate = None
        if propagate is not None and not errors:
            raise propagate
        if et is not None and exc is not None and not issubclass(et, CancelledError):
            errors.append(exc)
        if errors:
            if _PY313 and self._parent_task.cancelling():
                self._parent_task.uncancel()
                self._parent_task.cancel()
            try:
                raise BaseExceptionGroup("unhandled errors in a TaskGroup", errors) from None
            finally:
                self._errors = None
        return None

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
        if not self._entered:
            if _PY313:
                coro.close()
            raise RuntimeError(f"TaskGroup {self!r} has not been entered")
        if self._exiting and not self._tasks:
            if _PY313:
                coro.close()
            raise RuntimeError(f"TaskGroup {self!r} is finished")
        if self._aborting:
            if _PY313:
                coro.close()
            raise RuntimeError(f"TaskGroup {self!r} is shutting down")
        loop = self._loop
        if creates_plain_tasks(loop):
            task = new_task(coro, loop, name, context)
            self._tasks.add(task)
            # Its first done callback (see `Task._done_hook`).
            task._done_hook = self._done_callback
            return task
        if context is None:
            task = loop.create_task(coro)
        else:
            task = loop.create_task(coro, context=context)
        if name is not None:
            task.set_name(name)
        if task.done():
            self._on_task_done(task)
        else:
            self._tasks.add(task)
            task.add_done_callback(self._done_callback, context=_NO_CONTEXT)
        return task

    def _abort(self) -> None:
        self._aborting = True
        for task in self._tasks:
            if not task.done():
                task.cancel()

    def _on_task_done(self, task: Any) -> None:
        self._tasks.discard(task)
        if self._on_completed_fut is not None and not self._tasks:
            if not self._on_completed_fut.done():
                self._on_completed_fut.set_result(True)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        assert self._errors is not None
        self._errors.append(exc)
        if _is_base_error(exc) and self._base_error is None:
            self._base_error = exc
        if self._parent_task.done():
            self._loop.call_exception_handler(
                {
                    "message": f"Task {task!r} has errored out but its parent "
                    f"task {self._parent_task} is already completed",
                    "exception": exc,
                    "task": task,
                }
            )
            return
        if not self._aborting and not self._parent_cancel_requested:
            # Cancel the body too; __aexit__ takes the cancellation back.
            self._abort()
            self._parent_cancel_requested = True
            self._parent_task.cancel()


def _is_base_error(exc: BaseException) -> bool:
    return isinstance(exc, SystemExit | KeyboardInterrupt)
