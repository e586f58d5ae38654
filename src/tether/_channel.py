"""Memory channels: a FIFO of Python objects between tasks in one run.

`open_memory_channel` creates one shared `_ChannelState` and a send and a
receive handle on it; `clone()` makes more handles on the same state. The
state holds the buffer plus the tasks blocked on either side:

* ``waiting_senders`` maps each blocked sender to the value it offers;
* ``waiting_receivers`` maps each blocked receiver to an empty list, the
  slot a sender puts its value in.

Both are FIFO, across all clones of a side. At most one of them is non-empty
at a time; senders wait only while the buffer is full, receivers only while
it is empty. A blocked task's ``custom_sleep_data`` is the handle it waits
on, so closing one handle wakes just its own waiters.

Hand-over is direct: a sender that finds a receiver waiting puts the value
in its slot and reschedules it, and a receiver that finds a sender waiting
takes its value and reschedules it. Once a task is rescheduled it can no longer be
cancelled out of its wait, so a value that left a sender always reaches a
receiver, and a sender whose wait was cancelled offered nothing.

`send` and `receive` follow trio's order: a cancel point, then act at
once, then a schedule point that is not a cancel point if they completed
without waiting. A task that has to wait joins its queue before any other
task runs, so the queues are FIFO in the order the calls were made: the
fairness a lock built from a channel relies on. If the cancel point raises
`Cancelled`, nothing has happened yet. (The schedule point after acting
must not be a cancel point: a Ctrl-C delivered there would lose the value
`receive` has just taken.)

Speed: every `send` and `receive` is a task switch, so what a call costs
besides the switch is most of a channel's overhead. They are therefore
generator-based coroutines (one frame per call, no coroutine) that yield
the kernel's traps themselves. The cancel point is a `CHECKPOINT` yielded
only when `SteppingState.cancel_pending` says it would raise, and that is
asked only when the run has a cancelled scope or a pending Ctrl-C at all
(awaiting `checkpoint_if_cancelled` would cost a generator and a
thread-local look-up per call); the schedule point is a
`CANCEL_SHIELDED_CHECKPOINT`. The buffer logic is written out in them
rather than called (`send_nowait` and `receive_nowait` share it through
`_put` and `_take`; keep the copies in step), and the value handed to a
waiting receiver goes in its slot rather than in an `outcome.Value` per
item.
"""

from __future__ import annotations

import math
import types
from collections import OrderedDict, deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, NoReturn, Self, TypeVar, final

import outcome

from ._core import (
    CANCEL_SHIELDED_CHECKPOINT,
    CHECKPOINT,
    Abort,
    BrokenResourceError,
    ClosedResourceError,
    EndOfChannel,
    SteppingState,
    Task,
    WaitInfo,
    WouldBlock,
    checkpoint,
    current_stepping_state,
    register_wait_describer,
    reschedule,
    wait_task_rescheduled,
)
from ._core._run_context import outside_task_error
from .abc import ReceiveChannel, SendChannel

__all__ = [
    "MemoryChannelStatistics",
    "MemoryReceiveChannel",
    "MemorySendChannel",
    "open_memory_channel",
]

T = TypeVar("T")
SendType = TypeVar("SendType", contravariant=True)
ReceiveType = TypeVar("ReceiveType", covariant=True)

# A woken sender's wait returns this; its trap reads ``.value`` without
# unwrapping, so one object serves every wake-up.
_SENT: outcome.Value[None] = outcome.Value(None)


def _wait_in(queue: OrderedDict[Task, Any], entry: Any, handle: object, task: Task | None) -> Any:
    """Queue `task` (the current task) in `queue` (a channel's waiting
    senders, with the value offered, or its waiting receivers, with the
    slot a sender fills) and return the awaitable that parks it until the
    other side reschedules it. A cancelled task leaves the queue.
    ``custom_sleep_data`` names the handle it waits on, so closing that
    handle can find it."""
    assert task is not None  # (the stepping state's current task)
    queue[task] = entry
    task.custom_sleep_data = handle

    def abort(_: Callable[[], Any]) -> Abort:
        del queue[task]
        return Abort.SUCCEEDED

    return wait_task_rescheduled(abort)


#: What `MemoryReceiveChannel._take` returns when there is no value yet.
_NOTHING: Any = object()


class _NotStepping:
    """The class of `_NOT_STEPPING`."""

    __slots__ = ()

    #: As in a run that steps no task: makes every call look the stepping
    #: state up.
    current_task = None


#: A channel's cached stepping state before its first use in a run.
_NOT_STEPPING: Any = _NotStepping()


