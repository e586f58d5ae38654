"""TLS over TCP in one call: `open_ssl_over_tcp_stream`,
`open_ssl_over_tcp_listeners` and `serve_ssl_over_tcp`.

What they must do. Each one is the TCP helper of the same shape
(`open_tcp_stream`, `open_tcp_listeners`, `serve_listeners`) with every
connection wrapped in TLS: client ends in an `SSLStream` that expects a
certificate for the host that was dialled, server ends in an
`SSLListener`. None of them runs the TLS handshake: the stream does it on
first use (or on `SSLStream.do_handshake`), so a slow or hostile client
cannot stall an accept loop, and the caller decides where a handshake
error is handled.

Design. The two TLS settings that every wrapper here shares, the context
and ``https_compatible``, travel together in one small frozen record,
`_TLSSettings`, which knows how to wrap each kind of TCP object. The public
functions only dial or listen, then hand the TCP objects to it. They keep
no state of their own.

Invariant: a TCP connection that was opened here is either inside the
returned `SSLStream` or closed; an error while wrapping it (the ssl module
refusing the context or the host name) never leaves it to the garbage
collector.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, TypeAlias

from ._core import TASK_STATUS_IGNORED, Nursery, TaskStatus
from ._highlevel_generic import aclose_forcefully
from ._highlevel_open_tcp_listeners import open_tcp_listeners
from ._highlevel_open_tcp_stream import DEFAULT_HAPPY_EYEBALLS_DELAY, open_tcp_stream
from ._highlevel_serve_listeners import serve_listeners
from ._highlevel_socket import SocketListener, SocketStream
from ._ssl import SSLListener, SSLStream

__all__ = ["open_ssl_over_tcp_listeners", "open_ssl_over_tcp_stream", "serve_ssl_over_tcp"]

#: A host as the TCP helpers take it: text, or IDNA-encoded bytes.
HostName: TypeAlias = str | bytes
#: What `serve_ssl_over_tcp` runs for each accepted connection.
TLSHandler: TypeAlias = Callable[[SSLStream[SocketStream]], Awaitable[object]]
TLSListeners: TypeAlias = list[SSLListener[SocketStream]]


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


@dataclass(frozen=True)
class _TLSSettings:
    """The TLS settings shared by every connection one helper call wraps."""

    context: ssl.SSLContext
    https_compatible: bool

    async def client_end(self, connection: SocketStream, host: HostName) -> SSLStream[SocketStream]:
        """`connection`, wrapped as the client end of a TLS connection to
        `host`; closed if it cannot be wrapped (the error propagates)."""
        try:
            return SSLStream(
                connection,
                self.context,
                https_compatible=self.https_compatible,
                server_hostname=host,
            )
        except BaseException:
            # Not a checkpoint that could fail to close: aclose_forcefully
            # closes even when cancelled.
            await aclose_forcefully(connection)
            raise

    def server_ends(self, tcp_listeners: list[SocketListener]) -> TLSListeners:
        """Each TCP listener, wrapped so that what it accepts speaks TLS."""
        return [
            SSLListener(each, self.context, https_compatible=self.https_compatible)
            for each in tcp_listeners
        ]


async def open_ssl_over_tcp_stream(
    host: HostName,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    https_compatible: bool = False,
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
    settings = _TLSSettings(
        ssl_context if ssl_context is not None else default_client_context(),
        https_compatible,
    )
    connection = await open_tcp_stream(host, port, happy_eyeballs_delay=happy_eyeballs_delay)
    return await settings.client_end(connection, host)


async def open_ssl_over_tcp_listeners(
    port: int,
    ssl_context: ssl.SSLContext,
    *,
    host: HostName | None = None,
    backlog: int | None = None,
    https_compatible: bool = False,
) -> TLSListeners:
    """Listen for TLS connections on `port`: `tether.open_tcp_listeners`,
    each listener wrapped in an `SSLListener` with `ssl_context` (which
    holds the server's certificate and key).

    `host`, `backlog`: as for `open_tcp_listeners`. `https_compatible`: see
    `SSLStream`. A checkpoint; cancellation and errors are those of
    `open_tcp_listeners`.
    """
    settings = _TLSSettings(ssl_context, https_compatible)
    return settings.server_ends(await open_tcp_listeners(port, backlog=backlog, host=host))


async def serve_ssl_over_tcp(
    handler: TLSHandler,
    port: int,
    ssl_context: ssl.SSLContext,
    *,
    host: HostName | None = None,
    backlog: int | None = None,
    https_compatible: bool = False,
    handler_nursery: Nursery | None = None,
    task_status: TaskStatus[TLSListeners] = TASK_STATUS_IGNORED,
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
    settings = _TLSSettings(ssl_context, https_compatible)
    tls_listeners = settings.server_ends(await open_tcp_listeners(port, backlog=backlog, host=host))
    await serve_listeners(
        handler, tls_listeners, task_status=task_status, handler_nursery=handler_nursery
    )
