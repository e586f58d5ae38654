"""shield keeps the inner task running."""

import asyncio


async def important():
    await asyncio.sleep(0.02)
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
    await asyncio.sleep(0.005)
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
