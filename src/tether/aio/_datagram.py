"""Datagram endpoints: the loop's `create_datagram_endpoint`.

A `DatagramTransport` receives whenever its socket is readable (a reader
callback) and hands each datagram to the protocol's ``datagram_received``;
``sendto`` sends at once when it can and queues the rest behind a writer
callback, with asyncio's write flow control. Errors of individual sends and
receives (an ICMP "port unreachable", say) go to ``error_received``, as in
asyncio.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import warnings
from asyncio import transports
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._sockets import ensure_resolved, remove_stale_unix_socket
from ._transports import (
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    add_socket_extra,
    await_or_close,
    report_fatal_error,
    set_result_unless_cancelled,
)

if TYPE_CHECKING:
    from ._loop import TetherEventLoop

logger = logging.getLogger("asyncio")


class DatagramTransport(transports._FlowControlMixin, transports.DatagramTransport):
    """A datagram (UDP or Unix datagram) socket transport."""

    max_size = 256 * 1024

    _sock: socket.socket | None = None

    if TYPE_CHECKING:
        _extra: dict[str, Any]

        def _maybe_pause_protocol(self) -> None: ...

        def _maybe_resume_protocol(self) -> None: ...

    def __init__(
        self,
        loop: TetherEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        address: Any = None,
        waiter: asyncio.Future[Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra, loop)
        add_socket_extra(self._extra, sock)
        self._loop: TetherEventLoop = loop
        self._sock = sock
        self._sock_fd = sock.fileno()
        loop._transports[self._sock_fd] = self
        self._protocol: Any = protocol
        self._address = address
        self._buffer: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._buffer_size = 0
        self._conn_lost = 0
        self._closing = False
        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        state = "closed" if self._sock is None else ("closing" if self._closing else "open")
        return f"<{type(self).__name__} fd={self._sock_fd} {state}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._sock.close()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    def is_closing(self) -> bool:
        return self._closing

    def _start_reading(self) -> None:
        if not self._closing:
            self._loop._add_reader(self._sock_fd, self._read_ready)

    def _read_ready(self) -> None:
        if self._conn_lost:
            return
        assert self._sock is not None
        try:
            data, addr = self._sock.recvfrom(self.max_size)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
        else:
            self._protocol.datagram_received(data, addr)

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if not data:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        if self._conn_lost and self._address:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            assert self._sock is not None
            try:
                if self._extra["peername"]:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._loop._add_writer(self._sock_fd, self._sendto_ready)
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self._buffer.append((bytes(data), addr))
        self._buffer_size += len(data)
        self._maybe_pause_protocol()

    def _sendto_ready(self) -> None:
        assert self._sock is not None
        while self._buffer:
            data, addr = self._buffer.popleft()
            self._buffer_size -= len(data)
            try:
                if self._extra["peername"]:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                self._buffer.appendleft((data, addr))
                self._buffer_size += len(data)
                break
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self._maybe_resume_protocol()
        if not self._buffer:
            self._loop._remove_writer(self._sock_fd)
            if self._closing:
                self._call_connection_lost(None)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop._remove_reader(self._sock_fd)
        if not self._buffer:
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        report_fatal_error(self, exc, message, expected=isinstance(exc, OSError))
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
            self._loop._remove_writer(self._sock_fd)
        if not self._closing:
            self._closing = True
            self._loop._remove_reader(self._sock_fd)
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            if self._sock is not None:
                self._sock.close()
            self._sock = None
            self._protocol = None


async def create_datagram_endpoint(
    loop: TetherEventLoop,
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    local_addr: Any = None,
    remote_addr: Any = None,
    *,
    family: int = 0,
    proto: int = 0,
    flags: int = 0,
    reuse_port: bool | None = None,
    allow_broadcast: bool | None = None,
    sock: socket.socket | None = None,
) -> tuple[DatagramTransport, asyncio.BaseProtocol]:
    remote: Any = None
    if sock is not None:
        if sock.type == socket.SOCK_STREAM:
            raise ValueError(f"A datagram socket was expected, got {sock!r}")
        if local_addr or remote_addr or family or proto or flags or reuse_port or allow_broadcast:
            raise ValueError(
                "socket modifier keyword arguments can not be used when sock is specified."
            )
        sock.setblocking(False)
    else:
        pairs = await _address_pairs(loop, local_addr, remote_addr, family, proto, flags)
        errors: list[OSError] = []
        for (pair_family, pair_proto), (local, remote_address) in pairs:
            candidate = None
            try:
                candidate = socket.socket(
                    family=pair_family, type=socket.SOCK_DGRAM, proto=pair_proto
                )
                if reuse_port:
                    if not hasattr(socket, "SO_REUSEPORT"):
                        raise ValueError("reuse_port not supported by socket module")
                    candidate.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if allow_broadcast:
                    candidate.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                candidate.setblocking(False)
                if local_addr:
                    candidate.bind(local)
                if remote_addr:
                    if not allow_broadcast:
                        await loop.sock_connect(candidate, remote_address)
                    remote = remote_address
            except OSError as exc:
                if candidate is not None:
                    candidate.close()
                errors.append(exc)
            except BaseException:
                if candidate is not None:
                    candidate.close()
                raise
            else:
                sock = candidate
                break
        else:
            raise errors[0]
    protocol = protocol_factory()
    waiter = loop.create_future()
    transport = DatagramTransport(loop, sock, protocol, remote, waiter)
    await await_or_close(waiter, transport)
    return transport, protocol


async def _address_pairs(
    loop: TetherEventLoop,
    local_addr: Any,
    remote_addr: Any,
    family: int,
    proto: int,
    flags: int,
) -> list[tuple[tuple[int, int], tuple[Any, Any]]]:
    if not (local_addr or remote_addr):
        if family == 0:
            raise ValueError("unexpected address family")
        return [((family, proto), (None, None))]
    if hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
        for addr in (local_addr, remote_addr):
            if addr is not None and not isinstance(addr, str):
                raise TypeError("string is expected")
        if local_addr:
            remove_stale_unix_socket(local_addr)
        return [((family, proto), (local_addr, remote_addr))]
    by_family: dict[tuple[int, int], list[Any]] = {}
    for index, addr in ((0, local_addr), (1, remote_addr)):
        if addr is None:
            continue
        if not (isinstance(addr, tuple) and len(addr) == 2):
            raise TypeError("2-tuple is expected")
        infos = await ensure_resolved(
            loop, addr, family=family, type=socket.SOCK_DGRAM, proto=proto, flags=flags
        )
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        for info_family, _, info_proto, _, address in infos:
            by_family.setdefault((info_family, info_proto), [None, None])[index] = address
    pairs = [
        (key, (pair[0], pair[1]))
        for key, pair in by_family.items()
        if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))
    ]
    if not pairs:
        raise ValueError("can not get address information")
    return pairs
