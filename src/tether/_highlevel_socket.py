"""`SocketStream` and `SocketListener`: the byte-stream interfaces of
`tether.abc` over connected and listening sockets.

Invariants:

- At most one task sends (`send_all`, `wait_send_all_might_not_block`,
  `send_eof`) and at most one receives (`receive_some`) on a stream at a
  time; a second one gets `BusyResourceError` at once.
- Socket errors come out as stream errors: a socket closed under the caller
  is `ClosedResourceError`, any other `OSError` on a connection is
  `BrokenResourceError` (with the `OSError` as its cause).
- `SocketListener.accept` skips errors that concern only the one incoming
  connection (reset before it was accepted, refused by a firewall, ...) and
  raises the others, including running out of file descriptors, which
  `serve_listeners` handles by backing off.

Speed: `send_all` and `receive_some` have fast paths that call the
standard library socket directly when the stream wraps a tether socket
(test doubles go through their `tether.socket.SocketType` methods, the
general path), and a receive that follows one which emptied the socket
waits for readability before trying, instead of first paying for a receive
that fails with `BlockingIOError`. They are what the ``echo_cpu`` row of
``benchmarks/bench_net.py`` (TCP echo, 50 clients, CPU per round trip)
measures: with either fast path turned off (``--variant``), a round trip
cost about 10-25% more CPU. Either way each call is a checkpoint, as
trio's: a cancel point before anything is sent or received, a schedule
point before it returns. ``tests/test_highlevel_socket.py`` runs the same
script over both paths and requires the same results.
"""

from __future__ import annotations

import errno
import socket as _stdlib_socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import NoReturn, overload

from ._conflict_detector import ConflictDetector
from ._core import (
    BrokenResourceError,
    ClosedResourceError,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    wait_readable,
    wait_writable,
)
from ._socket import SocketType, _SocketType, setsockopt_arguments
from .abc import HalfCloseableStream, Listener

#: What `receive_some` asks the kernel for when no `max_bytes` is given.
DEFAULT_RECEIVE_SIZE = 65536

#: TCP_NOTSENT_LOWAT for new streams: keep at most this much unsent data in
#: the kernel, so that `wait_send_all_might_not_block` means "the kernel
#: needs more soon" rather than "a megabyte of buffer is free", and data is
#: not stuck in a deep kernel queue where the program can no longer choose
#: what to send next.
NOTSENT_LOWAT = 16 * 1024

# errnos that mean "this socket object is closed" rather than "the connection
# broke": EBADF on Unix, ENOTSOCK on Windows.
_CLOSED_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})

# Errors accept() reports about the one connection it was going to hand
# over, which went bad before it was accepted. Linux passes on nearly any
# network error of the pending connection this way; the BSDs use
# ECONNABORTED. Skipping them is what other servers (asyncio, Twisted,
# libuv) do.
_SKIPPED_ACCEPT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "ECONNRESET",
        "EPERM",  # Linux: refused by a firewall rule
        "EPROTO",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "ENOSR",
        "ESOCKTNOSUPPORT",
        "EPROTONOSUPPORT",
        "ETIMEDOUT",
    )
    if hasattr(errno, name)
)


def _raise_stream_error(exc: OSError) -> NoReturn:
    """Raise the stream error that stands for the socket error `exc`."""
    if exc.errno in _CLOSED_ERRNOS:
        raise ClosedResourceError("this socket was already closed") from None
    raise BrokenResourceError(f"socket connection broken: {exc}") from exc


@contextmanager
def _as_stream_errors() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        _raise_stream_error(exc)


def _check_stream_socket(socket: SocketType, owner: str) -> None:
    """What `owner`'s constructor requires of `socket`: a tether socket
    (a `tether.socket.SocketType`) of type SOCK_STREAM."""
    if not isinstance(socket, SocketType):
        raise TypeError(
            f"{owner} requires a tether socket, not {socket!r}; wrap a "
            "standard library socket with tether.socket.from_stdlib_socket()"
        )
    if socket.type != _stdlib_socket.SOCK_STREAM:
        raise ValueError(f"{owner} requires a SOCK_STREAM socket")


