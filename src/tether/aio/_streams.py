"""Streams: the standard library's own, over tether's transports.

`asyncio.open_connection`, `start_server`, `StreamReader` and `StreamWriter`
are written against the event-loop API (``loop.create_connection``,
``loop.create_server``) and the protocol/transport layer; on a tether loop
they run over the socket transports of `_transports.py`, whose reads and
writes are driven by the kernel's I/O readiness waits. Re-exporting them
keeps every detail of asyncio's stream behaviour (buffer limits,
`IncompleteReadError`, `LimitOverrunError`, ``drain`` flow control). The
four entry points check for a running loop first, so that trio-style code
under `tether.run` learns to use `run_hosted`.
"""

from __future__ import annotations

import asyncio
from asyncio import StreamReader, StreamReaderProtocol, StreamWriter
from typing import Any

from ._stdlib import get_running_loop


async def open_connection(*args: Any, **kwargs: Any) -> tuple[StreamReader, StreamWriter]:
    """`asyncio.open_connection`: connect, and return a ``(reader, writer)``
    pair of streams. Cancellable (the connection is closed). Outside a
    running loop, the `RuntimeError` says what to use instead."""
    get_running_loop()
    return await asyncio.open_connection(*args, **kwargs)


async def open_unix_connection(*args: Any, **kwargs: Any) -> tuple[StreamReader, StreamWriter]:
    """`asyncio.open_unix_connection`: `open_connection` to a Unix socket
    path. Cancellable."""
    get_running_loop()
    return await asyncio.open_unix_connection(*args, **kwargs)


async def start_server(*args: Any, **kwargs: Any) -> asyncio.Server:
    """`asyncio.start_server`: listen, and call ``client_connected_cb(reader,
    writer)`` for each connection; returns the `asyncio.Server`. Cancellable
    while it resolves the address."""
    get_running_loop()
    return await asyncio.start_server(*args, **kwargs)


async def start_unix_server(*args: Any, **kwargs: Any) -> asyncio.Server:
    """`asyncio.start_unix_server`: `start_server` on a Unix socket path."""
    get_running_loop()
    return await asyncio.start_unix_server(*args, **kwargs)


__all__ = [
    "StreamReader",
    "StreamReaderProtocol",
    "StreamWriter",
    "open_connection",
    "open_unix_connection",
    "start_server",
    "start_unix_server",
]
