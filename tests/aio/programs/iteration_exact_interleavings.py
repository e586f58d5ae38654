"""A ticker prints every loop iteration while other tasks await futures,
tasks, gather, TaskGroup, wait_for and timeouts: the iterations at which
things happen must match asyncio's exactly."""

import asyncio

log = []


async def ticker(n):
    for i in range(n):
        log.append(f"tick {i}")
        await asyncio.sleep(0)


async def quick(v):
    log.append(f"quick {v} runs")
    return v


async def main():
    loop = asyncio.get_running_loop()
    tick = asyncio.create_task(ticker(60))
    await asyncio.sleep(0)

    fut = loop.create_future()

    async def setter():
        log.append("setter sets")
        fut.set_result("F")
        await asyncio.sleep(0)
        log.append("setter continues")

    asyncio.create_task(setter())  # noqa: RUF006 (runs on its own)
    log.append(f"awaited future: {await fut}")

    log.append(f"awaited task: {await asyncio.create_task(quick(1))}")
    log.append(f"gather: {await asyncio.gather(quick(2), quick(3))}")
    async with asyncio.TaskGroup() as tg:
        tg.create_task(quick(4))
        tg.create_task(quick(5))
    log.append("taskgroup exited")
    async with asyncio.TaskGroup() as tg:
        pass
    log.append("empty taskgroup exited")
    log.append(f"wait_for: {await asyncio.wait_for(quick(6), 1)}")
    async with asyncio.timeout(1):
        await asyncio.sleep(0)
    log.append("timeout block exited")
    await asyncio.wait([asyncio.create_task(quick(7))])
    log.append("wait returned")
    event = asyncio.Event()

    async def waiter():
        await event.wait()
        log.append("event waiter woke")

    w = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    event.set()
    log.append("event set")
    await w
    lock = asyncio.Lock()
    async with lock:
        log.append("lock held")
    q = asyncio.Queue()

    async def getter():
        log.append(f"queue got {await q.get()}")

    g = asyncio.create_task(getter())
    await asyncio.sleep(0)
    q.put_nowait("item")
    log.append("queue put")
    await g
    t = asyncio.create_task(quick(8))
    t.add_done_callback(lambda _: log.append("done callback"))
    await t
    log.append("after task with callback")
    await asyncio.shield(quick(9))
    log.append("after shield")
    tick.cancel()
    try:
        await tick
    except asyncio.CancelledError:
        log.append("ticker cancelled")
    print("\n".join(log))


asyncio.run(main())
