"""Typed usage of the trio-style face, checked by check_types.py."""

from __future__ import annotations

from typing import reveal_type

import tether
from tether import from_thread, to_thread


async def child(
    x: int, *, task_status: tether.TaskStatus[str] = tether.TASK_STATUS_IGNORED
) -> None:
    task_status.started(f"child {x} ready")


async def two_args(
    a: str, b: int, *, task_status: tether.TaskStatus[int] = tether.TASK_STATUS_IGNORED
) -> None:
    task_status.started(len(a) + b)


def blocking(a: int) -> float:
    return a / 2


async def answer() -> int:
    return 42


async def main() -> None:
    async with tether.open_nursery() as nursery:
        reveal_type(nursery)  # reveal: tether._core._nursery.Nursery
        nursery.start_soon(child, 1)
        # start() returns what the task passes to task_status.started().
        reveal_type(await nursery.start(child, 1))  # reveal: str
        reveal_type(await nursery.start(two_args, "a", 2))  # reveal: int
    send, receive = tether.open_memory_channel[int](0)
    reveal_type(send)  # reveal: tether._channel.MemorySendChannel[int]
    reveal_type(receive)  # reveal: tether._channel.MemoryReceiveChannel[int]
    reveal_type(await to_thread.run_sync(blocking, 1))  # reveal: float
    with tether.fail_after(1) as scope:
        reveal_type(scope)  # reveal: tether._core._cancel.CancelScope
    with tether.CancelScope(shield=True) as shielded:
        reveal_type(shielded.cancelled_caught)  # reveal: bool
    with tether.open_nursery():  # error: attr-defined
        pass


def in_a_thread() -> None:
    reveal_type(from_thread.run(answer))  # reveal: int
    reveal_type(from_thread.run_sync(blocking, 2))  # reveal: float


async def hosted_guest() -> None:
    # Guest mode on an asyncio host: the loop's own methods fit the callbacks.
    import asyncio

    import outcome

    from tether import lowlevel

    loop = asyncio.get_running_loop()
    finished: asyncio.Future[outcome.Outcome[int]] = loop.create_future()
    lowlevel.start_guest_run(
        answer,
        run_sync_soon_threadsafe=loop.call_soon_threadsafe,
        run_sync_soon_not_threadsafe=loop.call_soon,
        done_callback=finished.set_result,
    )
    reveal_type((await finished).unwrap())  # reveal: int
    lowlevel.start_guest_run(answer, done_callback=print)  # error: call-arg
