"""In-memory streams with unlimited buffering, for tests:
`MemorySendStream`, `MemoryReceiveStream`, `memory_stream_pump`,
`memory_stream_one_way_pair` and `memory_stream_pair`.

A `MemorySendStream` only appends what is sent to a buffer, and a
`MemoryReceiveStream` only hands out what was put in its buffer. Nothing
moves from one to the other unless someone pumps it (`memory_stream_pump`);
the pairs install hooks that pump on every send and on close, so data flows
at once, and a test can take those hooks away (or replace them with slower
ones) to simulate a stalled or trickling network.

Every public async method is a checkpoint. The send and receive operations
take two checkpoints instead of one, to give a second task using the same
stream at the same time (a bug) a chance to run into the first and get
`BusyResourceError`.

Also two helpers the lockstep streams share: `check_max_bytes` (the
``receive_some`` argument rule) and `make_stapled_pair` (two one-way pairs
into two two-way streams).
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar, final

from .. import BrokenResourceError, ClosedResourceError, WouldBlock
from .._conflict_detector import ConflictDetector
from .._highlevel_generic import StapledStream
from .._sync_close import ClosesSynchronously
from ..abc import ReceiveStream, SendStream
from ..lowlevel import ParkingLot, checkpoint

__all__ = [
    "MemoryReceiveStream",
    "MemorySendStream",
    "memory_stream_one_way_pair",
    "memory_stream_pair",
    "memory_stream_pump",
]

AsyncHook: TypeAlias = Callable[[], Awaitable[object]]
SyncHook: TypeAlias = Callable[[], object]
SendStreamT = TypeVar("SendStreamT", bound=SendStream)
ReceiveStreamT = TypeVar("ReceiveStreamT", bound=ReceiveStream)


def check_max_bytes(max_bytes: int | None) -> int | None:
    """Validate a ``receive_some``-style `max_bytes`: None, or an integer
    (anything with ``__index__``) of at least 1."""
    if max_bytes is None:
        return None
    max_bytes = operator.index(max_bytes)
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1 (or None for any amount), got {max_bytes}")
    return max_bytes


class _ByteBuffer:
    """An unbounded byte buffer with one reader at a time.

    Closing it is like closing the writing end of a pipe: `put` then raises
    `ClosedResourceError`, and the getters drain what is left, then return
    an empty bytearray (end of stream) forever.
    """

    __slots__ = ("_closed", "_data", "_getter_guard", "_waiters")

    def __init__(self) -> None:
        self._data = bytearray()
        self._closed = False
        self._waiters = ParkingLot()
        self._getter_guard = ConflictDetector(
            "another task is already taking data from this stream"
        )

    def _wake(self) -> None:
        # Tested first so that put/close work outside a run when nobody waits.
        if self._waiters:
            self._waiters.unpark_all()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def close_and_discard(self) -> None:
        self._data = bytearray()
        self.close()

    def put(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ClosedResourceError("this in-memory stream was closed")
        self._data += data
        if data:
            self._wake()

    def _take(self, max_bytes: int | None) -> bytearray:
        # Slicing with None takes everything.
        chunk = self._data[:max_bytes]
        del self._data[:max_bytes]
        return chunk

    def get_nowait(self, max_bytes: int | None) -> bytearray:
        with self._getter_guard:
            max_bytes = check_max_bytes(max_bytes)
            if not self._data and not self._closed:
                raise WouldBlock
            return self._take(max_bytes)

    async def get(self, max_bytes: int | None) -> bytearray:
        with self._getter_guard:
            max_bytes = check_max_bytes(max_bytes)
            if self._data or self._closed:
                await checkpoint()
            else:
                # Parking is the checkpoint. Loop because a wake-up only
                # means something happened, and a cancelled park takes
                # nothing.
                while not self._data and not self._closed:
                    await self._waiters.park()
            return self._take(max_bytes)


@final
class MemorySendStream(ClosesSynchronously, SendStream):
    """A `SendStream` that keeps what is sent in a buffer, for tests to
    inspect with `get_data` / `get_data_nowait` (or to move to a
    `MemoryReceiveStream` with `memory_stream_pump`).

    Args:
      send_all_hook: an async function called with no arguments at the end
        of every `send_all`, after the data is in the buffer.
      wait_send_all_might_not_block_hook: an async function called at the
        end of every `wait_send_all_might_not_block`.
      close_hook: a synchronous function called by every `close` and
        `aclose` (also repeated ones), after the stream is marked closed.

    The hooks are also attributes of the same names, which may be changed
    at any time (None means no hook). Whatever a hook raises propagates from
    the method that called it.
    """

    def __init__(
        self,
        send_all_hook: AsyncHook | None = None,
        wait_send_all_might_not_block_hook: AsyncHook | None = None,
        close_hook: SyncHook | None = None,
    ) -> None:
        self._guard = ConflictDetector("another task is already sending on this stream")
        self._outgoing = _ByteBuffer()
        self.send_all_hook = send_all_hook
        self.wait_send_all_might_not_block_hook = wait_send_all_might_not_block_hook
        self.close_hook = close_hook

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Append `data` to the buffer, then await `send_all_hook`.

        A checkpoint, before the data is added: if it is cancelled, nothing
        was sent (unless the hook itself is cancelled, after the append).

        Raises:
          BusyResourceError: if another task is in `send_all` or
            `wait_send_all_might_not_block` on this stream.
          ClosedResourceError: if the stream was closed.
        """
        await self._put_then_call(data, "send_all_hook")

    async def wait_send_all_might_not_block(self) -> None:
        """Await `wait_send_all_might_not_block_hook` (if any), then return:
        the buffer is unbounded, so sending never blocks on it.

        A checkpoint. Raises `BusyResourceError` like `send_all`, and
        `ClosedResourceError` if the stream was closed.
        """
        # An empty put raises ClosedResourceError if the stream is closed.
        await self._put_then_call(b"", "wait_send_all_might_not_block_hook")

    async def _put_then_call(self, data: bytes | bytearray | memoryview, hook_name: str) -> None:
        """What `send_all` and `wait_send_all_might_not_block` do: with the
        guard held, two checkpoints, `data` into the buffer, then the hook
        attribute `hook_name` if it is set (read only then, so a hook
        replaced during the checkpoints is the one called)."""
        with self._guard:
            await checkpoint()
            await checkpoint()
            self._outgoing.put(data)
            hook: AsyncHook | None = getattr(self, hook_name)
            if hook is not None:
                await hook()

    def close(self) -> None:
        """Mark the stream closed, then call `close_hook`. Data already in
        the buffer stays there for `get_data`, which then reports the end
        of the stream. Idempotent (the hook runs every time). Not a
        checkpoint; usable outside a run."""
        self._outgoing.close()
        if self.close_hook is not None:
            self.close_hook()

    async def get_data(self, max_bytes: int | None = None) -> bytearray:
        """Take data out of the buffer, waiting until there is some.

        Returns at most `max_bytes` bytes (all there is if None), and an
        empty bytearray once the stream is closed and the buffer drained.
        A checkpoint; if cancelled, nothing was taken.

        Raises:
          BusyResourceError: if another task is already in `get_data`.
          ValueError: if `max_bytes` is less than 1.
        """
        return await self._outgoing.get(max_bytes)

    def get_data_nowait(self, max_bytes: int | None = None) -> bytearray:
        """Like `get_data`, but raise `WouldBlock` instead of waiting when
        the buffer is empty and the stream is open. Not a checkpoint."""
        return self._outgoing.get_nowait(max_bytes)


