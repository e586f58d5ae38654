"""In-memory test streams: MemorySendStream, MemoryReceiveStream,
memory_stream_pump, the memory and lockstep pairs."""

import pytest

import tether
from tether.testing import (
    MemoryReceiveStream,
    MemorySendStream,
    assert_checkpoints,
    lockstep_stream_one_way_pair,
    lockstep_stream_pair,
    memory_stream_one_way_pair,
    memory_stream_pair,
    memory_stream_pump,
    wait_all_tasks_blocked,
)

pytestmark = pytest.mark.tether


async def test_send_stream_buffers_what_is_sent_until_it_is_taken():
    stream = MemorySendStream()
    with assert_checkpoints():
        await stream.send_all(b"hello")
    await stream.send_all(memoryview(b" world"))
    assert stream.get_data_nowait(3) == b"hel"
    with assert_checkpoints():
        assert await stream.get_data() == b"lo world"
    with pytest.raises(tether.WouldBlock):
        stream.get_data_nowait()
    with assert_checkpoints():
        await stream.wait_send_all_might_not_block()


async def test_get_data_waits_for_data_and_reports_the_end_after_close():
    stream = MemorySendStream()
    got = []

    async def getter():
        got.append(await stream.get_data())
        got.append(await stream.get_data())

    async with tether.open_nursery() as nursery:
        nursery.start_soon(getter)
        await wait_all_tasks_blocked()
        assert got == []
        await stream.send_all(b"abc")
        await wait_all_tasks_blocked()
        assert got == [b"abc"]
        await stream.aclose()
    assert got == [b"abc", b""]
    assert stream.get_data_nowait() == b""


async def test_send_stream_after_close():
    stream = MemorySendStream()
    await stream.send_all(b"kept")
    stream.close()
    stream.close()  # idempotent
    with pytest.raises(tether.ClosedResourceError):
        await stream.send_all(b"x")
    with pytest.raises(tether.ClosedResourceError):
        await stream.wait_send_all_might_not_block()
    # What was sent before the close can still be taken.
    assert await stream.get_data() == b"kept"
    assert await stream.get_data() == b""


async def test_two_concurrent_senders_collide():
    stream = MemorySendStream()
    outcomes = []

    async def send():
        try:
            await stream.send_all(b"x")
            outcomes.append("sent")
        except tether.BusyResourceError:
            outcomes.append("busy")

    async with tether.open_nursery() as nursery:
        nursery.start_soon(send)
        nursery.start_soon(send)
    assert sorted(outcomes) == ["busy", "sent"]
    assert stream.get_data_nowait() == b"x"


async def test_send_stream_hooks_run_after_the_work_and_can_be_replaced():
    log = []
    stream = MemorySendStream()
    assert (stream.send_all_hook, stream.wait_send_all_might_not_block_hook) == (None, None)
    assert stream.close_hook is None

    async def after_send():
        log.append(("sent", bytes(stream.get_data_nowait())))

    async def after_wait():
        log.append("waited")

    stream.send_all_hook = after_send
    stream.wait_send_all_might_not_block_hook = after_wait
    stream.close_hook = lambda: log.append("closed")
    await stream.send_all(b"ab")
    await stream.wait_send_all_might_not_block()
    await tether.aclose_forcefully(stream)
    stream.close()
    assert log == [("sent", b"ab"), "waited", "closed", "closed"]

    built = MemorySendStream(after_send, after_wait, print)
    assert built.send_all_hook is after_send
    assert built.wait_send_all_might_not_block_hook is after_wait
    assert built.close_hook is print


async def test_cancelled_send_sends_nothing():
    stream = MemorySendStream()
    with tether.CancelScope() as scope:
        scope.cancel()
        await stream.send_all(b"lost")
    assert scope.cancelled_caught
    with pytest.raises(tether.WouldBlock):
        stream.get_data_nowait()


async def test_receive_stream_returns_what_was_put_then_the_end():
    stream = MemoryReceiveStream()
    stream.put_data(b"abcdef")
    with assert_checkpoints():
        assert await stream.receive_some(2) == b"ab"
    assert await stream.receive_some() == b"cdef"
    stream.put_data(b"g")
    stream.put_eof()
    stream.put_eof()  # idempotent
    assert await stream.receive_some(10) == b"g"
    with assert_checkpoints():
        assert await stream.receive_some(10) == b""
    assert await stream.receive_some(10) == b""
    with pytest.raises(tether.ClosedResourceError):
        stream.put_data(b"after eof")


