"""Connections and servers: the loop's transport factories.

``create_connection`` / ``create_unix_connection`` resolve, connect
(`loop.sock_connect`) and wrap the socket in a `SocketTransport`;
``create_server`` / ``create_unix_server`` bind listening sockets and return
the standard library's `asyncio.Server`, which calls back into the loop
(`start_serving`) to accept connections with a reader callback. With
``ssl=``, the standard library's SSL protocol runs over the plain transport,
as in asyncio.
"""

from __future__ import annotations

import asyncio
import collections.abc
import dataclasses
import errno
import itertools
import logging
import os
import socket
import sys
from asyncio import sslproto
from asyncio.constants import _SendfileMode
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from . import _unix_cleanup
from ._sockets import (
    ensure_resolved,
    reject_ssl_socket,
    remove_stale_unix_socket,
    send_file_in_chunks,
)
from ._timeouts import sleep
from ._transports import SocketTransport, await_or_close

if TYPE_CHECKING:
    from ._loop import TetherEventLoop

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover
    _ssl = None  # type: ignore[assignment]

logger = logging.getLogger("asyncio")

_HAS_IPV6 = hasattr(socket, "AF_INET6")
#: Seconds to wait before accepting again after running out of fds.
ACCEPT_RETRY_DELAY = 1
#: Bytes read from the file and written to the transport at a time by
#: `sendfile` (small: each chunk waits for the transport's write buffer to
#: drain below its high-water mark, as in asyncio's fallback).
TRANSPORT_SENDFILE_CHUNK = 16 * 1024

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


