"""Streams with no buffer at all, for tests: `lockstep_stream_one_way_pair`
and `lockstep_stream_pair`.

What they must do (trio's documented behaviour, and tether's tests):

* ``send_all(data)`` returns only once ``receive_some`` calls have returned
  every byte of `data`. A ``send_all`` that is cancelled withdraws the
  bytes nobody has received yet; they are never delivered.
* ``wait_send_all_might_not_block`` returns once a task is waiting in
  ``receive_some``, or once the receiving end is closed (the next
  ``send_all`` then fails at once, so it does not block either).
* ``receive_some(max_bytes)`` returns part of what a waiting ``send_all``
  offers (at most `max_bytes`), ``b""`` once the sending end is closed,
  and otherwise waits for a sender.
* One sending call (``send_all`` or ``wait_send_all_might_not_block``) and
  one ``receive_some`` at a time; a second concurrent caller gets
  `BusyResourceError`.
* Both ends close synchronously with ``close()`` (and ``aclose``). A call
  blocked on the end being closed wakes with `ClosedResourceError`; at the
  peer, a blocked ``receive_some`` gets ``b""``, a blocked ``send_all``
  `BrokenResourceError`, a blocked ``wait_send_all_might_not_block``
  returns. Later calls fail the same way.
* Every async method is a checkpoint.

Design: a rendezvous with direct hand-over, on the kernel's
park/reschedule traps. A `_Junction` records at most one parked task per
role: the sender with the bytes it still offers (`_Offer`), the receiver
with its size limit (`_Request`), and the task in
``wait_send_all_might_not_block`` (the "prober"), plus the set of closed
ends. Whoever arrives second completes the meeting at once: a sender that
finds a parked receiver hands it a chunk, a receiver that finds a parked
offer cuts a chunk off it. So an offer and a request are never parked
together.

Every wake-up reschedules the parked task with the final result of its
call (the chunk, ``b""``, None, or the error), so a woken task never looks
at the state again, and a chunk handed to a parked receiver cannot be lost
to a late cancellation (a rescheduled task is no longer cancellable). A
parked task that is cancelled leaves its slot in its abort function; for a
sender that is what withdraws the rest of its data.

The behaviour of each end lives in that end's class; the junction is only
the record both ends share. Each call first passes a cancel point (nothing
has happened if it raises), then either parks or acts and passes a schedule
point that cannot raise `Cancelled`, as tether's memory channels do: a
chunk taken from a sender is returned, never dropped.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, final

import outcome

from .. import BrokenResourceError, ClosedResourceError
from .._conflict_detector import ConflictDetector
from .._highlevel_generic import StapledStream
from .._sync_close import ClosesSynchronously
from ..abc import ReceiveStream, SendStream
from ..lowlevel import (
    Abort,
    RaiseCancelT,
    Task,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    reschedule,
    wait_task_rescheduled,
)
from ._memory_streams import receive_limit, staple_crosswise

__all__ = ["lockstep_stream_one_way_pair", "lockstep_stream_pair"]


class _End(enum.Flag):
    """Which ends of a junction are closed."""

    NONE = 0
    SENDING = enum.auto()
    RECEIVING = enum.auto()


class _Offer:
    """A parked ``send_all``: its task and the bytes it has still to hand
    over (never empty while parked)."""

    __slots__ = ("remaining", "task")

    def __init__(self, task: Task, remaining: memoryview) -> None:
        self.task = task
        self.remaining = remaining


class _Request:
    """A parked ``receive_some``: its task and its `max_bytes`."""

    __slots__ = ("limit", "task")

    def __init__(self, task: Task, limit: int | None) -> None:
        self.task = task
        self.limit = limit


class _Junction:
    """The record the two ends of one lockstep pipe share (see the module
    docstring)."""

    __slots__ = ("closed", "offer", "prober", "request")

    def __init__(self) -> None:
        self.closed = _End.NONE
        self.offer: _Offer | None = None
        self.request: _Request | None = None
        self.prober: Task | None = None


def _cut(view: memoryview, limit: int | None) -> tuple[bytes, memoryview]:
    """The first `limit` bytes of `view` (all if None), and the rest."""
    if limit is None or limit >= len(view):
        return bytes(view), view[len(view) :]
    return bytes(view[:limit]), view[limit:]


async def _park(leave: Callable[[], None]) -> Any:
    """Park the current task until it is rescheduled with its result. If it
    is cancelled first, `leave()` takes it out of its slot and the wait is
    abandoned (always possible: a parked task holds nothing)."""

    def abort(_: RaiseCancelT) -> Abort:
        leave()
        return Abort.SUCCEEDED

    return await wait_task_rescheduled(abort)


@final
class _LockstepSender(ClosesSynchronously, SendStream):
    """The sending end of a lockstep pipe."""

    __slots__ = ("_busy", "_junction")

    def __init__(self, junction: _Junction) -> None:
        self._junction = junction
        self._busy = ConflictDetector("another task is already sending on this lockstep stream")

    def _refuse_if_closed(self) -> None:
        closed = self._junction.closed
        if _End.SENDING in closed:
            raise ClosedResourceError("this lockstep stream was closed")
        if _End.RECEIVING in closed:
            raise BrokenResourceError("the receiving end of this lockstep stream was closed")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Hand `data` to ``receive_some`` calls, returning once they have
        taken all of it. A checkpoint; if cancelled, what was not received
        yet is withdrawn."""
        with self._busy:
            await checkpoint_if_cancelled()
            self._refuse_if_closed()
            junction = self._junction
            # Our own copy: a caller may reuse its buffer once we return.
            remaining = memoryview(bytes(data))
            request = junction.request
            if request is not None and remaining:
                junction.request = None
                chunk, remaining = _cut(remaining, request.limit)
                reschedule(request.task, outcome.Value(chunk))
            if not remaining:
                await cancel_shielded_checkpoint()
                return
            offer = _Offer(current_task(), remaining)
            junction.offer = offer

            def withdraw() -> None:
                junction.offer = None

            await _park(withdraw)

    async def wait_send_all_might_not_block(self) -> None:
        """Return once a task waits in ``receive_some`` (or the receiving
        end is closed). A checkpoint."""
        with self._busy:
            await checkpoint_if_cancelled()
            junction = self._junction
            if _End.SENDING in junction.closed:
                raise ClosedResourceError("this lockstep stream was closed")
            if junction.request is not None or _End.RECEIVING in junction.closed:
                await cancel_shielded_checkpoint()
                return
            junction.prober = current_task()

            def give_up() -> None:
                junction.prober = None

            await _park(give_up)

    def close(self) -> None:
        """Close the sending end: the receiver reads the end of the stream.
        Idempotent; not a checkpoint."""
        junction = self._junction
        if _End.SENDING in junction.closed:
            return
        junction.closed |= _End.SENDING
        gone = ClosedResourceError("this lockstep stream was closed while the call waited")
        if junction.offer is not None:
            task, junction.offer = junction.offer.task, None
            reschedule(task, outcome.Error(gone))
        if junction.prober is not None:
            task, junction.prober = junction.prober, None
            reschedule(task, outcome.Error(gone))
        if junction.request is not None:
            task, junction.request = junction.request.task, None
            reschedule(task, outcome.Value(b""))


