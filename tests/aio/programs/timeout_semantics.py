"""timeout, timeout_at, reschedule, wait_for."""

import asyncio


async def main():
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(0.02) as cm:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                print("cancelled inside, cancelling =", asyncio.current_task().cancelling())
                await asyncio.sleep(0)
                print("cleanup awaited")
                raise
    except TimeoutError as exc:
        print("TimeoutError", type(exc.__cause__).__name__, "expired", cm.expired())
    print("cancelling after", asyncio.current_task().cancelling())
    async with asyncio.timeout(1) as cm:
        await asyncio.sleep(0.01)
    print("not expired", cm.expired())
    try:
        async with asyncio.timeout(None) as cm:
            cm.reschedule(loop.time() + 0.01)
            await asyncio.sleep(1)
    except TimeoutError:
        print("rescheduled timeout fired")
    try:
        async with asyncio.timeout_at(loop.time() - 1):
            await asyncio.sleep(0)
            print("ran one step before timeout")
            await asyncio.sleep(0)
    except TimeoutError:
        print("past deadline timeout")

    async def slow(delay):
        try:
            await asyncio.sleep(delay)
            return "slow done"
        except asyncio.CancelledError:
            print("slow cancelled")
            raise

    print(await asyncio.wait_for(slow(0.01), 1))
    try:
        await asyncio.wait_for(slow(1), 0.01)
    except TimeoutError:
        print("wait_for timed out")
    try:
        await asyncio.wait_for(slow(1), 0)
    except TimeoutError:
        print("wait_for zero timeout")

    async def outer():
        async with asyncio.timeout(1):
            await asyncio.sleep(1)

    task = asyncio.create_task(outer())
    await asyncio.sleep(0.01)
    task.cancel("external")
    try:
        await task
    except asyncio.CancelledError as exc:
        print("external cancellation passes through timeout", exc.args)

    # How many iterations a wait_for on a coroutine that does not block
    # takes, seen from another task.
    log = []

    async def ticker():
        for i in range(8):
            log.append(i)
            await asyncio.sleep(0)

    async def quick():
        log.append("quick runs")
        return "quick"

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    log.append(await asyncio.wait_for(quick(), 10))
    log.append(await asyncio.wait_for(quick(), None))
    await ticking
    print(log)


asyncio.run(main())
