"""Telling sniffio that code runs under tether, without depending on sniffio.

Libraries that support several async libraries ask
``sniffio.current_async_library()``, which answers from, in order: its
thread-local ``sniffio.thread_local.name``, its context variable
``sniffio.current_async_library_cvar``, then asyncio's current task.

tether sets the context variable to ``"tether"`` in the context of each
native task it starts (`mark_new_task_context`, called inside that context),
so the answer follows the task: a `tether.aio` task, which runs in a context
of its own, still reports ``"asyncio"``. While the task's function is called
to make its coroutine (in the spawner's thread, possibly under another
library's thread-local name), the thread-local says ``"tether"`` too, as in
trio.

sniffio is looked up in `sys.modules` and never imported: a program that
does not use it pays one dictionary lookup per task spawned.

A worker thread that runs code in a copy of a task's context is not inside
the run: `forget_async_library` clears the variable in such a copy (trio's
worker threads report no library). Code that the run's thread runs for a
worker thread outside any task (``from_thread.run_sync``) is inside the run:
`mark_tether_context` sets the variable in the context it runs in.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_modules = sys.modules

#: What sniffio reports inside tether tasks.
LIBRARY_NAME = "tether"


def sniffio_loaded() -> bool:
    """Whether sniffio has been imported (cheap enough for every spawn)."""
    return "sniffio" in _modules


def call_as_tether_task(fn: Callable[..., T], *args: Any) -> T:
    """Mark the current context (the new task's) as tether's and call
    ``fn(*args)`` with the thread-local saying tether as well. Only called
    when `sniffio_loaded`."""
    sniffio = _modules["sniffio"]
    sniffio.current_async_library_cvar.set(LIBRARY_NAME)
    thread_local = sniffio.thread_local
    previous = thread_local.name
    thread_local.name = LIBRARY_NAME
    try:
        return fn(*args)
    finally:
        thread_local.name = previous


def mark_tether_context(context: contextvars.Context) -> None:
    """Make sniffio report tether in `context` (a context in which code will
    run in the run's thread outside any native task, such as a function a
    worker thread asks the run to call). Does nothing if sniffio is not
    imported."""
    sniffio = _modules.get("sniffio")
    if sniffio is not None:
        context.run(sniffio.current_async_library_cvar.set, LIBRARY_NAME)


def forget_async_library(context: contextvars.Context) -> None:
    """Make sniffio report no library in `context` (a copy of a task's
    context that will run in a worker thread). Does nothing if sniffio is
    not imported."""
    sniffio = _modules.get("sniffio")
    if sniffio is not None:
        context.run(sniffio.current_async_library_cvar.set, None)
