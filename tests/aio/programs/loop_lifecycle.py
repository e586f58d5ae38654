"""A loop run in several steps: run_until_complete, run_forever, stop, close.

No real timers: the ticker and the first run take counted loop iterations
(``sleep(0)`` yields exactly one), so how far the ticker gets in the first
run does not depend on the machine's load."""

import asyncio


async def iterations(count, result=None):
    for _ in range(count):
        await asyncio.sleep(0)
    return result


async def ticker(n):
    for i in range(n):
        print("tick", i)
        await iterations(10)
    return "ticker done"


loop = asyncio.new_event_loop()
task = loop.create_task(ticker(4))
loop.call_soon(print, "callback queued before running")
print("first run:", loop.run_until_complete(iterations(14, "slept")))
print("task done between runs?", task.done())
loop.call_soon(print, "one")
loop.call_soon(loop.stop)
loop.call_soon(print, "two")
loop.run_forever()
print("after run_forever")
print("second run:", loop.run_until_complete(task))


async def stop_soon():
    asyncio.get_running_loop().stop()
    await asyncio.sleep(1)


try:
    loop.run_until_complete(stop_soon())
except RuntimeError as exc:
    print("RuntimeError:", exc)
print("running?", loop.is_running(), "closed?", loop.is_closed())
for leftover in asyncio.all_tasks(loop):
    leftover.cancel()
    try:
        loop.run_until_complete(leftover)
    except asyncio.CancelledError:
        print("leftover cancelled")
loop.close()
print("closed?", loop.is_closed())
try:
    loop.run_forever()
except RuntimeError as exc:
    print("RuntimeError:", exc)
