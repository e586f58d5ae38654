"""Synchronization primitives and queues on a tether loop (asyncio's own
classes: their fairness and errors are asyncio's)."""

from __future__ import annotations

import asyncio

import pytest

from tether import aio

from .conftest import run_virtual


def test_the_classes_are_the_standard_librarys():
    assert aio.Lock is asyncio.Lock
    assert aio.Queue is asyncio.Queue
    assert aio.QueueEmpty is asyncio.QueueEmpty
    assert aio.BrokenBarrierError is asyncio.BrokenBarrierError


def test_lock_fifo_and_errors():
    log = []

    async def worker(lock, name):
        async with lock:
            log.append(name)
            await aio.sleep(1)

    async def main():
        lock = aio.Lock()
        assert not lock.locked()
        await aio.gather(*(worker(lock, n) for n in "abcd"))
        with pytest.raises(RuntimeError, match="Lock is not acquired"):
            lock.release()
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 4.0
    assert log == ["a", "b", "c", "d"]


def test_lock_acquire_is_cancellable_and_passes_the_lock_on():
    async def main():
        lock = aio.Lock()
        await lock.acquire()
        waiter = aio.create_task(lock.acquire())
        second = aio.create_task(lock.acquire())
        await aio.sleep(0)
        waiter.cancel()
        lock.release()
        await aio.sleep(0)
        await aio.sleep(0)
        return waiter.cancelled(), second.done(), lock.locked()

    assert run_virtual(main()) == (True, True, True)


def test_event():
    async def waiter(event, log, n):
        await event.wait()
        log.append(n)

    async def main():
        event = aio.Event()
        log = []
        tasks = [aio.create_task(waiter(event, log, n)) for n in range(3)]
        await aio.sleep(1)
        assert log == [] and not event.is_set()
        event.set()
        await aio.gather(*tasks)
        event.clear()
        assert not event.is_set()
        return log

    assert run_virtual(main()) == [0, 1, 2]


def test_condition():
    async def consumer(cond, items, got):
        async with cond:
            await cond.wait_for(lambda: items)
            got.append(items.pop(0))

    async def main():
        cond = aio.Condition()
        items, got = [], []
        tasks = [aio.create_task(consumer(cond, items, got)) for _ in range(2)]
        await aio.sleep(0)
        async with cond:
            items.extend(["x", "y"])
            cond.notify(1)
        await aio.sleep(0)
        async with cond:
            cond.notify_all()
        await aio.gather(*tasks)
        with pytest.raises(RuntimeError, match="cannot notify on un-acquired lock"):
            cond.notify()
        return got

    assert run_virtual(main()) == ["x", "y"]


def test_semaphore_and_bounded_semaphore():
    active = []
    peak = []

    async def worker(sem):
        async with sem:
            active.append(1)
            peak.append(len(active))
            await aio.sleep(1)
            active.pop()

    async def main():
        sem = aio.Semaphore(2)
        await aio.gather(*(worker(sem) for _ in range(5)))
        bounded = aio.BoundedSemaphore(1)
        with pytest.raises(ValueError, match="BoundedSemaphore released too many times"):
            bounded.release()
        with pytest.raises(ValueError):
            aio.Semaphore(-1)
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 3.0
    assert max(peak) == 2


def test_barrier():
    async def party(barrier, log, n):
        await aio.sleep(n)
        index = await barrier.wait()
        log.append(index)

    async def main():
        barrier = aio.Barrier(3)
        log = []
        await aio.gather(*(party(barrier, log, n) for n in range(3)))
        broken = aio.Barrier(2)
        task = aio.create_task(broken.wait())
        await aio.sleep(0)
        await broken.abort()
        with pytest.raises(aio.BrokenBarrierError):
            await task
        return sorted(log)

    assert run_virtual(main()) == [0, 1, 2]


def test_queue_maxsize_join_and_errors():
    async def main():
        queue = aio.Queue(maxsize=1)
        queue.put_nowait(1)
        with pytest.raises(aio.QueueFull):
            queue.put_nowait(2)
        putter = aio.create_task(queue.put(2))
        await aio.sleep(0)
        assert not putter.done()
        assert queue.get_nowait() == 1
        await putter
        assert await queue.get() == 2
        queue.task_done()
        queue.task_done()
        with pytest.raises(aio.QueueEmpty):
            queue.get_nowait()
        queue.put_nowait("job")
        joined = aio.create_task(queue.join())
        await aio.sleep(0)
        assert not joined.done()
        await queue.get()
        queue.task_done()
        await joined
        with pytest.raises(ValueError, match="task_done"):
            queue.task_done()

    run_virtual(main())


def test_queue_getters_are_served_in_order():
    async def getter(queue, log, name):
        log.append((name, await queue.get()))

    async def main():
        queue = aio.Queue()
        log = []
        tasks = [aio.create_task(getter(queue, log, n)) for n in "ab"]
        await aio.sleep(0)
        queue.put_nowait(1)
        queue.put_nowait(2)
        await aio.gather(*tasks)
        return log

    assert run_virtual(main()) == [("a", 1), ("b", 2)]


def test_priority_and_lifo_queues():
    async def main():
        pq = aio.PriorityQueue()
        for item in (3, 1, 2):
            await pq.put(item)
        lq = aio.LifoQueue()
        for item in (3, 1, 2):
            await lq.put(item)
        return [pq.get_nowait() for _ in range(3)], [await lq.get() for _ in range(3)]

    assert run_virtual(main()) == ([1, 2, 3], [2, 1, 3])


def test_queue_get_with_timeout():
    async def main():
        queue = aio.Queue()
        with pytest.raises(TimeoutError):
            await aio.wait_for(queue.get(), 1)
        queue.put_nowait("still there")
        return await queue.get()

    assert run_virtual(main()) == "still there"
