"""asyncio.Runner: several runs on one loop, shared context."""

import asyncio
import contextvars

var = contextvars.ContextVar("var", default=0)


async def bump():
    var.set(var.get() + 1)
    return var.get()


async def background():
    for i in range(3):
        print("background", i)
        await asyncio.sleep(0.05)


async def start_background():
    asyncio.create_task(background())  # noqa: RUF006 (runs on its own)
    await asyncio.sleep(0)


with asyncio.Runner() as runner:
    print(runner.run(bump()), runner.run(bump()))
    runner.run(start_background())
    runner.run(asyncio.sleep(0.075))
    print("loop running?", runner.get_loop().is_running())
print("after close")
