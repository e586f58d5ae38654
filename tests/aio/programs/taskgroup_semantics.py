"""TaskGroup: waiting, errors cancel siblings and body, parent cancellation."""

import asyncio


async def sleeper(name, delay):
    try:
        await asyncio.sleep(delay)
        print(name, "done")
        return name
    except asyncio.CancelledError:
        print(name, "cancelled")
        raise


async def crash(delay, exc):
    await asyncio.sleep(delay)
    raise exc


async def main():
    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(sleeper("a", 0.02))
        b = tg.create_task(sleeper("b", 0.01))
    print("results", a.result(), b.result())
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sleeper("sibling", 1))
            tg.create_task(crash(0.01, ValueError("v")))
            tg.create_task(crash(0.01, KeyError("k")))
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                print("body cancelled")
                raise
    except* ValueError as eg:
        print("ValueErrors", [repr(e) for e in eg.exceptions])
    except* KeyError as eg:
        print("KeyErrors", [repr(e) for e in eg.exceptions])
    print("cancelling after group", asyncio.current_task().cancelling())

    async def parent():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sleeper("grandchild", 1))
        print("not reached")

    task = asyncio.create_task(parent())
    await asyncio.sleep(0.01)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print("parent cancelled", task.cancelled())
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sleeper("x", 1))
            raise RuntimeError("body failed")
    except* RuntimeError as eg:
        print("body error", [str(e) for e in eg.exceptions])


asyncio.run(main())
