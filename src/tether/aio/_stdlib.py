"""The standard library's asyncio internals that the aio face plugs into.

tether.aio does not re-implement asyncio's bookkeeping of "the running loop"
and "the current task": it writes into the standard library's own, so that
stdlib and third-party code (``asyncio.get_running_loop()``,
``asyncio.current_task()``, ``asyncio.all_tasks()``, sniffio) sees tether's
loop and tasks. Those hooks are private functions of `asyncio`; this module
is the one place that names them, so a change between Python versions is
handled here.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import asyncio.tasks
from collections.abc import Callable
from typing import Any

from .. import lowlevel

Future = asyncio.Future
#: The standard library's task class (its C implementation, where built).
StdlibTask = asyncio.Task

#: ``_enter_task(loop, task)`` / ``_leave_task(loop, task)``: make `task`
#: what ``asyncio.current_task(loop)`` returns, and undo it.
enter_task: Callable[[Any, Any], None] = asyncio.tasks._enter_task
leave_task: Callable[[Any, Any], None] = asyncio.tasks._leave_task

#: Add a task to the set ``asyncio.all_tasks()`` looks at (weakly held).
register_task: Callable[[Any], None] = asyncio.tasks._register_task

_events = asyncio.events


def get_running_loop_or_none() -> Any:
    """What ``asyncio.get_running_loop()`` returns in this thread, or None.

    Looked up on `asyncio.events` at each call, as asyncio's own loops do:
    code that replaces ``asyncio.events._get_running_loop`` (CPython's tests
    swap in the pure-Python version) sees tether's loop too."""
    return _events._get_running_loop()


def set_running_loop(loop: Any) -> None:
    """Make `loop` (or None) the running loop of this thread, through
    ``asyncio.events._set_running_loop`` as it is at the call."""
    _events._set_running_loop(loop)


try:
    #: ``current_task_of(loop)``: the task `enter_task` made current for
    #: `loop`, or None. The fast way (a dict lookup), where the dict exists.
    current_task_of: Callable[[Any], Any] = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]
except AttributeError:  # pragma: no cover - later Pythons keep it per thread

    def current_task_of(loop: Any) -> Any:
        return asyncio.current_task(loop)


def get_running_loop() -> Any:
    """The running loop; `RuntimeError` if there is none. Inside
    `tether.run` (trio-style code), the error says how to run asyncio code
    there."""
    loop = _events._get_running_loop()
    if loop is None:
        raise RuntimeError(no_running_loop_message())
    return loop


def no_running_loop_message() -> str:
    if lowlevel.in_tether_run():
        return (
            "no running event loop: this is trio-style code inside tether.run(), which runs "
            "no asyncio event loop; run the asyncio part with "
            "'await tether.aio.run_hosted(coro)', or start the program with tether.aio.run()"
        )
    return "no running event loop"


current_task = asyncio.current_task
