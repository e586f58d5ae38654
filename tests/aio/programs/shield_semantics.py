"""shield keeps the inner task running.

No real timers: the inner task takes a counted number of loop iterations
(``sleep(0)`` yields exactly one), more than the cancellation of the caller
takes, so the order does not depend on the machine's load."""

import asyncio

#: Loop iterations the shielded work takes.
WORK_ITERATIONS = 5


async def important():
    for _ in range(WORK_ITERATIONS):
        await asyncio.sleep(0)
    print("important work finished")
    return "saved"


async def caller(inner):
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        print("caller cancelled, inner cancelled?", inner.cancelled())
        raise


async def main():
    inner = asyncio.create_task(important())
    task = asyncio.create_task(caller(inner))
    await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print("caller task cancelled", task.cancelled())
    print("inner result", await inner)
    inner = asyncio.create_task(asyncio.sleep(1))
    shielded = asyncio.shield(inner)
    inner.cancel()
    try:
        await shielded
    except asyncio.CancelledError:
        print("shield cancelled when inner is", shielded.cancelled())


asyncio.run(main())