async def test_receive_stream_rejects_bad_max_bytes():
    stream = MemoryReceiveStream()
    stream.put_data(b"x")
    with pytest.raises(ValueError, match="at least 1"):
        await stream.receive_some(0)
    with pytest.raises(TypeError):
        await stream.receive_some(2.0)
    assert await stream.receive_some(1) == b"x"


async def test_receive_hook_runs_first_and_feeds_the_same_call():
    stream = MemoryReceiveStream()
    stream.receive_some_hook = lambda: _put_later(stream, b"!")
    stream.put_data(b"hi")
    assert await stream.receive_some() == b"hi!"
    stream.receive_some_hook = None
    stream.put_data(b"plain")
    assert await stream.receive_some() == b"plain"


async def _put_later(stream, data):
    stream.put_data(data)


async def test_closing_a_receive_stream_discards_data_and_wakes_the_receiver():
    closes = []
    stream = MemoryReceiveStream(close_hook=lambda: closes.append(1))
    stream.put_data(b"never read")

    async with tether.open_nursery() as nursery:
        stream2 = MemoryReceiveStream()

        async def receive_until_closed():
            with pytest.raises(tether.ClosedResourceError):
                await stream2.receive_some()

        nursery.start_soon(receive_until_closed)
        await wait_all_tasks_blocked()
        stream2.close()

    with assert_checkpoints():
        await stream.aclose()
    assert closes == [1]
    with pytest.raises(tether.ClosedResourceError):
        await stream.receive_some()
    with pytest.raises(tether.ClosedResourceError):
        stream.put_data(b"late")


async def test_data_handed_to_a_waiting_receiver_is_dropped_if_the_stream_closes_first():
    stream = MemoryReceiveStream()
    results = []

    async def receiver():
        try:
            results.append(await stream.receive_some())
        except tether.ClosedResourceError as error:
            results.append(str(error))

    async with tether.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await wait_all_tasks_blocked()
        stream.put_data(b"late")  # wakes the receiver with this chunk...
        stream.close()  # ...but the close comes before it runs
    assert results == ["this MemoryReceiveStream was closed"]


async def test_every_read_is_a_checkpoint_also_at_the_end_of_the_data():
    send = MemorySendStream()
    await send.send_all(b"abc")
    send.close()
    with assert_checkpoints():
        assert await send.get_data(2) == b"ab"
    with assert_checkpoints():
        assert await send.get_data() == b"c"
    with assert_checkpoints():
        assert await send.get_data() == b""
    receive = MemoryReceiveStream()
    receive.put_eof()
    with assert_checkpoints():
        assert await receive.receive_some() == b""
    receive.close()
    with assert_checkpoints(), pytest.raises(tether.ClosedResourceError):
        await receive.receive_some()


def test_memory_streams_can_be_filled_and_closed_outside_a_run():
    receive = MemoryReceiveStream()
    receive.put_data(b"prepared")
    receive.put_eof()
    send = MemorySendStream()
    send.close()
    assert send.get_data_nowait() == b""

    async def main():
        assert await receive.receive_some() == b"prepared"
        assert await receive.receive_some() == b""

    tether.run(main)


async def test_pump_moves_data_then_eof_and_reports_a_closed_receiver():
    send, receive = MemorySendStream(), MemoryReceiveStream()
    assert memory_stream_pump(send, receive) is False
    await send.send_all(b"123")
    assert memory_stream_pump(send, receive, max_bytes=2) is True
    assert await receive.receive_some() == b"12"
    assert memory_stream_pump(send, receive) is True
    assert memory_stream_pump(send, receive) is False
    assert await receive.receive_some() == b"3"
    send.close()
    assert memory_stream_pump(send, receive) is True
    assert await receive.receive_some() == b""

    send, receive = MemorySendStream(), MemoryReceiveStream()
    receive.close()
    await send.send_all(b"x")
    with pytest.raises(tether.BrokenResourceError):
        memory_stream_pump(send, receive)


async def test_one_way_pair_delivers_on_send_and_on_close():
    send, receive = memory_stream_one_way_pair()
    assert receive.receive_some_hook is None
    got = []

    async def receiver():
        got.append(await receive.receive_some())
        got.append(await receive.receive_some())

    async with tether.open_nursery() as nursery:
        nursery.start_soon(receiver)
        await wait_all_tasks_blocked()
        await send.send_all(b"ping")  # delivered by the send hook
        await wait_all_tasks_blocked()
        assert got == [b"ping"]
        send.close()  # the EOF is delivered by the close hook
    assert got == [b"ping", b""]


