"""Errors nobody awaits go to the exception handler."""

import asyncio
import gc


def handler(loop, context):
    print("handler got:", context["message"], repr(context.get("exception")))


async def fail():
    raise ValueError("unretrieved")


async def main():
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(handler)
    asyncio.create_task(fail())  # noqa: RUF006 (runs on its own)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    gc.collect()

    def bad_callback():
        raise KeyError("from a callback")

    loop.call_soon(bad_callback)
    await asyncio.sleep(0)
    loop.call_exception_handler({"message": "custom", "exception": None})
    task = asyncio.create_task(fail())
    try:
        await task
    except ValueError as exc:
        print("awaited error", repr(exc))
    print("handler is ours", loop.get_exception_handler() is handler)


asyncio.run(main())
