"""Conformance checks for stream implementations: `check_one_way_stream`,
`check_two_way_stream` and `check_half_closeable_stream`.

Each takes an async *maker* that returns a fresh connected pair of streams,
and runs the rules of `tether.abc`'s stream classes against new pairs from
it: data arrives intact and in order, every operation is a checkpoint,
concurrent use raises `BusyResourceError`, a closed end raises
`ClosedResourceError` and a closed peer `BrokenResourceError`, closing an
end wakes the tasks blocked on it, a cancelled ``aclose`` still closes, and
a stream whose operations were cancelled can still be closed gracefully.

A second, optional *clogged* maker returns pairs whose sender blocks until
the receiver reads (for example `lockstep_stream_one_way_pair`); with it the
checks also cover the rules that only show while a sender is blocked.

The checks need no test framework: a broken rule raises `AssertionError`
saying which rule. Each pair is closed with `tether.aclose_forcefully`
when its check is done, whatever happened.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeAlias, TypeVar

from .. import (
    BrokenResourceError,
    BusyResourceError,
    Cancelled,
    CancelScope,
    ClosedResourceError,
    open_nursery,
)
from .._highlevel_generic import aclose_forcefully
from ..abc import AsyncResource, HalfCloseableStream, ReceiveStream, SendStream, Stream
from ..lowlevel import wait_all_tasks_blocked
from ._checkpoints import assert_checkpoints

__all__ = ["check_half_closeable_stream", "check_one_way_stream", "check_two_way_stream"]

A = TypeVar("A", bound=AsyncResource)
B = TypeVar("B", bound=AsyncResource)
StreamMaker: TypeAlias = Callable[[], Awaitable[tuple[A, B]]]

# The full-duplex check moves this much data each way at once, in random
# chunks of up to DUPLEX_MAX_CHUNK bytes: more than the kernel buffers of a
# socket pair hold, so a stream that cannot send and receive at the same
# time deadlocks instead of passing.
DUPLEX_BYTES = 2**20
DUPLEX_MAX_CHUNK = 2**14
# A chunk large enough that a few sends fill any sane buffer, so that a
# sender to a closed peer finds out it is broken.
FILLER = b"x" * 100
# Upper bound on sends to a closed receiver before the sender must have
# noticed (generous: a socket can buffer megabytes).
MAX_SENDS_BEFORE_BROKEN = 100_000


@asynccontextmanager
async def _fresh_pair(maker: StreamMaker[A, B]) -> AsyncIterator[tuple[A, B]]:
    pair = await maker()
    if not (isinstance(pair, tuple) and len(pair) == 2):
        raise TypeError(f"a stream maker must return a pair of streams, got {pair!r}")
    first, second = pair
    try:
        yield first, second
    finally:
        try:
            await aclose_forcefully(first)
        finally:
            await aclose_forcefully(second)


@contextmanager
def _expect(error: type[BaseException], rule: str) -> Iterator[None]:
    """The block must raise `error` itself (not in a group)."""
    __tracebackhide__ = True
    try:
        yield
    except error:
        return
    except BaseExceptionGroup as group:
        raise AssertionError(
            f"{rule}: expected {error.__name__}, got an exception group: {group!r}"
        ) from group
    raise AssertionError(f"{rule}: expected {error.__name__}, nothing was raised")


@contextmanager
def _expect_in_group(error: type[BaseException], rule: str) -> Iterator[None]:
    """The block (a nursery) must raise a group holding exactly one
    `error`."""
    __tracebackhide__ = True
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], error):
            return
        raise AssertionError(
            f"{rule}: expected a group with one {error.__name__}, got {group!r}"
        ) from group
    raise AssertionError(f"{rule}: expected {error.__name__}, nothing was raised")


def _first_assertion(group: BaseExceptionGroup[BaseException]) -> AssertionError | None:
    for error in group.exceptions:
        if isinstance(error, AssertionError):
            return error
        if isinstance(error, BaseExceptionGroup):
            found = _first_assertion(error)
            if found is not None:
                return found
    return None


@contextmanager
def _rule_failures_unwrapped() -> Iterator[None]:
    """A broken rule found in a child task reaches the caller as the
    `AssertionError` itself (the group it came in stays attached as its
    ``__context__``), as the checks' docstrings promise. The checks call
    each other, so these nest: an outer one sees the `AssertionError` an
    inner one already took out, and lets it through."""
    __tracebackhide__ = True
    try:
        yield
    except BaseExceptionGroup as group:
        failure = _first_assertion(group)
        if failure is None:
            raise
        raise failure  # noqa: B904 (the group is kept as __context__ on purpose)


async def _checked_send(stream: SendStream, data: bytes | bytearray | memoryview) -> None:
    with assert_checkpoints():
        result = await stream.send_all(data)  # type: ignore[func-returns-value]
    assert result is None, f"send_all must return None, returned {result!r}"


async def _checked_receive(stream: ReceiveStream, max_bytes: int | None = None) -> bytes:
    with assert_checkpoints():
        data = await stream.receive_some(max_bytes)
    assert isinstance(data, bytes | bytearray), (
        f"receive_some must return bytes or bytearray, returned {data!r}"
    )
    return bytes(data)


async def _expect_receive(stream: ReceiveStream, expected: bytes) -> None:
    data = await _checked_receive(stream, 1)
    assert data == expected, f"receive_some(1) returned {data!r}, expected {expected!r}"


async def _checked_aclose(resource: AsyncResource) -> None:
    with assert_checkpoints():
        await resource.aclose()


async def _send_until_broken(stream: SendStream, rule: str) -> None:
    with _expect(BrokenResourceError, rule):
        for _ in range(MAX_SENDS_BEFORE_BROKEN):
            await _checked_send(stream, FILLER)


async def _transfer(s: SendStream, r: ReceiveStream, data: bytes | bytearray | memoryview) -> None:
    """Send `data` and receive it back one byte, concurrently (a stream need
    not buffer, so neither may wait for the other to finish)."""
    async with open_nursery() as nursery:
        nursery.start_soon(_checked_send, s, data)
        nursery.start_soon(_expect_receive, r, bytes(data))


async def _check_data_and_arguments(s: SendStream, r: ReceiveStream) -> None:
    await _transfer(s, r, b"x")

    async def send_nothing_then_y() -> None:
        # An empty send is allowed and means nothing to the receiver.
        await _checked_send(s, b"")
        await _checked_send(s, b"y")

    async with open_nursery() as nursery:
        nursery.start_soon(send_nothing_then_y)
        nursery.start_soon(_expect_receive, r, b"y")

    await _transfer(s, r, bytearray(b"1"))
    await _transfer(s, r, memoryview(b"2"))

    for bad in (0, -1):
        with _expect(ValueError, f"receive_some({bad})"):
            await r.receive_some(bad)
    with _expect(TypeError, "receive_some(1.5)"):
        await r.receive_some(1.5)  # type: ignore[arg-type]

    # Omitted and None both mean "any amount".
    for args in ((), (None,)):
        async with open_nursery() as nursery:
            nursery.start_soon(_checked_send, s, b"z")
            data = await _checked_receive(r, *args)
            assert data == b"z", f"receive_some{args} returned {data!r}, expected b'z'"


async def _check_concurrent_receive_is_busy(r: ReceiveStream) -> None:
    with _expect_in_group(BusyResourceError, "two tasks in receive_some at once"):
        async with open_nursery() as nursery:
            nursery.start_soon(_checked_receive, r, 1)
            nursery.start_soon(_checked_receive, r, 1)


async def _check_send_might_not_block_with_a_receiver(s: SendStream, r: ReceiveStream) -> None:
    # With a receiver waiting, a send could always proceed, so
    # wait_send_all_might_not_block must return.
    async with open_nursery() as nursery:
        nursery.start_soon(_checked_receive, r, 1)
        with assert_checkpoints():
            await s.wait_send_all_might_not_block()
        nursery.cancel_scope.cancel()


async def _check_closing_each_end(s: SendStream, r: ReceiveStream) -> None:
    async with open_nursery() as nursery:
        nursery.start_soon(_send_until_broken, s, "send_all after the receiver closed")
        nursery.start_soon(_checked_aclose, r)
    with _expect(BrokenResourceError, "send_all on a stream already found broken"):
        await _checked_send(s, FILLER)
    with _expect(ClosedResourceError, "receive_some after aclose"):
        await _checked_receive(r, 4096)
    await _checked_aclose(r)  # aclose is idempotent
    await _checked_aclose(r)

    await _checked_aclose(s)
    with _expect(ClosedResourceError, "send_all after aclose"):
        await _checked_send(s, FILLER)
    with _expect(ClosedResourceError, "send_all(b'') after aclose"):
        await _checked_send(s, b"")
    with _expect(ClosedResourceError, "wait_send_all_might_not_block after aclose"):
        with assert_checkpoints():
            await s.wait_send_all_might_not_block()
    await _checked_aclose(s)
    await _checked_aclose(s)


async def _check_data_survives_graceful_close(s: SendStream, r: ReceiveStream) -> None:
    async def send_then_close() -> None:
        await _checked_send(s, b"y")
        await _checked_aclose(s)

    async def receive_after_the_sender_is_done() -> None:
        # Let the sender get as far as it can (all the way to closed, if the
        # stream buffers) before reading.
        await wait_all_tasks_blocked()
        await _expect_receive(r, b"y")
        await _expect_receive(r, b"")
        await _checked_aclose(r)

    async with open_nursery() as nursery:
        nursery.start_soon(send_then_close)
        nursery.start_soon(receive_after_the_sender_is_done)


async def _check_forceful_close_of_receiver(s: SendStream, r: ReceiveStream) -> None:
    await aclose_forcefully(r)
    await _send_until_broken(s, "send_all after aclose_forcefully(receiver)")
    with _expect(ClosedResourceError, "receive_some after aclose_forcefully"):
        await _checked_receive(r, 4096)


async def _check_forceful_close_of_sender(s: SendStream, r: ReceiveStream) -> None:
    await aclose_forcefully(s)
    with _expect(ClosedResourceError, "send_all after aclose_forcefully"):
        await _checked_send(s, b"123")
    # The receiver may see a clean end of stream or a broken one; it must
    # neither hang nor invent data.
    try:
        await _expect_receive(r, b"")
    except BrokenResourceError:
        pass


async def _check_cancelled_aclose_still_closes(s: SendStream, r: ReceiveStream) -> None:
    for resource in (r, s):
        with CancelScope() as scope:
            scope.cancel()
            await resource.aclose()
    with _expect(ClosedResourceError, "send_all after a cancelled aclose"):
        await _checked_send(s, b"123")
    with _expect(ClosedResourceError, "receive_some after a cancelled aclose"):
        await _checked_receive(r, 4096)


async def _check_graceful_close_after_cancelled_operations(s: SendStream, r: ReceiveStream) -> None:
    async def expect_cancelled(operation: Callable[[], Awaitable[object]]) -> None:
        with _expect(Cancelled, "an operation in a cancelled scope"):
            await operation()

    with CancelScope() as scope:
        scope.cancel()
        async with open_nursery() as nursery:
            nursery.start_soon(expect_cancelled, lambda: _checked_send(s, b"x"))
            nursery.start_soon(expect_cancelled, lambda: _checked_receive(r, 1))

    async with open_nursery() as nursery:
        nursery.start_soon(_checked_aclose, s)
        nursery.start_soon(_checked_aclose, r)


async def _check_close_wakes_a_blocked_receiver(r: ReceiveStream) -> None:
    async def blocked_receive() -> None:
        with _expect(ClosedResourceError, "receive_some blocked while its stream is closed"):
            await r.receive_some(10)

    async with open_nursery() as nursery:
        nursery.start_soon(blocked_receive)
        await wait_all_tasks_blocked()
        await aclose_forcefully(r)


async def _check_clogged_rules(clogged_maker: StreamMaker[SendStream, ReceiveStream]) -> None:
    async with _fresh_pair(clogged_maker) as (s, r):
        events: list[str] = []

        async def waiter(scope: CancelScope) -> None:
            events.append("waiter blocks")
            with assert_checkpoints():
                await s.wait_send_all_might_not_block()
            events.append("waiter woke")
            scope.cancel()

        async def receiver() -> None:
            await wait_all_tasks_blocked()
            events.append("receiver starts")
            while True:
                await r.receive_some(DUPLEX_MAX_CHUNK)

        async with open_nursery() as nursery:
            nursery.start_soon(waiter, nursery.cancel_scope)
            await wait_all_tasks_blocked()
            nursery.start_soon(receiver)
        assert events == ["waiter blocks", "receiver starts", "waiter woke"], (
            f"wait_send_all_might_not_block on a clogged stream must wait for a "
            f"receiver; events were {events}"
        )

    async with _fresh_pair(clogged_maker) as (s, r):
        with _expect_in_group(BusyResourceError, "two wait_send_all_might_not_block at once"):
            async with open_nursery() as nursery:
                nursery.start_soon(s.wait_send_all_might_not_block)
                nursery.start_soon(s.wait_send_all_might_not_block)
        # The cancelled loser may leave the stream unusable (a TLS stream
        # breaks), so each of these gets a fresh pair.
        with _expect_in_group(BusyResourceError, "wait_send_all_might_not_block during send_all"):
            async with open_nursery() as nursery:
                nursery.start_soon(s.wait_send_all_might_not_block)
                nursery.start_soon(s.send_all, b"123")

    async with _fresh_pair(clogged_maker) as (s, r):
        with _expect_in_group(BusyResourceError, "two send_all at once"):
            async with open_nursery() as nursery:
                nursery.start_soon(s.send_all, b"123")
                nursery.start_soon(s.send_all, b"123")

    # Closing the receiver lets a blocked wait_send_all_might_not_block
    # return (the next send_all will fail at once), or raise
    # BrokenResourceError; it must not stay blocked.
    async with _fresh_pair(clogged_maker) as (s, r):

        async def wait_tolerating_broken() -> None:
            try:
                with assert_checkpoints():
                    await s.wait_send_all_might_not_block()
            except BrokenResourceError:
                pass

        async def close_receiver_later() -> None:
            await wait_all_tasks_blocked()
            await aclose_forcefully(r)

        async with open_nursery() as nursery:
            nursery.start_soon(wait_tolerating_broken)
            nursery.start_soon(close_receiver_later)

    async with _fresh_pair(clogged_maker) as (s, r):
        await aclose_forcefully(r)
        try:
            with assert_checkpoints():
                await s.wait_send_all_might_not_block()
        except BrokenResourceError:
            pass

    # Closing the sender wakes its own blocked send-side calls.
    async def close_later(stream: SendStream) -> None:
        await wait_all_tasks_blocked()
        await aclose_forcefully(stream)

    async with _fresh_pair(clogged_maker) as (s, r):
        async with open_nursery() as nursery:
            nursery.start_soon(close_later, s)
            with _expect(ClosedResourceError, "send_all blocked while its stream is closed"):
                await s.send_all(b"xyzzy")

    async with _fresh_pair(clogged_maker) as (s, r):
        async with open_nursery() as nursery:
            nursery.start_soon(close_later, s)
            with _expect(
                ClosedResourceError,
                "wait_send_all_might_not_block blocked while its stream is closed",
            ):
                await s.wait_send_all_might_not_block()


async def check_one_way_stream(
    stream_maker: StreamMaker[SendStream, ReceiveStream],
    clogged_stream_maker: StreamMaker[SendStream, ReceiveStream] | None,
) -> None:
    """Check that a one-way stream implementation follows the rules of
    `tether.abc.SendStream` and `tether.abc.ReceiveStream`.

    Args:
      stream_maker: an async function with no arguments returning a new
        connected ``(send_stream, receive_stream)`` pair. It is called
        several times; every pair is closed afterwards.
      clogged_stream_maker: None, or a function like `stream_maker` whose
        pairs are *clogged*: `send_all` and `wait_send_all_might_not_block`
        block until `receive_some` is called. With it, the rules about
        blocked senders are checked too.

    Call it from a tether task (usually a ``@pytest.mark.tether`` test); it
    runs child tasks in nurseries of its own. A stream that hangs makes it
    hang, so run it under a timeout or the plugin's hang detection.

    Raises:
      AssertionError: naming the rule that the streams broke.
    """
    with _rule_failures_unwrapped():
        async with _fresh_pair(stream_maker) as (s, r):
            assert isinstance(s, SendStream), f"not a tether.abc.SendStream: {s!r}"
            assert isinstance(r, ReceiveStream), f"not a tether.abc.ReceiveStream: {r!r}"
            await _check_data_and_arguments(s, r)
            await _check_concurrent_receive_is_busy(r)
            await _check_send_might_not_block_with_a_receiver(s, r)
            await _check_closing_each_end(s, r)

        for check in (
            _check_data_survives_graceful_close,
            _check_forceful_close_of_receiver,
            _check_forceful_close_of_sender,
            _check_cancelled_aclose_still_closes,
            _check_graceful_close_after_cancelled_operations,
        ):
            async with _fresh_pair(stream_maker) as (s, r):
                await check(s, r)

        async with _fresh_pair(stream_maker) as (s, r):
            await _check_close_wakes_a_blocked_receiver(r)

        if clogged_stream_maker is not None:
            await _check_clogged_rules(clogged_stream_maker)


async def _check_full_duplex(a: Stream, b: Stream) -> None:
    rng = random.Random(0)
    forward = rng.randbytes(DUPLEX_BYTES)
    backward = forward[::-1]

    async def send_in_chunks(stream: Stream, data: bytes, seed: int) -> None:
        chunks = random.Random(seed)
        view = memoryview(data)
        while view:
            size = chunks.randint(1, DUPLEX_MAX_CHUNK)
            await stream.send_all(view[:size])
            view = view[size:]

    async def receive_all(stream: Stream, expected: bytes, seed: int) -> None:
        sizes = random.Random(seed)
        got = bytearray()
        while len(got) < len(expected):
            chunk = await stream.receive_some(sizes.randint(1, DUPLEX_MAX_CHUNK))
            assert chunk, f"end of stream after {len(got)} of {len(expected)} bytes"
            got += chunk
        assert got == expected, "full-duplex transfer: the data arrived altered or reordered"

    async with open_nursery() as nursery:
        nursery.start_soon(send_in_chunks, a, forward, 1)
        nursery.start_soon(send_in_chunks, b, backward, 2)
        nursery.start_soon(receive_all, a, backward, 3)
        nursery.start_soon(receive_all, b, forward, 4)


async def check_two_way_stream(
    stream_maker: StreamMaker[Stream, Stream],
    clogged_stream_maker: StreamMaker[Stream, Stream] | None,
) -> None:
    """Check that a two-way stream implementation follows the rules of
    `tether.abc.Stream`: everything `check_one_way_stream` checks, in both
    directions, then a large transfer in both directions at once, and that
    closing one end gives the other the end of the stream.

    The makers are as for `check_one_way_stream`, returning pairs of
    connected `Stream` objects. Raises `AssertionError` naming the broken
    rule.
    """
    with _rule_failures_unwrapped():
        await check_one_way_stream(stream_maker, clogged_stream_maker)

        async def reversed_maker() -> tuple[Stream, Stream]:
            a, b = await stream_maker()
            return b, a

        reversed_clogged_maker: StreamMaker[Stream, Stream] | None = None
        if clogged_stream_maker is not None:
            clogged = clogged_stream_maker

            async def reversed_clogged() -> tuple[Stream, Stream]:
                a, b = await clogged()
                return b, a

            reversed_clogged_maker = reversed_clogged
        await check_one_way_stream(reversed_maker, reversed_clogged_maker)

        async with _fresh_pair(stream_maker) as (a, b):
            assert isinstance(a, Stream), f"not a tether.abc.Stream: {a!r}"
            assert isinstance(b, Stream), f"not a tether.abc.Stream: {b!r}"
            await _check_full_duplex(a, b)

            async def expect_end_then_close() -> None:
                data = await b.receive_some(10)
                assert data == b"", (
                    f"expected the end of the stream after the peer closed: {data!r}"
                )
                await b.aclose()

            async with open_nursery() as nursery:
                nursery.start_soon(expect_end_then_close)
                nursery.start_soon(a.aclose)


async def check_half_closeable_stream(
    stream_maker: StreamMaker[HalfCloseableStream, HalfCloseableStream],
    clogged_stream_maker: StreamMaker[HalfCloseableStream, HalfCloseableStream] | None,
) -> None:
    """Check that a half-closeable stream implementation follows the rules
    of `tether.abc.HalfCloseableStream`: everything `check_two_way_stream`
    checks, then that `send_eof` is a checkpoint, ends the stream for the
    peer after the data sent before it, makes later sends raise
    `ClosedResourceError`, is idempotent, and leaves the other direction
    working; with a clogged maker, also that `send_eof` during a blocked
    `send_all` or `wait_send_all_might_not_block` raises
    `BusyResourceError`.

    Raises `AssertionError` naming the broken rule.
    """
    with _rule_failures_unwrapped():
        await check_two_way_stream(stream_maker, clogged_stream_maker)

        async def send_then_eof(stream: HalfCloseableStream) -> None:
            await stream.send_all(b"x")
            with assert_checkpoints():
                await stream.send_eof()

        async def receive_data_then_end(stream: HalfCloseableStream) -> None:
            await wait_all_tasks_blocked()
            data = await stream.receive_some(10)
            assert data == b"x", f"expected the data sent before send_eof, got {data!r}"
            data = await stream.receive_some(10)
            assert data == b"", f"expected the end of the stream after send_eof, got {data!r}"

        async with _fresh_pair(stream_maker) as (a, b):
            assert isinstance(a, HalfCloseableStream), f"not a HalfCloseableStream: {a!r}"
            assert isinstance(b, HalfCloseableStream), f"not a HalfCloseableStream: {b!r}"
            async with open_nursery() as nursery:
                nursery.start_soon(send_then_eof, a)
                nursery.start_soon(receive_data_then_end, b)
            with _expect(ClosedResourceError, "send_all after send_eof"):
                await a.send_all(b"y")
            with assert_checkpoints():
                await a.send_eof()  # idempotent
            async with open_nursery() as nursery:
                nursery.start_soon(send_then_eof, b)
                nursery.start_soon(receive_data_then_end, a)

        if clogged_stream_maker is None:
            return
        async with _fresh_pair(clogged_stream_maker) as (a, b):
            with _expect_in_group(BusyResourceError, "send_eof during a blocked send_all"):
                async with open_nursery() as nursery:
                    nursery.start_soon(a.send_all, b"x")
                    await wait_all_tasks_blocked()
                    nursery.start_soon(a.send_eof)
        async with _fresh_pair(clogged_stream_maker) as (a, b):
            with _expect_in_group(
                BusyResourceError, "send_eof during a blocked wait_send_all_might_not_block"
            ):
                async with open_nursery() as nursery:
                    nursery.start_soon(a.wait_send_all_might_not_block)
                    await wait_all_tasks_blocked()
                    nursery.start_soon(a.send_eof)
