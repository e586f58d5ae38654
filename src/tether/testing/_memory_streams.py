"""In-memory streams with unlimited buffering, for tests:
`MemorySendStream`, `MemoryReceiveStream`, `memory_stream_pump`,
`memory_stream_one_way_pair` and `memory_stream_pair`.

What they must do (trio's documented behaviour, and tether's tests):

* A `MemorySendStream` keeps what is sent until the test takes it out
  (``get_data`` / ``get_data_nowait``); a `MemoryReceiveStream` hands out
  what the test put in (``put_data``, ending with ``put_eof``). Nothing
  moves from one to the other unless someone pumps it
  (`memory_stream_pump`); the pairs pump from the send stream's hooks, so
  data flows at once, and a test can take the hooks away or replace them
  to stall or trickle the "network".
* A read returns everything waiting (up to `max_bytes`), however many
  writes it came in, and an empty bytearray once the writer is done and
  everything was read. Writing never blocks.
* Every public async method is a checkpoint; a call cancelled at its
  checkpoint did nothing. Concurrent use of one end raises
  `BusyResourceError`; a closed end raises `ClosedResourceError`.
* Closing a `MemoryReceiveStream` discards what it holds and wakes its
  waiting reader with `ClosedResourceError`. Closing a `MemorySendStream`
  keeps what it holds for ``get_data``.
* The streams can be filled and closed outside a run.

Design: the bytes of each buffer travel through a tether memory channel
(unbounded) as the chunks they were written in; `_ChunkPipe` wraps one
such channel. The channel supplies the FIFO, the waiting, the wake-up on
close and the end-of-data signal (`EndOfChannel` once the writing handle
is closed and everything was received). The pipe adds what a byte stream
needs on top: a read gathers all the chunks already waiting, and when
`max_bytes` cuts a chunk, the cut-off tail is kept (`_leftover`) for the
next read. A chunk the channel handed to a waiting reader cannot be lost
to cancellation (the channel guarantees it), so a cancelled read took
nothing. The channel's ``receive`` does not yield when it reports the end
of data, so the pipe adds a schedule point there (every read is a full
checkpoint). Closing a `MemoryReceiveStream` closes the channel's reading
handle, which wakes a waiting reader; the pipe turns that into the
stream's own `ClosedResourceError`.

The streams own no waiting logic of their own: each method is its
`ConflictDetector`, a checkpoint, one pipe operation and the hook (read
from the attribute at the moment it is needed).

Also two helpers the lockstep streams share: `receive_limit` (the
``receive_some`` argument rule) and `staple_crosswise` (two one-way pairs
into two two-way streams).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Awaitable, Callable
from typing import TypeVar, final

from .. import (
    BrokenResourceError,
    ClosedResourceError,
    EndOfChannel,
    WouldBlock,
    open_memory_channel,
)
from .._conflict_detector import ConflictDetector
from .._highlevel_generic import StapledStream
from .._sync_close import ClosesSynchronously
from ..abc import ReceiveStream, SendStream
from ..lowlevel import cancel_shielded_checkpoint, checkpoint

__all__ = [
    "MemoryReceiveStream",
    "MemorySendStream",
    "memory_stream_one_way_pair",
    "memory_stream_pair",
    "memory_stream_pump",
]

#: An async hook: called with no arguments and awaited.
StreamHook = Callable[[], Awaitable[object]]
#: A close hook: called with no arguments, not awaited.
CloseHook = Callable[[], object]
Sender = TypeVar("Sender", bound=SendStream)
Receiver = TypeVar("Receiver", bound=ReceiveStream)


def receive_limit(max_bytes: int | None) -> int | None:
    """The ``receive_some(max_bytes)`` argument rule: None (any amount) or
    an integer (anything with ``__index__``) of at least 1; returns it as
    an `int`."""
    if max_bytes is None:
        return None
    limit = operator.index(max_bytes)
    if limit < 1:
        raise ValueError(f"max_bytes must be at least 1 (or None for any amount), got {limit}")
    return limit


async def _await_hook(hook: StreamHook | None) -> None:
    # The caller passes the attribute as it is at this moment: a test may
    # swap a hook at any time, and the call uses the one set now.
    if hook is not None:
        await hook()


def _run_close_hook(hook: CloseHook | None) -> None:
    if hook is not None:
        hook()


class _ChunkPipe:
    """A one-reader byte buffer made of a memory channel of chunks (see the
    module docstring). `write` after `finish` or `discard` raises
    `ClosedResourceError` (with `closed_message` after `discard`,
    `finished_message` after `finish`); a read after `discard` (or woken by
    it) raises `ClosedResourceError` with `closed_message`. The read methods take a
    limit already checked by `receive_limit`."""

    __slots__ = (
        "_closed_message",
        "_finished_message",
        "_inlet",
        "_leftover",
        "_outlet",
        "_reader",
        "discarded",
        "writable",
    )

    def __init__(self, busy_message: str, closed_message: str, finished_message: str) -> None:
        self._inlet, self._outlet = open_memory_channel[bytes](math.inf)
        self._leftover = b""
        self.writable = True
        self.discarded = False
        self._closed_message = closed_message
        self._finished_message = finished_message
        self._reader = ConflictDetector(busy_message)

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if not self.writable:
            raise ClosedResourceError(
                self._closed_message if self.discarded else self._finished_message
            )
        if len(chunk) > 0:
            # A copy: the writer may change its buffer afterwards.
            self._inlet.send_nowait(bytes(chunk))

    def finish(self) -> None:
        """No more writes; the reader gets the end of data after the rest.
        Idempotent."""
        self.writable = False
        self._inlet.close()

    def discard(self) -> None:
        """Drop what is buffered and close the reading side: a waiting
        reader wakes with `ClosedResourceError`. Idempotent."""
        self.writable = False
        self.discarded = True
        self._leftover = b""
        self._outlet.close()

    def read_nowait(self, limit: int | None) -> bytearray:
        """What `read` returns, or `WouldBlock` instead of waiting."""
        with self._reader:
            if self.discarded:
                raise ClosedResourceError(self._closed_message)
            if self._leftover:
                return self._gather(limit)
            try:
                head = self._outlet.receive_nowait()
            except EndOfChannel:
                return bytearray()
            self._leftover = head
            return self._gather(limit)

    async def read(self, limit: int | None) -> bytearray:
        """Everything waiting, up to `limit`, waiting for a first chunk; an
        empty bytearray at the end of data. A checkpoint; if cancelled,
        nothing was taken."""
        with self._reader:
            if self.discarded:
                await checkpoint()
                raise ClosedResourceError(self._closed_message)
            if self._leftover:
                await checkpoint()
            else:
                try:
                    # Always a cancel point; a schedule point too unless
                    # it raises EndOfChannel.
                    self._leftover = await self._outlet.receive()
                except EndOfChannel:
                    await cancel_shielded_checkpoint()
                    return bytearray()
                except ClosedResourceError:
                    # `discard` while we waited.
                    raise ClosedResourceError(self._closed_message) from None
            if self.discarded:
                # A chunk handed over just before a `discard` is dropped
                # with the rest of the buffer.
                self._leftover = b""
                raise ClosedResourceError(self._closed_message)
            return self._gather(limit)

    def _gather(self, limit: int | None) -> bytearray:
        """`_leftover` plus the chunks already waiting, cut at `limit`; what
        is cut off stays in `_leftover`."""
        out = bytearray(self._leftover)
        self._leftover = b""
        while limit is None or len(out) < limit:
            try:
                out += self._outlet.receive_nowait()
            except (WouldBlock, EndOfChannel):
                # Nothing more yet, or the end of data (the next read
                # reports it).
                break
        if limit is not None and len(out) > limit:
            self._leftover = bytes(out[limit:])
            del out[limit:]
        return out


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
        send_all_hook: StreamHook | None = None,
        wait_send_all_might_not_block_hook: StreamHook | None = None,
        close_hook: CloseHook | None = None,
    ) -> None:
        self.send_all_hook: StreamHook | None = send_all_hook
        self.wait_send_all_might_not_block_hook: StreamHook | None = (
            wait_send_all_might_not_block_hook
        )
        self.close_hook: CloseHook | None = close_hook
        self._buffer = _ChunkPipe(
            "another task is already taking data out of this MemorySendStream",
            "this MemorySendStream was closed",
            "this MemorySendStream was closed",
        )
        self._sending = ConflictDetector("another task is already sending on this MemorySendStream")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Append `data` to the buffer, then await `send_all_hook`.

        A checkpoint, before the data is added: if it is cancelled, nothing
        was sent (unless the hook itself is cancelled, after the append).

        Raises:
          BusyResourceError: if another task is in `send_all` or
            `wait_send_all_might_not_block` on this stream.
          ClosedResourceError: if the stream was closed.
        """
        with self._sending:
            await checkpoint()
            self._buffer.write(data)
            await _await_hook(self.send_all_hook)

    async def wait_send_all_might_not_block(self) -> None:
        """Await `wait_send_all_might_not_block_hook` (if any), then return:
        the buffer is unbounded, so sending never blocks on it.

        A checkpoint. Raises `BusyResourceError` like `send_all`, and
        `ClosedResourceError` if the stream was closed.
        """
        with self._sending:
            await checkpoint()
            # An empty write sends nothing but fails on a closed stream.
            self._buffer.write(b"")
            await _await_hook(self.wait_send_all_might_not_block_hook)

    def close(self) -> None:
        """Mark the stream closed, then call `close_hook`. Data already in
        the buffer stays there for `get_data`, which then reports the end
        of the stream. Idempotent (the hook runs every time). Not a
        checkpoint; usable outside a run."""
        self._buffer.finish()
        _run_close_hook(self.close_hook)

    async def get_data(self, max_bytes: int | None = None) -> bytearray:
        """Take data out of the buffer, waiting until there is some.

        Returns at most `max_bytes` bytes (all there is if None), and an
        empty bytearray once the stream is closed and the buffer drained.
        A checkpoint; if cancelled, nothing was taken.

        Raises:
          BusyResourceError: if another task is already taking data out.
          ValueError: if `max_bytes` is less than 1.
        """
        return await self._buffer.read(receive_limit(max_bytes))

    def get_data_nowait(self, max_bytes: int | None = None) -> bytearray:
        """Like `get_data`, but raise `WouldBlock` instead of waiting when
        the buffer is empty and the stream is open. Not a checkpoint."""
        return self._buffer.read_nowait(receive_limit(max_bytes))