async def test_one_way_pair_can_be_stalled_by_removing_the_hook(autojump_clock):
    send, receive = memory_stream_one_way_pair()
    pump = send.send_all_hook
    send.send_all_hook = None
    await send.send_all(b"held")
    with tether.move_on_after(1) as scope:
        await receive.receive_some()
    assert scope.cancelled_caught
    send.send_all_hook = pump
    await send.send_all(b" back")
    assert await receive.receive_some() == b"held back"


async def test_one_way_pair_sender_breaks_when_the_receiver_closes_but_closes_cleanly():
    send, receive = memory_stream_one_way_pair()
    await receive.aclose()
    with pytest.raises(tether.BrokenResourceError):
        await send.send_all(b"x")
    send.send_all_hook = None
    await send.send_all(b"undeliverable")
    await send.aclose()  # not an error: the data is simply lost


async def test_memory_stream_pair_is_two_way_and_half_closeable():
    left, right = memory_stream_pair()
    assert isinstance(left, tether.StapledStream)
    await left.send_all(b"to the right")
    await right.send_all(b"to the left")
    assert await right.receive_some() == b"to the right"
    assert await left.receive_some() == b"to the left"
    await left.send_eof()
    assert await right.receive_some() == b""
    await right.send_all(b"still works this way")
    assert await left.receive_some() == b"still works this way"


async def test_trickling_pump_from_the_docstring(autojump_clock):
    left, right = memory_stream_pair()

    async def trickle():
        while memory_stream_pump(left.send_stream, right.receive_stream, max_bytes=1):
            await tether.sleep(1)

    left.send_stream.send_all_hook = trickle
    start = tether.current_time()
    await left.send_all(b"abc")
    assert tether.current_time() - start == 3
    assert await right.receive_some() == b"abc"


async def test_lockstep_send_waits_for_the_receiver_to_take_everything():
    send, receive = lockstep_stream_one_way_pair()
    log = []

    async def sender():
        await send.send_all(b"abcd")
        log.append("send done")

    async with tether.open_nursery() as nursery:
        nursery.start_soon(sender)
        await wait_all_tasks_blocked()
        assert log == []
        assert await receive.receive_some(3) == b"abc"
        await wait_all_tasks_blocked()
        assert log == []
        assert await receive.receive_some(3) == b"d"
    assert log == ["send done"]


async def test_lockstep_wait_send_all_might_not_block_waits_for_a_receiver():
    send, receive = lockstep_stream_one_way_pair()
    log = []

    async def waiter():
        await send.wait_send_all_might_not_block()
        log.append("may send")

    async with tether.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await wait_all_tasks_blocked()
        assert log == []
        nursery.start_soon(receive.receive_some)
        await wait_all_tasks_blocked()
        assert log == ["may send"]
        nursery.cancel_scope.cancel()


async def test_lockstep_cancelled_send_withdraws_the_rest_of_its_data():
    send, receive = lockstep_stream_one_way_pair()
    async with tether.open_nursery() as nursery:
        nursery.start_soon(send.send_all, b"abc")
        await wait_all_tasks_blocked()
        assert await receive.receive_some(1) == b"a"
        nursery.cancel_scope.cancel()

    async with tether.open_nursery() as nursery:
        nursery.start_soon(send.send_all, b"next")
        assert await receive.receive_some() == b"next"


async def test_lockstep_close_semantics():
    send, receive = lockstep_stream_one_way_pair()
    send.close()
    assert await receive.receive_some() == b""
    with pytest.raises(tether.ClosedResourceError):
        await send.send_all(b"x")
    receive.close()
    with pytest.raises(tether.ClosedResourceError):
        await receive.receive_some()

    send, receive = lockstep_stream_one_way_pair()
    await receive.aclose()
    with pytest.raises(tether.BrokenResourceError):
        await send.send_all(b"x")
    await send.wait_send_all_might_not_block()  # returns: a send would not block


async def test_lockstep_pair_is_two_way():
    left, right = lockstep_stream_pair()
    async with tether.open_nursery() as nursery:
        nursery.start_soon(left.send_all, b"ping")
        assert await right.receive_some() == b"ping"
        nursery.start_soon(right.send_all, b"pong")
        assert await left.receive_some() == b"pong"
