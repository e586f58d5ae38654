"""wait and as_completed."""

import asyncio


async def value(delay, v):
    await asyncio.sleep(delay)
    return v


async def fail(delay):
    await asyncio.sleep(delay)
    raise ValueError("failed")


async def main():
    tasks = [asyncio.create_task(value(d, d)) for d in (0.1, 0.01, 0.06)]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    print("first completed", sorted(t.result() for t in done), len(pending))
    done, pending = await asyncio.wait(pending, timeout=0.002)
    print("after short timeout", len(done), len(pending))
    done, pending = await asyncio.wait(pending)
    print("all", sorted(t.result() for t in done), pending)
    tasks = [asyncio.create_task(value(0.05, "late")), asyncio.create_task(fail(0.01))]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    print("first exception", [type(t.exception()).__name__ for t in done], len(pending))
    for t in pending:
        t.cancel()
    order = []
    for next_done in asyncio.as_completed([value(d, d) for d in (0.02, 0.01, 0.03)]):
        order.append(await next_done)
    print("as_completed", order)
    try:
        for next_done in asyncio.as_completed([value(0.01, "ok"), value(1, "x")], timeout=0.03):
            print("got", await next_done)
    except TimeoutError:
        print("as_completed timeout")
    try:
        await asyncio.wait([])
    except ValueError as exc:
        print("ValueError", exc)


asyncio.run(main())
