"""Queues and locks: producer/consumer ordering, fairness."""

import asyncio


async def producer(queue, name, n):
    for i in range(n):
        await queue.put(f"{name}{i}")
        print("put", f"{name}{i}")
    print(name, "producer done")


async def consumer(queue, name):
    while True:
        item = await queue.get()
        print(name, "got", item)
        queue.task_done()
        await asyncio.sleep(0)


async def locked(lock, name, log):
    async with lock:
        log.append(f"{name} in")
        await asyncio.sleep(0.005)
        log.append(f"{name} out")


async def main():
    queue = asyncio.Queue(maxsize=2)
    consumers = [asyncio.create_task(consumer(queue, f"c{i}")) for i in range(2)]
    await asyncio.gather(producer(queue, "p", 4), producer(queue, "q", 3))
    await queue.join()
    for c in consumers:
        c.cancel()
    print("queue empty", queue.empty())

    lock = asyncio.Lock()
    log = []
    await asyncio.gather(*(locked(lock, n, log) for n in "abc"))
    print(log)

    sem = asyncio.Semaphore(2)
    active = []

    async def limited(n):
        async with sem:
            active.append(n)
            print("active", sorted(active))
            await asyncio.sleep(0.005)
            active.remove(n)

    await asyncio.gather(*(limited(n) for n in range(4)))

    event = asyncio.Event()

    async def waits(n):
        await event.wait()
        print("event waiter", n)

    waiters = [asyncio.create_task(waits(n)) for n in range(3)]
    await asyncio.sleep(0)
    event.set()
    await asyncio.gather(*waiters)

    cond = asyncio.Condition()
    items = []

    async def cond_consumer(n):
        async with cond:
            await cond.wait_for(lambda: items)
            print("cond consumer", n, "took", items.pop(0))

    consumers = [asyncio.create_task(cond_consumer(n)) for n in range(2)]
    await asyncio.sleep(0)
    async with cond:
        items.extend(["x", "y"])
        cond.notify_all()
    await asyncio.gather(*consumers)

    pq = asyncio.PriorityQueue()
    for item in (5, 1, 3):
        pq.put_nowait(item)
    lq = asyncio.LifoQueue()
    for item in (5, 1, 3):
        lq.put_nowait(item)
    print([pq.get_nowait() for _ in range(3)], [lq.get_nowait() for _ in range(3)])
    try:
        asyncio.Queue().get_nowait()
    except asyncio.QueueEmpty:
        print("QueueEmpty")
    barrier = asyncio.Barrier(3)

    async def party(n):
        await asyncio.sleep(0.001 * n)
        print("party", n, "passed", await barrier.wait() is not None)

    await asyncio.gather(*(party(n) for n in range(3)))


asyncio.run(main())
