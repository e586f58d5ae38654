"""Byte streams over sockets: `SocketStream` (a connected SOCK_STREAM
socket as a `tether.abc.HalfCloseableStream`) and `SocketListener` (a
listening one as a `tether.abc.Listener` of streams).

What the module promises
------------------------
- Each direction of a stream has one user at a time: sending
  (`send_all`, `wait_send_all_might_not_block`, `send_eof`) and receiving
  (`receive_some`) are tracked apart, so one task may send while another
  receives, and a second sender (or receiver) fails at once with
  `BusyResourceError`. Same for two tasks in `SocketListener.accept`.
- The stream vocabulary replaces the socket one: an `OSError` saying the
  socket object is closed becomes `ClosedResourceError`; any other
  `OSError` of a connection becomes `BrokenResourceError` whose
  ``__cause__`` is the `OSError`.
- Every async method is a checkpoint: cancellable before it has done
  anything, and yielding to other tasks before it returns, whether it
  waited or not.
- `SocketListener.accept` passes over failures that belong to the one
  pending connection (the peer reset it, a firewall refused it) and
  raises the rest, among them the running-out-of-resources errors that
  `serve_listeners` answers by backing off.

How it is built
---------------
A stream decides at construction how it will move bytes. Over tether's
own socket class it keeps the standard library socket inside (``_raw``)
and calls it directly, waiting on the descriptor only when a call would
block; over any other `SocketType` (a test double, a wrapper) ``_raw`` is
None and the stream goes through the object's async ``send``/``recv``.
The direct route saves one coroutine per call, which is most of the
per-message CPU in ``benchmarks/bench_net.py``'s ``echo_cpu`` row;
``tests/test_highlevel_socket.py`` replays one script over both routes and
requires the same transcript.

The receive side also remembers whether its last read left the socket
empty (``_ran_dry``). The next read then waits for readability first
rather than paying for a system call that would fail with
`BlockingIOError`: more data needs a new packet from the peer, which has
almost never arrived yet.

`OSError` is translated in one place (`_raise_as_stream_error`), and the
accept failures that may be passed over are one table
(`_PENDING_CONNECTION_ERRORS`).
"""

from __future__ import annotations

import errno
import socket as _stdlib_socket
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

#: How many bytes `receive_some` asks for when the caller names no limit.
DEFAULT_RECEIVE_SIZE = 65536

#: The TCP_NOTSENT_LOWAT a new stream gets: the kernel holds at most this
#: much data that has not gone out yet, so `wait_send_all_might_not_block`
#: wakes when the kernel is about to need more (not when a megabyte of
#: buffer is free), and the program keeps the choice of what to send next
#: instead of committing it to a deep kernel queue.
NOTSENT_LOWAT = 16 * 1024

#: Options every new TCP stream gets, where the platform has them: small
#: writes leave at once (programs that frame their own messages want
#: that), and the unsent-data limit above.
_TCP_STREAM_OPTIONS = (("TCP_NODELAY", 1), ("TCP_NOTSENT_LOWAT", NOTSENT_LOWAT))

# The errnos with which a call on a socket object that was closed fails:
# EBADF on Unix, ENOTSOCK on Windows.
_SOCKET_GONE = frozenset({errno.EBADF, errno.ENOTSOCK})

# accept() errors that describe the pending connection, not the listener:
# that connection went bad before it could be taken, and the next one may
# be fine. Linux reports most network errors of the pending connection this
# way, the BSDs ECONNABORTED; servers elsewhere (asyncio, Twisted, libuv)
# pass over the same set.
_PENDING_CONNECTION_ERRORS = frozenset(
    code
    for code in (
        getattr(errno, name, None)
        for name in (
            "ECONNABORTED",  # the peer gave up first (BSD, Linux)
            "ECONNRESET",  # reset while queued
            "EPROTO",  # protocol error on the new connection
            "EPERM",  # Linux: a firewall rule refused it
            "ETIMEDOUT",
            "EHOSTDOWN",
            "EHOSTUNREACH",
            "ENETDOWN",
            "ENETUNREACH",
            "ENONET",
            "ENOPROTOOPT",
            "ENOSR",
            "EOPNOTSUPP",
            "EPROTONOSUPPORT",
            "ESOCKTNOSUPPORT",
        )
    )
    if code is not None
)


