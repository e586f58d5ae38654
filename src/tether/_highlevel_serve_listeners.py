"""`serve_listeners`: accept connections on listeners forever, one handler
task per connection.

What it must do (trio's documented behaviour, and tether's tests):

* Every listener gets its own accept loop; every accepted stream gets a
  new task running ``handler(stream)``, started with ``start_soon`` on the
  caller's `handler_nursery` (any object with that method) or, without
  one, on a nursery of `serve_listeners`.
* When the handler returns or raises, its stream is closed with
  `aclose_forcefully` (a handler that was cancelled must not hang in a
  graceful close). A handler's exception is not caught.
* `serve_listeners` owns the listeners: each one is closed when its loop
  ends, however it ends. It never returns; with ``nursery.start`` it
  reports the listeners once every loop is scheduled.
* ``accept`` failing with an `OSError` whose errno says the process or
  the system is short of a resource (file descriptors: ``EMFILE``,
  ``ENFILE``; kernel memory: ``ENOBUFS``, ``ENOMEM``) is logged at ERROR,
  with the exception, to the ``tether.serve_listeners`` logger, and the
  loop sleeps 100 ms before accepting again: such shortages are usually a
  burst that clears as handlers finish. Any other error from ``accept``
  ends the loop and so the server.

Design: three small layers, each a function. `_accept_one` is a single
attempt that turns a shortage into "nothing this time" (after logging
and pausing), so the loop above it has no error handling at all.
`_accept_loop` owns one listener and hands each stream to the spawner it
was given (a bound ``start_soon``). `_handle_then_close` is the body of
every handler task.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

from ._core import TASK_STATUS_IGNORED, Nursery, TaskStatus, open_nursery
from ._highlevel_generic import aclose_forcefully
from ._timeouts import sleep
from .abc import AsyncResource, Listener

#: `OSError` errnos from ``accept`` that mean a resource ran short for now
#: (the server pauses and goes on), with what ran short, for the log.
RESOURCE_SHORTAGES: dict[int, str] = {
    errno.EMFILE: "no file descriptor left in this process",
    errno.ENFILE: "no file descriptor left in the system",
    errno.ENOBUFS: "the kernel has no buffer space left",
    errno.ENOMEM: "the kernel is out of memory",
}

#: Seconds an accept loop pauses after a resource shortage.
SHORTAGE_PAUSE = 0.1

#: Where shortages are logged (level ERROR, with the exception).
LOGGER = logging.getLogger("tether.serve_listeners")

_Connection = TypeVar("_Connection", bound=AsyncResource)
_AnyListener = TypeVar("_AnyListener", bound=Listener[Any])
_Spawn = Callable[..., object]


async def _handle_then_close(
    handler: Callable[[_Connection], Awaitable[object]], connection: _Connection
) -> None:
    try:
        await handler(connection)
    finally:
        await aclose_forcefully(connection)


async def _accept_one(listener: Listener[_Connection]) -> _Connection | None:
    """The next connection, or None once a resource shortage has been
    logged and waited out."""
    try:
        return await listener.accept()
    except OSError as error:
        code = error.errno
        if code is None or code not in RESOURCE_SHORTAGES:
            raise
        LOGGER.error(
            "accept() failed with %s (%s); retrying in %s seconds",
            errno.errorcode[code],
            RESOURCE_SHORTAGES[code],
            SHORTAGE_PAUSE,
            exc_info=error,
        )
    await sleep(SHORTAGE_PAUSE)
    return None


async def _accept_loop(
    listener: Listener[_Connection],
    handler: Callable[[_Connection], Awaitable[object]],
    spawn: _Spawn,
) -> NoReturn:
    try:
        while True:
            connection = await _accept_one(listener)
            if connection is not None:
                spawn(_handle_then_close, handler, connection)
    finally:
        await listener.aclose()


async def serve_listeners(
    handler: Callable[[Any], Awaitable[object]],
    listeners: list[_AnyListener],
    *,
    handler_nursery: Nursery | None = None,
    task_status: TaskStatus[list[_AnyListener]] = TASK_STATUS_IGNORED,
) -> NoReturn:
    """Accept connections on every listener in `listeners`, and run
    ``handler(stream)`` in a new task for each.

    Runs until cancelled (it never returns). With ``await
    nursery.start(serve_listeners, handler, listeners)`` it reports
    `listeners` once it is accepting. `serve_listeners` owns the listeners
    and closes them when it ends. Each stream is closed with
    `tether.aclose_forcefully` when its handler finishes, whether the
    handler closed it or not.

    Handlers run in `handler_nursery` if given (any object with
    ``start_soon``), else in a nursery of `serve_listeners`. An exception
    from a handler is not caught: it cancels that nursery and so, by
    default, the whole server. Catch errors in the handler, or pass a
    `handler_nursery` that deals with them, to keep serving.

    Errors of ``accept``: running out of file descriptors or memory
    (``EMFILE``, ``ENFILE``, ``ENOBUFS``, ``ENOMEM``) is logged to the
    ``tether.serve_listeners`` logger at level ERROR and retried after 100
    ms; any other error ends the server with that error (in an
    `ExceptionGroup`).
    """
    async with open_nursery() as own:
        spawn: _Spawn = (own if handler_nursery is None else handler_nursery).start_soon
        for each in listeners:
            own.start_soon(_accept_loop, each, handler, spawn)
        # A listener queues connections from the moment it listens, so
        # "ready" only needs every loop to be scheduled.
        task_status.started(listeners)
    # Only reachable if a loop returned, and none does.
    raise AssertionError("serve_listeners' accept loops ended without an error")  # pragma: no cover
