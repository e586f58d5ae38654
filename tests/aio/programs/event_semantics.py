"""Event: wake order, cancellation at every point of a wait, set/clear
races, the repr, and waits interleaved with callbacks."""

import asyncio


async def waiter(event, name, log):
    try:
        result = await event.wait()
    except asyncio.CancelledError as exc:
        log.append(f"{name} cancelled {exc.args}")
        raise
    log.append(f"{name} woke {result}")
    return name


async def wake_order():
    event = asyncio.Event()
    log = []
    tasks = [asyncio.create_task(waiter(event, f"w{i}", log)) for i in range(4)]
    await asyncio.sleep(0)
    print("waiting:", repr(event).split("[")[1])
    loop = asyncio.get_running_loop()
    loop.call_soon(log.append, "callback queued before set")
    event.set()
    loop.call_soon(log.append, "callback queued after set")
    print("after set:", repr(event).split("[")[1])
    print("results", await asyncio.gather(*tasks))
    print(log)
    print("after all woke:", repr(event).split("[")[1])
    print("already set:", await event.wait())


async def cancel_while_waiting():
    event = asyncio.Event()
    log = []
    first = asyncio.create_task(waiter(event, "first", log))
    second = asyncio.create_task(waiter(event, "second", log))
    await asyncio.sleep(0)
    print("cancel", first.cancel("stop it"), first.cancelling())
    await asyncio.sleep(0)
    print("first", first.cancelled(), "waiters left:", repr(event).split("[")[1])
    event.set()
    await second
    print(log)


async def cancel_after_set_before_running():
    event = asyncio.Event()
    log = []
    task = asyncio.create_task(waiter(event, "w", log))
    await asyncio.sleep(0)
    event.set()
    print("cancel after set", task.cancel())
    try:
        await task
    except asyncio.CancelledError:
        print("task cancelled", task.cancelled())
    print(log)


async def cancel_before_waiting():
    event = asyncio.Event()

    async def cancels_itself_then_waits():
        asyncio.current_task().cancel("self")
        try:
            await event.wait()
        except asyncio.CancelledError as exc:
            print("wait raised", exc.args)
            return "survived"

    print(await asyncio.create_task(cancels_itself_then_waits()))
    print("waiters:", repr(event).split("[")[1])


async def set_clear_set():
    event = asyncio.Event()
    log = []
    tasks = [asyncio.create_task(waiter(event, f"w{i}", log)) for i in range(2)]
    await asyncio.sleep(0)
    event.set()
    event.clear()
    event.set()
    event.clear()
    await asyncio.gather(*tasks)
    print(log, "is_set", event.is_set())
    late = asyncio.create_task(waiter(event, "late", log))
    await asyncio.sleep(0)
    print("late waits:", not late.done())
    event.set()
    await late
    print(log)


async def timeout_and_wait_for():
    event = asyncio.Event()
    try:
        await asyncio.wait_for(event.wait(), 0.01)
    except TimeoutError:
        print("wait_for timed out")
    print("waiters:", repr(event).split("[")[1])
    task = asyncio.create_task(event.wait())
    asyncio.get_running_loop().call_later(0.01, event.set)
    print("task result", await task)


async def main():
    for case in (
        wake_order,
        cancel_while_waiting,
        cancel_after_set_before_running,
        cancel_before_waiting,
        set_clear_set,
        timeout_and_wait_for,
    ):
        print("--", case.__name__)
        await case()


asyncio.run(main())
