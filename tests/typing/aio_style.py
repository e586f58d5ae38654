"""Typed usage of the asyncio face, checked by check_types.py."""

from __future__ import annotations

from typing import reveal_type

from tether import aio


async def number() -> int:
    return 1


async def text() -> str:
    return "a"


async def nothing() -> None:
    return None


async def main() -> None:
    task = aio.create_task(number())
    reveal_type(task)  # reveal: tether.aio._task.Task[int]
    reveal_type(await task)  # reveal: int
    # gather: a tuple of the results' types, for up to six awaitables.
    reveal_type(await aio.gather(number()))  # reveal: tuple[int]
    reveal_type(await aio.gather(number(), text()))  # reveal: tuple[int, str]
    _, _, three = await aio.gather(number(), text(), task)
    reveal_type(three)  # reveal: int
    six = await aio.gather(number(), text(), nothing(), number(), text(), nothing())
    reveal_type(six)  # reveal: tuple[int, str, None, int, str, None]
    # With return_exceptions=True, each may be the error instead.
    first, second = await aio.gather(number(), text(), return_exceptions=True)
    reveal_type(first)  # reveal: int | BaseException
    reveal_type(second)  # reveal: str | BaseException
    # More, or a list of them: a list of one type.
    coros = [number() for _ in range(10)]
    reveal_type(await aio.gather(*coros))  # reveal: list[int]
    results = await aio.gather(*coros, return_exceptions=True)
    reveal_type(results)  # reveal: list[int | BaseException]
    reveal_type(await aio.wait_for(number(), 1))  # reveal: int
    reveal_type(await aio.shield(number()))  # reveal: int
    async with aio.timeout(1) as timeout:
        reveal_type(timeout.expired())  # reveal: bool
    aio.gather(number(), text(), return_exceptions="yes")  # error: call-overload


reveal_type(aio.run(number()))  # reveal: int
