"""`open_unix_socket`: connect to a Unix domain socket by its path.

Invariant: the socket is returned inside the stream, or closed. The path is
checked (`os.fspath`) before a socket exists, so a bad argument leaks
nothing; any failure after that (the connect, a cancellation) closes it.
"""

from __future__ import annotations

import os
import socket as _stdlib_socket

from ._highlevel_socket import SocketStream
from ._socket import socket


async def open_unix_socket(
    filename: str | bytes | os.PathLike[str] | os.PathLike[bytes],
) -> SocketStream:
    """Connect to the Unix domain socket at `filename` and return the
    connection as a `SocketStream`. You need read and write permission on
    the socket file.

    A checkpoint; cancellable (a cancelled call closes its socket).

    Raises:
      TypeError: `filename` is not a path (str, bytes or os.PathLike).
      OSError: the connection failed (`FileNotFoundError` if nothing is
        there, `ConnectionRefusedError` if nobody listens).
      RuntimeError: this platform has no Unix domain sockets.
    """
    if not hasattr(_stdlib_socket, "AF_UNIX"):
        # (trio's words: its test on such platforms matches them.)
        raise RuntimeError("Unix sockets are not supported on this platform")
    target = os.fspath(filename)
    client = socket(_stdlib_socket.AF_UNIX, _stdlib_socket.SOCK_STREAM)
    stream = None
    try:
        await client.connect(target)
        stream = SocketStream(client)
    finally:
        if stream is None:
            client.close()
    return stream