def _stepping_state(state: _ChannelState[Any]) -> SteppingState:
    """Look up the current run's stepping state and cache it in `state`.
    `RuntimeError` outside a run or outside a task."""
    stepping = current_stepping_state()
    if stepping.current_task is None:
        raise outside_task_error(stepping)
    state.stepping = stepping
    return stepping


@dataclass(frozen=True)
class MemoryChannelStatistics:
    """What `MemorySendChannel.statistics` / `MemoryReceiveChannel.statistics`
    report (both ends see the same numbers).

    ``current_buffer_used``: values in the buffer now; ``max_buffer_size``:
    its capacity; ``open_send_channels`` / ``open_receive_channels``: handles
    (clones included) not yet closed; ``tasks_waiting_send`` /
    ``tasks_waiting_receive``: tasks blocked in `send` / `receive`;
    ``peak_buffer_used``: the most values the buffer has held at once.
    """

    current_buffer_used: int
    max_buffer_size: int | float
    open_send_channels: int
    open_receive_channels: int
    tasks_waiting_send: int
    tasks_waiting_receive: int
    peak_buffer_used: int


class _ChannelState(Generic[T]):
    """What every clone of both ends of one channel shares."""

    __slots__ = (
        "buffer",
        "max_buffer_size",
        "open_receive_channels",
        "open_send_channels",
        "peak_buffer_used",
        "stepping",
        "waiting_receivers",
        "waiting_senders",
    )

    def __init__(self, max_buffer_size: int | float) -> None:
        self.max_buffer_size = max_buffer_size
        self.buffer: deque[T] = deque()
        self.open_send_channels = 0
        self.open_receive_channels = 0
        self.waiting_senders: OrderedDict[Task, T] = OrderedDict()
        self.waiting_receivers: OrderedDict[Task, list[T]] = OrderedDict()
        self.peak_buffer_used = 0
        # The stepping state of the run the channel was last used in
        # (`current_stepping_state`), kept so that a send or receive does
        # not look it up through a thread-local each time. Valid while its
        # ``current_task`` is not None: a call in a later run finds None
        # there (the run it names is over) and looks it up again. (A
        # channel serves one run at a time, as its state is not
        # thread-safe. It keeps that run's `Runner` alive until then, as a
        # `TetherToken` or a face's task does; a weak reference would cost
        # more per call than the thread-local look-up it replaces.)
        self.stepping: SteppingState = _NOT_STEPPING

    def statistics(self) -> MemoryChannelStatistics:
        return MemoryChannelStatistics(
            current_buffer_used=len(self.buffer),
            max_buffer_size=self.max_buffer_size,
            open_send_channels=self.open_send_channels,
            open_receive_channels=self.open_receive_channels,
            tasks_waiting_send=len(self.waiting_senders),
            tasks_waiting_receive=len(self.waiting_receivers),
            peak_buffer_used=self.peak_buffer_used,
        )


def _wake_own_waiters(
    waiting: OrderedDict[Task, Any], handle: object, error: BaseException
) -> None:
    """Wake the tasks in `waiting` that block on `handle` with `error`."""
    mine = [task for task in waiting if task.custom_sleep_data is handle]
    for task in mine:
        del waiting[task]
        reschedule(task, outcome.Error(error))


def _no_public_constructor(cls: type) -> NoReturn:
    raise TypeError(
        f"{cls.__module__}.{cls.__qualname__} has no public constructor; "
        "create channels with tether.open_memory_channel(max_buffer_size)"
    )


