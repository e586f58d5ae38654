"""asyncio.run's shutdown: leftover tasks cancelled, async generators closed,
errors reported to the exception handler."""

import asyncio


async def background(name):
    try:
        await asyncio.sleep(10)
    finally:
        print(name, "finally runs at shutdown")


async def agen():
    try:
        yield 1
        yield 2
    finally:
        print("async generator closed")


async def fails_on_cancel():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        raise RuntimeError("error during cancellation") from None


def handler(loop, context):
    print("handler:", context["message"], repr(context.get("exception")))


async def main():
    asyncio.get_running_loop().set_exception_handler(handler)
    asyncio.create_task(background("bg"))  # noqa: RUF006 (runs on its own)
    asyncio.create_task(fails_on_cancel())  # noqa: RUF006 (runs on its own)
    gen = agen()
    print("first item", await gen.__anext__())
    main.gen = gen
    await asyncio.sleep(0)
    print("main returns")
    return "main result"


print(asyncio.run(main()))