def _raise_as_stream_error(exc: OSError) -> NoReturn:
    """Raise the stream error that stands for the socket error `exc`: the
    socket object is closed, or the connection broke (then with `exc` as
    the cause)."""
    if exc.errno in _SOCKET_GONE:
        raise ClosedResourceError("the socket under this stream is closed") from None
    raise BrokenResourceError(f"the connection broke: {exc}") from exc


def _require_stream_socket(candidate: object, owner: str) -> None:
    """Refuse, for `owner`'s constructor, anything but a tether socket of
    type SOCK_STREAM."""
    if not isinstance(candidate, SocketType):
        raise TypeError(
            f"{owner} requires a tether socket, not {candidate!r}; wrap a "
            "standard library socket with tether.socket.from_stdlib_socket()"
        )
    if candidate.type != _stdlib_socket.SOCK_STREAM:
        # Words a trio test matches.
        raise ValueError(f"{owner} requires a SOCK_STREAM socket")


async def _close_and_checkpoint(sock: SocketType) -> None:
    # Closed first, so that cancelling the checkpoint cannot leave it open.
    sock.close()
    await checkpoint()


class SocketStream(HalfCloseableStream):
    """A `tether.abc.HalfCloseableStream` over a connected SOCK_STREAM
    socket (TCP or Unix).

    The stream owns `socket` (the `tether.socket.SocketType` it wraps,
    there for socket-level calls such as ``getpeername``): closing the
    stream closes it.

    A new TCP stream has ``TCP_NODELAY`` set, and ``TCP_NOTSENT_LOWAT`` of
    16 KiB where the platform knows it; `setsockopt` changes either.

    All methods that wait are checkpoints. Sending and receiving may
    happen at once from two tasks; two senders (or two receivers) at once
    get `BusyResourceError`. A closed stream, or a task waiting on a stream
    when it gets closed, gets `ClosedResourceError`; a failed connection
    gets `BrokenResourceError`.

    Raises:
      TypeError: (constructor) `socket` is not a tether socket.
      ValueError: (constructor) `socket` is not of type SOCK_STREAM.
    """

    def __init__(self, socket: SocketType) -> None:
        _require_stream_socket(socket, "SocketStream")
        self.socket = socket
        # The standard library socket to call directly, or None to go
        # through `socket`'s own methods (see the module docstring).
        self._raw = socket._sock if type(socket) is _SocketType else None
        self._ran_dry = False
        self._sending = ConflictDetector("another task is already sending on this SocketStream")
        self._receiving = ConflictDetector("another task is already receiving on this SocketStream")
        for name, value in _TCP_STREAM_OPTIONS:
            option = getattr(_stdlib_socket, name, None)
            if option is None:
                continue
            try:
                socket.setsockopt(_stdlib_socket.IPPROTO_TCP, option, value)
            except OSError:
                # Not TCP (a Unix socket), or the system refuses it: the
                # stream works without.
                pass

    def _ensure_open(self) -> None:
        if self.socket.fileno() < 0:
            raise ClosedResourceError("the socket under this stream is closed")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send every byte of `data`, waiting whenever the kernel's buffer
        is full.

        A checkpoint. A cancelled call may have sent any prefix of `data`;
        the stream is then only good for closing.

        Raises:
          BusyResourceError: another task is sending on this stream.
          ClosedResourceError: the stream is closed, or `send_eof` was
            called.
          BrokenResourceError: the connection failed (the peer reset it,
            ...).
        """
        if self.socket.did_shutdown_SHUT_WR:
            raise ClosedResourceError("can't send data after sending EOF")
        sending = self._sending
        # The detector's test and set written out: this is a hot path.
        if sending.held:
            raise sending.busy()
        sending.held = True
        try:
            raw = self._raw
            if raw is None or not data or type(data) not in (bytes, bytearray):
                await self._send_through_socket(data)
                return
            # Direct: most messages fit the kernel's free buffer space and
            # go in one call without waiting.
            await checkpoint_if_cancelled()
            try:
                sent = raw.send(data)
            except BlockingIOError:
                sent = 0
            except BaseException:
                # Failing is a checkpoint too.
                await cancel_shielded_checkpoint()
                raise
            if sent < len(data):
                await _send_remainder(raw, data, sent)
            else:
                await cancel_shielded_checkpoint()
        except OSError as exc:
            _raise_as_stream_error(exc)
        finally:
            sending.held = False

    async def _send_through_socket(self, data: bytes | bytearray | memoryview) -> None:
        """The part of `send_all` for empty data, other buffer types and
        sockets that are not tether's own: the socket's async ``send``."""
        # Bytes, whatever the item size of the caller's buffer.
        with memoryview(data) as given, given.cast("B") as octets:
            total = len(octets)
            if total == 0:
                self._ensure_open()
                await checkpoint()
                return
            done = 0
            while done != total:
                # Released before the next round, so that the caller may
                # resize `data` once send_all has returned.
                with octets[done:] as rest:
                    done += await self.socket.send(rest)

    async def wait_send_all_might_not_block(self) -> None:
        """Return once the kernel could take more data to send. A
        checkpoint; cancellable.

        Raises the same errors as `send_all`.
        """
        with self._sending:
            self._ensure_open()
            try:
                await self.socket.wait_writable()
            except OSError as exc:
                _raise_as_stream_error(exc)

    async def send_eof(self) -> None:
        """Close the sending direction (``shutdown(SHUT_WR)``): the peer
        reads end-of-stream after everything sent so far. Receiving goes
        on working. Calling it again does nothing. A checkpoint.

        Raises:
          BusyResourceError: another task is sending on this stream.
          ClosedResourceError: the stream is closed.
          BrokenResourceError: the connection failed.
        """
        with self._sending:
            await checkpoint()
            sock = self.socket
            # Some systems (macOS) refuse a second shutdown; this method
            # promises to be idempotent, so the second one is not made.
            if not sock.did_shutdown_SHUT_WR:
                try:
                    sock.shutdown(_stdlib_socket.SHUT_WR)
                except OSError as exc:
                    _raise_as_stream_error(exc)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Wait until data arrives and return at most `max_bytes` of it
        (65536 when not given); ``b""`` once the peer has ended its side.

        A checkpoint. A cancelled call has received nothing.

        Raises:
          ValueError: `max_bytes` is below 1.
          BusyResourceError: another task is receiving on this stream.
          ClosedResourceError: the stream is closed (also while waiting).
          BrokenResourceError: the connection failed.
        """
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE_SIZE
        elif max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, not {max_bytes!r}")
        receiving = self._receiving
        if receiving.held:
            raise receiving.busy()
        receiving.held = True
        try:
            raw = self._raw
            if raw is None:
                return await self.socket.recv(max_bytes)
            # Direct, written out here rather than in a helper, which would
            # cost every receive a coroutine more. The waits take the
            # descriptor number, which spares the kernel a lookup; the
            # socket cannot close between here and a wait, since no other
            # task runs in between.
            fd = raw.fileno()
            if fd >= 0 and self._ran_dry:
                # The wait is the checkpoint. Only after a read that
                # returned something: a connected socket is readable at
                # data, at end of stream and at an error alike, which a
                # fresh one might not be.
                await wait_readable(fd)
            else:
                await checkpoint_if_cancelled()
                try:
                    chunk = raw.recv(max_bytes)
                except BlockingIOError:
                    await wait_readable(fd)
                except BaseException:
                    await cancel_shielded_checkpoint()
                    raise
                else:
                    await cancel_shielded_checkpoint()
                    self._ran_dry = len(chunk) < max_bytes
                    return chunk
            # Readable now (or woken for nothing, then wait again).
            while True:
                try:
                    chunk = raw.recv(max_bytes)
                except BlockingIOError:
                    await wait_readable(fd)
                    continue
                self._ran_dry = len(chunk) < max_bytes
                return chunk
        except OSError as exc:
            _raise_as_stream_error(exc)
        finally:
            receiving.held = False

    async def aclose(self) -> None:
        """Close the stream and its socket; tasks waiting on it wake with
        `ClosedResourceError`. Idempotent. A checkpoint; a cancelled call
        has closed the stream all the same."""
        await _close_and_checkpoint(self.socket)

    @overload
    def setsockopt(self, level: int, option: int, value: None, length: int) -> None: ...

    @overload
    def setsockopt(self, level: int, option: int, value: int | bytes) -> None: ...

    def setsockopt(
        self, level: int, option: int, value: int | bytes | None, length: int | None = None
    ) -> None:
        """Set a socket option as `socket.socket.setsockopt` does: pass a
        `value`, or ``None`` and a `length`. Not a checkpoint.

        Raises:
          TypeError: both or neither of `value` and `length` given.
        """
        rest = setsockopt_arguments(value, length, names=("option", "length"))
        self.socket.setsockopt(level, option, *rest)

    @overload
    def getsockopt(self, level: int, option: int, buffersize: int) -> bytes: ...

    @overload
    def getsockopt(self, level: int, option: int) -> int: ...

    def getsockopt(self, level: int, option: int, buffersize: int = 0) -> int | bytes:
        """Read a socket option as `socket.socket.getsockopt` does: an int,
        or with a `buffersize`, the raw bytes. Not a checkpoint."""
        sock = self.socket
        if buffersize:
            return sock.getsockopt(level, option, buffersize)
        return sock.getsockopt(level, option)


