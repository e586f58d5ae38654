"""Streams with no buffer at all, for tests: `lockstep_stream_one_way_pair`
and `lockstep_stream_pair`.

A lockstep `send_all` puts its data in a single slot shared with the
receiver and waits there until `receive_some` calls have taken all of it.
So a sender is always "clogged" until someone receives, which makes these
the extreme case for flow-control code and the natural clogged streams for
`check_one_way_stream` and friends.

State of one pipe (`_LockstepPipe`): the slot (`_data`, non-empty only
while a `send_all` is waiting), the two closed flags, and whether a
receiver is waiting (what `wait_send_all_might_not_block` waits for). Every
change wakes every waiter, and each re-checks what it waits for; closing
either end counts as a change everybody must react to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import final

from .. import BrokenResourceError, ClosedResourceError
from .._conflict_detector import ConflictDetector
from .._highlevel_generic import StapledStream
from .._sync_close import ClosesSynchronously
from ..abc import ReceiveStream, SendStream
from ..lowlevel import ParkingLot, checkpoint
from ._memory_streams import check_max_bytes, make_stapled_pair

__all__ = ["lockstep_stream_one_way_pair", "lockstep_stream_pair"]


class _LockstepPipe:
    __slots__ = (
        "_data",
        "_receive_guard",
        "_receiver_closed",
        "_receiver_waiting",
        "_send_guard",
        "_sender_closed",
        "_waiters",
    )

    def __init__(self) -> None:
        self._data = bytearray()
        self._sender_closed = False
        self._receiver_closed = False
        self._receiver_waiting = False
        self._waiters = ParkingLot()
        self._send_guard = ConflictDetector("another task is already sending on this stream")
        self._receive_guard = ConflictDetector("another task is already receiving on this stream")

    def _changed(self) -> None:
        if self._waiters:
            self._waiters.unpark_all()

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        # Returns when `condition` holds or either end is closed, through
        # exactly one checkpoint beyond any parking.
        while not condition() and not (self._sender_closed or self._receiver_closed):
            await self._waiters.park()
        await checkpoint()

    def close_sender(self) -> None:
        self._sender_closed = True
        self._changed()

    def close_receiver(self) -> None:
        self._receiver_closed = True
        self._changed()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._send_guard:
            if self._sender_closed:
                raise ClosedResourceError("this lockstep stream was closed")
            if self._receiver_closed:
                raise BrokenResourceError("the receiving end of this lockstep stream was closed")
            self._data += data
            self._changed()
            try:
                await self._wait_until(lambda: not self._data)
            except BaseException:
                # Cancelled (or failed) mid-send: withdraw what the receiver
                # has not taken, so the slot is free for the next send_all.
                self._data.clear()
                raise
            if self._sender_closed:
                self._data.clear()
                raise ClosedResourceError("this lockstep stream was closed while sending")
            if self._data:
                self._data.clear()
                raise BrokenResourceError("the receiving end of this lockstep stream was closed")

    async def wait_send_all_might_not_block(self) -> None:
        with self._send_guard:
            if self._sender_closed:
                raise ClosedResourceError("this lockstep stream was closed")
            if self._receiver_closed:
                # The next send_all fails at once, so it will not block.
                await checkpoint()
                return
            await self._wait_until(lambda: self._receiver_waiting)
            if self._sender_closed:
                raise ClosedResourceError("this lockstep stream was closed while waiting")

    async def receive_some(self, max_bytes: int | None) -> bytes | bytearray:
        max_bytes = check_max_bytes(max_bytes)
        with self._receive_guard:
            if self._receiver_closed:
                raise ClosedResourceError("this lockstep stream was closed")
            self._receiver_waiting = True
            self._changed()
            try:
                await self._wait_until(lambda: bool(self._data))
            finally:
                self._receiver_waiting = False
            if self._receiver_closed:
                raise ClosedResourceError("this lockstep stream was closed while receiving")
            if not self._data:
                return b""  # the sender closed: end of stream
            chunk = self._data[:max_bytes]
            del self._data[:max_bytes]
            self._changed()
            return chunk


class _LockstepEnd(ClosesSynchronously):
    """One end of a `_LockstepPipe`."""

    def __init__(self, pipe: _LockstepPipe) -> None:
        self._pipe = pipe


@final
class _LockstepSendStream(_LockstepEnd, SendStream):
    def close(self) -> None:
        self._pipe.close_sender()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._pipe.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._pipe.wait_send_all_might_not_block()


@final
class _LockstepReceiveStream(_LockstepEnd, ReceiveStream):
    def close(self) -> None:
        self._pipe.close_receiver()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._pipe.receive_some(max_bytes)


def lockstep_stream_one_way_pair() -> tuple[SendStream, ReceiveStream]:
    """Create a connected (`SendStream`, `ReceiveStream`) pair with no
    buffering: each `send_all` waits until `receive_some` calls have taken
    all of its data, and `wait_send_all_might_not_block` waits until a task
    is blocked in `receive_some`.

    Besides the stream methods, both objects have a synchronous ``close()``.
    Every async method is a checkpoint. If a `send_all` is cancelled, the
    part of its data not yet received is withdrawn (never delivered).
    Errors follow the stream classes: `BusyResourceError` for a second
    concurrent sender or receiver, `ClosedResourceError` on a closed end,
    `BrokenResourceError` when sending to a closed receiver; after the
    sender closes, the receiver gets ``b""``.
    """
    pipe = _LockstepPipe()
    return _LockstepSendStream(pipe), _LockstepReceiveStream(pipe)


def lockstep_stream_pair() -> tuple[
    StapledStream[SendStream, ReceiveStream], StapledStream[SendStream, ReceiveStream]
]:
    """Create two connected two-way lockstep streams: two
    `lockstep_stream_one_way_pair` pipes stapled crosswise with
    `tether.StapledStream`. ``send_eof`` closes a stream's sending pipe."""
    return make_stapled_pair(lockstep_stream_one_way_pair)
