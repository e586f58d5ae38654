"""gather and TaskGroup, iteration by iteration: a ticker task counts loop
iterations with sleep(0), so every event prints the iteration it happened
in. Children finish after different numbers of iterations (or in the same
one), succeed, fail or are cancelled, in every position, and are mixed with
futures resolved by callbacks. Also: a task that returns with a cancellation
pending."""

import asyncio

tick = 0


async def ticker():
    global tick
    while True:
        await asyncio.sleep(0)
        tick += 1


async def after(n, result, exc=None):
    for _ in range(n):
        await asyncio.sleep(0)
    print("tick", tick, "child", result, "finishing")
    if exc is not None:
        raise exc
    return result


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

    # Coroutines only: the gather completes when the last child's callback runs.
    results = await asyncio.gather(after(3, "a3"), after(1, "a1"), after(2, "a2"))
    print("tick", tick, "gather A", results)
    print("tick", tick, "after A")

    # A future resolved by a callback, finishing last and first.
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.call_later(0, lambda: loop.call_soon(fut.set_result, "fut"))
    results = await asyncio.gather(after(1, "b1"), fut, after(4, "b4"))
    print("tick", tick, "gather B", results)
    fut2 = loop.create_future()
    fut2.set_result("ready")
    results = await asyncio.gather(fut2, after(2, "c2"))
    print("tick", tick, "gather C", results)

    # An error among successes, with and without return_exceptions.
    results = await asyncio.gather(
        after(1, "d1"), after(2, "d2", ValueError("d2")), after(3, "d3"), return_exceptions=True
    )
    print("tick", tick, "gather D", [repr(r) for r in results])
    slow = asyncio.ensure_future(after(5, "slow"))
    try:
        await asyncio.gather(after(1, "e1"), after(2, "e2", KeyError("e2")), slow)
    except KeyError as exc:
        print("tick", tick, "gather E raised", repr(exc), "slow done", slow.done())
    result = await slow
    print("tick", tick, "slow", result)

    # A child cancelled by someone else.
    victim = asyncio.ensure_future(after(10, "victim"))
    loop.call_soon(victim.cancel)
    results = await asyncio.gather(victim, after(2, "f2"), return_exceptions=True)
    print("tick", tick, "gather F", [type(r).__name__ for r in results])

    # Cancelling the gather while some children are done.
    gathering = asyncio.gather(after(1, "g1"), after(6, "g6"))
    for _ in range(3):
        await asyncio.sleep(0)
    print("tick", tick, "cancel gather G", gathering.cancel())
    try:
        await gathering
    except asyncio.CancelledError:
        print("tick", tick, "gather G cancelled", gathering.cancelled())

    # TaskGroup: the block exits when the last task's callback has run.
    async with asyncio.TaskGroup() as tg:
        tg.create_task(after(2, "t2"))
        tg.create_task(after(1, "t1"))
        tg.create_task(after(4, "t4"))
        await asyncio.sleep(0)
        print("tick", tick, "body done")
    print("tick", tick, "group H exited")
    async with asyncio.TaskGroup() as tg:
        tg.create_task(after(1, "u1"))
        for _ in range(3):
            await asyncio.sleep(0)
        print("tick", tick, "body still running, u1 finished")
        tg.create_task(after(2, "u2"))
    print("tick", tick, "group I exited")
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(after(1, "v1"))
            tg.create_task(after(2, "v2", RuntimeError("v2")))
            tg.create_task(after(5, "v5"))
    except* RuntimeError as group:
        print("tick", tick, "group J raised", [repr(e) for e in group.exceptions])

    # Children finishing in the same iteration, futures mixed in.
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
