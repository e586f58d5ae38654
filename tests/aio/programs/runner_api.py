"""asyncio.Runner: several runs on one loop, shared context.

No real timers: a task left running between runs progresses by counted loop
iterations (``sleep(0)`` yields exactly one), so how far it gets in each run
does not depend on the machine's load."""

import asyncio
import contextvars

var = contextvars.ContextVar("var", default=0)


async def bump():
    var.set(var.get() + 1)
    return var.get()


async def iterations(count):
    for _ in range(count):
        await asyncio.sleep(0)


async def background():
    for i in range(3):
        print("background", i)
        await iterations(5)


async def start_background():
    asyncio.create_task(background())  # noqa: RUF006 (runs on its own)
    await asyncio.sleep(0)


with asyncio.Runner() as runner:
    print(runner.run(bump()), runner.run(bump()))
    runner.run(start_background())
    runner.run(iterations(4))
    print("loop running?", runner.get_loop().is_running())
print("after close")