class _ChannelEnd:
    """What both channel ends share: their state, a guard against direct
    construction, `statistics`, and `aclose` plus a synchronous ``with``
    block, both built on the end's own `close`."""

    __slots__ = ("_closed", "_state")

    _state: _ChannelState[Any]
    _closed: bool

    def __init__(self) -> None:
        _no_public_constructor(type(self))

    def __repr__(self) -> str:
        closed = ", closed" if self._closed else ""
        return (
            f"<tether.{type(self).__name__} at {id(self):#x}{closed}, "
            f"state at {id(self._state):#x}>"
        )

    def statistics(self) -> MemoryChannelStatistics:
        """Numbers about the channel; see `MemoryChannelStatistics`."""
        return self._state.statistics()

    def close(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close this handle (see `close`), then checkpoint. Closes even if
        cancelled; the checkpoint may then raise `Cancelled`."""
        self.close()
        await checkpoint()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@final
class MemorySendChannel(_ChannelEnd, SendChannel[SendType]):
    """The sending end of a memory channel; see `open_memory_channel`.

    Usable as ``async with`` or plain ``with`` block, which closes it on
    exit.
    """

    __slots__ = ()

    @classmethod
    def _create(cls, state: _ChannelState[Any]) -> MemorySendChannel[Any]:
        self = cls.__new__(cls)
        self._state = state
        self._closed = False
        state.open_send_channels += 1
        return self

    def send_nowait(self, value: SendType) -> None:
        """Send `value` if that can be done without blocking: hand it to a
        waiting receiver, or put it in the buffer. Not a checkpoint.

        Raises:
          WouldBlock: if the buffer is full and no receiver is waiting.
          BrokenResourceError: if every receive handle is closed.
          ClosedResourceError: if this handle is closed.
        """
        if not self._put(value):
            raise WouldBlock

    def _put(self, value: SendType) -> bool:
        """Hand `value` to the oldest waiting receiver or put it in the
        buffer; return whether it went. `send` has the same logic written
        out: keep the two in step."""
        if self._closed:
            raise ClosedResourceError("this send channel is closed")
        state = self._state
        if not state.open_receive_channels:
            raise BrokenResourceError("every receive channel is closed")
        receivers = state.waiting_receivers
        if receivers:
            task, slot = receivers.popitem(last=False)
            slot.append(value)
            reschedule(task)
            return True
        buffer = state.buffer
        if len(buffer) < state.max_buffer_size:
            buffer.append(value)
            if len(buffer) > state.peak_buffer_used:
                state.peak_buffer_used = len(buffer)
            return True
        return False

    @types.coroutine
    def send(self, value: SendType) -> Generator[Any, Any, None]:
        """``await send_channel.send(value)``: send `value`, waiting while the
        buffer is full and no receiver is waiting.

        A checkpoint, always. Cancellable while waiting; if it raises
        `Cancelled`, `value` was not sent and no receiver will see it. If it
        returns, `value` is in the buffer or in a receiver's hands.

        Raises:
          BrokenResourceError: if every receive handle is closed (also when
            the last one closes while this call waits).
          ClosedResourceError: if this handle is closed (also by another task
            while this call waits).
        """
        # trio's order: a cancel point, then act at once (a sender that has
        # to wait joins the queue before any other task runs, which is what
        # makes the queue FIFO), then a schedule point if it did not wait.
        # (See the module docstring for why it is written out.)
        state = self._state
        stepping = state.stepping
        if stepping.current_task is None:
            stepping = _stepping_state(state)
        if (stepping.cancelled_statuses or stepping.ki_pending) and stepping.cancel_pending():
            yield CHECKPOINT
        if self._closed:
            raise ClosedResourceError("this send channel is closed")
        if not state.open_receive_channels:
            raise BrokenResourceError("every receive channel is closed")
        receivers = state.waiting_receivers
        if receivers:
            task, slot = receivers.popitem(last=False)
            slot.append(value)
            stepping.reschedule(task)
        else:
            buffer = state.buffer
            if len(buffer) >= state.max_buffer_size:
                yield from _wait_in(state.waiting_senders, value, self, stepping.current_task)
                return
            buffer.append(value)
            if len(buffer) > state.peak_buffer_used:
                state.peak_buffer_used = len(buffer)
        yield CANCEL_SHIELDED_CHECKPOINT

    def clone(self) -> MemorySendChannel[SendType]:
        """Another send handle on the same channel. The receiving side sees
        `EndOfChannel` only once every send handle is closed. Not a
        checkpoint.

        Raises:
          ClosedResourceError: if this handle is closed.
        """
        if self._closed:
            raise ClosedResourceError("cannot clone a closed send channel")
        return MemorySendChannel._create(self._state)

    def close(self) -> None:
        """Close this handle. Idempotent; not a checkpoint.

        Tasks blocked in `send` on this handle wake with
        `ClosedResourceError` (their values are not sent). When this was the
        last open send handle, tasks blocked in `receive` wake with
        `EndOfChannel`; values already buffered can still be received first.
        """
        if self._closed:
            return
        self._closed = True
        state = self._state
        if state.waiting_senders:
            _wake_own_waiters(
                state.waiting_senders, self, ClosedResourceError("the send channel was closed")
            )
        state.open_send_channels -= 1
        if not state.open_send_channels:
            receivers = state.waiting_receivers
            while receivers:
                task, _ = receivers.popitem(last=False)
                reschedule(task, outcome.Error(EndOfChannel()))


@final
class MemoryReceiveChannel(_ChannelEnd, ReceiveChannel[ReceiveType]):
    """The receiving end of a memory channel; see `open_memory_channel`.

    ``async for value in channel:`` receives until every send handle is
    closed and the buffer is empty. Usable as ``async with`` or plain
    ``with`` block, which closes it on exit.
    """

    __slots__ = ()

    @classmethod
    def _create(cls, state: _ChannelState[Any]) -> MemoryReceiveChannel[Any]:
        self = cls.__new__(cls)
        self._state = state
        self._closed = False
        state.open_receive_channels += 1
        return self

    def receive_nowait(self) -> ReceiveType:
        """Take the next value if there is one (from the buffer, or from a
        waiting sender) without blocking. Not a checkpoint.

        Raises:
          WouldBlock: if there is no value yet.
          EndOfChannel: if every send handle is closed and the buffer is
            empty.
          ClosedResourceError: if this handle is closed.
        """
        value = self._take()
        if value is not _NOTHING:
            result: ReceiveType = value
            return result
        if not self._state.open_send_channels:
            raise EndOfChannel
        raise WouldBlock

    def _take(self) -> Any:
        """The next value, from the buffer or from the oldest waiting sender,
        or `_NOTHING` if there is none yet. `receive` and `__anext__` have
        the same logic written out: keep the three in step."""
        if self._closed:
            raise ClosedResourceError("this receive channel is closed")
        state = self._state
        buffer = state.buffer
        senders = state.waiting_senders
        if senders:
            # The buffer is full (or has size 0): the oldest sender's value
            # goes in behind it, and the sender is done.
            task, value = senders.popitem(last=False)
            reschedule(task, _SENT)
            buffer.append(value)
        if buffer:
            return buffer.popleft()
        return _NOTHING

    @types.coroutine
    def receive(self) -> Generator[Any, Any, ReceiveType]:
        """``await receive_channel.receive()``: receive the next value,
        waiting until there is one.

        A checkpoint, always. Cancellable while waiting; if it raises
        `Cancelled`, no value was taken (it stays for the next receiver).

        Raises:
          EndOfChannel: once every send handle is closed and every buffered
            value has been received.
          ClosedResourceError: if this handle is closed (also by another task
            while this call waits).
        """
        # trio's order, as in `MemorySendChannel.send`, with `_take`
        # written out.
        state = self._state
        stepping = state.stepping
        if stepping.current_task is None:
            stepping = _stepping_state(state)
        if (stepping.cancelled_statuses or stepping.ki_pending) and stepping.cancel_pending():
            yield CHECKPOINT
        if self._closed:
            raise ClosedResourceError("this receive channel is closed")
        buffer = state.buffer
        senders = state.waiting_senders
        if senders:
            # The buffer is full (or has size 0): the oldest sender's value
            # goes in behind it, and the sender is done.
            task, sent = senders.popitem(last=False)
            stepping.reschedule(task, _SENT)
            buffer.append(sent)
        if buffer:
            value: ReceiveType = buffer.popleft()
            yield CANCEL_SHIELDED_CHECKPOINT
            return value
        if not state.open_send_channels:
            raise EndOfChannel
        # A sender fills the slot before it wakes this task.
        slot: list[ReceiveType] = []
        yield from _wait_in(state.waiting_receivers, slot, self, stepping.current_task)
        return slot[0]

    @types.coroutine
    def __anext__(self) -> Generator[Any, Any, ReceiveType]:
        # `receive` with EndOfChannel turned into StopAsyncIteration, written
        # out rather than wrapping `receive`: one frame fewer per value in
        # ``async for``.
        state = self._state
        stepping = state.stepping
        if stepping.current_task is None:
            stepping = _stepping_state(state)
        if (stepping.cancelled_statuses or stepping.ki_pending) and stepping.cancel_pending():
            yield CHECKPOINT
        if self._closed:
            raise ClosedResourceError("this receive channel is closed")
        buffer = state.buffer
        senders = state.waiting_senders
        if senders:
            task, sent = senders.popitem(last=False)
            stepping.reschedule(task, _SENT)
            buffer.append(sent)
        if buffer:
            value: ReceiveType = buffer.popleft()
            yield CANCEL_SHIELDED_CHECKPOINT
            return value
        if not state.open_send_channels:
            raise StopAsyncIteration
        slot: list[ReceiveType] = []
        try:
            yield from _wait_in(state.waiting_receivers, slot, self, stepping.current_task)
        except EndOfChannel:
            raise StopAsyncIteration from None
        return slot[0]

    def clone(self) -> MemoryReceiveChannel[ReceiveType]:
        """Another receive handle on the same channel. Each value goes to
        exactly one receiver. Senders see `BrokenResourceError` only once
        every receive handle is closed. Not a checkpoint.

        Raises:
          ClosedResourceError: if this handle is closed.
        """
        if self._closed:
            raise ClosedResourceError("cannot clone a closed receive channel")
        return MemoryReceiveChannel._create(self._state)

    def close(self) -> None:
        """Close this handle. Idempotent; not a checkpoint.

        Tasks blocked in `receive` on this handle wake with
        `ClosedResourceError`. When this was the last open receive handle,
        tasks blocked in `send` wake with `BrokenResourceError` (their values
        are not sent) and the buffered values are discarded, since nobody can
        receive them any more.
        """
        if self._closed:
            return
        self._closed = True
        state = self._state
        if state.waiting_receivers:
            _wake_own_waiters(
                state.waiting_receivers,
                self,
                ClosedResourceError("the receive channel was closed"),
            )
        state.open_receive_channels -= 1
        if not state.open_receive_channels:
            senders = state.waiting_senders
            while senders:
                task, _ = senders.popitem(last=False)
                reschedule(task, outcome.Error(BrokenResourceError("every receive channel closed")))
            state.buffer.clear()


@final
class open_memory_channel(tuple["MemorySendChannel[T]", "MemoryReceiveChannel[T]"]):
    """``send_channel, receive_channel = open_memory_channel(max_buffer_size)``:
    a channel for passing Python objects between tasks of one run.

    `max_buffer_size` is how many values may wait in the channel: 0 (the
    default choice: every `send` waits for a `receive`, which gives natural
    back-pressure), a positive int, or `math.inf` (never blocks the sender;
    use with care). Values come out in the order they went in. Write
    ``open_memory_channel[int](0)`` to give the value type to a type checker.

    Both ends can be cloned (`MemorySendChannel.clone`) so that several
    tasks can each close their own handle; the receiving side sees
    `EndOfChannel` once every send handle is closed and the buffer is
    drained, and senders see `BrokenResourceError` once every receive handle
    is closed. Not a checkpoint.
    """

    __slots__ = ()

    def __new__(  # type: ignore[misc]
        cls, max_buffer_size: int | float
    ) -> tuple[MemorySendChannel[T], MemoryReceiveChannel[T]]:
        if max_buffer_size != math.inf and not isinstance(max_buffer_size, int):
            raise TypeError(f"max_buffer_size must be an int or math.inf, got {max_buffer_size!r}")
        if max_buffer_size < 0:
            # trio's wording, which code may match on.
            raise ValueError("max_buffer_size must be >= 0")
        state: _ChannelState[T] = _ChannelState(max_buffer_size)
        return MemorySendChannel._create(state), MemoryReceiveChannel._create(state)

    def __init__(self, max_buffer_size: int | float) -> None:
        # Everything happens in __new__, which returns a plain tuple; this is
        # here for signature introspection only.
        pass


# What a task blocked in `send` or `receive` waits on, for the task tree
# (`current_task_tree`): its ``custom_sleep_data`` is the handle.


def _describe_send_wait(task: Task, handle: MemorySendChannel[Any], now: float) -> WaitInfo:
    state = handle._state
    return WaitInfo(
        "channel_send",
        f"in MemorySendChannel.send() at {id(handle):#x}: the buffer is full "
        f"({len(state.buffer)}/{state.max_buffer_size}) and no task is receiving",
        target=handle,
        details=_channel_details(state),
    )


def _describe_receive_wait(task: Task, handle: MemoryReceiveChannel[Any], now: float) -> WaitInfo:
    state = handle._state
    senders = state.open_send_channels
    return WaitInfo(
        "channel_receive",
        f"in MemoryReceiveChannel.receive() at {id(handle):#x}: nothing to receive "
        f"(buffer empty, {senders} send handle{'s' if senders != 1 else ''} open)",
        target=handle,
        details=_channel_details(state),
    )


def _channel_details(state: _ChannelState[Any]) -> dict[str, Any]:
    return {
        "current_buffer_used": len(state.buffer),
        "max_buffer_size": state.max_buffer_size,
        "open_send_channels": state.open_send_channels,
        "open_receive_channels": state.open_receive_channels,
        "tasks_waiting_send": len(state.waiting_senders),
        "tasks_waiting_receive": len(state.waiting_receivers),
    }


register_wait_describer(MemorySendChannel, _describe_send_wait)
register_wait_describer(MemoryReceiveChannel, _describe_receive_wait)
