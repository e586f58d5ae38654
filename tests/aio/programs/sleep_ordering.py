"""Timers: tasks wake in deadline order; call_later and call_at."""

import asyncio


async def sleeper(name, delay):
    await asyncio.sleep(delay)
    print("woke", name)


async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0.025, print, "call_later 25ms")
    handle = loop.call_later(0.015, print, "cancelled timer")
    loop.call_at(loop.time() + 0.005, print, "call_at 5ms")
    handle.cancel()
    print("handle cancelled", handle.cancelled())
    await asyncio.gather(sleeper("30ms", 0.03), sleeper("10ms", 0.01), sleeper("20ms", 0.02))
    result = await asyncio.sleep(0.001, result="sleep result")
    print(result)


asyncio.run(main())
