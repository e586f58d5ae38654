"""open_memory_channel, MemorySendChannel, MemoryReceiveChannel, tether.abc."""

import math
import signal

import pytest

import tether
from tether import lowlevel
from tether.abc import AsyncResource, Channel, ReceiveChannel, SendChannel
from tether.testing import (
    MockClock,
    assert_checkpoints,
    assert_no_checkpoints,
    wait_all_tasks_blocked,
)


def run_mock(async_fn):
    return tether.run(async_fn, clock=MockClock(autojump_threshold=0))


def test_open_memory_channel_checks_its_argument():
    for bad in [1.5, "1", None]:
        with pytest.raises(TypeError):
            tether.open_memory_channel(bad)
    with pytest.raises(ValueError, match=r"^max_buffer_size must be >= 0$"):
        tether.open_memory_channel(-1)
    send, receive = tether.open_memory_channel(math.inf)
    assert send.statistics().max_buffer_size == math.inf
    # The subscripted form, for type checkers, works at run time too.
    send, receive = tether.open_memory_channel[int](3)
    assert isinstance(send, tether.MemorySendChannel)
    assert isinstance(receive, tether.MemoryReceiveChannel)
    assert receive.statistics().max_buffer_size == 3


def test_no_public_constructors():
    with pytest.raises(TypeError, match="open_memory_channel"):
        tether.MemorySendChannel()
    with pytest.raises(TypeError, match="open_memory_channel"):
        tether.MemoryReceiveChannel()


def test_buffered_fifo_and_nowait():
    async def main():
        send, receive = tether.open_memory_channel(2)
        await send.send(1)
        send.send_nowait(2)
        with pytest.raises(tether.WouldBlock):
            send.send_nowait(3)
        stats = send.statistics()
        assert stats.current_buffer_used == 2
        assert stats.peak_buffer_used == 2
        assert await receive.receive() == 1
        assert receive.receive_nowait() == 2
        with pytest.raises(tether.WouldBlock):
            receive.receive_nowait()
        assert receive.statistics().current_buffer_used == 0
        assert receive.statistics().peak_buffer_used == 2

    tether.run(main)


def test_unbounded_buffer_never_blocks():
    async def main():
        send, receive = tether.open_memory_channel(math.inf)
        for i in range(1000):
            send.send_nowait(i)
        assert [receive.receive_nowait() for _ in range(1000)] == list(range(1000))

    tether.run(main)


def test_rendezvous_channel():
    log = []

    async def main():
        send, receive = tether.open_memory_channel(0)
        with pytest.raises(tether.WouldBlock):
            send.send_nowait("x")

        async def sender():
            await send.send("a")
            log.append(("sent a", tether.current_time()))

        async with tether.open_nursery() as nursery:
            nursery.start_soon(sender)
            await tether.sleep(1)
            assert send.statistics().tasks_waiting_send == 1
            assert send.statistics().current_buffer_used == 0
            assert log == []
            # receive_nowait takes the waiting sender's value.
            assert receive.receive_nowait() == "a"
            assert send.statistics().tasks_waiting_send == 0

            async def receiver():
                log.append(("received", await receive.receive()))

            nursery.start_soon(receiver)
            await wait_all_tasks_blocked()
            assert receive.statistics().tasks_waiting_receive == 1
            # send_nowait hands the value to the waiting receiver.
            send.send_nowait("b")
            assert receive.statistics().tasks_waiting_receive == 0
        assert log == [("sent a", 1.0), ("received", "b")]
        assert receive.statistics().peak_buffer_used == 0

    run_mock(main)


def test_waiting_senders_and_receivers_are_served_in_order():
    async def main():
        send, receive = tether.open_memory_channel(1)
        got = []
        async with tether.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(send.send, i)
                await wait_all_tasks_blocked()
            # One value buffered, three senders waiting.
            assert send.statistics().tasks_waiting_send == 3
            for _ in range(4):
                got.append(await receive.receive())
        assert got == [0, 1, 2, 3]

        async def receiver(i):
            got.append((i, await receive.receive()))

        got.clear()
        async with tether.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(receiver, i)
                await wait_all_tasks_blocked()
            assert receive.statistics().tasks_waiting_receive == 3
            for value in "abc":
                await send.send(value)
        assert got == [(0, "a"), (1, "b"), (2, "c")]

    tether.run(main)


