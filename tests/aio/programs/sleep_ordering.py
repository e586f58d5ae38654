"""Timers: tasks wake in deadline order; call_later and call_at.

The deadlines are 50 ms apart so that the order does not depend on how
promptly a loaded machine wakes the loop (both asyncio and tether.aio would
run two timers that are both overdue in one turn)."""

import asyncio


async def sleeper(name, delay):
    await asyncio.sleep(delay)
    print("woke", name)


async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0.25, print, "call_later 250ms")
    handle = loop.call_later(0.15, print, "cancelled timer")
    loop.call_at(loop.time() + 0.05, print, "call_at 50ms")
    handle.cancel()
    print("handle cancelled", handle.cancelled())
    await asyncio.gather(sleeper("300ms", 0.3), sleeper("100ms", 0.1), sleeper("200ms", 0.2))
    result = await asyncio.sleep(0.001, result="sleep result")
    print(result)


asyncio.run(main())
