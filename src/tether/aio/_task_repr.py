"""How a `tether.aio.Task` prints: asyncio's format, ``<Task pending
name='Task-1' coro=<main() running at file.py:3> wait_for=<Future
pending>>``, with the state, the name, the coroutine and where it is, and
then the result or exception of a finished task or what a pending one waits
for, and in debug mode where the task was created."""

from __future__ import annotations

import os
import sys
from asyncio import base_futures, base_tasks
from typing import Any, TextIO

from ._callbacks import CountingHook, LoopCallback

#: A task's repr cuts the repr of a result longer than this to its first
#: and last `_RESULT_REPR_KEEP` characters.
_RESULT_REPR_MAX = 60
_RESULT_REPR_KEEP = 27

#: The frames (file name, function) of tether.aio's own task creation, which
#: a task's "created at" skips: where asyncio's Task records its creation,
#: these are not on the stack.
_SPAWN_FRAMES = frozenset(
    {("_task.py", "new_task"), ("_task.py", "__init__"), ("_loop_core.py", "create_task")}
)


def describe_task(task: Any) -> str:
    """The repr of `task`, a `tether.aio.Task`."""
    if task.done():
        state = "cancelled" if task.cancelled() else "finished"
    elif task._num_cancels_requested:
        state = "cancelling"
    else:
        state = "pending"
    parts = [state, f"name={task.get_name()!r}", f"coro=<{format_coroutine(task._coro)}>"]
    if task.done() and not task.cancelled():
        exc = task.exception()
        if exc is not None:
            parts.append(f"exception={exc!r}")
        else:
            result = repr(task.result())
            if len(result) > _RESULT_REPR_MAX:
                result = f"{result[:_RESULT_REPR_KEEP]}...{result[-_RESULT_REPR_KEEP:]}"
            parts.append(f"result={result}")
    elif task._fut_waiter is not None:
        # (A parked task's is `PARKED`, whose repr is "<parked>".)
        parts.append(f"wait_for={task._fut_waiter!r}")
    # (The loop's own callbacks are shown as the functions they call.)
    callbacks: list[Any] = [
        (callback.function if type(callback) is LoopCallback else callback, context)
        for callback, context in task._callbacks or ()
    ]
    # (Unset in a task whose creation failed.)
    hook = getattr(task, "_done_hook", None)
    if hook is not None:
        # The first done callback, kept apart (see `Task`): shown as the
        # function it calls, first, where asyncio lists it.
        if type(hook) is CountingHook:
            hook = hook.callback
        callbacks.insert(0, (getattr(hook, "function", hook), None))
    if callbacks:
        # ("cb=[...]", in asyncio's words.)
        parts.append(base_futures._format_callbacks(callbacks))
    source = task._source_traceback
    if source:
        # (Recorded in debug mode, by the future's initialisation inside
        # tether.aio's own task creation: named here is the line that asked
        # for the task, as asyncio's repr names it.)
        index = len(source) - 1
        while index > 0 and (os.path.basename(source[index][0]), source[index][2]) in _SPAWN_FRAMES:
            index -= 1
        parts.append(f"created at {source[index][0]}:{source[index][1]}")
    return f"<{type(task).__name__} {' '.join(parts)}>"


def format_coroutine(coro: object) -> str:
    """``name() running at file:line`` (or ``done, defined at``) for a
    coroutine or generator; what asyncio's task repr shows of it."""
    name = getattr(coro, "__qualname__", None) or getattr(coro, "__name__", None)
    if not name:
        name = f"<{type(coro).__name__} without __name__>"
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    if code is None:
        return f"{name}()"
    frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
    if frame is not None:
        return f"{name}() running at {code.co_filename}:{frame.f_lineno}"
    return f"{name}() done, defined at {code.co_filename}:{code.co_firstlineno}"


def print_task_stack(task: Any, limit: int | None, file: TextIO | None) -> None:
    """`Task.print_stack`: `task`'s ``get_stack()``, printed in the format
    of the `traceback` module, with the task's exception if it has one, by
    the standard library's own printer (whose default output would be
    stdout for its first line: here all goes to stderr by default, as
    asyncio's documentation says)."""
    # (typeshed types its file argument as a path.)
    base_tasks._task_print_stack(task, limit, sys.stderr if file is None else file)  # type: ignore[arg-type]