async def _send_rest(raw: _stdlib_socket.socket, data: bytes | bytearray, sent: int) -> None:
    """Send ``data[sent:]`` through `raw`, waiting whenever its buffer is
    full; the part of `SocketStream.send_all` after a first send that did
    not take everything. The waits are the checkpoint."""
    with memoryview(data) as view:
        while True:
            await wait_writable(raw.fileno())
            try:
                # A slice of a memoryview copies nothing; released at once
                # so that `data` can be resized by the caller afterwards.
                with view[sent:] as rest:
                    sent += raw.send(rest)
            except BlockingIOError:
                # A spurious wakeup.
                continue
            if sent == len(view):
                return


class SocketStream(HalfCloseableStream):
    """A `tether.abc.HalfCloseableStream` over a connected SOCK_STREAM
    socket (TCP or Unix).

    The stream owns the socket: `aclose` closes it. `socket` is the wrapped
    `tether.socket.SocketType`, for socket-level calls (`getpeername`, ...).

    New TCP streams get ``TCP_NODELAY`` (small writes go out at once, which
    is what programs that build their own messages want) and, where the
    platform has it, ``TCP_NOTSENT_LOWAT`` of 16 KiB. Change them with
    `setsockopt`.

    Every method is a checkpoint. One task may send and another receive at
    the same time; two tasks sending (or two receiving) at once is an error
    (`BusyResourceError`). Errors: `ClosedResourceError` once the stream is
    closed (also for a task waiting at that moment), `BrokenResourceError`
    when the connection fails.

    Raises:
      TypeError: (from the constructor) `socket` is not a tether socket.
      ValueError: (from the constructor) `socket` is not SOCK_STREAM.
    """

    def __init__(self, socket: SocketType) -> None:
        _check_stream_socket(socket, "SocketStream")
        self.socket = socket
        # Whether the last receive emptied the socket (see receive_some).
        self._receive_drained = False
        self._send_guard = ConflictDetector("another task is already sending on this SocketStream")
        self._receive_guard = ConflictDetector(
            "another task is already receiving on this SocketStream"
        )
        # Unix sockets have no TCP options.
        with suppress(OSError):
            self.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, True)
        if hasattr(_stdlib_socket, "TCP_NOTSENT_LOWAT"):
            with suppress(OSError):
                self.setsockopt(
                    _stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NOTSENT_LOWAT, NOTSENT_LOWAT
                )

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of `data`, waiting while the kernel's buffer is full.

        A checkpoint. If cancelled, an unknown prefix of `data` was sent:
        the stream can then only be closed.

        Raises:
          BusyResourceError: another task is sending on this stream.
          ClosedResourceError: the stream was closed, or `send_eof` called.
          BrokenResourceError: the connection broke (e.g. the peer reset it).
        """
        socket = self.socket
        if socket.did_shutdown_SHUT_WR:
            raise ClosedResourceError("can't send data after sending EOF")
        guard = self._send_guard
        if guard.held:
            raise guard.busy()
        guard.held = True
        try:
            # The fast path: a tether socket (not a test double) and a
            # message the kernel takes in one call, which is the usual case
            # for anything smaller than the socket's free buffer space. It
            # is `socket.send`'s pattern written out, with the conflict
            # check inline: bench_net.py's echo_cpu costs 11-15% more CPU
            # per round trip through `_send_all_slowly`.
            if type(socket) is _SocketType and (type(data) is bytes or type(data) is bytearray):
                size = len(data)
                if size:
                    raw = socket._sock
                    await checkpoint_if_cancelled()
                    try:
                        sent = raw.send(data)
                    except BlockingIOError:
                        sent = 0
                    except BaseException:
                        # A failure is a checkpoint too.
                        await cancel_shielded_checkpoint()
                        raise
                    if sent == size:
                        await cancel_shielded_checkpoint()
                        return
                    await _send_rest(raw, data, sent)
                    return
            await self._send_all_slowly(data)
        except OSError as exc:
            _raise_stream_error(exc)
        finally:
            guard.held = False

    async def _send_all_slowly(self, data: bytes | bytearray | memoryview) -> None:
        """`send_all` for what the fast path does not take: empty data,
        other buffer types, sockets that are not tether's own."""
        # Counted in bytes whatever the buffer's item format is.
        with memoryview(data) as given, given.cast("B") as view:
            if not view:
                if self.socket.fileno() == -1:
                    raise ClosedResourceError("this socket was already closed")
                await checkpoint()
                return
            sent = 0
            while sent < len(view):
                # A slice of a memoryview copies nothing; released at once
                # so that `data` can be resized by the caller afterwards.
                with view[sent:] as rest:
                    sent += await self.socket.send(rest)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the kernel could take more data. A checkpoint;
        cancellable.

        Raises the same errors as `send_all`.
        """
        with self._send_guard:
            if self.socket.fileno() == -1:
                raise ClosedResourceError("this socket was already closed")
            with _as_stream_errors():
                await self.socket.wait_writable()

    async def send_eof(self) -> None:
        """Shut down the sending side (``shutdown(SHUT_WR)``): the peer
        reads end of stream once it has everything sent before. Receiving
        still works. Idempotent. A checkpoint.

        Raises:
          BusyResourceError: another task is sending on this stream.
          ClosedResourceError: the stream was closed.
          BrokenResourceError: the connection broke.
        """
        with self._send_guard:
            await checkpoint()
            # A second shutdown fails on some systems (macOS), but send_eof
            # must be idempotent.
            if self.socket.did_shutdown_SHUT_WR:
                return
            with _as_stream_errors():
                self.socket.shutdown(_stdlib_socket.SHUT_WR)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Wait for data and return up to `max_bytes` of it (65536 by
        default); ``b""`` once the peer has sent end of stream.

        A checkpoint. If cancelled, nothing was received.

        Raises:
          ValueError: `max_bytes` is less than 1.
          BusyResourceError: another task is receiving on this stream.
          ClosedResourceError: the stream was closed (also while waiting).
          BrokenResourceError: the connection broke.
        """
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        elif max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, not {max_bytes!r}")
        guard = self._receive_guard
        if guard.held:
            raise guard.busy()
        guard.held = True
        try:
            socket = self.socket
            if type(socket) is not _SocketType:
                return await socket.recv(max_bytes)
            # The fast path: `socket.recv`'s pattern written out, waiting
            # first after a receive that emptied the socket. Without it,
            # bench_net.py's echo_cpu costs 15-25% more CPU per round trip.
            raw = socket._sock
            # Waits are given the fd number rather than the socket: the
            # kernel then skips looking it up (a socket that is open now
            # stays open until the wait starts: nothing runs in between).
            fd = raw.fileno()
            if self._receive_drained and fd != -1:
                # The last receive emptied the socket, so more data needs a
                # new send from the peer, which usually takes longer than
                # getting here: wait for it rather than pay for a receive
                # that fails with BlockingIOError. The wait is the
                # checkpoint. Only after a receive that returned data: a
                # connected socket reports every end (data, end of stream,
                # an error) as readable, which a fresh socket might not.
                await wait_readable(fd)
            else:
                await checkpoint_if_cancelled()
                try:
                    data = raw.recv(max_bytes)
                except BlockingIOError:
                    await wait_readable(fd)
                except BaseException:
                    # A failure is a checkpoint too.
                    await cancel_shielded_checkpoint()
                    raise
                else:
                    await cancel_shielded_checkpoint()
                    self._receive_drained = len(data) < max_bytes
                    return data
            while True:
                try:
                    data = raw.recv(max_bytes)
                except BlockingIOError:
                    # A spurious wakeup.
                    await wait_readable(fd)
                else:
                    self._receive_drained = len(data) < max_bytes
                    return data
        except OSError as exc:
            _raise_stream_error(exc)
        finally:
            guard.held = False

    async def aclose(self) -> None:
        """Close the stream and its socket. Idempotent. Tasks waiting on it
        wake with `ClosedResourceError`. A checkpoint; if cancelled, the
        stream is closed all the same."""
        self.socket.close()
        await checkpoint()

    @overload
    def setsockopt(self, level: int, option: int, value: int | bytes) -> None: ...

    @overload
    def setsockopt(self, level: int, option: int, value: None, length: int) -> None: ...

    def setsockopt(
        self, level: int, option: int, value: int | bytes | None, length: int | None = None
    ) -> None:
        """Set an option on the socket, as `socket.socket.setsockopt`
        (either a `value`, or ``None`` and a `length`)."""
        self.socket.setsockopt(
            level, option, *setsockopt_arguments(value, length, names=("option", "length"))
        )

    @overload
    def getsockopt(self, level: int, option: int) -> int: ...

    @overload
    def getsockopt(self, level: int, option: int, buffersize: int) -> bytes: ...

    def getsockopt(self, level: int, option: int, buffersize: int = 0) -> int | bytes:
        """Read an option of the socket, as `socket.socket.getsockopt`."""
        if buffersize == 0:
            return self.socket.getsockopt(level, option)
        return self.socket.getsockopt(level, option, buffersize)


