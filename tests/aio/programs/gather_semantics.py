"""gather: order of results, first error, return_exceptions, cancellation."""

import asyncio


async def value(delay, v):
    await asyncio.sleep(delay)
    print("finished", v)
    return v


async def fail(delay, exc):
    await asyncio.sleep(delay)
    print("raising", exc)
    raise exc


async def main():
    print(await asyncio.gather(value(0.03, "a"), value(0.01, "b"), value(0.02, "c")))
    slow = asyncio.create_task(value(0.05, "slow"))
    try:
        await asyncio.gather(fail(0.01, ValueError("first")), slow)
    except ValueError as exc:
        print("gather raised", repr(exc), "slow done?", slow.done())
    print("slow result", await slow)
    results = await asyncio.gather(
        value(0.01, 1), fail(0.02, KeyError("k")), return_exceptions=True
    )
    print([repr(r) for r in results])
    gathering = asyncio.gather(value(1, "never"), value(1, "never2"))
    await asyncio.sleep(0.01)
    print("cancel returned", gathering.cancel("stop"))
    try:
        await gathering
    except asyncio.CancelledError as exc:
        print("gather cancelled", exc.args, gathering.cancelled(), gathering.done())
    child = asyncio.create_task(value(1, "child"))
    other = asyncio.create_task(value(0.02, "other"))
    asyncio.get_running_loop().call_later(0.01, child.cancel)
    try:
        await asyncio.gather(child, other)
    except asyncio.CancelledError:
        print("child cancellation propagated; other done?", other.done())
    print("other", await other, "child cancelled", child.cancelled())
    print("empty gather", await asyncio.gather())


asyncio.run(main())
