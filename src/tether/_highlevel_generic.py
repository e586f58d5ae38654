"""Stream helpers that work on any `tether.abc` stream: `aclose_forcefully`
and `StapledStream`.

What they must do (trio's documented behaviour, and tether's tests):

* ``aclose_forcefully(resource)`` closes `resource` without letting it do
  a graceful shutdown: ``aclose`` runs under a cancellation, which every
  `AsyncResource` must survive by still releasing itself. That
  cancellation is ours and stays here; any other error from ``aclose``
  reaches the caller. It is a checkpoint.
* ``StapledStream(send_stream, receive_stream)`` is a two-way stream
  made of two one-way ones. Both halves are public attributes that may
  be swapped at any time. The sending methods go to `send_stream`,
  ``receive_some`` to `receive_stream`; each one is exactly the
  checkpoint, the cancellation behaviour and the errors of the method it
  forwards to. ``send_eof`` uses the send half's own ``send_eof`` if it
  has one, else closes the send half. ``aclose`` closes the send half,
  then the receive half even if the first close failed; if both fail,
  the second error propagates with the first as its ``__context__``.

Design: `StapledStream` holds no state beyond its two halves, so every
rule of the stream classes (one sender and one receiver at a time,
errors after close) is enforced by the halves themselves. Each method
reads the half it needs when it is called, which is what makes swapping
a half take effect at once. `aclose_forcefully` cancels its scope before
entering it, so the very first checkpoint inside ``aclose`` is already
cancelled.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ._core import CancelScope
from .abc import AsyncResource, HalfCloseableStream, ReceiveStream, SendStream

__all__ = ["StapledStream", "aclose_forcefully"]

_SendHalf = TypeVar("_SendHalf", bound=SendStream)
_ReceiveHalf = TypeVar("_ReceiveHalf", bound=ReceiveStream)


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
    no_waiting = CancelScope()
    no_waiting.cancel()
    with no_waiting:
        await resource.aclose()


def _require(value: object, kind: type, position: str) -> None:
    if not isinstance(value, kind):
        raise TypeError(
            f"StapledStream's {position} argument must be a tether.abc.{kind.__name__}, "
            f"got {value!r}"
        )


class StapledStream(HalfCloseableStream, Generic[_SendHalf, _ReceiveHalf]):
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

    def __init__(self, send_stream: _SendHalf, receive_stream: _ReceiveHalf) -> None:
        _require(send_stream, SendStream, "first")
        _require(receive_stream, ReceiveStream, "second")
        self.send_stream: _SendHalf = send_stream
        self.receive_stream: _ReceiveHalf = receive_stream

    def __repr__(self) -> str:
        return (
            f"StapledStream(send_stream={self.send_stream!r}, "
            f"receive_stream={self.receive_stream!r})"
        )

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """``await self.receive_stream.receive_some(max_bytes)``."""
        return await self.receive_stream.receive_some(max_bytes)

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
        half = self.send_stream
        # Duck-typed on purpose: a send stream may offer send_eof without
        # deriving from HalfCloseableStream (adapters often do), and one
        # may be attached to an instance.
        finish = getattr(half, "send_eof", None)
        await (half.aclose() if finish is None else finish())

    async def aclose(self) -> None:
        """Close both streams: `send_stream` first, then `receive_stream`,
        which is closed even if closing `send_stream` raised or was
        cancelled. If only one close raises, that error propagates; if both
        do, the second one propagates with the first as its ``__context__``.
        """
        # Both halves as they are now: the pair being closed is the one
        # this call saw.
        first, second = self.send_stream, self.receive_stream
        try:
            await first.aclose()
        finally:
            await second.aclose()