class SocketListener(Listener[SocketStream]):
    """A `tether.abc.Listener` that accepts connections on a listening
    SOCK_STREAM socket, as `SocketStream` objects.

    The listener owns the socket: `aclose` closes it. `socket` is the
    wrapped `tether.socket.SocketType`.

    Raises:
      TypeError: (from the constructor) `socket` is not a tether socket.
      ValueError: (from the constructor) `socket` is not SOCK_STREAM, or not
        listening (checked where the platform can tell).
    """

    def __init__(self, socket: SocketType) -> None:
        _check_stream_socket(socket, "SocketListener")
        try:
            listening = socket.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_ACCEPTCONN)
        except OSError:
            # Not every platform can tell (macOS): trust the caller.
            pass
        else:
            if not listening:
                raise ValueError("SocketListener requires a listening socket")
        self.socket = socket
        self._accept_guard = ConflictDetector(
            "another task is already accepting on this SocketListener"
        )

    async def accept(self) -> SocketStream:
        """Wait for an incoming connection and return it as a
        `SocketStream`.

        A checkpoint; if cancelled, no connection was taken. Connections
        that failed before they could be accepted are skipped silently.

        Raises:
          BusyResourceError: another task is accepting on this listener.
          ClosedResourceError: the listener (or its socket) was closed,
            also while waiting.
          OSError: any other error of ``accept``, notably running out of
            file descriptors or memory (``EMFILE``, ``ENFILE``,
            ``ENOBUFS``, ``ENOMEM``): nothing is retried here, so that the
            caller chooses; `serve_listeners` logs them and retries after
            a pause.
        """
        with self._accept_guard:
            while True:
                try:
                    sock, _ = await self.socket.accept()
                except OSError as exc:
                    if exc.errno in _CLOSED_ERRNOS:
                        raise ClosedResourceError("this listener was already closed") from None
                    if exc.errno not in _SKIPPED_ACCEPT_ERRNOS:
                        raise
                else:
                    try:
                        return SocketStream(sock)
                    except BaseException:
                        sock.close()
                        raise

    async def aclose(self) -> None:
        """Close the listener and its socket. Idempotent. A task waiting in
        `accept` wakes with `ClosedResourceError`. A checkpoint; closes even
        if cancelled."""
        self.socket.close()
        await checkpoint()