async def _send_remainder(
    raw: _stdlib_socket.socket, data: bytes | bytearray | memoryview, sent: int
) -> None:
    """Finish a direct `SocketStream.send_all` whose first call sent only
    `sent` bytes: wait for room, send more, until all of `data` is out.
    The first wait is the call's checkpoint."""
    end = len(data)
    with memoryview(data) as whole:
        while sent < end:
            await wait_writable(raw.fileno())
            # A slice of a memoryview shares the buffer; it is released at
            # once so that the caller can resize `data` afterwards.
            with whole[sent:] as rest:
                try:
                    sent += raw.send(rest)
                except BlockingIOError:
                    # Woken without room after all.
                    pass


class SocketListener(Listener[SocketStream]):
    """A `tether.abc.Listener` over a listening SOCK_STREAM socket: each
    `accept` returns the next incoming connection as a `SocketStream`.

    The listener owns `socket` (the wrapped `tether.socket.SocketType`):
    `aclose` closes it.

    Raises:
      TypeError: (constructor) `socket` is not a tether socket.
      ValueError: (constructor) `socket` is not SOCK_STREAM, or is not
        listening (where the system can say).
    """

    def __init__(self, socket: SocketType) -> None:
        _require_stream_socket(socket, "SocketListener")
        if _listening(socket) is False:
            # Words a trio test matches.
            raise ValueError("SocketListener requires a listening socket")
        self.socket = socket
        self._accepting = ConflictDetector(
            "another task is already accepting on this SocketListener"
        )

    async def accept(self) -> SocketStream:
        """Wait for the next incoming connection and return it as a
        `SocketStream`.

        A checkpoint; a cancelled call has taken no connection. A
        connection that failed while it waited to be accepted is passed
        over without a word, and the call waits for the next one.

        Raises:
          BusyResourceError: another task is accepting on this listener.
          ClosedResourceError: the listener or its socket is closed (also
            while waiting).
          OSError: any other failure of ``accept``, in particular running
            out of descriptors or memory (``EMFILE``, ``ENFILE``,
            ``ENOBUFS``, ``ENOMEM``). It is not retried here, so that the
            caller decides; `serve_listeners` logs it and tries again
            after a pause.
        """
        with self._accepting:
            connection = await self._next_connection()
            while connection is None:
                connection = await self._next_connection()
        try:
            return SocketStream(connection)
        except BaseException:
            connection.close()
            raise

    async def _next_connection(self) -> SocketType | None:
        """One ``accept`` of the socket: the new socket, or None when the
        pending connection failed and was dropped."""
        try:
            connection, _ = await self.socket.accept()
        except OSError as exc:
            if exc.errno in _SOCKET_GONE:
                raise ClosedResourceError("this SocketListener is closed") from None
            if exc.errno in _PENDING_CONNECTION_ERRORS:
                return None
            raise
        return connection

    async def aclose(self) -> None:
        """Close the listener and its socket; a task waiting in `accept`
        wakes with `ClosedResourceError`. Idempotent. A checkpoint; a
        cancelled call has closed it all the same."""
        await _close_and_checkpoint(self.socket)


def _listening(sock: SocketType) -> bool | None:
    """Whether `sock` is listening, or None where the system cannot tell
    (macOS has no SO_ACCEPTCONN to read)."""
    try:
        return bool(sock.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_ACCEPTCONN))
    except OSError:
        return None
