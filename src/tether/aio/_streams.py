"""Streams: the standard library's own, over tether's transports, with a
`StreamReader` whose reading task parks instead of waiting for a future.

`asyncio.StreamReaderProtocol` and `StreamWriter` are written against the
event-loop API and the protocol/transport layer; on a tether loop they run
over the socket transports of `_transports.py`, whose reads and writes are
driven by the kernel's I/O readiness waits. Re-exporting them keeps every
detail of asyncio's stream behaviour (buffer limits, `IncompleteReadError`,
`LimitOverrunError`, ``drain`` flow control).

`StreamReader` is asyncio's with its one wait replaced: a task that waits
for data parks on the reader (``await PARK``, see `_park.py`) rather than
waiting for a new future, and the protocol's `feed_data`, `feed_eof` and
`set_exception` wake it directly. That is one future fewer per read that
waits, and one trip fewer through ``call_soon``. The reading methods are
asyncio's own. `open_connection` and `start_server` (and their Unix
variants) make these readers; they check for a running loop first, so that
trio-style code under `tether.run` learns to use `run_hosted`.
"""

from __future__ import annotations

import asyncio
from asyncio import StreamReaderProtocol, StreamWriter
from collections.abc import Awaitable, Callable
from typing import Any

from ._event import parking_task
from ._park import PARK
from ._stdlib import get_running_loop
from ._task import Task, wake_parked

#: asyncio's default buffer limit for a stream (64 KiB).
DEFAULT_LIMIT = 2**16

ConnectedCallback = Callable[["StreamReader", StreamWriter], Awaitable[None] | None]


class StreamReader(asyncio.StreamReader):
    """`asyncio.StreamReader`, whose reading task parks on the reader while
    it waits for data (see the module docstring). Its reading methods are
    asyncio's: cancellable while they wait (then no data is lost: it stays
    in the buffer)."""

    # (asyncio's fields, which typeshed does not declare.)
    _waiter: Any
    _exception: BaseException | None
    _eof: bool
    _paused: bool
    _transport: Any
    _loop: Any

    def set_exception(self, exc: BaseException) -> None:
        """Make the stream fail with `exc` (the protocol calls this when the
        connection is lost with an error): a read that waits raises it now,
        and so does every later read. Not a wait."""
        self._exception = exc
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if type(waiter) is Task:
                # The error a future's waiter would get: a future makes it
                # (an instance for a class; a refused StopIteration raises
                # here, or on 3.13 becomes a RuntimeError, as in asyncio).
                probe = self._loop.create_future()
                probe.set_exception(exc)
                wake_parked(waiter, probe.exception())
            elif not waiter.cancelled():
                waiter.set_exception(exc)

    def _wakeup_waiter(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if type(waiter) is Task:
                wake_parked(waiter)
            elif not waiter.cancelled():
                waiter.set_result(None)

    async def _wait_for_data(self, func_name: str) -> None:
        # (asyncio's checks and messages.)
        if self._waiter is not None:
            raise RuntimeError(
                f"{func_name}() called while another coroutine is already waiting for incoming data"
            )
        assert not self._eof, "_wait_for_data after EOF"
        if self._paused:
            # Waiting while paused would never end: read again.
            self._paused = False
            self._transport.resume_reading()
        task = parking_task(self._loop)
        if task is not None:
            # A plain Task of this loop, stepped now: it parks (anything
            # else waits for a future, as in asyncio).
            self._waiter = task
            try:
                await PARK
            finally:
                self._waiter = None
            return
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


def _reader_protocol(
    loop: Any, limit: int, client_connected_cb: ConnectedCallback | None = None
) -> tuple[StreamReader, StreamReaderProtocol]:
    """A new `StreamReader` of `loop` and the protocol that feeds it."""
    reader = StreamReader(limit=limit, loop=loop)
    return reader, StreamReaderProtocol(reader, client_connected_cb, loop=loop)  # type: ignore[arg-type]


async def open_connection(
    host: Any = None, port: Any = None, *, limit: int = DEFAULT_LIMIT, **kwds: Any
) -> tuple[StreamReader, StreamWriter]:
    """`asyncio.open_connection`: connect (``loop.create_connection`` with
    `kwds`), and return a ``(reader, writer)`` pair of streams. Cancellable
    (the connection is closed). Outside a running loop, the `RuntimeError`
    says what to use instead."""
    loop = get_running_loop()
    reader, protocol = _reader_protocol(loop, limit)
    transport, _ = await loop.create_connection(lambda: protocol, host, port, **kwds)
    return reader, StreamWriter(transport, protocol, reader, loop)


async def open_unix_connection(
    path: Any = None, *, limit: int = DEFAULT_LIMIT, **kwds: Any
) -> tuple[StreamReader, StreamWriter]:
    """`asyncio.open_unix_connection`: `open_connection` to a Unix socket
    path. Cancellable."""
    loop = get_running_loop()
    reader, protocol = _reader_protocol(loop, limit)
    transport, _ = await loop.create_unix_connection(lambda: protocol, path, **kwds)
    return reader, StreamWriter(transport, protocol, reader, loop)


async def start_server(
    client_connected_cb: ConnectedCallback,
    host: Any = None,
    port: Any = None,
    *,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> asyncio.Server:
    """`asyncio.start_server`: listen (``loop.create_server`` with `kwds`),
    and call ``client_connected_cb(reader, writer)`` for each connection (as
    a task if it is a coroutine function); returns the `asyncio.Server`.
    Cancellable while it resolves the address."""
    loop = get_running_loop()

    def new_protocol() -> StreamReaderProtocol:
        return _reader_protocol(loop, limit, client_connected_cb)[1]

    server: asyncio.Server = await loop.create_server(new_protocol, host, port, **kwds)
    return server


async def start_unix_server(
    client_connected_cb: ConnectedCallback,
    path: Any = None,
    *,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> asyncio.Server:
    """`asyncio.start_unix_server`: `start_server` on a Unix socket path."""
    loop = get_running_loop()

    def new_protocol() -> StreamReaderProtocol:
        return _reader_protocol(loop, limit, client_connected_cb)[1]

    server: asyncio.Server = await loop.create_unix_server(new_protocol, path, **kwds)
    return server


__all__ = [
    "StreamReader",
    "StreamReaderProtocol",
    "StreamWriter",
    "open_connection",
    "open_unix_connection",
    "start_server",
    "start_unix_server",
]