@final
class _LockstepReceiver(ClosesSynchronously, ReceiveStream):
    """The receiving end of a lockstep pipe."""

    __slots__ = ("_busy", "_junction")

    def __init__(self, junction: _Junction) -> None:
        self._junction = junction
        self._busy = ConflictDetector("another task is already receiving on this lockstep stream")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Take up to `max_bytes` bytes from a waiting ``send_all`` (waiting
        for one), or ``b""`` once the sending end is closed. A checkpoint;
        if cancelled, nothing was taken."""
        limit = receive_limit(max_bytes)
        with self._busy:
            await checkpoint_if_cancelled()
            junction = self._junction
            if _End.RECEIVING in junction.closed:
                raise ClosedResourceError("this lockstep stream was closed")
            offer = junction.offer
            if offer is not None:
                chunk, offer.remaining = _cut(offer.remaining, limit)
                if not offer.remaining:
                    junction.offer = None
                    reschedule(offer.task)
                await cancel_shielded_checkpoint()
                return chunk
            if _End.SENDING in junction.closed:
                await cancel_shielded_checkpoint()
                return b""
            junction.request = _Request(current_task(), limit)
            if junction.prober is not None:
                prober, junction.prober = junction.prober, None
                reschedule(prober)

            def give_up() -> None:
                junction.request = None

            chunk = await _park(give_up)
            assert isinstance(chunk, bytes)
            return chunk

    def close(self) -> None:
        """Close the receiving end: a sender gets `BrokenResourceError`.
        Idempotent; not a checkpoint."""
        junction = self._junction
        if _End.RECEIVING in junction.closed:
            return
        junction.closed |= _End.RECEIVING
        if junction.request is not None:
            task, junction.request = junction.request.task, None
            reschedule(
                task,
                outcome.Error(
                    ClosedResourceError("this lockstep stream was closed while receive_some waited")
                ),
            )
        if junction.offer is not None:
            task, junction.offer = junction.offer.task, None
            reschedule(
                task,
                outcome.Error(
                    BrokenResourceError("the receiving end of this lockstep stream was closed")
                ),
            )
        if junction.prober is not None:
            # The next send_all fails at once: it will not block.
            task, junction.prober = junction.prober, None
            reschedule(task)


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
    junction = _Junction()
    return _LockstepSender(junction), _LockstepReceiver(junction)


def lockstep_stream_pair() -> tuple[
    StapledStream[SendStream, ReceiveStream], StapledStream[SendStream, ReceiveStream]
]:
    """Create two connected two-way lockstep streams: two
    `lockstep_stream_one_way_pair` pipes stapled crosswise with
    `tether.StapledStream`. ``send_eof`` closes a stream's sending pipe."""
    return staple_crosswise(lockstep_stream_one_way_pair)
