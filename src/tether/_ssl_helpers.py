"""TLS over TCP in one call: `open_ssl_over_tcp_stream`,
`open_ssl_over_tcp_listeners` and `serve_ssl_over_tcp`.

Thin compositions of the TCP helpers with `SSLStream` / `SSLListener`; they
add no state. None of them performs the TLS handshake: the stream does it
when first used (or on `SSLStream.do_handshake`), so a slow or hostile
client cannot stall an accept loop.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import NoReturn

from ._core import TASK_STATUS_IGNORED, Nursery, TaskStatus
from ._highlevel_generic import aclose_forcefully
from ._highlevel_open_tcp_listeners import open_tcp_listeners
from ._highlevel_open_tcp_stream import DEFAULT_HAPPY_EYEBALLS_DELAY, open_tcp_stream
from ._highlevel_serve_listeners import serve_listeners
from ._highlevel_socket import SocketStream
from ._ssl import SSLListener, SSLStream

__all__ = ["open_ssl_over_tcp_listeners", "open_ssl_over_tcp_stream", "serve_ssl_over_tcp"]


def default_client_context() -> ssl.SSLContext:
    """The context `open_ssl_over_tcp_stream` uses when given none: the
    standard library's defaults (the system's trusted CAs, host name
    checked), and a connection cut without ``close_notify`` reported as
    such rather than as a clean end."""
    context = ssl.create_default_context()
    # Some builds set this option by default; it would hide truncation,
    # which https_compatible=False promises to report. Builds whose OpenSSL
    # lacks it (older than 3.0) do not have the name at all.
    ignore_unexpected_eof = getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", None)
    if ignore_unexpected_eof is not None:
        context.options &= ~ignore_unexpected_eof
    return context


async def open_ssl_over_tcp_stream(
    host: str | bytes,
    port: int,
    *,
    https_compatible: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    happy_eyeballs_delay: float | None = DEFAULT_HAPPY_EYEBALLS_DELAY,
) -> SSLStream[SocketStream]:
    """Connect to `host`:`port` over TCP (`tether.open_tcp_stream`) and wrap
    the connection in a client `SSLStream` that expects a certificate valid
    for `host`.

    Args:
      host, port, happy_eyeballs_delay: as for `tether.open_tcp_stream`.
      https_compatible: see `SSLStream` (True for HTTPS servers).
      ssl_context: the `ssl.SSLContext` to use. None (the default) means
        ``ssl.create_default_context()``: the server's certificate is
        verified against the system's trusted CAs and must name `host`.
        To turn verification off, pass a context configured for that.

    The handshake is not performed here; it happens on first use of the
    stream, or call `SSLStream.do_handshake`. Cancellation and errors are
    those of `open_tcp_stream` (if cancelled, no connection is left open).
    If the `SSLStream` cannot be built (the ssl module refuses a context
    meant for servers, or the host name), the TCP connection is closed
    before the error propagates.
    """
    if ssl_context is None:
        ssl_context = default_client_context()
    tcp_stream = await open_tcp_stream(host, port, happy_eyeballs_delay=happy_eyeballs_delay)
    try:
        return SSLStream(
            tcp_stream,
            ssl_context,
            server_hostname=host,
            https_compatible=https_compatible,
        )
    except BaseException:
        # The connection is ours until the SSLStream owns it: a context or
        # host name the ssl module refuses must not leave it to the GC.
        await aclose_forcefully(tcp_stream)
        raise


async def open_ssl_over_tcp_listeners(
    port: int,
    ssl_context: ssl.SSLContext,
    *,
    host: str | bytes | None = None,
    https_compatible: bool = False,
    backlog: int | None = None,
) -> list[SSLListener[SocketStream]]:
    """Listen for TLS connections on `port`: `tether.open_tcp_listeners`,
    each listener wrapped in an `SSLListener` with `ssl_context` (which
    holds the server's certificate and key).

    `host`, `backlog`: as for `open_tcp_listeners`. `https_compatible`: see
    `SSLStream`. A checkpoint; cancellation and errors are those of
    `open_tcp_listeners`.
    """
    tcp_listeners = await open_tcp_listeners(port, host=host, backlog=backlog)
    return [
        SSLListener(listener, ssl_context, https_compatible=https_compatible)
        for listener in tcp_listeners
    ]


async def serve_ssl_over_tcp(
    handler: Callable[[SSLStream[SocketStream]], Awaitable[object]],
    port: int,
    ssl_context: ssl.SSLContext,
    *,
    host: str | bytes | None = None,
    https_compatible: bool = False,
    backlog: int | None = None,
    handler_nursery: Nursery | None = None,
    task_status: TaskStatus[list[SSLListener[SocketStream]]] = TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve TLS over TCP: `open_ssl_over_tcp_listeners`, then
    `tether.serve_listeners`, which runs ``handler(stream)`` in a new task
    for each connection (an `SSLStream`, whose handshake happens on first
    use).

    Runs until cancelled. With ``await nursery.start(serve_ssl_over_tcp,
    handler, port, ssl_context)`` it returns the listeners once they accept
    (with ``port=0``, ask them which port the system picked). An exception
    from `handler` is not caught: it ends the server unless the handler
    catches it or `handler_nursery` deals with it (see `serve_listeners`).
    """
    listeners = await open_ssl_over_tcp_listeners(
        port,
        ssl_context,
        host=host,
        https_compatible=https_compatible,
        backlog=backlog,
    )
    await serve_listeners(
        handler, listeners, handler_nursery=handler_nursery, task_status=task_status
    )