@final
class MemoryReceiveStream(ClosesSynchronously, ReceiveStream):
    """A `ReceiveStream` that returns what tests put into its buffer with
    `put_data` (or move there from a `MemorySendStream` with
    `memory_stream_pump`), and reports the end of the stream after
    `put_eof`.

    Args:
      receive_some_hook: an async function called with no arguments at the
        start of every `receive_some` on an open stream, before it looks at
        the buffer (so a hook that calls `put_data` feeds the very call
        that ran it).
      close_hook: a synchronous function called by every `close` and
        `aclose`, after the stream is closed.

    The hooks are also attributes of the same names, which may be changed
    at any time.
    """

    def __init__(
        self,
        receive_some_hook: StreamHook | None = None,
        close_hook: CloseHook | None = None,
    ) -> None:
        self.receive_some_hook: StreamHook | None = receive_some_hook
        self.close_hook: CloseHook | None = close_hook
        busy = "another task is already receiving on this MemoryReceiveStream"
        self._buffer = _ChunkPipe(
            busy,
            "this MemoryReceiveStream was closed",
            "put_eof was already called on this MemoryReceiveStream",
        )
        # Held around the hook as well as the read.
        self._receiving = ConflictDetector(busy)

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
        limit = receive_limit(max_bytes)
        with self._receiving:
            if self.receive_some_hook is not None and not self._buffer.discarded:
                await self.receive_some_hook()
            return await self._buffer.read(limit)

    def close(self) -> None:
        """Close the stream: data still in the buffer is discarded, a task
        waiting in `receive_some` wakes with `ClosedResourceError`, and
        `put_data` raises `ClosedResourceError` from now on. Then call
        `close_hook`. Idempotent. Not a checkpoint."""
        self._buffer.discard()
        _run_close_hook(self.close_hook)

    def put_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append `data` to the buffer, waking a waiting `receive_some`.
        Raises `ClosedResourceError` after `put_eof` or `close`."""
        self._buffer.write(data)

    def put_eof(self) -> None:
        """Mark the end of the stream: once the buffer is drained,
        `receive_some` returns an empty bytearray. Idempotent."""
        self._buffer.finish()


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
    target = memory_receive_stream
    try:
        chunk = memory_send_stream.get_data_nowait(max_bytes)
    except WouldBlock:
        return False
    try:
        if chunk:
            target.put_data(chunk)
        else:
            # An empty read from a send stream is its end of data.
            target.put_eof()
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
    `BrokenResourceError`.

    Closing the sender never fails: if the receiver was closed first, data
    still held back in the sender (a stalled network) is dropped silently,
    as a real network drops what was in flight when the peer left. (trio's
    pair raises `BrokenResourceError` from the sender's ``close`` then.) A
    test that must know calls `memory_stream_pump` itself before closing:
    it raises `BrokenResourceError`.
    """
    sender = MemorySendStream()
    receiver = MemoryReceiveStream()

    async def deliver() -> None:
        memory_stream_pump(sender, receiver)

    def deliver_on_close() -> None:
        try:
            memory_stream_pump(sender, receiver)
        except BrokenResourceError:
            pass  # the receiver left first; see the docstring

    sender.send_all_hook = deliver
    sender.close_hook = deliver_on_close
    return sender, receiver


def staple_crosswise(
    one_way_pair: Callable[[], tuple[Sender, Receiver]],
) -> tuple[StapledStream[Sender, Receiver], StapledStream[Sender, Receiver]]:
    """Two one-way pairs from `one_way_pair`, stapled crosswise into two
    connected two-way streams (each sends on one pipe and receives on the
    other)."""
    forward_send, forward_receive = one_way_pair()
    backward_send, backward_receive = one_way_pair()
    return (
        StapledStream(forward_send, backward_receive),
        StapledStream(backward_send, forward_receive),
    )


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
    return staple_crosswise(memory_stream_one_way_pair)
