"""Pipe transports: the loop's `connect_read_pipe` / `connect_write_pipe`.

Like the socket transports, they are driven by fd callbacks and follow
asyncio's behaviour: reading stops at EOF (``eof_received`` then
``connection_lost``); writing sends what it can at once and buffers the rest,
with asyncio's write flow control. A write pipe also watches its fd for
readability, which is how the closing of the far end shows up. Subprocess
pipes are these transports.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import warnings
from asyncio import transports
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._transports import (
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    await_or_close,
    report_fatal_error,
    set_result_unless_cancelled,
)

if TYPE_CHECKING:
    from ._loop import TetherEventLoop

logger = logging.getLogger("asyncio")

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class _PipeEnd:
    """What the read and the write end of a pipe transport share."""

    _pipe: Any
    _fileno: Any
    _protocol: Any
    _closing: bool

    def _state(self) -> str:
        return "closed" if self._pipe is None else ("closing" if self._closing else "open")

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def is_closing(self) -> bool:
        return self._closing

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            if self._pipe is not None:
                self._pipe.close()
            self._pipe = None
            self._protocol = None


class ReadPipeTransport(_PipeEnd, transports.ReadTransport):
    """Reads from a pipe (or socket, or character device) into a protocol."""

    max_size = 256 * 1024

    if TYPE_CHECKING:
        _extra: dict[str, Any]

    _pipe: Any = None

    def __init__(
        self,
        loop: TetherEventLoop,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra)
        self._extra["pipe"] = pipe
        self._loop = loop
        self._pipe = pipe
        self._fileno = pipe.fileno()
        self._protocol: Any = protocol
        self._closing = False
        self._paused = False
        mode = os.fstat(self._fileno).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            self._pipe = None
            self._fileno = None
            self._protocol = None
            raise ValueError("Pipe transport is for pipes/sockets only.")
        loop._transports[self._fileno] = self
        os.set_blocking(self._fileno, False)
        loop.call_soon(self._protocol.connection_made, self)
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self._fileno} {self._state()}>"

    def _start_reading(self) -> None:
        if self.is_reading():
            self._loop._add_reader(self._fileno, self._read_ready)

    def _read_ready(self) -> None:
        try:
            data = os.read(self._fileno, self.max_size)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
        else:
            if data:
                self._protocol.data_received(data)
            else:
                if self._loop.get_debug():
                    logger.info("%r was closed by peer", self)
                self._closing = True
                self._loop._remove_reader(self._fileno)
                self._loop.call_soon(self._protocol.eof_received)
                self._loop.call_soon(self._call_connection_lost, None)

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        if not self.is_reading():
            return
        self._paused = True
        self._loop._remove_reader(self._fileno)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._loop._add_reader(self._fileno, self._read_ready)

    def close(self) -> None:
        if not self._closing:
            self._close(None)

    def _fatal_error(
        self, exc: BaseException, message: str = "Fatal error on pipe transport"
    ) -> None:
        # (EIO: the child's pty closed.)
        expected = isinstance(exc, OSError) and exc.errno == 5
        report_fatal_error(self, exc, message, expected=expected)
        self._close(exc)

    def _close(self, exc: BaseException | None) -> None:
        self._closing = True
        self._loop._remove_reader(self._fileno)
        self._loop.call_soon(self._call_connection_lost, exc)


class WritePipeTransport(_PipeEnd, transports._FlowControlMixin, transports.WriteTransport):
    """Writes to a pipe (or socket, or character device), with asyncio's
    write flow control."""

    _pipe: Any = None

    if TYPE_CHECKING:
        # Provided by asyncio's flow-control mixin and BaseTransport at run
        # time; typeshed does not declare them.
        _extra: dict[str, Any]

        def _maybe_pause_protocol(self) -> None: ...

        def _maybe_resume_protocol(self) -> None: ...

    def __init__(
        self,
        loop: TetherEventLoop,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(extra, loop)
        self._extra["pipe"] = pipe
        self._loop: TetherEventLoop = loop
        self._pipe = pipe
        self._fileno = pipe.fileno()
        self._protocol: Any = protocol
        self._buffer = bytearray()
        self._conn_lost = 0
        self._closing = False
        mode = os.fstat(self._fileno).st_mode
        is_char = stat.S_ISCHR(mode)
        is_fifo = stat.S_ISFIFO(mode)
        is_socket = stat.S_ISSOCK(mode)
        if not (is_char or is_fifo or is_socket):
            self._pipe = None
            self._fileno = None
            self._protocol = None
            raise ValueError("Pipe transport is only for pipes, sockets and character devices")
        loop._transports[self._fileno] = self
        os.set_blocking(self._fileno, False)
        loop.call_soon(self._protocol.connection_made, self)
        if is_socket or (is_fifo and not sys.platform.startswith("aix")):
            # Readability of the write end means the read end was closed.
            loop.call_soon(loop._add_reader, self._fileno, self._read_ready)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} fd={self._fileno} {self._state()} bufsize={len(self._buffer)}>"
        )

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def _read_ready(self) -> None:
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        if self._buffer:
            self._close(BrokenPipeError())
        else:
            self._close()

    def write(self, data: Any) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if isinstance(data, bytearray):
            data = memoryview(data)
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            try:
                written = os.write(self._fileno, data)
            except (BlockingIOError, InterruptedError):
                written = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._conn_lost += 1
                self._fatal_error(exc, "Fatal write error on pipe transport")
                return
            if written == len(data):
                return
            if written > 0:
                data = memoryview(data)[written:]
            self._loop._add_writer(self._fileno, self._write_ready)
        self._buffer += data
        self._maybe_pause_protocol()

    def _write_ready(self) -> None:
        if not self._buffer:
            return
        try:
            written = os.write(self._fileno, self._buffer)
        except (BlockingIOError, InterruptedError):
            pass
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._buffer.clear()
            self._conn_lost += 1
            self._loop._remove_writer(self._fileno)
            self._fatal_error(exc, "Fatal write error on pipe transport")
        else:
            if written == len(self._buffer):
                self._buffer.clear()
                self._loop._remove_writer(self._fileno)
                self._maybe_resume_protocol()
                if self._closing:
                    self._loop._remove_reader(self._fileno)
                    self._call_connection_lost(None)
                return
            if written > 0:
                del self._buffer[:written]

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing:
            return
        assert self._pipe is not None
        self._closing = True
        if not self._buffer:
            self._loop._remove_reader(self._fileno)
            self._loop.call_soon(self._call_connection_lost, None)

    def close(self) -> None:
        if self._pipe is not None and not self._closing:
            self.write_eof()

    def abort(self) -> None:
        self._close(None)

    def _fatal_error(
        self, exc: BaseException, message: str = "Fatal error on pipe transport"
    ) -> None:
        report_fatal_error(self, exc, message, expected=isinstance(exc, OSError))
        self._close(exc)

    def _close(self, exc: BaseException | None = None) -> None:
        self._closing = True
        if self._buffer:
            self._loop._remove_writer(self._fileno)
        self._buffer.clear()
        self._loop._remove_reader(self._fileno)
        self._loop.call_soon(self._call_connection_lost, exc)


# -- the loop's connect_read_pipe / connect_write_pipe ---------------------------


async def _connect_pipe(
    loop: TetherEventLoop,
    protocol_factory: ProtocolFactory,
    pipe: Any,
    transport_class: type[ReadPipeTransport] | type[WritePipeTransport],
) -> tuple[Any, asyncio.BaseProtocol]:
    protocol = protocol_factory()
    waiter = loop.create_future()
    transport = transport_class(loop, pipe, protocol, waiter)
    await await_or_close(waiter, transport)
    return transport, protocol


async def connect_read_pipe(
    loop: TetherEventLoop, protocol_factory: ProtocolFactory, pipe: Any
) -> tuple[asyncio.ReadTransport, asyncio.BaseProtocol]:
    return await _connect_pipe(loop, protocol_factory, pipe, ReadPipeTransport)


async def connect_write_pipe(
    loop: TetherEventLoop, protocol_factory: ProtocolFactory, pipe: Any
) -> tuple[asyncio.WriteTransport, asyncio.BaseProtocol]:
    return await _connect_pipe(loop, protocol_factory, pipe, WritePipeTransport)
