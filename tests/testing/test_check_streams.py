"""The stream conformance checks: they pass on tether's own streams and
catch streams that break a rule."""

import pytest

import tether
from tether.abc import ReceiveStream, SendStream
from tether.testing import (
    check_half_closeable_stream,
    check_one_way_stream,
    check_two_way_stream,
    lockstep_stream_one_way_pair,
    lockstep_stream_pair,
    memory_stream_one_way_pair,
    memory_stream_pair,
)

pytestmark = pytest.mark.tether


async def memory_one_way():
    return memory_stream_one_way_pair()


async def memory_two_way():
    return memory_stream_pair()


async def lockstep_one_way():
    return lockstep_stream_one_way_pair()


async def lockstep_two_way():
    return lockstep_stream_pair()


async def test_memory_streams_pass():
    await check_one_way_stream(memory_one_way, None)
    await check_half_closeable_stream(memory_two_way, None)


async def test_lockstep_streams_pass_also_the_clogged_checks():
    await check_one_way_stream(lockstep_one_way, lockstep_one_way)
    await check_two_way_stream(lockstep_two_way, lockstep_two_way)


async def test_stapled_streams_with_a_half_closeable_send_side_pass():
    # Each outer StapledStream sends and receives through the same
    # two-way stream, so its send_eof is delegated to that stream's own.
    async def maker():
        a, b = memory_stream_pair()
        return tether.StapledStream(a, a), tether.StapledStream(b, b)

    async def lockstep_maker():
        a, b = lockstep_stream_pair()
        return tether.StapledStream(a, a), tether.StapledStream(b, b)

    await check_half_closeable_stream(maker, None)
    # Not with the clogged checks: send_eof on a stapled one-way lockstep
    # pipe is its aclose, which may (and does) interrupt a blocked send_all
    # instead of raising BusyResourceError.
    await check_half_closeable_stream(lockstep_maker, None)
    with pytest.raises(AssertionError, match="send_eof during a blocked send_all"):
        await check_half_closeable_stream(lockstep_maker, lockstep_maker)


class FaultySend(SendStream):
    """A memory send stream with one rule broken on request."""

    def __init__(self, inner, fault):
        self.inner = inner
        self.fault = fault
        self.closed_once = False

    async def send_all(self, data):
        if self.fault == "empty send is not a checkpoint" and not data:
            return None
        await self.inner.send_all(data)
        if self.fault == "send_all returns a value":
            return len(data)
        return None

    async def wait_send_all_might_not_block(self):
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self):
        if self.fault == "aclose not idempotent" and self.closed_once:
            raise RuntimeError("closed twice")
        self.closed_once = True
        await self.inner.aclose()


class FaultyReceive(ReceiveStream):
    def __init__(self, inner, fault):
        self.inner = inner
        self.fault = fault
        self.closed = False

    async def receive_some(self, max_bytes=None):
        if self.fault == "max_bytes not checked" and max_bytes in (0, -1):
            await tether.lowlevel.checkpoint()
            return b""
        if self.fault == "end of stream after close" and self.closed:
            await tether.lowlevel.checkpoint()
            return b""
        data = await self.inner.receive_some(max_bytes)
        if self.fault == "data altered":
            return data.upper()
        return data

    async def aclose(self):
        self.closed = True
        await self.inner.aclose()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("empty send is not a checkpoint", "finished without a checkpoint"),
        ("send_all returns a value", "must return None"),
        ("aclose not idempotent", "closed twice"),
        ("max_bytes not checked", r"receive_some\(0\): expected ValueError"),
        ("data altered", "returned b'X', expected b'x'"),
        ("end of stream after close", "receive_some after aclose: expected ClosedResourceError"),
    ],
)
async def test_a_broken_rule_is_reported(fault, message):
    async def maker():
        send, receive = memory_stream_one_way_pair()
        return FaultySend(send, fault), FaultyReceive(receive, fault)

    with pytest.raises((AssertionError, RuntimeError), match=message):
        await check_one_way_stream(maker, None)


@pytest.mark.parametrize(
    "check", [check_one_way_stream, check_two_way_stream, check_half_closeable_stream]
)
async def test_a_rule_broken_in_a_child_task_comes_out_as_the_assertion_itself(check):
    # The altered data is seen by a receiving child task; the two- and
    # half-closeable checks reach it through the one-way checks they run.
    async def maker():
        a_send, b_receive = memory_stream_one_way_pair()
        b_send, a_receive = memory_stream_one_way_pair()
        return (
            tether.StapledStream(a_send, FaultyReceive(a_receive, "data altered")),
            tether.StapledStream(b_send, FaultyReceive(b_receive, "data altered")),
        )

    with pytest.raises(AssertionError, match="returned b'X', expected b'x'") as info:
        await check(maker, None)
    assert isinstance(info.value.__context__, BaseExceptionGroup)


async def test_a_sender_that_does_not_block_fails_the_clogged_checks(autojump_clock):
    # A memory stream is not clogged: passing it as the clogged maker must
    # be caught (its wait_send_all_might_not_block returns at once).
    with pytest.raises(AssertionError, match="must wait for a receiver"):
        await check_one_way_stream(memory_one_way, memory_one_way)


async def test_a_one_way_stream_is_not_accepted_as_two_way():
    with pytest.raises(AssertionError, match=r"not a tether\.abc\.SendStream"):
        await check_two_way_stream(memory_one_way, None)


async def test_a_maker_must_return_a_pair():
    async def bad_maker():
        return memory_stream_pair()[0]

    with pytest.raises(TypeError, match="pair of streams"):
        await check_one_way_stream(bad_maker, None)
