"""Task.cancel: messages, counts, catching, cancel before start, while running."""

import asyncio


async def child(log_name):
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError as exc:
        print(log_name, "caught", exc.args)
        raise


async def stubborn():
    for attempt in range(3):
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            print("stubborn ignores cancel", attempt, asyncio.current_task().cancelling())
            asyncio.current_task().uncancel()
    return "stubborn finished"


async def main():
    task = asyncio.create_task(child("t1"))
    await asyncio.sleep(0)
    print("cancel", task.cancel("reason"), "cancelling", task.cancelling())
    print("cancelled before await", task.cancelled())
    try:
        await task
    except asyncio.CancelledError as exc:
        print("awaiter sees", exc.args, task.cancelled())
    print("cancel again", task.cancel())

    task = asyncio.create_task(child("never started"))
    task.cancel()
    await asyncio.sleep(0)
    print("cancelled before start", task.cancelled())

    task = asyncio.create_task(stubborn())
    for _ in range(3):
        await asyncio.sleep(0)
        task.cancel()
    print(await task)

    async def spinner():
        n = 0
        try:
            while True:
                n += 1
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            print("spinner cancelled after some spins", n > 0)
            raise

    task = asyncio.create_task(spinner())
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    print("spinner done", task.done(), task.cancelled())

    async def returns_instead():
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            return "returned after cancel"

    task = asyncio.create_task(returns_instead())
    await asyncio.sleep(0)
    task.cancel()
    print(await task, task.cancelled())

    me = asyncio.current_task()
    me.cancel()
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        print("self-cancel delivered at next await", me.cancelling())
        me.uncancel()

    # Two cancel() calls before the task runs again: the first cancels
    # what it waits for, so its message is the one the task sees (the
    # second is counted); before its first step, the last message wins.
    loop = asyncio.get_running_loop()

    async def waits_for(awaitable):
        try:
            await awaitable
        except asyncio.CancelledError as exc:
            return exc.args, asyncio.current_task().cancelling()

    for name, make in [
        ("future", loop.create_future),
        ("sleep", lambda: asyncio.sleep(10)),
        ("event", lambda: asyncio.Event().wait()),
        ("queue", lambda: asyncio.Queue().get()),
    ]:
        task = asyncio.create_task(waits_for(make()))
        await asyncio.sleep(0)
        task.cancel("first")
        task.cancel("second")
        print("cancelled twice while waiting for", name, await task)
    task = asyncio.create_task(waits_for(loop.create_future()))
    task.cancel("first")
    task.cancel("second")
    try:
        await task
    except asyncio.CancelledError as exc:
        print("cancelled twice before starting", exc.args)


asyncio.run(main())
