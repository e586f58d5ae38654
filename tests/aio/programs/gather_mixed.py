"""gather with children that finish in the same iteration, futures mixed in,
errors and cancellations in every position, and a task that returns with a
cancellation pending: results, exceptions and the iteration of completion."""

import asyncio

tick = 0


async def ticker():
    global tick
    while True:
        await asyncio.sleep(0)
        tick += 1


async def ok(i, n=1):
    for _ in range(n):
        await asyncio.sleep(0)
    return i


async def bad(n=1):
    for _ in range(n):
        await asyncio.sleep(0)
    raise ValueError("boom")


async def cancels_itself():
    await asyncio.sleep(0)
    raise asyncio.CancelledError()


async def run(label, make, **kw):
    try:
        result = await asyncio.gather(*make(), **kw)
        print("tick", tick, label, "returned", result)
    except BaseException as exc:
        print("tick", tick, label, "raised", type(exc).__name__, exc.args)


async def returns_with_cancel_pending():
    asyncio.current_task().cancel()
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        print("tick", tick, "caught the first cancel")
    asyncio.current_task().cancel()
    return "returned anyway"


async def main():
    task = asyncio.create_task(returns_with_cancel_pending())
    try:
        print("tick", tick, "result", await task)
    except asyncio.CancelledError:
        print("tick", tick, "task cancelled:", task.cancelled())
    clock = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    await run("A bad in the middle", lambda: (ok(1), bad(), ok(3)))
    await run("B bad last", lambda: (ok(1), ok(2), bad()))
    await run("C bad first", lambda: (bad(), ok(2), ok(3)))
    await run("D cancelled in the middle", lambda: (ok(1), cancels_itself(), ok(3)))
    done = loop.create_future()
    done.set_result("F")
    await run("E done future first", lambda: (done, bad(), ok(3)))
    await run("F return_exceptions", lambda: (ok(1), bad(), ok(3)), return_exceptions=True)
    await run("G different speeds", lambda: (ok(1, 3), bad(2), ok(3, 1)))
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "f")
    await run("H future resolved by a callback", lambda: (fut, ok(2)))
    later = loop.create_future()
    loop.call_later(0, lambda: loop.call_soon(later.set_result, "later"))
    await run("I future last", lambda: (ok(1), later, ok(2, 2)))

    clock.cancel()


asyncio.run(main())
