"""Abstract base classes users implement to plug into tether.

`Clock` and `Instrument` plug into the run loop. `AsyncResource`,
`SendChannel`, `ReceiveChannel` and `Channel` describe objects that move
values between tasks; `tether.open_memory_channel` returns implementations
of them, and code written against these classes works with any other (a
channel over a socket, a test double). `SendStream`, `ReceiveStream`,
`Stream`, `HalfCloseableStream` and `Listener` do the same for byte streams
(sockets, TLS, pipes, in-memory test streams), and `HostnameResolver` and
`SocketFactory` let tests replace name resolution and socket creation. They
follow trio's ``trio.abc``.
"""

# Behaviour and design (written for tether, from trio's documented API):
#
# * Every class here is an interface: its names and its abstract methods'
#   signatures are the public contract (trio's tests and user subclasses
#   rely on them), so they are spelled exactly as documented.
# * Each class declares empty ``__slots__`` (at the end of its body) so a
#   subclass that declares its own slots really is slotted, generic or not.
# * The only concrete code is the glue every implementation would otherwise
#   repeat: ``async with`` support on `AsyncResource` (always `aclose` on
#   the way out, whatever the block did, and never swallow its error) and
#   ``async for`` support on the receiving ends (a channel's iteration stops
#   at `EndOfChannel`, a stream's at the empty chunk that marks its end).
# * The byte-stream family comes first, the object-channel family second,
#   then the two networking hooks; `Clock` and `Instrument` live in the
#   kernel and are re-exported.

from __future__ import annotations

from abc import ABC, abstractmethod
from socket import AF_INET, SOCK_STREAM, AddressFamily, SocketKind
from typing import Generic, Self, TypeVar

from ._core import Clock, EndOfChannel, Instrument

