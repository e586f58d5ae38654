"""Context variables in tasks and callbacks; threads."""

import asyncio
import contextvars
import threading

var = contextvars.ContextVar("var", default="default")


async def reader(name):
    print(name, "sees", var.get())
    var.set(f"set by {name}")


async def main():
    var.set("main")
    await asyncio.create_task(reader("task"))
    print("main still sees", var.get())
    ctx = contextvars.Context()
    await asyncio.create_task(reader("task in empty context"), context=ctx)
    print("explicit context now", ctx.get(var))
    loop = asyncio.get_running_loop()
    loop.call_soon(lambda: print("callback sees", var.get()))
    await asyncio.sleep(0)
    in_thread = await asyncio.to_thread(
        lambda: (var.get(), threading.current_thread() is threading.main_thread())
    )
    print("to_thread sees", in_thread)
    print("executor", await loop.run_in_executor(None, sum, [1, 2, 3]))
    fut = loop.create_future()
    threading.Thread(
        target=lambda: loop.call_soon_threadsafe(fut.set_result, "from thread")
    ).start()
    print(await fut)

    async def add(a, b):
        return a + b

    def in_thread_submit():
        return asyncio.run_coroutine_threadsafe(add(2, 3), loop).result()

    print("run_coroutine_threadsafe", await asyncio.to_thread(in_thread_submit))


asyncio.run(main())
