"""`serve_listeners`: accept connections on listeners forever, one handler
task per connection.

Invariants: every accepted stream is closed when its handler returns or
raises (forcefully, so a handler that was cancelled does not hang in a
graceful close); every listener is closed when `serve_listeners` ends; an
accept that fails because the process or system ran out of resources
(file descriptors, buffers, memory) is logged and retried after a pause
instead of ending the server, since such shortages are usually brief (a
burst of connections) and clear up when handlers finish.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

from ._core import TASK_STATUS_IGNORED, Nursery, TaskStatus, open_nursery
from ._highlevel_generic import aclose_forcefully
from ._timeouts import sleep
from .abc import AsyncResource, Listener

#: accept() errors that mean "out of resources right now", not "broken".
ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

#: Seconds to wait after such an error before accepting again.
ACCEPT_BACKOFF = 0.100

#: Where those errors are logged (level ERROR, with the exception).
LOGGER = logging.getLogger("tether.serve_listeners")

StreamT = TypeVar("StreamT", bound=AsyncResource)
ListenerT = TypeVar("ListenerT", bound=Listener[Any])


async def _run_handler(handler: Callable[[StreamT], Awaitable[object]], stream: StreamT) -> None:
    try:
        await handler(stream)
    finally:
        await aclose_forcefully(stream)


async def _accept_forever(
    listener: Listener[StreamT],
    handler: Callable[[StreamT], Awaitable[object]],
    handler_nursery: Nursery,
) -> NoReturn:
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                    raise
                LOGGER.error(
                    "accept returned %s (%s); retrying in %s seconds",
                    errno.errorcode[exc.errno],
                    os.strerror(exc.errno),
                    ACCEPT_BACKOFF,
                    exc_info=True,
                )
                await sleep(ACCEPT_BACKOFF)
            else:
                handler_nursery.start_soon(_run_handler, handler, stream)


async def serve_listeners(
    handler: Callable[[Any], Awaitable[object]],
    listeners: list[ListenerT],
    *,
    handler_nursery: Nursery | None = None,
    task_status: TaskStatus[list[ListenerT]] = TASK_STATUS_IGNORED,
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
    async with open_nursery() as nursery:
        target = nursery if handler_nursery is None else handler_nursery
        for listener in listeners:
            nursery.start_soon(_accept_forever, listener, handler, target)
        # Listeners queue connections from the moment they listen; report
        # ready only once every accept loop is scheduled.
        task_status.started(listeners)
    raise AssertionError("accept loops never return")  # pragma: no cover