def _check_ssl_arguments(
    ssl: Any,
    server_hostname: Any = None,
    ssl_handshake_timeout: Any = None,
    ssl_shutdown_timeout: Any = None,
) -> None:
    if server_hostname is not None and not ssl:
        raise ValueError("server_hostname is only meaningful with ssl")
    if ssl_handshake_timeout is not None and not ssl:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if ssl_shutdown_timeout is not None and not ssl:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def make_transport(
    loop: TetherEventLoop,
    sock: socket.socket,
    protocol: asyncio.BaseProtocol,
    waiter: asyncio.Future[Any] | None,
    *,
    ssl: Any = None,
    server_side: bool = False,
    server_hostname: str | None = None,
    extra: dict[str, Any] | None = None,
    server: Any = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> asyncio.BaseTransport:
    if not ssl:
        return SocketTransport(loop, sock, protocol, waiter, extra, server)
    sslcontext = None if isinstance(ssl, bool) else ssl
    if sslcontext is None:
        if _ssl is None:  # pragma: no cover
            raise RuntimeError("Python ssl module is not available")
        sslcontext = (
            _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
            if server_side
            else _ssl.create_default_context()
        )
    ssl_protocol = sslproto.SSLProtocol(
        loop,
        protocol,
        sslcontext,
        waiter,  # type: ignore[arg-type]
        server_side,
        server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,  # type: ignore[arg-type]
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )
    SocketTransport(loop, sock, ssl_protocol, extra=extra, server=server)
    return ssl_protocol._app_transport


async def create_connection_transport(
    loop: TetherEventLoop,
    sock: socket.socket,
    protocol_factory: ProtocolFactory,
    ssl: Any,
    server_hostname: str | None,
    server_side: bool = False,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    sock.setblocking(False)
    protocol = protocol_factory()
    waiter = loop.create_future()
    transport = make_transport(
        loop,
        sock,
        protocol,
        waiter,
        ssl=ssl,
        server_side=server_side,
        server_hostname=server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )
    await await_or_close(waiter, transport)
    return transport, protocol


async def _connect_sock(
    loop: TetherEventLoop,
    errors: list[OSError],
    addr_info: Any,
    local_addr_infos: list[Any] | None,
) -> socket.socket:
    family, type_, proto, _, address = addr_info
    sock = None
    try:
        sock = socket.socket(family=family, type=type_, proto=proto)
        sock.setblocking(False)
        if local_addr_infos is not None:
            for lfamily, _, _, _, laddr in local_addr_infos:
                if lfamily != family:
                    continue
                try:
                    sock.bind(laddr)
                    break
                except OSError as exc:
                    errors.append(
                        OSError(
                            exc.errno,
                            f"error while attempting to bind on address {laddr!r}: "
                            f"{(exc.strerror or '').lower()}",
                        )
                    )
            else:
                raise OSError(f"no matching local address with family={family} found")
        await loop.sock_connect(sock, address)
        return sock
    except OSError as exc:
        errors.append(exc)
        if sock is not None:
            sock.close()
        raise
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    finally:
        # The error raised from here keeps this frame alive (through its
        # traceback), and the list holds the error: no cycle.
        del errors


def _raise_connect_errors(errors: list[OSError], all_errors: bool) -> NoReturn:
    """Raise what a failed `create_connection` raises: every error in a
    group (``all_errors=True``), the one error, or one error naming them
    all."""
    try:
        if all_errors:
            raise ExceptionGroup("create_connection failed", errors)
        if len(errors) == 1:
            raise errors[0]
        model = str(errors[0])
        if all(str(exc) == model for exc in errors):
            raise errors[0]
        raise OSError("Multiple exceptions: {}".format(", ".join(str(exc) for exc in errors)))
    finally:
        del errors


def _interleave(addrinfos: list[Any], first_family_count: int) -> list[Any]:
    by_family: dict[int, list[Any]] = {}
    for info in addrinfos:
        by_family.setdefault(info[0], []).append(info)
    lists = list(by_family.values())
    result: list[Any] = []
    if first_family_count > 1:
        result.extend(lists[0][: first_family_count - 1])
        del lists[0][: first_family_count - 1]
    for group in itertools.zip_longest(*lists):
        result.extend(info for info in group if info is not None)
    return result


async def create_connection(
    loop: TetherEventLoop,
    protocol_factory: ProtocolFactory,
    host: Any = None,
    port: Any = None,
    *,
    ssl: Any = None,
    family: int = 0,
    proto: int = 0,
    flags: int = 0,
    sock: socket.socket | None = None,
    local_addr: Any = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
    happy_eyeballs_delay: float | None = None,
    interleave: int | None = None,
    all_errors: bool = False,
) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    if server_hostname is None and ssl:
        if not host:
            raise ValueError("You must set server_hostname when using ssl without a host")
        server_hostname = host
    _check_ssl_arguments(ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
    if sock is not None:
        reject_ssl_socket(sock)
    if happy_eyeballs_delay is not None and interleave is None:
        interleave = 1
    if host is not None or port is not None:
        if sock is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
        infos = await ensure_resolved(
            loop, (host, port), family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
        )
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        laddr_infos = None
        if local_addr is not None:
            laddr_infos = await ensure_resolved(
                loop, local_addr, family=family, type=socket.SOCK_STREAM, proto=proto, flags=flags
            )
            if not laddr_infos:
                raise OSError("getaddrinfo() returned empty list")
        if interleave:
            infos = _interleave(infos, interleave)
        errors: list[OSError] = []
        try:
            # Addresses are tried one after the other (happy_eyeballs_delay
            # is accepted; the attempts are not staggered).
            for addr_info in infos:
                try:
                    sock = await _connect_sock(loop, errors, addr_info, laddr_infos)
                    break
                except OSError:
                    continue
            if sock is None:
                _raise_connect_errors(errors, all_errors)
        finally:
            # As in _connect_sock: the error raised keeps this frame alive.
            del errors
    else:
        if sock is None:
            raise ValueError("host and port was not specified and no sock specified")
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
    return await create_connection_transport(
        loop,
        sock,
        protocol_factory,
        ssl,
        server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )


async def create_unix_connection(
    loop: TetherEventLoop,
    protocol_factory: ProtocolFactory,
    path: Any = None,
    *,
    ssl: Any = None,
    sock: socket.socket | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    if ssl and server_hostname is None:
        raise ValueError("you have to pass server_hostname when using ssl")
    _check_ssl_arguments(ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
    if path is not None:
        if sock is not None:
            raise ValueError("path and sock can not be specified at the same time")
        path = os.fspath(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, path)
        except BaseException:
            sock.close()
            raise
    else:
        if sock is None:
            raise ValueError("no path and sock were specified")
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        sock.setblocking(False)
    return await create_connection_transport(
        loop,
        sock,
        protocol_factory,
        ssl,
        server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )


async def connect_accepted_socket(
    loop: TetherEventLoop,
    protocol_factory: ProtocolFactory,
    sock: socket.socket,
    *,
    ssl: Any = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f"A Stream Socket was expected, got {sock!r}")
    _check_ssl_arguments(ssl, None, ssl_handshake_timeout, ssl_shutdown_timeout)
    reject_ssl_socket(sock)
    return await create_connection_transport(
        loop,
        sock,
        protocol_factory,
        ssl,
        "",
        server_side=True,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )


# -- servers ------------------------------------------------------------------


async def create_server(
    loop: TetherEventLoop,
    protocol_factory: ProtocolFactory,
    host: Any = None,
    port: Any = None,
    *,
    family: int = socket.AF_UNSPEC,
    flags: int = socket.AI_PASSIVE,
    sock: socket.socket | None = None,
    backlog: int = 100,
    ssl: Any = None,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
    keep_alive: bool | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
    start_serving: bool = True,
) -> asyncio.Server:
    if isinstance(ssl, bool):
        raise TypeError("ssl argument must be an SSLContext or None")
    _check_ssl_arguments(ssl, None, ssl_handshake_timeout, ssl_shutdown_timeout)
    if sock is not None:
        reject_ssl_socket(sock)
    if host is not None or port is not None:
        if sock is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
        if reuse_address is None:
            reuse_address = os.name == "posix" and sys.platform != "cygwin"
        if host == "":
            hosts: list[Any] = [None]
        elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
            hosts = [host]
        else:
            hosts = list(host)
        infos: set[Any] = set()
        for each in hosts:
            resolved = await ensure_resolved(
                loop, (each, port), family=family, type=socket.SOCK_STREAM, flags=flags
            )
            if not resolved:
                raise OSError(f"getaddrinfo({each!r}) returned empty list")
            infos.update(resolved)
        sockets: list[socket.socket] = []
        completed = False
        try:
            for af, socktype, proto, _, address in infos:
                try:
                    listener = socket.socket(af, socktype, proto)
                except OSError:
                    continue
                sockets.append(listener)
                if reuse_address:
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    if not hasattr(socket, "SO_REUSEPORT"):
                        raise ValueError("reuse_port not supported by socket module")
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if keep_alive:
                    listener.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                if _HAS_IPV6 and af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                try:
                    listener.bind(address)
                except OSError as err:
                    raise OSError(
                        err.errno,
                        f"error while attempting to bind on address {address!r}: "
                        f"{(err.strerror or '').lower()}",
                    ) from None
            completed = True
        finally:
            if not completed:
                for listener in sockets:
                    listener.close()
    else:
        if sock is None:
            raise ValueError("Neither host/port nor sock were specified")
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")
        sockets = [sock]
    for listener in sockets:
        listener.setblocking(False)
    return await _serve(
        loop,
        sockets,
        protocol_factory,
        ssl=ssl,
        backlog=backlog,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
        start_serving=start_serving,
    )


async def create_unix_server(
    loop: TetherEventLoop,
    protocol_factory: ProtocolFactory,
    path: Any = None,
    *,
    sock: socket.socket | None = None,
    backlog: int = 100,
    ssl: Any = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
    start_serving: bool = True,
    cleanup_socket: bool = True,
) -> asyncio.Server:
    if isinstance(ssl, bool):
        raise TypeError("ssl argument must be an SSLContext or None")
    _check_ssl_arguments(ssl, None, ssl_handshake_timeout, ssl_shutdown_timeout)
    if path is not None:
        if sock is not None:
            raise ValueError("path and sock can not be specified at the same time")
        path = os.fspath(path)
        # (Before the socket exists: nothing to close if this raises.)
        remove_stale_unix_socket(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
        except OSError as exc:
            listener.close()
            if exc.errno == errno.EADDRINUSE:
                raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
            raise
        except BaseException:
            listener.close()
            raise
    else:
        if sock is None:
            raise ValueError("path was not specified, and no sock specified")
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        listener = sock
    if cleanup_socket and _unix_cleanup.CLEANS_UP:
        _unix_cleanup.remember(listener)
    listener.setblocking(False)
    return await _serve(
        loop,
        [listener],
        protocol_factory,
        ssl=ssl,
        backlog=backlog,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
        start_serving=start_serving,
    )


async def _serve(
    loop: TetherEventLoop,
    sockets: list[socket.socket],
    protocol_factory: ProtocolFactory,
    *,
    ssl: Any,
    backlog: int,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
    start_serving: bool,
) -> asyncio.Server:
    # (asyncio.Server takes these positionally, and gives them back to the
    # loop's `_start_serving`: see `start_serving`.)
    server = asyncio.Server(
        loop,
        sockets,
        protocol_factory,
        ssl,
        backlog,
        ssl_handshake_timeout,
        ssl_shutdown_timeout,
    )
    if start_serving:
        server._start_serving()  # type: ignore[attr-defined]
        # One iteration, so that the accept callbacks are in place.
        await sleep(0)
    if loop._debug:
        logger.info("%r is serving", server)
    return server


@dataclasses.dataclass(frozen=True, slots=True)
class _ServeConfig:
    """How a server accepts connections on its listening sockets: what
    `asyncio.Server` passes to the loop's ``_start_serving``."""

    protocol_factory: ProtocolFactory
    #: An `ssl.SSLContext`, or None for plain connections.
    sslcontext: Any
    #: The `asyncio.Server`, which tracks its connections.
    server: Any
    #: How many connections to accept in a row when the socket is readable.
    backlog: int
    ssl_handshake_timeout: float | None
    ssl_shutdown_timeout: float | None


def start_serving(
    loop: TetherEventLoop,
    protocol_factory: ProtocolFactory,
    sock: socket.socket,
    sslcontext: Any,
    server: Any,
    backlog: int,
    ssl_handshake_timeout: float | None,
    ssl_shutdown_timeout: float | None,
) -> None:
    """Called by `asyncio.Server` (through the loop's ``_start_serving``,
    with its arguments): accept connections on `sock`."""
    config = _ServeConfig(
        protocol_factory, sslcontext, server, backlog, ssl_handshake_timeout, ssl_shutdown_timeout
    )
    _watch_listener(loop, sock, config)


def _watch_listener(loop: TetherEventLoop, sock: socket.socket, config: _ServeConfig) -> None:
    loop.add_reader(sock.fileno(), _accept, loop, sock, config)


def stop_serving(loop: TetherEventLoop, sock: socket.socket) -> None:
    """Called by `asyncio.Server.close`."""
    loop.remove_reader(sock.fileno())
    if sock.family == socket.AF_UNIX:
        _unix_cleanup.clean_up(sock)
    sock.close()


def _accept(loop: TetherEventLoop, sock: socket.socket, config: _ServeConfig) -> None:
    for _ in range(config.backlog):
        try:
            conn, addr = sock.accept()
            conn.setblocking(False)
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": exc,
                        "socket": sock,
                    }
                )
                loop.remove_reader(sock.fileno())
                loop.call_later(ACCEPT_RETRY_DELAY, _watch_listener, loop, sock, config)
                return
            raise
        else:
            loop.create_task(_accept_connection(loop, conn, {"peername": addr}, config))


async def _accept_connection(
    loop: TetherEventLoop, conn: socket.socket, extra: dict[str, Any], config: _ServeConfig
) -> None:
    protocol = None
    try:
        protocol = config.protocol_factory()
        waiter = loop.create_future()
        transport = make_transport(
            loop,
            conn,
            protocol,
            waiter,
            ssl=config.sslcontext,
            server_side=True,
            extra=extra,
            server=config.server,
            ssl_handshake_timeout=config.ssl_handshake_timeout,
            ssl_shutdown_timeout=config.ssl_shutdown_timeout,
        )
        await await_or_close(waiter, transport)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        if loop._debug:
            context: dict[str, Any] = {
                "message": "Error on transport creation for incoming connection",
                "exception": exc,
            }
            if protocol is not None:
                context["protocol"] = protocol
            loop.call_exception_handler(context)


async def start_tls(
    loop: TetherEventLoop,
    transport: Any,
    protocol: asyncio.BaseProtocol,
    sslcontext: Any,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> asyncio.BaseTransport:
    if _ssl is None:  # pragma: no cover
        raise RuntimeError("Python ssl module is not available")
    if not isinstance(sslcontext, _ssl.SSLContext):
        raise TypeError(
            f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}"
        )
    if not getattr(transport, "_start_tls_compatible", False):
        raise TypeError(f"transport {transport!r} is not supported by start_tls()")
    waiter = loop.create_future()
    ssl_protocol = sslproto.SSLProtocol(
        loop,
        protocol,
        sslcontext,
        waiter,
        server_side,
        server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,  # type: ignore[arg-type]
        ssl_shutdown_timeout=ssl_shutdown_timeout,
        call_connection_made=False,
    )
    transport.pause_reading()
    transport.set_protocol(ssl_protocol)
    connection_made = loop.call_soon(ssl_protocol.connection_made, transport)
    resume = loop.call_soon(transport.resume_reading)
    try:
        await await_or_close(waiter, transport)
    except BaseException:
        connection_made.cancel()
        resume.cancel()
        raise
    return ssl_protocol._app_transport


async def sendfile(
    loop: TetherEventLoop,
    transport: Any,
    file: Any,
    offset: int = 0,
    count: int | None = None,
    *,
    fallback: bool = True,
) -> int:
    if transport.is_closing():
        raise RuntimeError("Transport is closing")
    # (What asyncio's transports declare: tether's socket transports and the
    # TLS transports take the copying way; pipes and datagrams none.)
    mode = getattr(transport, "_sendfile_compatible", _SendfileMode.UNSUPPORTED)
    if mode is _SendfileMode.UNSUPPORTED:
        raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
    if not fallback:
        raise RuntimeError(
            f"fallback is disabled and native sendfile is not supported for transport {transport!r}"
        )
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    flow = _SendfileFlow(loop, transport)

    async def send(data: memoryview) -> None:
        await flow.wait_writable()
        # (A copy: the chunk's buffer is read into again while the
        # transport may still hold what it could not send yet.)
        transport.write(bytes(data))

    try:
        return await send_file_in_chunks(loop, file, offset, count, TRANSPORT_SENDFILE_CHUNK, send)
    finally:
        flow.restore()


class _SendfileFlow(asyncio.Protocol):
    """The transport's protocol while `sendfile` copies a file into it:
    reading is paused, the transport's flow control (``pause_writing`` and
    ``resume_writing``) says when the next chunk may go, and a lost
    connection stops the copy with `ConnectionError`. `restore` gives the
    transport its own protocol back, told of what changed meanwhile."""

    def __init__(self, loop: TetherEventLoop, transport: Any) -> None:
        self._transport = transport
        self._protocol = transport.get_protocol()
        self._loop = loop
        self._was_reading = transport.is_reading()
        self._was_paused = bool(transport._protocol_paused)
        #: Pending while the transport holds more than its high-water mark.
        self._writable: asyncio.Future[None] | None = None
        #: The connection was lost (its protocol has been told).
        self._lost = False
        if self._was_paused:
            self.pause_writing()
        transport.pause_reading()
        transport.set_protocol(self)

    async def wait_writable(self) -> None:
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        if self._writable is not None:
            await self._writable

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_exception(
                exc if exc is not None else ConnectionError("Connection closed by peer")
            )
        # (Its own protocol hears of it now, not when the copy ends; then it
        # is dropped: the error's traceback may reach this object.)
        protocol, self._protocol = self._protocol, None
        protocol.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("data received while sendfile() has reading paused")

    def eof_received(self) -> bool | None:
        raise RuntimeError("end of file received while sendfile() has reading paused")

    def restore(self) -> None:
        if self._lost:
            # (The transport is done with protocols: nothing to give back.)
            return
        transport = self._transport
        transport.set_protocol(self._protocol)
        if self._was_reading and not transport.is_closing():
            transport.resume_reading()
        writable, self._writable = self._writable, None
        if writable is not None:
            writable.cancel()
        # The protocol is told whether it may write, if that changed.
        paused = bool(transport._protocol_paused)
        if paused and not self._was_paused:
            self._protocol.pause_writing()
        elif self._was_paused and not paused:
            self._protocol.resume_writing()
