"""The wakeups of standard-library tasks on tether's loop.

A standard-library ``asyncio.Task`` (the C task, which aiohttp's server
makes on Python 3.12 and later) waiting for a future is woken by the
future's done callback, which the future hands to ``loop.call_soon``.
Outside debug mode tether's loop queues that wakeup without making an
``asyncio.Handle``; it must still run in the task's context and in the
place asyncio's loop would run it.
"""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from tether import aio

where = contextvars.ContextVar("where", default="outside")


def wakeup_story(new_loop):
    """A stdlib task waits for futures while other callbacks are queued
    around its wakeups, in a running loop and while the loop is stopped
    (also across a KeyboardInterrupt from a callback): the order of what
    happened, and the context each wakeup ran in."""
    log = []

    async def waiter(fut, name):
        where.set(name)
        log.append(f"{name} waits")
        value = await fut
        log.append(f"{name} woke with {value} in {where.get()}")
        return value

    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        task = asyncio.Task(waiter(fut, "running"), loop=loop)
        await asyncio.sleep(0)
        loop.call_soon(log.append, "callback before")
        fut.set_result(1)
        loop.call_soon(log.append, "callback after")
        await task
        log.append("main done")

    def interrupt():
        raise KeyboardInterrupt

    loop = new_loop()
    try:
        loop.run_until_complete(main())
        # Queued while the loop is stopped.
        fut = loop.create_future()
        task = asyncio.Task(waiter(fut, "stopped"), loop=loop)
        loop.run_until_complete(asyncio.sleep(0))
        loop.call_soon(log.append, "queued before")
        fut.set_result(2)
        loop.call_soon(log.append, "queued after")
        loop.run_until_complete(task)
        # A callback ahead of the wakeup stops the loop.
        fut = loop.create_future()
        task = asyncio.Task(waiter(fut, "interrupted"), loop=loop)
        loop.run_until_complete(asyncio.sleep(0))
        loop.call_soon(interrupt)
        fut.set_result(3)
        try:
            loop.run_until_complete(task)
        except KeyboardInterrupt:
            log.append("KeyboardInterrupt")
        log.append(f"task done: {task.done()}")
        log.append(f"result: {loop.run_until_complete(task)}")
    finally:
        loop.close()
    return log


def test_stdlib_task_wakeups_run_where_asyncio_runs_them():
    expected = wakeup_story(asyncio.new_event_loop)
    assert "running woke with 1 in running" in expected
    assert "KeyboardInterrupt" in expected
    assert wakeup_story(aio.new_event_loop) == expected


@pytest.mark.parametrize("debug", [False, True])
def test_stdlib_task_wakeups_make_a_handle_only_in_debug_mode(monkeypatch, debug):
    expected = wakeup_story(asyncio.new_event_loop)
    made = []

    class CountingHandle(asyncio.Handle):
        __slots__ = ()

        def __init__(self, callback, args, loop, context=None):
            made.append(getattr(callback, "__name__", None))
            super().__init__(callback, args, loop, context)

    monkeypatch.setattr(asyncio.events, "Handle", CountingHandle)

    def new_loop():
        loop = aio.new_event_loop()
        loop.set_debug(debug)
        return loop

    assert wakeup_story(new_loop) == expected
    # (In debug mode a Handle keeps where the callback was queued from.)
    assert made.count("task_wakeup") == (3 if debug else 0)


def test_a_batch_shows_a_stdlib_task_wakeup_as_its_handle():
    from tether.aio._callbacks import CONTEXT_CALL, CallbackBatch

    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        async def waits():
            await fut

        task = asyncio.Task(waits(), loop=loop)
        await asyncio.sleep(0)
        fut.set_result(None)
        batch = loop._open_batch
        assert isinstance(batch, CallbackBatch)
        assert batch[0] is CONTEXT_CALL
        text = repr(batch)
        await task
        return text

    text = aio.run(main())
    assert text.startswith("[<Handle ") and "task_wakeup(<Future finished result=None>)" in text
