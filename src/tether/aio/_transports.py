"""Socket transports: asyncio's transport/protocol layer over fd callbacks.

A `SocketTransport` reads whenever the loop reports its socket readable (a
reader callback, see `_selector.py`, which is a kernel task waiting with
`lowlevel.wait_readable`) and hands the data to its protocol; `write` sends
at once when it can and buffers the rest behind a writer callback. Flow
control is asyncio's: the protocol is paused above the high-water mark of
the write buffer and resumed below the low one; `pause_reading` removes the
reader callback.

The standard library's streams (`asyncio.StreamReader`/`StreamWriter`,
`open_connection`, `start_server`) and its SSL protocol sit on top of these
transports unchanged.

Ordering is asyncio's: `connection_made` is called at the next loop
iteration, reading starts after it, and `connection_lost` is called once,
at the iteration after the transport closed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import warnings
from asyncio import transports, trsock
from asyncio.constants import _SendfileMode
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._loop import TetherEventLoop

logger = logging.getLogger("asyncio")

#: After this many writes to a lost connection, warn (as asyncio does).
LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5

#: `asyncio.Server._attach`/`_detach` take the transport from Python 3.13 on.
SERVER_TRACKS_TRANSPORTS = (
    "transport" in inspect.signature(asyncio.Server._attach).parameters  # type: ignore[attr-defined]
)


def server_attach(server: Any, transport: Any) -> None:
    if SERVER_TRACKS_TRANSPORTS:
        server._attach(transport)
    else:
        server._attach()


def server_detach(server: Any, transport: Any) -> None:
    if SERVER_TRACKS_TRANSPORTS:
        server._detach(transport)
    else:
        server._detach()


def set_nodelay(sock: socket.socket) -> None:
    if (
        hasattr(socket, "TCP_NODELAY")
        and sock.family in {socket.AF_INET, socket.AF_INET6}
        and sock.type == socket.SOCK_STREAM
        and sock.proto == socket.IPPROTO_TCP
    ):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def report_fatal_error(transport: Any, exc: BaseException, message: str, *, expected: bool) -> None:
    """Report the error that ends `transport`, as asyncio's transports do:
    an expected one (an OSError, such as a connection reset by the peer) is
    only logged, in debug mode; any other goes to the loop's exception
    handler."""
    loop = transport._loop
    if expected:
        if loop.get_debug():
            logger.debug("%r: %s", transport, message, exc_info=True)
    else:
        loop.call_exception_handler(
            {
                "message": message,
                "exception": exc,
                "transport": transport,
                "protocol": transport._protocol,
            }
        )


async def await_or_close(waiter: asyncio.Future[Any], transport: asyncio.BaseTransport) -> None:
    """Wait for a new transport's `waiter` (its connection made, or its
    handshake done); if that fails or is cancelled, close the transport and
    raise. Cancellable: the transport is closed."""
    try:
        await waiter
    except BaseException:
        transport.close()
        raise


def set_result_unless_cancelled(future: Any, result: Any) -> None:
    if not future.cancelled():
        future.set_result(result)


#: The size of each loop's read buffer (`read_view`), and the most a
#: transport reads at once unless its ``max_size`` says otherwise.
READ_BUFFER_SIZE = 256 * 1024

#: What `write` accepts. (A tuple: a `|` union would be built at every call.)
BYTES_LIKE = (bytes, bytearray, memoryview)


def read_view(loop: Any) -> memoryview:
    """The loop's read buffer: every transport of the loop reads into it
    (``recv_into``) and hands the protocol a copy of just the bytes that
    came (``view[:n].tobytes()``).

    Why not ``recv(max_size)``, as asyncio does: that allocates a
    `max_size` bytes object (256 KiB) for every read and shrinks it to what
    arrived. glibc serves an allocation that large with ``mmap`` until the
    process happens to free a large block (its mmap threshold then rises),
    so depending on the process's history each small read costs three
    more system calls and a page fault: 14.6 µs instead of 2.6 µs for a
    64-byte read on this machine. Reading into one buffer and copying the
    bytes out costs the same as the fast case, and never the slow one.
    (uvloop reads the same way.) Only transport callbacks use it, one at a
    time on the loop's thread, and the copy is made before the protocol
    sees the data."""
    view: memoryview | None = loop._read_view
    if view is None:
        view = loop._read_view = memoryview(bytearray(READ_BUFFER_SIZE))
    return view


def add_socket_extra(extra: dict[str, Any], sock: socket.socket) -> None:
    """Fill a socket transport's ``get_extra_info`` entries as asyncio does:
    ``socket``, ``sockname`` and (unless given already) ``peername``, None
    where the socket cannot tell."""
    extra["socket"] = trsock.TransportSocket(sock)
    try:
        extra["sockname"] = sock.getsockname()
    except OSError:
        extra["sockname"] = None
    if "peername" not in extra:
        try:
            extra["peername"] = sock.getpeername()
        except OSError:
            extra["peername"] = None


class SocketTransport(transports._FlowControlMixin, transports.Transport):
    """A stream-socket transport (TCP or Unix). Created by the loop's
    ``create_connection``, ``create_server`` and friends."""

    #: Most bytes one read asks for (into the loop's buffer, see
    #: `read_view`, when it is no larger than that).
    max_size = READ_BUFFER_SIZE

    if TYPE_CHECKING:
        # Provided by asyncio's flow-control mixin and BaseTransport at run
        # time; typeshed does not declare them.
        _extra: dict[str, Any]

        def _maybe_pause_protocol(self) -> None: ...

        def _maybe_resume_protocol(self) -> None: ...

    #: `loop.start_tls` may upgrade it.
    _start_tls_compatible = True
    #: `loop.sendfile` copies the file into it (there is no ``os.sendfile``
    #: path: asyncio's "fallback").
    _sendfile_compatible = _SendfileMode.FALLBACK

    _sock: socket.socket | None = None

    def __init__(
        self,
        loop: TetherEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[Any] | None = None,
        extra: dict[str, Any] | None = None,
        server: Any = None,
    ) -> None:
        super().__init__(extra, loop)
        add_socket_extra(self._extra, sock)
        self._loop: TetherEventLoop = loop
        self._sock = sock
        self._sock_fd = sock.fileno()
        loop._transports[self._sock_fd] = self
        self._protocol_connected = False
        self._read_ready_cb: Any = None
        #: The loop's read buffer (one per loop, see `read_view`).
        self._read_view = read_view(loop)
        self.set_protocol(protocol)
        self._server = server
        self._buffer = bytearray()
        self._conn_lost = 0
        self._closing = False
        self._paused = False
        self._eof = False
        if server is not None:
            server_attach(server, self)
        set_nodelay(sock)
        loop.call_soon(self._protocol.connection_made, self)
        # Reading starts only once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        if self._sock is not None:
            info.append("read=" + ("polling" if self.is_reading() else "idle"))
            info.append(
                f"write=<{'polling' if self._buffer else 'idle'}, bufsize={len(self._buffer)}>"
            )
        return f"<{' '.join(info)}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()

    # -- protocol --------------------------------------------------------------

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        if isinstance(protocol, asyncio.BufferedProtocol):
            self._read_ready_cb = self._read_ready_into_buffer
        else:
            self._read_ready_cb = self._read_ready_data
        self._protocol: Any = protocol
        self._protocol_connected = True

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    # -- reading ---------------------------------------------------------------

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        if not self.is_reading():
            return
        self._paused = True
        self._loop._remove_reader(self._sock_fd)
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._start_reading()
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    def _start_reading(self) -> None:
        if self.is_reading():
            self._loop._add_reader(self._sock_fd, self._read_ready)

    def _read_ready(self) -> None:
        self._read_ready_cb()

    def _read_ready_data(self) -> None:
        if self._conn_lost:
            return
        # (Set while the connection is not lost.)
        sock: socket.socket = self._sock  # type: ignore[assignment]
        max_size = self.max_size
        try:
            if max_size == READ_BUFFER_SIZE:
                # (The default size, tested alone: every read comes here.)
                view = self._read_view
                data = view[: sock.recv_into(view)].tobytes()
            elif 0 < max_size < READ_BUFFER_SIZE:
                view = self._read_view
                data = view[: sock.recv_into(view, max_size)].tobytes()
            else:
                data = sock.recv(max_size)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not data:
            self._on_eof()
            return
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _read_ready_into_buffer(self) -> None:
        if self._conn_lost:
            return
        assert self._sock is not None
        try:
            buf = self._protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        try:
            nbytes = self._sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not nbytes:
            self._on_eof()
            return
        try:
            self._protocol.buffer_updated(nbytes)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    def _on_eof(self) -> None:
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if keep_open:
            # Half-closed: the protocol may still write, but nothing more can
            # be read.
            self._loop._remove_reader(self._sock_fd)
        else:
            self.close()

    # -- writing ---------------------------------------------------------------

    def write(self, data: Any) -> None:
        if not isinstance(data, BYTES_LIKE):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if self._conn_lost:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            # (Set while the connection is not lost.)
            sock: socket.socket = self._sock  # type: ignore[assignment]
            try:
                sent = sock.send(data)
            except (BlockingIOError, InterruptedError):
                pass
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on socket transport")
                return
            else:
                if sent == len(data) and type(data) is not memoryview:
                    # All sent (the usual case): no view needed. (A
                    # memoryview's len() counts items, not bytes.)
                    return
                data = memoryview(data)[sent:]
                if not data:
                    return
            self._loop._add_writer(self._sock_fd, self._write_ready)
        self._buffer.extend(data)
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        if self._eof:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        data = b"".join(list_of_data)
        if data:
            self.write(data)

    def _write_ready(self) -> None:
        if self._conn_lost or not self._buffer:
            return
        assert self._sock is not None
        try:
            sent = self._sock.send(self._buffer)
        except (BlockingIOError, InterruptedError):
            pass
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop._remove_writer(self._sock_fd)
            self._buffer.clear()
            self._fatal_error(exc, "Fatal write error on socket transport")
        else:
            if sent:
                del self._buffer[:sent]
            self._maybe_resume_protocol()  # may write more
            if not self._buffer:
                self._loop._remove_writer(self._sock_fd)
                if self._closing:
                    self._call_connection_lost(None)
                elif self._eof:
                    self._sock.shutdown(socket.SHUT_WR)

    def write_eof(self) -> None:
        if self._closing or self._eof:
            return
        self._eof = True
        if not self._buffer:
            assert self._sock is not None
            self._sock.shutdown(socket.SHUT_WR)

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    # -- closing ---------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop._remove_reader(self._sock_fd)
        if not self._buffer:
            self._conn_lost += 1
            self._loop._remove_writer(self._sock_fd)
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        report_fatal_error(self, exc, message, expected=isinstance(exc, OSError))
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._loop._remove_writer(self._sock_fd)
        if not self._closing:
            self._closing = True
            self._loop._remove_reader(self._sock_fd)
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            if self._sock is not None:
                self._sock.close()
            self._sock = None
            self._protocol = None
            # (A bound method of this transport: a cycle, left to the
            # garbage collector if kept. A stale read event finds nothing.)
            self._read_ready_cb = _nothing_to_read
            server = self._server
            if server is not None:
                server_detach(server, self)
                self._server = None


def _nothing_to_read() -> None:
    """The read callback of a transport whose connection is lost."""