def test_send_and_receive_are_checkpoints():
    async def main():
        send, receive = tether.open_memory_channel(1)
        ran = []

        async def other():
            ran.append(True)

        for op in [lambda: send.send(1), receive.receive]:
            ran.clear()
            async with tether.open_nursery() as nursery:
                nursery.start_soon(other)
                await op()
                assert ran == [True]

        # Cancelled before anything happened: nothing happens.
        with tether.CancelScope() as scope:
            scope.cancel()
            await send.send("lost")
        assert scope.cancelled_caught
        assert send.statistics().current_buffer_used == 0
        send.send_nowait("kept")
        with tether.CancelScope() as scope:
            scope.cancel()
            await receive.receive()
        assert scope.cancelled_caught
        assert receive.receive_nowait() == "kept"

    tether.run(main)


def test_cancelled_blocked_send_delivers_nothing():
    async def main():
        send, receive = tether.open_memory_channel(0)
        with tether.move_on_after(1) as scope:
            await send.send("never")
        assert scope.cancelled_caught
        assert send.statistics().tasks_waiting_send == 0
        with pytest.raises(tether.WouldBlock):
            receive.receive_nowait()

        with tether.move_on_after(1) as scope:
            await receive.receive()
        assert scope.cancelled_caught
        assert receive.statistics().tasks_waiting_receive == 0
        with pytest.raises(tether.WouldBlock):
            send.send_nowait("nobody waits")

    run_mock(main)


def test_value_handed_to_receiver_survives_its_cancellation():
    # The receiver is rescheduled with the value; cancelling it right after
    # cannot lose the value.
    async def main():
        send, receive = tether.open_memory_channel(0)
        results = []
        box = []

        async def receiver():
            with tether.CancelScope() as scope:
                box.append(scope)
                results.append(await receive.receive())
                await lowlevel.checkpoint()
            results.append(scope.cancelled_caught)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(receiver)
            await wait_all_tasks_blocked()
            send.send_nowait("precious")
            box[0].cancel()
        assert results == ["precious", True]

    tether.run(main)


def test_value_taken_from_sender_counts_as_sent_despite_cancellation():
    async def main():
        send, receive = tether.open_memory_channel(0)
        results = []
        box = []

        async def sender():
            with tether.CancelScope() as scope:
                box.append(scope)
                await send.send("precious")
                results.append("send returned")
                await lowlevel.checkpoint()
            results.append(scope.cancelled_caught)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(sender)
            await wait_all_tasks_blocked()
            assert receive.receive_nowait() == "precious"
            box[0].cancel()
        assert results == ["send returned", True]

    tether.run(main)


def test_closing_the_send_side():
    async def main():
        send, receive = tether.open_memory_channel(5)
        send2 = send.clone()
        assert send.statistics().open_send_channels == 2
        await send.send(1)
        await send2.send(2)
        send.close()
        send.close()  # idempotent
        assert send.statistics().open_send_channels == 1
        with pytest.raises(tether.ClosedResourceError):
            await send.send(3)
        with pytest.raises(tether.ClosedResourceError):
            send.send_nowait(3)
        with pytest.raises(tether.ClosedResourceError):
            send.clone()
        await send2.aclose()
        assert send.statistics().open_send_channels == 0
        # Buffered values are still delivered, then EndOfChannel, forever.
        assert await receive.receive() == 1
        assert receive.receive_nowait() == 2
        with pytest.raises(tether.EndOfChannel):
            await receive.receive()
        with pytest.raises(tether.EndOfChannel):
            receive.receive_nowait()
        with pytest.raises(tether.EndOfChannel):
            await receive.receive()

    tether.run(main)


def test_last_send_close_wakes_receivers_with_end_of_channel():
    async def main():
        send, receive = tether.open_memory_channel(0)
        receive2 = receive.clone()
        results = []

        async def receiver(channel):
            try:
                await channel.receive()
            except tether.EndOfChannel:
                results.append("end")

        async with tether.open_nursery() as nursery:
            nursery.start_soon(receiver, receive)
            nursery.start_soon(receiver, receive2)
            await wait_all_tasks_blocked()
            clone = send.clone()
            send.close()
            await wait_all_tasks_blocked()
            assert results == []
            assert receive.statistics().tasks_waiting_receive == 2
            clone.close()
        assert results == ["end", "end"]
        assert receive.statistics().tasks_waiting_receive == 0

    tether.run(main)


