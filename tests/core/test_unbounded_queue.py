"""tether.lowlevel.UnboundedQueue: never-blocking puts, batched gets."""

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, assert_checkpoints, wait_all_tasks_blocked


def run_mock(async_fn, *args):
    return tether.run(async_fn, *args, clock=MockClock(autojump_threshold=0))


def test_a_batch_is_everything_queued_in_order():
    async def main():
        queue = lowlevel.UnboundedQueue[int]()
        assert queue.empty()
        with pytest.raises(tether.WouldBlock):
            queue.get_batch_nowait()
        for item in (1, 2, 3):
            queue.put_nowait(item)
        assert queue.qsize() == 3
        assert not queue.empty()
        assert queue.statistics() == lowlevel.UnboundedQueueStatistics(qsize=3, tasks_waiting=0)
        assert "3 items" in repr(queue)
        assert queue.get_batch_nowait() == [1, 2, 3]
        assert queue.empty()
        queue.put_nowait(4)
        assert await queue.get_batch() == [4]

    run_mock(main)


def test_get_batch_waits_and_takes_what_arrived_meanwhile():
    async def main():
        queue = lowlevel.UnboundedQueue[str]()
        batches = []

        async def consumer():
            async for batch in queue:
                batches.append(batch)

        async with tether.open_nursery() as nursery:
            nursery.start_soon(consumer)
            await wait_all_tasks_blocked()
            assert queue.statistics().tasks_waiting == 1
            queue.put_nowait("a")
            queue.put_nowait("b")
            await wait_all_tasks_blocked()
            queue.put_nowait("c")
            await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert batches == [["a", "b"], ["c"]]

    run_mock(main)


def test_a_waiting_consumer_owns_the_next_batch():
    async def main():
        queue = lowlevel.UnboundedQueue[int]()
        got = []

        async def consumer():
            got.append(await queue.get_batch())

        async with tether.open_nursery() as nursery:
            nursery.start_soon(consumer)
            await wait_all_tasks_blocked()
            queue.put_nowait(1)
            queue.put_nowait(2)
            # The woken consumer has not run yet, but the items are its.
            with pytest.raises(tether.WouldBlock):
                queue.get_batch_nowait()
            assert queue.qsize() == 2
        assert got == [[1, 2]]

    run_mock(main)


def test_waiting_consumers_take_turns_and_only_one_wakes_per_batch():
    async def main():
        queue = lowlevel.UnboundedQueue[int]()
        record = []

        async def consumer(name):
            while True:
                record.append((name, await queue.get_batch()))

        async with tether.open_nursery() as nursery:
            nursery.start_soon(consumer, "first")
            await wait_all_tasks_blocked()
            nursery.start_soon(consumer, "second")
            await wait_all_tasks_blocked()
            for item in range(3):
                queue.put_nowait(item)
            await wait_all_tasks_blocked()
            # One batch, one consumer woken; the other is still waiting.
            assert record == [("first", [0, 1, 2])]
            assert queue.statistics().tasks_waiting == 2
            for item in range(3, 7):
                queue.put_nowait(item)
                await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        names = [name for name, _ in record]
        assert names == ["first", "second", "first", "second", "first"]
        assert [batch for _, batch in record[1:]] == [[3], [4], [5], [6]]

    run_mock(main)


def test_get_batch_is_a_checkpoint_even_when_items_are_ready():
    async def main():
        queue = lowlevel.UnboundedQueue[None]()
        queue.put_nowait(None)
        with assert_checkpoints():
            await queue.get_batch()
        queue.put_nowait(None)
        with tether.CancelScope() as scope:
            scope.cancel()
            await queue.get_batch()
        assert scope.cancelled_caught
        # Cancelled before taking anything: the item is still there.
        assert queue.get_batch_nowait() == [None]

    run_mock(main)


def test_a_cancelled_wait_takes_nothing_and_leaves_the_queue_usable():
    async def main():
        queue = lowlevel.UnboundedQueue[int]()
        with tether.move_on_after(1):
            await queue.get_batch()
        assert queue.statistics().tasks_waiting == 0
        queue.put_nowait(7)
        assert queue.get_batch_nowait() == [7]

    run_mock(main)
