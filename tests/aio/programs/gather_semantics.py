"""gather: order of results, first error, return_exceptions, cancellation.

No real timers: a child finishes after a given number of loop iterations
(``sleep(0)`` yields exactly one), or never, so the order in which children
finish is fixed by the loop's own ordering and not by how busy the machine
is."""

import asyncio

FOREVER = None


async def iterations(count):
    if count is FOREVER:
        await asyncio.get_running_loop().create_future()
    for _ in range(count):
        await asyncio.sleep(0)


async def value(count, v):
    await iterations(count)
    print("finished", v)
    return v


async def fail(count, exc):
    await iterations(count)
    print("raising", exc)
    raise exc


async def main():
    loop = asyncio.get_running_loop()
    print(await asyncio.gather(value(3, "a"), value(1, "b"), value(2, "c")))
    slow = asyncio.create_task(value(5, "slow"))
    try:
        await asyncio.gather(fail(1, ValueError("first")), slow)
    except ValueError as exc:
        print("gather raised", repr(exc), "slow done?", slow.done())
    print("slow result", await slow)
    results = await asyncio.gather(value(1, 1), fail(2, KeyError("k")), return_exceptions=True)
    print([repr(r) for r in results])
    gathering = asyncio.gather(value(FOREVER, "never"), value(FOREVER, "never2"))
    await iterations(1)
    print("cancel returned", gathering.cancel("stop"))
    try:
        await gathering
    except asyncio.CancelledError as exc:
        print("gather cancelled", exc.args, gathering.cancelled(), gathering.done())
    child = asyncio.create_task(value(FOREVER, "child"))
    other = asyncio.create_task(value(5, "other"))
    # Runs in the loop's next iteration, after both children have started
    # and iterations before `other` finishes.
    loop.call_soon(child.cancel)
    try:
        await asyncio.gather(child, other)
    except asyncio.CancelledError:
        print("child cancellation propagated; other done?", other.done())
    print("other", await other, "child cancelled", child.cancelled())
    print("empty gather", await asyncio.gather())
    await gathered_tasks_in_order()


async def gathered_tasks_in_order():
    # gather of tasks made beforehand: where its completion falls among the
    # tasks' own done callbacks and the steps of another task.
    log = []

    async def quick(name, fail=False):
        log.append(f"run {name}")
        if fail:
            raise ValueError(name)
        return name

    async def bystander():
        for i in range(8):
            log.append(f"bystander {i}")
            await asyncio.sleep(0)

    by = asyncio.create_task(bystander())
    a = asyncio.create_task(quick("a"))
    b = asyncio.create_task(quick("b"))
    c = asyncio.create_task(quick("c"))
    gathering = asyncio.gather(a, b, c)
    gathering.add_done_callback(lambda f: log.append("gather done"))
    for task in (a, b, c):
        task.add_done_callback(lambda t: log.append(f"{t.result()} callback"))
    log.append(f"gathered {await gathering}")
    d = asyncio.create_task(quick("d"))
    e = asyncio.create_task(quick("e", fail=True))
    f = asyncio.create_task(quick("f"))
    again = asyncio.gather(d, e, f, d)
    twice = asyncio.gather(f, d, return_exceptions=True)
    try:
        await again
    except ValueError as exc:
        log.append(f"raised {exc!r}")
    log.append(f"twice {await twice}")
    await by
    print(log)


asyncio.run(main())
