"""Pipe transports: the loop's `connect_read_pipe` / `connect_write_pipe`.

What they must do (asyncio's documented transport behaviour):

- Both ends accept only pipes, sockets and character devices (a regular
  file is always "ready", so fd callbacks make no sense for it); anything
  else is a ValueError at construction. The fd is made non-blocking and
  ``get_extra_info("pipe")`` returns the file object.
- ``connection_made`` runs at the next loop iteration, the caller's
  waiter is resolved after it, and ``connection_lost`` is called exactly
  once, at an iteration after the transport ended; after it the transport
  lets go of its pipe (closing it) and its protocol.
- Read end: each readable event reads one chunk and hands it to
  ``data_received``; an empty read is EOF: ``eof_received`` then
  ``connection_lost(None)``. ``pause_reading``/``resume_reading`` stop and
  restart the fd callback.
- Write end: ``write`` sends at once what the pipe takes and queues the
  rest behind a writer callback, with asyncio's high/low water marks
  (the flow-control mixin) pausing and resuming the protocol. ``close`` is
  ``write_eof``: the end comes once the queue has drained; ``abort`` ends
  at once and drops the queue. Writes after the end are counted and
  dropped, with a warning once they pile up. The write end of a FIFO or a
  socket also watches readability: that is how the reader going away shows
  up (ending with BrokenPipeError if data was still queued).
- Errors: a failed read or write ends the transport with that exception.
  OSErrors that mean "the other side went away" are only logged in debug
  mode, others go to the loop's exception handler (`report_fatal_error`).

Design: the shared `_PipeEndpoint` owns the fd's life: `_adopt` checks and
registers it, `_shut_down` is the one way a transport ends (it unhooks the
fd callbacks and schedules `_deliver_lost`), and `_phase` says where the
transport is (open, winding down, gone). The write queue is a bytearray
that only ever grows at the back and shrinks at the front.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
import sys
import warnings
from asyncio import transports
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from ._transports import (
    BYTES_LIKE,
    LOG_THRESHOLD_FOR_CONNLOST_WRITES,
    await_or_close,
    read_view,
    report_fatal_error,
    set_result_unless_cancelled,
)

if TYPE_CHECKING:
    from ._loop import TetherEventLoop

logger = logging.getLogger("asyncio")

ProtocolFactory = Callable[[], asyncio.BaseProtocol]

#: "open"; "draining" (write end: write_eof waits for the queue to empty);
#: "closing" (ended, connection_lost queued); "closed" (connection_lost ran).
Phase = Literal["open", "draining", "closing", "closed"]


class _PipeEndpoint:
    """The fd bookkeeping both pipe transports share."""

    # `_pipe` keeps asyncio's name: CPython's tests set it to None to tell a
    # transport they closed its file themselves.
    _pipe: Any = None
    _fileno: int | None = None
    _protocol: Any = None
    _phase: Phase = "closed"
    _loop: TetherEventLoop
    _extra: dict[str, Any]

    def _adopt(
        self,
        loop: TetherEventLoop,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        extra: dict[str, Any],
    ) -> int:
        """Check that `pipe` can be watched and take it over; return its st_mode."""
        fd = pipe.fileno()
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            raise ValueError(
                f"Pipe transport needs a pipe, a socket or a character device; fd {fd} is "
                "none of these (read regular files with ordinary file I/O instead)"
            )
        extra["pipe"] = pipe
        self._loop = loop
        self._pipe = pipe
        self._fileno = fd
        self._protocol = protocol
        self._phase = "open"
        os.set_blocking(fd, False)
        loop._transports[fd] = self
        loop.call_soon(protocol.connection_made, self)  # type: ignore[arg-type]
        return mode

    def _phase_name(self) -> str:
        return "closed" if self._pipe is None else self._phase

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._pipe.close()

    def is_closing(self) -> bool:
        return self._phase != "open"

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol  # type: ignore[no-any-return]

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def _unhook(self) -> None:
        """Remove the fd callbacks this transport registers (both ends
        watch readability; the write end extends this)."""
        self._loop._remove_reader(self._fileno)

    def _shut_down(self, exc: BaseException | None) -> None:
        """End the transport: no more fd callbacks, `connection_lost(exc)`
        soon. Ending twice is a no-op, so connection_lost runs once."""
        if self._phase in ("closing", "closed"):
            return
        self._phase = "closing"
        self._unhook()
        self._loop.call_soon(self._deliver_lost, exc)

    def _deliver_lost(self, exc: BaseException | None) -> None:
        protocol, pipe = self._protocol, self._pipe
        self._protocol = self._pipe = None
        self._phase = "closed"
        try:
            protocol.connection_lost(exc)
        finally:
            if pipe is not None:
                pipe.close()


class ReadPipeTransport(_PipeEndpoint, transports.ReadTransport):
    """Reads from a pipe (or socket, or character device) into a protocol."""

    def __init__(
        self,
        loop: TetherEventLoop,
        pipe: Any,
        protocol: asyncio.BaseProtocol,
        waiter: asyncio.Future[Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        transports.ReadTransport.__init__(self, extra)
        self._adopt(loop, pipe, protocol, self._extra)
        self._want_data = True
        loop.call_soon(self._watch)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        paused = "" if self._want_data else " paused"
        return f"<{type(self).__name__} fd={self._fileno} {self._phase_name()}{paused}>"

    def _watch(self) -> None:
        if self.is_reading():
            self._loop._add_reader(self._fileno, self._on_readable)

    def _on_readable(self) -> None:
        assert self._fileno is not None
        try:
            # (Into the loop's buffer, copied out: see `read_view`.)
            view = read_view(self._loop)
            chunk = view[: os.readv(self._fileno, (view,))].tobytes()
        except (BlockingIOError, InterruptedError):
            return  # a spurious wake-up: wait for the next one
        except OSError as exc:
            # EIO is how a pty reports that its other side closed.
            report_fatal_error(
                self, exc, "Fatal read error on pipe transport", expected=exc.errno == errno.EIO
            )
            self._shut_down(exc)
            return
        if chunk:
            self._protocol.data_received(chunk)
            return
        if self._loop.get_debug():
            logger.info("%r: the writer closed its end", self)
        # Queued first, so eof_received runs ahead of connection_lost.
        self._loop.call_soon(self._deliver_eof)
        self._shut_down(None)

    def _deliver_eof(self) -> None:
        self._protocol.eof_received()

    def is_reading(self) -> bool:
        return self._want_data and self._phase == "open"

    def pause_reading(self) -> None:
        if self.is_reading():
            self._want_data = False
            self._loop._remove_reader(self._fileno)

    def resume_reading(self) -> None:
        if self._phase == "open" and not self._want_data:
            self._want_data = True
            self._loop._add_reader(self._fileno, self._on_readable)

    def close(self) -> None:
        if self._phase == "open":
            self._shut_down(None)


class WritePipeTransport(_PipeEndpoint, transports._FlowControlMixin, transports.WriteTransport):
    """Writes to a pipe (or socket, or character device), with asyncio's
    write flow control."""

    if TYPE_CHECKING:
        # Provided by asyncio's flow-control mixin at run time; typeshed does
        # not declare them.
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
        transports._FlowControlMixin.__init__(self, extra, loop)
        self._queued = bytearray()
        self._dropped_writes = 0
        mode = self._adopt(loop, pipe, protocol, self._extra)
        # A write end becomes readable when the last reader goes away; AIX
        # reports FIFOs readable all the time, so it is not watched there.
        if stat.S_ISSOCK(mode) or (stat.S_ISFIFO(mode) and not sys.platform.startswith("aix")):
            loop.call_soon(loop._add_reader, self._fileno, self._on_peer_gone)
        if waiter is not None:
            loop.call_soon(set_result_unless_cancelled, waiter, None)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} fd={self._fileno} {self._phase_name()} "
            f"queued={len(self._queued)}>"
        )

    def get_write_buffer_size(self) -> int:
        return len(self._queued)

    def can_write_eof(self) -> bool:
        return True

    def _on_peer_gone(self) -> None:
        if self._loop.get_debug():
            logger.info("%r: the reader closed its end", self)
        self._drop_queue_and_end(BrokenPipeError() if self._queued else None)

    def _send(self, data: Any) -> int | None:
        """Write what the pipe takes now; None if the write failed (then
        the transport is ending)."""
        assert self._fileno is not None
        try:
            return os.write(self._fileno, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except Exception as exc:
            self._dropped_writes += 1
            report_fatal_error(
                self,
                exc,
                "Fatal write error on pipe transport",
                expected=isinstance(exc, OSError),
            )
            self._drop_queue_and_end(exc)
            return None

    def write(self, data: Any) -> None:
        if not isinstance(data, BYTES_LIKE):
            raise TypeError(
                "write() takes bytes, bytearray or memoryview, "
                f"got {type(data).__name__!r}; encode text first"
            )
        if not data:
            return
        if self._phase != "open" or self._dropped_writes:
            # Nowhere to write to any more: count, and complain when it
            # looks like the caller has not noticed.
            if self._dropped_writes >= LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            self._dropped_writes += 1
            return
        if self._queued:
            # Keep the order: new data waits behind what is already queued.
            self._queued += data
        else:
            sent = self._send(data)
            if sent is None or sent == len(data):
                return
            self._queued += memoryview(data)[sent:]
            self._loop._add_writer(self._fileno, self._on_writable)
        self._maybe_pause_protocol()

    def _on_writable(self) -> None:
        if not self._queued:
            return
        sent = self._send(self._queued)
        if sent is None:
            return
        del self._queued[:sent]
        if self._queued:
            return
        self._loop._remove_writer(self._fileno)
        self._maybe_resume_protocol()
        if self._phase == "draining":
            self._shut_down(None)

    def write_eof(self) -> None:
        if self._phase != "open":
            return
        if self._queued:
            self._phase = "draining"
        else:
            self._shut_down(None)

    def close(self) -> None:
        if self._pipe is not None:
            self.write_eof()

    def abort(self) -> None:
        self._drop_queue_and_end(None)

    def _unhook(self) -> None:
        super()._unhook()
        self._loop._remove_writer(self._fileno)

    def _drop_queue_and_end(self, exc: BaseException | None) -> None:
        self._queued.clear()
        self._shut_down(exc)


# -- the loop's connect_read_pipe / connect_write_pipe ---------------------------


async def connect_read_pipe(
    loop: TetherEventLoop, protocol_factory: ProtocolFactory, pipe: Any
) -> tuple[asyncio.ReadTransport, asyncio.BaseProtocol]:
    ready = loop.create_future()
    protocol = protocol_factory()
    transport = ReadPipeTransport(loop, pipe, protocol, ready)
    await await_or_close(ready, transport)
    return transport, protocol


async def connect_write_pipe(
    loop: TetherEventLoop, protocol_factory: ProtocolFactory, pipe: Any
) -> tuple[asyncio.WriteTransport, asyncio.BaseProtocol]:
    ready = loop.create_future()
    protocol = protocol_factory()
    transport = WritePipeTransport(loop, pipe, protocol, ready)
    await await_or_close(ready, transport)
    return transport, protocol