__all__ = [
    "AsyncResource",
    "Channel",
    "Clock",
    "HalfCloseableStream",
    "HostnameResolver",
    "Instrument",
    "Listener",
    "ReceiveChannel",
    "ReceiveStream",
    "SendChannel",
    "SendStream",
    "SocketFactory",
    "Stream",
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

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Returns None: an error from the block always propagates.
        await self.aclose()

    @abstractmethod
    async def aclose(self) -> None:
        """Close the resource. Idempotent. Any task blocked on the resource
        (other than the caller) wakes with `ClosedResourceError`. Closes the
        resource even when cancelled."""

    __slots__ = ()


class ReceiveStream(AsyncResource):
    """The receiving end of a byte stream.

    ``async for chunk in stream:`` receives chunks until the end of the
    stream. Only one task may receive at a time: a second concurrent
    `receive_some` raises `BusyResourceError`.
    """

    @abstractmethod
    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Wait for data to arrive and return some of it: at least one byte
        and at most `max_bytes` (if given), or ``b""`` at the end of the
        stream (after which every call returns ``b""``).

        A checkpoint. If it is cancelled, no data was lost: whatever had
        arrived stays for the next call.

        Raises:
          ValueError: if `max_bytes` is less than 1.
          BusyResourceError: if another task is already receiving on it.
          BrokenResourceError: if the stream broke (a connection reset).
          ClosedResourceError: if this end was closed (also when it is closed
            by another task while this call is blocked).
        """

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes | bytearray:
        chunk = await self.receive_some()
        if chunk:
            return chunk
        # An empty chunk is the end of the stream.
        raise StopAsyncIteration

    __slots__ = ()


class SendStream(AsyncResource):
    """The sending end of a byte stream (a socket, a pipe, a TLS
    connection, an in-memory test stream).

    Only one task may send at a time: a second concurrent `send_all` (or
    `wait_send_all_might_not_block`) raises `BusyResourceError`.
    """

    @abstractmethod
    async def wait_send_all_might_not_block(self) -> None:
        """Block until a call to `send_all` might not block (a hint: it may
        still block, and this may return early). A checkpoint.

        Raises the same errors as `send_all`.
        """

    @abstractmethod
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of `data`, blocking until the stream has taken it.

        A checkpoint. If it is cancelled, some of the data may have been
        sent and the stream is left in an unknown state: the only safe
        thing to do with it afterwards is to close it.

        Raises:
          BusyResourceError: if another task is already sending on it.
          BrokenResourceError: if the peer went away (the stream is broken).
          ClosedResourceError: if this end was closed (also when it is closed
            by another task while this call is blocked).
        """

    __slots__ = ()


class Stream(SendStream, ReceiveStream):
    """A two-way byte stream: both a `SendStream` and a `ReceiveStream`."""

    __slots__ = ()


class HalfCloseableStream(Stream):
    """A `Stream` whose sending side can be closed on its own, leaving the
    receiving side open (TCP's ``shutdown(SHUT_WR)``)."""

    @abstractmethod
    async def send_eof(self) -> None:
        """Tell the peer that nothing more will be sent: its `receive_some`
        returns ``b""`` once it has read everything sent before. Receiving
        still works. Idempotent. A checkpoint.

        Raises:
          BusyResourceError: if another task is sending on it.
          BrokenResourceError: if the stream broke.
          ClosedResourceError: if the stream was closed.
        """

    __slots__ = ()


class Listener(AsyncResource, Generic[T]):
    """Accepts incoming connections, each as a resource of type ``T``
    (usually a `Stream`)."""

    @abstractmethod
    async def accept(self) -> T:
        """Wait for an incoming connection and return it. A checkpoint.

        Raises:
          BusyResourceError: if another task is already accepting on it.
          ClosedResourceError: if the listener was closed (also when it is
            closed by another task while this call is blocked).
          OSError: on an error of the underlying transport that is not
            transient (a listener retries the transient ones itself).
        """

    __slots__ = ()


class ReceiveChannel(AsyncResource, Generic[ReceiveType]):
    """The receiving end of a channel of Python objects.

    ``async for value in channel:`` receives until `EndOfChannel`, which
    ends the loop quietly.
    """

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
            value = await self.receive()
        except EndOfChannel:
            # The channel is drained for good: end the loop without the
            # EndOfChannel as context.
            raise StopAsyncIteration from None
        return value

    __slots__ = ()


class SendChannel(AsyncResource, Generic[SendType]):
    """The sending end of a channel of Python objects.

    Implementations raise `ClosedResourceError` from `send` once this end
    has been closed, and `BrokenResourceError` once nobody can ever receive
    what is sent (every receiving end is closed).
    """

    @abstractmethod
    async def send(self, value: SendType) -> None:
        """Send `value`, blocking while the channel cannot take it.

        A checkpoint. If it raises `Cancelled`, the value was not sent.

        Raises:
          BrokenResourceError: if the receiving side is closed.
          ClosedResourceError: if this end was closed (also when it is closed
            by another task while this call is blocked).
        """

    __slots__ = ()


class Channel(SendChannel[T], ReceiveChannel[T]):
    """Both ends of a two-way channel in one object."""

    __slots__ = ()


class HostnameResolver(ABC):
    """Resolves names for `tether.socket.getaddrinfo` and `getnameinfo`,
    once installed with `tether.socket.set_custom_hostname_resolver` (for
    tests, or a resolver other than the system's)."""

    @abstractmethod
    async def getnameinfo(
        self, sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int
    ) -> tuple[str, str]:
        """Like `socket.getnameinfo`."""

    @abstractmethod
    async def getaddrinfo(
        self,
        host: bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[
        tuple[
            AddressFamily,
            SocketKind,
            int,
            str,
            tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
        ]
    ]:
        """Like `socket.getaddrinfo`. `host` arrives already encoded as
        IDNA ASCII bytes (or None), and numeric hosts never reach it."""

    __slots__ = ()


class SocketFactory(ABC):
    """Creates the sockets that `tether.socket.socket` returns, once
    installed with `tether.socket.set_custom_socket_factory` (for tests
    that fake the network)."""

    @abstractmethod
    def socket(
        self,
        family: AddressFamily | int = AF_INET,
        type: SocketKind | int = SOCK_STREAM,
        proto: int = 0,
    ) -> object:
        """Return a new socket object (a `tether.socket.SocketType`) for
        these arguments. Not a checkpoint."""

    __slots__ = ()