@final
class MemoryReceiveStream(ClosesSynchronously, ReceiveStream):
    """A `ReceiveStream` that returns what tests put into its buffer with
    `put_data` (or move there from a `MemorySendStream` with
    `memory_stream_pump`), and reports the end of the stream after
    `put_eof`.

    Args:
      receive_some_hook: an async function called with no arguments at the
        start of every `receive_some`, before it looks at the buffer (so a
        hook that calls `put_data` feeds the very call that ran it).
      close_hook: a synchronous function called by every `close` and
        `aclose`, after the stream is closed.

    The hooks are also attributes of the same names, which may be changed
    at any time.
    """

    def __init__(
        self,
        receive_some_hook: AsyncHook | None = None,
        close_hook: SyncHook | None = None,
    ) -> None:
        self._guard = ConflictDetector("another task is already receiving on this stream")
        self._incoming = _ByteBuffer()
        # The buffer being closed means the peer sent EOF; this flag means
        # this end was closed. close() sets both, so a receiver it wakes
        # must look at this flag to tell the two apart.
        self._closed = False
        self.receive_some_hook = receive_some_hook
        self.close_hook = close_hook

    async def receive_some(self, max_bytes: int | None = None) -> bytearray:
        """Await `receive_some_hook` (if any), then take up to `max_bytes`
        bytes (all there is if None) from the buffer, waiting until there
        is some. Returns an empty bytearray after `put_eof` once the buffer
        is drained.

        A checkpoint; if cancelled while waiting, nothing was taken.

        Raises:
          ValueError: if `max_bytes` is less than 1 (TypeError if it is not
            an integer).
          BusyResourceError: if another task is already receiving.
          ClosedResourceError: if this stream was closed, also while this
            call was waiting.
        """
        max_bytes = check_max_bytes(max_bytes)
        with self._guard:
            await checkpoint()
            await checkpoint()
            if self._closed:
                raise ClosedResourceError("this MemoryReceiveStream was closed")
            if self.receive_some_hook is not None:
                await self.receive_some_hook()
            data = await self._incoming.get(max_bytes)
            if self._closed:
                raise ClosedResourceError("this MemoryReceiveStream was closed while receiving")
            return data

    def close(self) -> None:
        """Close the stream: data still in the buffer is discarded, a task
        waiting in `receive_some` wakes with `ClosedResourceError`, and
        `put_data` raises `ClosedResourceError` from now on. Then call
        `close_hook`. Idempotent. Not a checkpoint."""
        self._closed = True
        self._incoming.close_and_discard()
        if self.close_hook is not None:
            self.close_hook()

    def put_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append `data` to the buffer, waking a waiting `receive_some`.
        Raises `ClosedResourceError` after `put_eof` or `close`."""
        self._incoming.put(data)

    def put_eof(self) -> None:
        """Mark the end of the stream: once the buffer is drained,
        `receive_some` returns an empty bytearray. Idempotent."""
        self._incoming.close()


def memory_stream_pump(
    memory_send_stream: MemorySendStream,
    memory_receive_stream: MemoryReceiveStream,
    *,
    max_bytes: int | None = None,
) -> bool:
    """Move data from a `MemorySendStream`'s buffer into a
    `MemoryReceiveStream`'s buffer, without waiting.

    Moves at most `max_bytes` bytes (everything there is if None). If the
    send stream is closed and its buffer is empty, it puts an EOF into the
    receive stream instead. Returns True if it moved data or an EOF, False
    if there was nothing to move.

    Synchronous (not a checkpoint); `memory_stream_one_way_pair` calls it
    from the send stream's hooks.

    Raises:
      BrokenResourceError: if the receive stream is closed (the data taken
        from the send stream is lost, as on a network whose peer left).
    """
    try:
        data = memory_send_stream.get_data_nowait(max_bytes)
    except WouldBlock:
        return False
    try:
        if data:
            memory_receive_stream.put_data(data)
        else:
            memory_receive_stream.put_eof()
    except ClosedResourceError:
        raise BrokenResourceError("the MemoryReceiveStream at the other end was closed") from None
    return True


def memory_stream_one_way_pair() -> tuple[MemorySendStream, MemoryReceiveStream]:
    """Create a `MemorySendStream` and a `MemoryReceiveStream` connected so
    that what is sent on the first arrives on the second, like `os.pipe`
    in memory (data flows from the left item to the right one).

    The send stream's `~MemorySendStream.send_all_hook` and
    `~MemorySendStream.close_hook` call `memory_stream_pump`; set the
    send hook to None to hold data back (a stalled network), or replace it
    to deliver data in pieces. Buffering is unlimited: `send_all` never
    waits for the receiver. Once the receiver is closed, `send_all` raises
    `BrokenResourceError`; closing the sender then is not an error.
    """
    send_stream = MemorySendStream()
    receive_stream = MemoryReceiveStream()

    def pump() -> None:
        memory_stream_pump(send_stream, receive_stream)

    async def pump_after_send() -> None:  # async only because hooks are awaited
        pump()

    def pump_on_close() -> None:
        # Closing our end must not fail because the peer closed theirs
        # first: whatever was left to deliver is lost either way.
        try:
            pump()
        except BrokenResourceError:
            pass

    send_stream.send_all_hook = pump_after_send
    send_stream.close_hook = pump_on_close
    return send_stream, receive_stream


def make_stapled_pair(
    one_way_pair: Callable[[], tuple[SendStreamT, ReceiveStreamT]],
) -> tuple[StapledStream[SendStreamT, ReceiveStreamT], StapledStream[SendStreamT, ReceiveStreamT]]:
    """Two one-way pairs stapled crosswise into two connected two-way
    streams."""
    left_send, right_receive = one_way_pair()
    right_send, left_receive = one_way_pair()
    return StapledStream(left_send, left_receive), StapledStream(right_send, right_receive)


def memory_stream_pair() -> tuple[
    StapledStream[MemorySendStream, MemoryReceiveStream],
    StapledStream[MemorySendStream, MemoryReceiveStream],
]:
    """Create two connected two-way in-memory streams, like
    `socket.socketpair` without the operating system.

    Each is a `tether.StapledStream` of a `MemorySendStream` and a
    `MemoryReceiveStream` from two `memory_stream_one_way_pair` calls, so
    every piece is public and can be rewired: for example, to deliver data
    from left to right one byte per second::

        left, right = memory_stream_pair()

        async def trickle():
            while memory_stream_pump(left.send_stream, right.receive_stream, max_bytes=1):
                await tether.sleep(1)

        left.send_stream.send_all_hook = trickle

    (with `MockClock(autojump_threshold=0)` such a test still runs
    instantly). `send_eof` on either stream closes its sending half; the
    peer then reads the end of the stream.
    """
    return make_stapled_pair(memory_stream_one_way_pair)