def test_closing_the_receive_side():
    async def main():
        send, receive = tether.open_memory_channel(2)
        receive2 = receive.clone()
        await send.send("buffered")
        receive.close()
        with pytest.raises(tether.ClosedResourceError):
            await receive.receive()
        with pytest.raises(tether.ClosedResourceError):
            receive.receive_nowait()
        with pytest.raises(tether.ClosedResourceError):
            receive.clone()
        # Another clone is open: sending still works.
        await send.send("more")
        results = []

        async def sender():
            try:
                await send.send("blocked")
            except tether.BrokenResourceError:
                results.append("broken")

        async with tether.open_nursery() as nursery:
            nursery.start_soon(sender)
            await wait_all_tasks_blocked()
            assert send.statistics().tasks_waiting_send == 1
            await receive2.aclose()
        assert results == ["broken"]
        stats = send.statistics()
        assert stats.open_receive_channels == 0
        assert stats.current_buffer_used == 0  # discarded: nobody can receive them
        assert stats.tasks_waiting_send == 0
        with pytest.raises(tether.BrokenResourceError):
            await send.send("x")
        with pytest.raises(tether.BrokenResourceError):
            send.send_nowait("x")
        # A closed handle says so first.
        send.close()
        with pytest.raises(tether.ClosedResourceError):
            await send.send("x")

    tether.run(main)


def test_closing_a_handle_wakes_only_its_own_waiters():
    async def main():
        send, receive = tether.open_memory_channel(0)
        receive2 = receive.clone()
        send2 = send.clone()
        results = []

        async def receiver(name, channel):
            try:
                results.append((name, await channel.receive()))
            except tether.ClosedResourceError:
                results.append((name, "closed"))

        async with tether.open_nursery() as nursery:
            nursery.start_soon(receiver, "r1", receive)
            await wait_all_tasks_blocked()
            nursery.start_soon(receiver, "r2", receive2)
            await wait_all_tasks_blocked()
            receive.close()
            await wait_all_tasks_blocked()
            assert results == [("r1", "closed")]
            await send.send("hello")
        assert results == [("r1", "closed"), ("r2", "hello")]

        results.clear()

        async def sender(name, channel):
            try:
                await channel.send(name)
                results.append((name, "sent"))
            except tether.ClosedResourceError:
                results.append((name, "closed"))

        async with tether.open_nursery() as nursery:
            nursery.start_soon(sender, "s1", send)
            await wait_all_tasks_blocked()
            nursery.start_soon(sender, "s2", send2)
            await wait_all_tasks_blocked()
            send.close()
            await wait_all_tasks_blocked()
            assert results == [("s1", "closed")]
            assert await receive2.receive() == "s2"
        assert results == [("s1", "closed"), ("s2", "sent")]

    tether.run(main)


def test_async_iteration_and_context_managers():
    async def main():
        send, receive = tether.open_memory_channel(0)
        got = []

        async def producer():
            async with send:
                for i in range(5):
                    await send.send(i)

        async def consumer():
            with receive:
                async for value in receive:
                    got.append(value)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(producer)
            nursery.start_soon(consumer)
        assert got == [0, 1, 2, 3, 4]
        stats = send.statistics()
        assert stats.open_send_channels == 0
        assert stats.open_receive_channels == 0

        send, receive = tether.open_memory_channel(1)
        with send:
            pass
        async for _ in receive:
            raise AssertionError("not reached")  # pragma: no cover
        async with receive as same:
            assert same is receive
        with pytest.raises(tether.ClosedResourceError):
            await receive.__anext__()

    tether.run(main)


def test_async_iteration_waits_for_values():
    async def main():
        send, receive = tether.open_memory_channel(0)
        got = []

        async def consumer():
            async for value in receive:
                got.append((value, tether.current_time()))

        async with tether.open_nursery() as nursery:
            nursery.start_soon(consumer)
            for i in range(3):
                await tether.sleep(1)
                await send.send(i)
            await tether.sleep(1)
            await send.aclose()
        assert got == [(0, 1.0), (1, 2.0), (2, 3.0)]

    run_mock(main)


def test_aclose_closes_even_when_cancelled():
    async def main():
        send, receive = tether.open_memory_channel(1)
        with tether.CancelScope() as scope:
            scope.cancel()
            await send.aclose()
        assert scope.cancelled_caught
        assert send.statistics().open_send_channels == 0
        with tether.CancelScope() as scope:
            scope.cancel()
            async with receive:
                pass
        assert scope.cancelled_caught
        assert receive.statistics().open_receive_channels == 0

    tether.run(main)


def test_statistics_and_repr():
    async def main():
        send, receive = tether.open_memory_channel(3)
        receive.clone()
        await send.send("x")
        assert send.statistics() == tether.MemoryChannelStatistics(
            current_buffer_used=1,
            max_buffer_size=3,
            open_send_channels=1,
            open_receive_channels=2,
            tasks_waiting_send=0,
            tasks_waiting_receive=0,
            peak_buffer_used=1,
        )
        assert receive.statistics() == send.statistics()
        assert "MemorySendChannel" in repr(send)
        assert "MemoryReceiveChannel" in repr(receive)
        send.close()
        assert "closed" in repr(send)

    tether.run(main)


