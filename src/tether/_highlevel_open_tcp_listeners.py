"""`open_tcp_listeners` and `serve_tcp`: listen for TCP connections on one
port of every address a host name (or the wildcard) resolves to.

What they must do (trio's documented behaviour, and tether's tests):

* `port` must be an int (0: the kernel picks a free port, separately for
  each listener); `backlog` an int or None, where None means the largest
  queue the system takes, and any int is capped at that same maximum.
* The host (None: every interface) is resolved for a passive TCP socket,
  and every address it yields gets a bound, listening socket wrapped in a
  `SocketListener`. An IPv6 socket listens on IPv6 only, so it does not
  collide with the IPv4 one on the same port. Outside Windows the port is
  reusable at once after a restart (``SO_REUSEADDR``).
* All or nothing: if any socket cannot be made, bound or set listening,
  every socket made so far is closed and the error propagates. The one
  exception: a socket family the system lacks (``EAFNOSUPPORT`` when the
  socket is created) is skipped, and is an error only if no address is
  left, as ``OSError(EAFNOSUPPORT)`` whose ``__cause__`` is an
  `ExceptionGroup` of each family's failure.
* `serve_tcp` is `open_tcp_listeners` followed by `serve_listeners`.

Design: the sockets opened so far are registered on an `ExitStack` that
closes them; success pops the stack (the listeners keep their sockets),
any exception, cancellation included, unwinds it. Making a socket for an
address is its own step (`_socket_for`) that records a missing family
instead of raising, so the loop reads as "for each address: socket, set
up, keep".
"""

from __future__ import annotations

import errno
import socket as _stdlib_socket
import sys
from collections.abc import Awaitable, Callable
from contextlib import ExitStack

from ._core import TASK_STATUS_IGNORED, Nursery, TaskStatus
from ._highlevel_serve_listeners import serve_listeners
from ._highlevel_socket import SocketListener, SocketStream
from ._socket import SocketType, socket
from ._socket_names import AddrInfo, getaddrinfo, no_addresses_error

#: The largest listen backlog passed to the kernel. Kernels clamp larger
#: values to their configured maximum, but several (Linux, the BSDs) keep
#: the value in 16 bits first and would wrap a bigger one around.
MAX_BACKLOG = 0xFFFF

# SO_REUSEADDR on Windows would let another process bind the same port.
_REUSE_ADDRESS = sys.platform != "win32"


def _check_port(port: object) -> None:
    # getaddrinfo would take None, "" or a service name like "http" and
    # read them differently per platform: one clear rule instead.
    if isinstance(port, int):
        return
    raise TypeError(f"port must be an int, not {port!r}")


def _queue_length(backlog: int | None) -> int:
    """The length for listen(): as long as the system allows by default.
    A short queue drops connections in a burst; a long one costs little, and
    a connection waiting in it is no worse off than one waiting to connect.
    """
    if backlog is None:
        return MAX_BACKLOG
    if isinstance(backlog, int):
        return min(backlog, MAX_BACKLOG)
    raise TypeError(f"backlog must be an int or None, not {backlog!r}")


def _socket_for(entry: AddrInfo, missing: list[OSError]) -> SocketType | None:
    """A new socket of the family, type and protocol of `entry`, or None
    (with the error added to `missing`) if the system lacks that family."""
    family, kind, protocol, _, _ = entry
    try:
        return socket(family, kind, protocol)
    except OSError as error:
        # The resolver offers IPv6 addresses even on hosts built without
        # IPv6: fine, as long as another family works.
        if error.errno == errno.EAFNOSUPPORT:
            missing.append(error)
            return None
        raise


async def _set_up(sock: SocketType, entry: AddrInfo, queue_length: int) -> None:
    """Configure `sock` for listening, bind it to `entry`'s address and
    listen."""
    if _REUSE_ADDRESS:
        # A restarted server binds while old connections linger in TIME_WAIT.
        sock.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_REUSEADDR, 1)
    if entry[0] == _stdlib_socket.AF_INET6:
        # One listener per family: the IPv6 one must not also take IPv4.
        sock.setsockopt(_stdlib_socket.IPPROTO_IPV6, _stdlib_socket.IPV6_V6ONLY, 1)
    await sock.bind(entry[4])
    sock.listen(queue_length)


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
      OSError: binding or listening failed (e.g. address in use), or no
        address family of `host` is supported here (``EAFNOSUPPORT``, with
        the failures as an `ExceptionGroup` in ``__cause__``).
    """
    _check_port(port)
    queue_length = _queue_length(backlog)
    entries = await getaddrinfo(
        host, port, type=_stdlib_socket.SOCK_STREAM, flags=_stdlib_socket.AI_PASSIVE
    )
    if not entries:
        # An empty list of listeners would make a server that never serves.
        raise no_addresses_error(host, port)
    missing: list[OSError] = []
    with ExitStack() as close_on_failure:
        opened: list[SocketListener] = []
        for entry in entries:
            sock = _socket_for(entry, missing)
            if sock is None:
                continue
            close_on_failure.callback(sock.close)
            await _set_up(sock, entry, queue_length)
            opened.append(SocketListener(sock))
        if not opened and missing:
            name = "the wildcard host" if host is None else repr(host)
            why = f"This system doesn't support any of the address families {name} resolves to"
            raise OSError(errno.EAFNOSUPPORT, why) from ExceptionGroup(why, missing)
        close_on_failure.pop_all()
    return opened


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
