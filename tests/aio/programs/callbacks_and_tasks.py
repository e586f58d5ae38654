"""Callbacks, task steps and sleep(0) interleave in FIFO order."""

import asyncio


async def worker(name, rounds):
    for i in range(rounds):
        print(f"{name} step {i}")
        await asyncio.sleep(0)
    return name


async def main():
    loop = asyncio.get_running_loop()
    loop.call_soon(print, "callback 1")
    first = asyncio.create_task(worker("a", 3))
    loop.call_soon(print, "callback 2")
    second = asyncio.create_task(worker("b", 2))
    loop.call_soon(print, "callback 3")
    print("main before yield")
    await asyncio.sleep(0)
    print("main after one iteration")
    loop.call_soon(lambda: loop.call_soon(print, "nested callback"))
    results = [await first, await second]
    print("results", results)
    print("current task name", asyncio.current_task().get_name())
    print("task names", first.get_name(), second.get_name())


asyncio.run(main())
