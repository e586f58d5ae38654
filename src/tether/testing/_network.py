"""`open_stream_to_socket_listener`: connect a test client to a listener
whose address the kernel chose."""

from __future__ import annotations

import socket as _stdlib_socket

from .._highlevel_socket import SocketListener, SocketStream
from .._socket import socket

# A listener on the wildcard address accepts on every interface; a client
# cannot connect to the wildcard itself, so it uses the loopback one.
_LOOPBACK_FOR_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1"}


async def open_stream_to_socket_listener(socket_listener: SocketListener) -> SocketStream:
    """Connect to `socket_listener` (from `tether.open_tcp_listeners`,
    `serve_tcp`, or a Unix socket listener) and return the client's end as
    a `SocketStream`.

    Meant for tests that listen on port 0 and need to reach whatever port
    the kernel picked::

        listeners = await tether.open_tcp_listeners(0, host="127.0.0.1")
        client = await open_stream_to_socket_listener(listeners[0])

    A listener on the wildcard address is reached through the loopback
    address of its family. A checkpoint; cancellable (a cancelled call
    closes its socket).

    Raises:
      OSError: the connection failed.
    """
    family = socket_listener.socket.family
    sockaddr = socket_listener.socket.getsockname()
    if family in (_stdlib_socket.AF_INET, _stdlib_socket.AF_INET6):
        host = _LOOPBACK_FOR_WILDCARD.get(sockaddr[0], sockaddr[0])
        sockaddr = (host, *sockaddr[1:])
    sock = socket(family)
    try:
        await sock.connect(sockaddr)
        return SocketStream(sock)
    except BaseException:
        sock.close()
        raise