def test_memory_channels_implement_the_abcs():
    send, receive = tether.open_memory_channel(0)
    assert isinstance(send, SendChannel)
    assert isinstance(send, AsyncResource)
    assert isinstance(receive, ReceiveChannel)
    assert isinstance(receive, AsyncResource)
    assert not isinstance(send, ReceiveChannel)


def test_abstract_classes_cannot_be_instantiated():
    for cls in [AsyncResource, SendChannel, ReceiveChannel, Channel]:
        with pytest.raises(TypeError):
            cls()


def test_user_defined_channel_gets_iteration_and_context_manager():
    class ListChannel(Channel):
        def __init__(self):
            self.items = []
            self.closed = False

        async def send(self, value):
            await lowlevel.checkpoint()
            self.items.append(value)

        async def receive(self):
            await lowlevel.checkpoint()
            if not self.items:
                raise tether.EndOfChannel
            return self.items.pop(0)

        async def aclose(self):
            self.closed = True

    async def main():
        async with ListChannel() as channel:
            for i in range(3):
                await channel.send(i)
            assert [value async for value in channel] == [0, 1, 2]
        assert channel.closed

    tether.run(main)


def test_channel_with_many_clones_and_tasks():
    async def main():
        send, receive = tether.open_memory_channel(3)
        got = {}

        async def producer(channel, base):
            async with channel:
                for i in range(20):
                    await channel.send(base + i)

        async def consumer(channel, name):
            got[name] = []
            async with channel:
                async for value in channel:
                    got[name].append(value)

        async with tether.open_nursery() as nursery:
            async with send, receive:
                for k in range(4):
                    nursery.start_soon(producer, send.clone(), 100 * k)
                for name in range(3):
                    nursery.start_soon(consumer, receive.clone(), name)
        everything = [v for values in got.values() for v in values]
        assert sorted(everything) == sorted(100 * k + i for k in range(4) for i in range(20))
        # Each consumer sees each producer's values in the order they were sent.
        for values in got.values():
            for k in range(4):
                mine = [v for v in values if v // 100 == k]
                assert mine == sorted(mine)

    tether.run(main)


def test_a_sender_that_must_wait_is_queued_before_other_tasks_run():
    # trio's order: the blocked send registers in the step that made it, so a
    # receive_nowait by the next task to run already finds its value. (A send
    # that yielded first and registered later would make this WouldBlock,
    # and locks built from channels would lose their FIFO fairness.)
    async def main():
        send, receive = tether.open_memory_channel(0)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(send.send, "queued")
            await lowlevel.checkpoint()  # the sender takes its first step
            assert receive.receive_nowait() == "queued"

    tether.run(main)


def test_lock_made_of_a_channel_hands_over_in_fifo_order():
    class ChannelLock:
        def __init__(self):
            self.send, self.receive = tether.open_memory_channel(0)
            self.held = False

        async def acquire(self):
            if self.held:
                await self.send.send(None)
            else:
                self.held = True
                await lowlevel.checkpoint()

        def release(self):
            try:
                self.receive.receive_nowait()
            except tether.WouldBlock:
                self.held = False

    record = []

    async def worker(name, lock):
        for _ in range(4):
            await lock.acquire()
            record.append(name)
            lock.release()

    async def main():
        lock = ChannelLock()
        async with tether.open_nursery() as nursery:
            for name in "abc":
                nursery.start_soon(worker, name, lock)

    tether.run(main)
    assert record == list("abc" * 4)


@pytest.mark.tether
async def test_every_way_to_send_and_receive_is_a_checkpoint_and_nowait_is_none():
    send, receive = tether.open_memory_channel(1)
    with assert_checkpoints():
        await send.send("a")
    with assert_checkpoints():
        assert await receive.receive() == "a"
    await send.send("b")
    with assert_checkpoints():
        assert await receive.__anext__() == "b"
    with assert_no_checkpoints():
        send.send_nowait("c")
        assert receive.receive_nowait() == "c"


def test_a_deferred_ctrl_c_reaches_the_main_task_at_send_before_it_sends():
    send, _ = tether.open_memory_channel(1)

    @lowlevel.enable_ki_protection
    def ctrl_c_in_protected_code():
        signal.raise_signal(signal.SIGINT)

    async def main():
        ctrl_c_in_protected_code()
        await send.send("lost")

    with pytest.raises(KeyboardInterrupt):
        tether.run(main)
    assert send.statistics().current_buffer_used == 0


def test_a_deferred_ctrl_c_never_lands_after_receive_took_its_value():
    # The schedule point after taking the value is not a cancel point: the
    # Ctrl-C waits for the next one, and the value is not lost.
    send, receive = tether.open_memory_channel(1)
    got = []

    @lowlevel.enable_ki_protection
    def ctrl_c_in_protected_code():
        signal.raise_signal(signal.SIGINT)

    class CtrlCAfterStep(lowlevel.Instrument):
        def after_task_step(self, task):
            # Right after the step in which main took the value.
            taken = receive.statistics().current_buffer_used == 0
            if task.name.endswith("main") and taken and not got:
                ctrl_c_in_protected_code()

    async def main():
        send.send_nowait("precious")
        got.append(await receive.receive())
        await lowlevel.checkpoint()

    with pytest.raises(KeyboardInterrupt):
        tether.run(main, instruments=[CtrlCAfterStep()])
    assert got == ["precious"]


def test_a_channel_can_be_used_in_one_run_after_another():
    send, receive = tether.open_memory_channel(math.inf)

    async def use(value):
        await send.send(value)
        with tether.CancelScope() as scope:
            scope.cancel()
            await send.send("not sent")
        assert scope.cancelled_caught
        return await receive.receive()

    assert tether.run(use, 1) == 1
    assert tether.run(use, 2) == 2
    assert send.statistics().current_buffer_used == 0


def test_send_and_receive_outside_a_task_are_errors():
    send, receive = tether.open_memory_channel(1)
    for awaitable in [send.send(1), receive.receive(), receive.__anext__()]:
        with pytest.raises(RuntimeError, match=r"inside tether\.run"):
            awaitable.send(None)

    async def main():
        outside = []

        def callback():
            # A run_sync_soon callback runs in the loop, not in a task.
            try:
                send.send(1).send(None)
            except RuntimeError as exc:
                outside.append(str(exc))

        lowlevel.current_tether_token().run_sync_soon(callback)
        await tether.sleep(0)
        await tether.sleep(0)
        assert outside == ["must be called from inside a tether task"]

    tether.run(main)


def test_send_and_receive_see_every_way_a_scope_gets_cancelled():
    # The channel asks the run whether anything at all is cancelled before
    # it asks about the task (see SteppingState.cancel_pending): every way
    # into a cancelled scope must still be seen, and the run's count must
    # come back to 0 once no scope is cancelled.
    send, receive = tether.open_memory_channel(math.inf)

    async def cancelled(op):
        try:
            await op()
        except tether.Cancelled:
            return True
        return False

    async def child(results):
        results.append(await cancelled(lambda: send.send("child")))

    async def main():
        state = lowlevel.current_stepping_state()
        seen = []
        with tether.CancelScope() as outer:
            outer.cancel()
            seen.append(await cancelled(lambda: send.send(1)))
            seen.append(await cancelled(receive.receive))
            with tether.CancelScope(shield=True) as shield:
                seen.append(await cancelled(lambda: send.send(2)))
                shield.shield = False
                seen.append(await cancelled(lambda: send.send(3)))
                shield.shield = True
                seen.append(await cancelled(lambda: send.send(4)))
                # Leaving the shield goes back into the cancelled scope,
                # which nothing recalculates on the way.
            seen.append(await cancelled(lambda: send.send(5)))
        assert state.cancelled_statuses == 0
        seen.append(await cancelled(lambda: send.send(6)))
        before_entry = tether.CancelScope()
        before_entry.cancel()
        with before_entry:
            seen.append(await cancelled(lambda: send.send(7)))
        with tether.move_on_at(tether.current_time() - 1):
            seen.append(await cancelled(lambda: send.send(8)))
        with tether.CancelScope() as scope:
            # A deadline moved into the past cancels the scope when the loop
            # next expires deadlines, as in trio: this send goes through,
            # and the next one is cancelled.
            scope.deadline = tether.current_time() - 1
            seen.append(await cancelled(lambda: send.send(9)))
            seen.append(await cancelled(lambda: send.send(10)))
        children = []
        async with tether.open_nursery() as nursery:
            nursery.cancel_scope.cancel()
            nursery.start_soon(child, children)
        assert state.cancelled_statuses == 0
        values = []
        while True:
            try:
                values.append(receive.receive_nowait())
            except tether.WouldBlock:
                break
        return seen, children, values

    seen, children, values = tether.run(main)
    assert seen == [True, True, False, True, False, True, False, True, True, False, True]
    assert children == [True]
    assert values == [2, 4, 6, 9]
