"""tether.aio's Event: waiting tasks park on the event itself, not on a
future each. (Its behaviour against asyncio's, case by case, is in
programs/event_semantics.py, run by test_dual_run.py.)"""

from __future__ import annotations

import asyncio

import pytest

import tether
from tether import aio

from .conftest import run_virtual


def test_it_is_an_asyncio_event_whose_waiting_task_waits_for_no_future():
    async def main():
        event = aio.Event()
        task = aio.create_task(event.wait())
        await aio.sleep(0)
        waiting = repr(task)
        event.set()
        return isinstance(event, asyncio.Event), waiting, await task

    is_asyncio_event, waiting, result = run_virtual(main())
    assert is_asyncio_event
    assert "wait_for=<parked>" in waiting
    assert result is True


def test_a_trio_style_task_waits_for_a_future_instead():
    async def trio_style(event, log):
        log.append(await event.wait())

    async def main():
        event, log = aio.Event(), []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(trio_style, event, log)
            nursery.start_soon(trio_style, event, log)
            await aio.sleep(1)
            assert "waiters:2" in repr(event)
            assert [type(waiter) for waiter in event._waiters] == [aio.Future, aio.Future]
            event.set()
        return log

    assert run_virtual(main()) == [True, True]


def test_a_task_factorys_task_and_a_stock_loop_wait_for_a_future():
    class FactoryTask(aio.Task):
        pass

    async def main():
        loop = aio.get_running_loop()
        loop.set_task_factory(lambda loop, coro, **kw: FactoryTask(coro, loop=loop, **kw))
        event = aio.Event()
        task = aio.create_task(event.wait())
        await aio.sleep(0)
        waiting = repr(task)
        event.set()
        return waiting, await task

    waiting, result = run_virtual(main())
    assert "wait_for=<Future pending" in waiting and result is True

    async def on_stock_asyncio():
        event = aio.Event()
        task = asyncio.create_task(event.wait())
        await asyncio.sleep(0)
        event.set()
        return await task

    assert asyncio.run(on_stock_asyncio()) is True


def test_an_event_used_by_another_loop_is_refused_as_in_asyncio():
    event = aio.Event()

    async def wait_a_moment():
        try:
            await aio.wait_for(event.wait(), 1)
        except TimeoutError:
            return "timed out"

    assert run_virtual(wait_a_moment()) == "timed out"
    with pytest.raises(RuntimeError, match="is bound to a different event loop"):
        run_virtual(wait_a_moment())


def test_a_trio_style_scope_cancels_the_parked_wait():
    async def main():
        event = aio.Event()
        with tether.move_on_after(1) as scope:
            await event.wait()
        return scope.cancelled_caught, repr(event), aio.get_running_loop().time()

    caught, event_repr, now = run_virtual(main())
    assert caught and "waiters" not in event_repr and now == 1.0


def test_a_parked_task_waits_across_the_loops_runs(loop):
    # The loop stops (the end of a run_until_complete) while tasks are
    # parked: they keep waiting, and are woken (or cancelled) between runs
    # or in the next run.
    event = aio.Event()
    woken = loop.create_task(event.wait())
    cancelled = loop.create_task(event.wait())
    later = loop.create_task(event.wait())
    loop.run_until_complete(aio.sleep(0))
    assert not woken.done() and "wait_for=<parked>" in repr(woken)
    assert cancelled.cancel("between runs")
    event.set()  # between runs: woken and later are queued, to return True
    loop.run_until_complete(aio.sleep(0))
    assert woken.result() is True and later.result() is True
    assert cancelled.cancelled()
    with pytest.raises(asyncio.CancelledError, match="between runs"):
        cancelled.result()

    event.clear()
    again = loop.create_task(event.wait())
    loop.run_until_complete(aio.sleep(0))
    loop.call_soon(event.set)  # set inside the next run
    assert loop.run_until_complete(again) is True


@pytest.mark.skipif(not hasattr(asyncio, "eager_task_factory"), reason="new in 3.12")
def test_a_stdlib_task_started_eagerly_inside_a_step_waits_for_a_future():
    # asyncio's eager task factory runs the new (stdlib) task's first step
    # inside the creating task's step: the kernel is stepping the creator,
    # but the task that waits is the eager one, which cannot park.
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)
        event, reader = aio.Event(), aio.StreamReader()
        waits = asyncio.create_task(event.wait())
        reads = asyncio.create_task(reader.read(3))
        await asyncio.sleep(0)
        event.set()
        reader.feed_data(b"abc")
        return await waits, await reads

    assert run_virtual(main()) == (True, b"abc")
