"""`open_stream_to_socket_listener`: connect a test client to a listener
whose address the kernel chose."""

from __future__ import annotations

import socket as _stdlib_socket
from typing import Any

from .._highlevel_socket import SocketListener, SocketStream
from .._socket import socket

# A listener on the wildcard address accepts on every interface; a client
# cannot connect to the wildcard itself, so it uses the loopback one.
_LOOPBACK_FOR_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1"}

_IP_FAMILIES = (_stdlib_socket.AF_INET, _stdlib_socket.AF_INET6)


def _where_to_connect(family: int, bound_to: Any) -> Any:
    """The address a client uses to reach a listener bound to `bound_to`:
    the same, except that an IP wildcard host becomes the loopback host
    (flowinfo and scope id of IPv6 kept). Unix paths are used as they are."""
    if family not in _IP_FAMILIES:
        return bound_to
    host, *rest = bound_to
    return (_LOOPBACK_FOR_WILDCARD.get(host, host), *rest)


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
    listening = socket_listener.socket
    target = _where_to_connect(listening.family, listening.getsockname())
    client = socket(listening.family)
    stream = None
    try:
        await client.connect(target)
        stream = SocketStream(client)
    finally:
        if stream is None:
            client.close()  # failed or cancelled: nothing must leak
    return stream
