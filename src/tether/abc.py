"""Abstract base classes users implement to plug into tether.

`Clock` and `Instrument` plug into the run loop. `AsyncResource`,
`SendChannel`, `ReceiveChannel` and `Channel` describe objects that move
values between tasks; `tether.open_memory_channel` returns implementations
of them, and code written against these classes works with any other (a
channel over a socket, a test double). They follow trio's ``trio.abc``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Generic, Self, TypeVar

from ._core import Clock, EndOfChannel, Instrument

__all__ = [
    "AsyncResource",
    "Channel",
    "Clock",
    "Instrument",
    "ReceiveChannel",
    "SendChannel",
]

T = TypeVar("T")
SendType = TypeVar("SendType", contravariant=True)
ReceiveType = TypeVar("ReceiveType", covariant=True)


class AsyncResource(ABC):
    """An object that holds something that must be released with `aclose`.

    ``async with resource:`` calls `aclose` on the way out, whatever happens
    in the block. `aclose` must be idempotent, and must release the resource
    even when it is cancelled (after which it may raise `Cancelled`): being
    cancelled is never a reason to leak.
    """

    __slots__ = ()

    @abstractmethod
    async def aclose(self) -> None:
        """Close the resource. Idempotent. Any task blocked on the resource
        (other than the caller) wakes with `ClosedResourceError`. Closes the
        resource even when cancelled."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class SendChannel(AsyncResource, Generic[SendType]):
    """The sending end of a channel of Python objects.

    Implementations raise `ClosedResourceError` from `send` once this end
    has been closed, and `BrokenResourceError` once nobody can ever receive
    what is sent (every receiving end is closed).
    """

    __slots__ = ()

    @abstractmethod
    async def send(self, value: SendType) -> None:
        """Send `value`, blocking while the channel cannot take it.

        A checkpoint. If it raises `Cancelled`, the value was not sent.

        Raises:
          BrokenResourceError: if the receiving side is closed.
          ClosedResourceError: if this end was closed (also when it is closed
            by another task while this call is blocked).
        """


class ReceiveChannel(AsyncResource, Generic[ReceiveType]):
    """The receiving end of a channel of Python objects.

    ``async for value in channel:`` receives until `EndOfChannel`, which
    ends the loop quietly.
    """

    __slots__ = ()

    @abstractmethod
    async def receive(self) -> ReceiveType:
        """Receive the next value, blocking until one is available.

        A checkpoint. If it raises `Cancelled`, no value was taken.

        Raises:
          EndOfChannel: once every sending end is closed and every value
            sent before that has been received.
          ClosedResourceError: if this end was closed (also when it is closed
            by another task while this call is blocked).
        """

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ReceiveType:
        try:
            return await self.receive()
        except EndOfChannel:
            raise StopAsyncIteration from None


class Channel(SendChannel[T], ReceiveChannel[T]):
    """Both ends of a two-way channel in one object."""

    __slots__ = ()
