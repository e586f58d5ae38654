"""Futures: results, exceptions, done callbacks and their order."""

import asyncio


async def main():
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    fut.add_done_callback(lambda f: print("callback 1 sees", f.result()))

    def removed(f):
        print("removed callback ran")

    fut.add_done_callback(removed)
    fut.add_done_callback(lambda f: print("callback 2"))
    print("removed", fut.remove_done_callback(removed))
    try:
        fut.result()
    except asyncio.InvalidStateError as exc:
        print("InvalidStateError", exc)
    loop.call_soon(fut.set_result, "value")
    print("awaited", await fut)
    try:
        fut.set_result("again")
    except asyncio.InvalidStateError as exc:
        print("set twice:", exc)

    failing = loop.create_future()
    loop.call_later(0.01, failing.set_exception, ZeroDivisionError("zero"))
    try:
        await failing
    except ZeroDivisionError as exc:
        print("future raised", repr(exc))

    cancelled = loop.create_future()
    loop.call_soon(cancelled.cancel, "msg")
    try:
        await cancelled
    except asyncio.CancelledError as exc:
        print("cancelled future", exc.args, cancelled.cancelled())

    order = []
    futures = [loop.create_future() for _ in range(3)]

    async def waiter(i):
        await futures[i]
        order.append(i)

    tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
    await asyncio.sleep(0)
    for i in (2, 0, 1):
        futures[i].set_result(None)
    await asyncio.gather(*tasks)
    print("wakeup order", order)
    print("isfuture", asyncio.isfuture(fut), asyncio.isfuture(tasks[0]), asyncio.isfuture(1))


asyncio.run(main())
