"""`open_tcp_listeners` and `serve_tcp`: listen for TCP connections on one
port of every address a host name (or the wildcard) resolves to.

Invariants: either every listener is returned, or none is and every socket
made on the way is closed; an address family the system lacks (an IPv6
wildcard on a host without IPv6) is skipped as long as another family
works.
"""

from __future__ import annotations

import errno
import socket as _stdlib_socket
import sys
from collections.abc import Awaitable, Callable

from ._core import TASK_STATUS_IGNORED, Nursery, TaskStatus
from ._highlevel_serve_listeners import serve_listeners
from ._highlevel_socket import SocketListener, SocketStream
from ._socket import SocketType, socket
from ._socket_names import Address, getaddrinfo, no_addresses_error

#: The largest listen backlog passed to the kernel. Kernels clamp larger
#: values to their configured maximum, but several (Linux, the BSDs) keep
#: the value in 16 bits first and would wrap a bigger one around.
MAX_BACKLOG = 0xFFFF


def _backlog(backlog: int | None) -> int:
    """The backlog for listen(): as large as the system allows by default.
    A short queue drops connections in a burst; a long one costs little, and
    a connection waiting in it is no worse off than one waiting to connect.
    """
    if backlog is None:
        return MAX_BACKLOG
    if not isinstance(backlog, int):
        raise TypeError(f"backlog must be an int or None, not {backlog!r}")
    return min(backlog, MAX_BACKLOG)


async def _listen_on(
    sock: SocketType, family: int, sockaddr: Address, backlog: int
) -> SocketListener:
    """Bind `sock` (of `family`) and make it listen; closed if that fails."""
    try:
        # Lets a restarted server bind while old connections linger in
        # TIME_WAIT. On Windows it would let another process steal the port.
        if sys.platform != "win32":
            sock.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_REUSEADDR, 1)
        # One listener per family: the IPv6 one must not also take IPv4.
        if family == _stdlib_socket.AF_INET6:
            sock.setsockopt(_stdlib_socket.IPPROTO_IPV6, _stdlib_socket.IPV6_V6ONLY, 1)
        await sock.bind(sockaddr)
        sock.listen(backlog)
        return SocketListener(sock)
    except BaseException:
        sock.close()
        raise


async def open_tcp_listeners(
    port: int, *, host: str | bytes | None = None, backlog: int | None = None
) -> list[SocketListener]:
    """Open a `SocketListener` on TCP `port` for each address of `host`.

    `host` is resolved with ``AI_PASSIVE``. ``None`` (the default) means
    every interface, on both IPv4 and IPv6 (two listeners where the system
    has both); ``"0.0.0.0"`` or ``"::"`` means every interface of one
    family; a name listens on each of its addresses. Port 0 lets the
    kernel choose a free port, separately for each listener (read it with
    ``listener.socket.getsockname()``).

    `backlog` is the kernel's queue of connections not yet accepted;
    ``None`` means as large as the system allows.

    A checkpoint (resolving the host). Cancellable; a cancelled call closes
    what it opened.

    Raises:
      TypeError: `port` is not an int, or `backlog` not an int or None.
      OSError: binding or listening failed (e.g. address in use), `host`
        has no addresses (a custom resolver answered none), or no
        address family of `host` is supported here (``EAFNOSUPPORT``, with
        the failures as an `ExceptionGroup` in ``__cause__``).
    """
    # getaddrinfo accepts port=None or "http" in some cases and treats ""
    # differently per platform: one clear rule instead.
    if not isinstance(port, int):
        raise TypeError(f"port must be an int, not {port!r}")
    listen_backlog = _backlog(backlog)
    addresses = await getaddrinfo(
        host, port, type=_stdlib_socket.SOCK_STREAM, flags=_stdlib_socket.AI_PASSIVE
    )
    if not addresses:
        # An empty list of listeners would make a server that never serves.
        raise no_addresses_error(host, port)
    listeners: list[SocketListener] = []
    unsupported: list[OSError] = []
    try:
        for family, type_, proto, _, sockaddr in addresses:
            try:
                sock = socket(family, type_, proto)
            except OSError as exc:
                # The resolver offers both families even where the system
                # lacks one: fine, as long as some family works.
                if exc.errno != errno.EAFNOSUPPORT:
                    raise
                unsupported.append(exc)
                continue
            listeners.append(await _listen_on(sock, family, sockaddr, listen_backlog))
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    if unsupported and not listeners:
        message = (
            "This system doesn't support any of the kinds of socket that that address could use"
        )
        raise OSError(errno.EAFNOSUPPORT, message) from ExceptionGroup(message, unsupported)
    return listeners


async def serve_tcp(
    handler: Callable[[SocketStream], Awaitable[object]],
    port: int,
    *,
    host: str | bytes | None = None,
    backlog: int | None = None,
    handler_nursery: Nursery | None = None,
    task_status: TaskStatus[list[SocketListener]] = TASK_STATUS_IGNORED,
) -> None:
    """Listen on TCP `port` and run ``handler(stream)`` in a new task for
    each connection: `open_tcp_listeners` then `serve_listeners` (see them
    for `host`, `backlog`, `handler_nursery` and error handling).

    Runs until cancelled. With ``listeners = await nursery.start(serve_tcp,
    handler, 0)`` it returns the listeners once they accept connections,
    which is how a test learns the port the kernel chose::

        listeners = await nursery.start(tether.serve_tcp, handler, 0)
        client = await tether.testing.open_stream_to_socket_listener(listeners[0])

    An exception from `handler` is not caught and stops the server, unless
    `handler_nursery` deals with it.
    """
    listeners = await open_tcp_listeners(port, host=host, backlog=backlog)
    await serve_listeners(
        handler, listeners, handler_nursery=handler_nursery, task_status=task_status
    )
