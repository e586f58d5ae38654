"""Stream helpers that work on any `tether.abc` stream: `aclose_forcefully`
and `StapledStream`.

`StapledStream` joins a one-way `SendStream` and a one-way `ReceiveStream`
into one two-way stream. It adds no state of its own: every rule of the
stream classes (one sender and one receiver at a time, errors after close)
is enforced by the two streams it delegates to.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ._core import CancelScope
from .abc import AsyncResource, HalfCloseableStream, ReceiveStream, SendStream

__all__ = ["StapledStream", "aclose_forcefully"]

SendStreamT = TypeVar("SendStreamT", bound=SendStream)
ReceiveStreamT = TypeVar("ReceiveStreamT", bound=ReceiveStream)


async def aclose_forcefully(resource: AsyncResource) -> None:
    """Close `resource` at once, skipping any graceful shutdown it would
    normally do (a TLS ``close_notify``, flushing buffered data).

    It calls ``resource.aclose()`` inside a cancel scope that is already
    cancelled. `AsyncResource.aclose` must release the resource even when it
    is cancelled, so this cannot block for long and the resource is closed
    when it returns; the `Cancelled` that the scope catches never reaches the
    caller. Use it on cleanup paths that must not wait, for example after a
    protocol error when the peer cannot be trusted to answer.

    A checkpoint (the cancelled scope makes the resource's own checkpoints
    return at once). Errors from ``aclose`` other than `Cancelled`
    propagate. A cancellation of the caller from outside still applies at
    the caller's next checkpoint.
    """
    with CancelScope() as scope:
        scope.cancel()
        await resource.aclose()


class StapledStream(HalfCloseableStream, Generic[SendStreamT, ReceiveStreamT]):
    """A two-way stream made of a one-way send stream and a one-way receive
    stream ("stapled" together).

    ``StapledStream(send_stream, receive_stream)``: `send_all` and
    `wait_send_all_might_not_block` go to `send_stream`, `receive_some` to
    `receive_stream`. Both are public attributes and may be replaced at any
    time. Each method is exactly as much a checkpoint, and behaves on
    cancellation exactly as, the method it delegates to, and raises what
    that method raises (`BusyResourceError` for concurrent use,
    `ClosedResourceError` after close, ...).

    For example, two `tether.testing.memory_stream_one_way_pair` pipes
    stapled crosswise make `tether.testing.memory_stream_pair`.
    """

    # Not slotted: tests and adapters commonly attach attributes to it.

    def __init__(self, send_stream: SendStreamT, receive_stream: ReceiveStreamT) -> None:
        if not isinstance(send_stream, SendStream):
            raise TypeError(
                f"StapledStream's first argument must be a tether.abc.SendStream, "
                f"got {send_stream!r}"
            )
        if not isinstance(receive_stream, ReceiveStream):
            raise TypeError(
                f"StapledStream's second argument must be a tether.abc.ReceiveStream, "
                f"got {receive_stream!r}"
            )
        self.send_stream: SendStreamT = send_stream
        self.receive_stream: ReceiveStreamT = receive_stream

    def __repr__(self) -> str:
        return (
            f"StapledStream(send_stream={self.send_stream!r}, "
            f"receive_stream={self.receive_stream!r})"
        )

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """``await self.send_stream.send_all(data)``."""
        await self.send_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """``await self.send_stream.wait_send_all_might_not_block()``."""
        await self.send_stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        """Close the sending direction only.

        If `send_stream` has a ``send_eof`` method (it is half-closeable),
        this calls it; otherwise it closes `send_stream` with ``aclose``,
        which for a one-way stream is how the peer learns that nothing more
        is coming. `receive_stream` stays open either way. Cancellation and
        errors are those of the method called.
        """
        # Duck-typed on purpose: a send stream may offer send_eof without
        # deriving from HalfCloseableStream (as StapledStream's own users'
        # adapters often do).
        send_eof = getattr(self.send_stream, "send_eof", None)
        if send_eof is not None:
            await send_eof()
        else:
            await self.send_stream.aclose()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """``await self.receive_stream.receive_some(max_bytes)``."""
        return await self.receive_stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        """Close both streams: `send_stream` first, then `receive_stream`,
        which is closed even if closing `send_stream` raised or was
        cancelled. If only one close raises, that error propagates; if both
        do, the second one propagates with the first as its ``__context__``.
        """
        try:
            await self.send_stream.aclose()
        finally:
            await self.receive_stream.aclose()
