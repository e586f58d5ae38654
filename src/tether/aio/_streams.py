"""Streams: the standard library's own, over tether's transports.

`asyncio.open_connection`, `start_server`, `StreamReader` and `StreamWriter`
are written against the event-loop API (``loop.create_connection``,
``loop.create_server``) and the protocol/transport layer; on a tether loop
they run over the socket transports of `_transports.py`, whose reads and
writes are driven by the kernel's I/O readiness waits. Re-exporting them
keeps every detail of asyncio's stream behaviour (buffer limits,
`IncompleteReadError`, `LimitOverrunError`, ``drain`` flow control).
"""

from __future__ import annotations

from asyncio import (
    StreamReader,
    StreamReaderProtocol,
    StreamWriter,
    open_connection,
    open_unix_connection,
    start_server,
    start_unix_server,
)

__all__ = [
    "StreamReader",
    "StreamReaderProtocol",
    "StreamWriter",
    "open_connection",
    "open_unix_connection",
    "start_server",
    "start_unix_server",
]
