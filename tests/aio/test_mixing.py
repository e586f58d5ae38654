"""Trio-style tether code inside aio coroutines, and aio inside tether.run."""

from __future__ import annotations

import pytest

import tether
from tether import aio
from tether.testing import MockClock

from .conftest import run_virtual


def test_trio_style_nursery_inside_an_aio_coroutine():
    log = []

    async def trio_child(n):
        await tether.sleep(n)
        log.append(f"trio {n}")

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(trio_child, 2)
            nursery.start_soon(trio_child, 1)
            await aio.sleep(0.5)
            log.append("aio body")
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 2.0
    assert log == ["aio body", "trio 1", "trio 2"]


def test_trio_style_scope_cancels_aio_await():
    async def main():
        with tether.move_on_after(1) as scope:
            await aio.sleep(10)
        assert scope.cancelled_caught
        fut = aio.get_running_loop().create_future()
        with tether.move_on_after(1) as scope:
            await fut
        assert scope.cancelled_caught and not fut.done()
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 2.0


def test_kernel_cancellation_reaching_the_top_marks_task_cancelled():
    async def child(scope_box):
        with tether.CancelScope() as scope:
            scope_box.append(scope)
            await aio.sleep(10)
        # The scope caught it; the task goes on.
        return "after scope"

    async def main():
        box = []
        task = aio.create_task(child(box))
        await aio.sleep(1)
        box[0].cancel()
        return await task

    assert run_virtual(main()) == "after scope"


def test_aio_timeout_around_tether_native_wait():
    """A tether-native wait is not interrupted by asyncio-style cancellation:
    the cancellation arrives when it returns (see docs/aio.md)."""

    async def main():
        with pytest.raises(TimeoutError):
            async with aio.timeout(1):
                await tether.sleep(3)
                await aio.sleep(0)
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 3.0


def test_aio_sleep_inside_tether_run():
    async def main():
        await aio.sleep(0)
        await aio.sleep(2)
        return tether.current_time()

    assert tether.run(main, clock=MockClock(autojump_threshold=0)) == 2.0


def test_run_hosted_runs_asyncio_code_inside_tether_run():
    import asyncio

    async def asyncio_code(n):
        await asyncio.sleep(1)
        queue = asyncio.Queue()

        async def produce():
            for i in range(n):
                await queue.put(i)

        asyncio.create_task(produce())  # noqa: RUF006 (runs on its own)
        items = [await queue.get() for _ in range(n)]
        return items, asyncio.get_running_loop().time()

    async def main():
        result = await aio.run_hosted(asyncio_code(3))
        with pytest.raises(RuntimeError, match="no running event loop"):
            aio.get_running_loop()
        return result, tether.current_time()

    assert tether.run(main, clock=MockClock(autojump_threshold=0)) == (([0, 1, 2], 1.0), 1.0)


def test_run_hosted_cancelled_by_a_trio_style_scope():
    log = []

    async def forever():
        try:
            await aio.sleep(100)
        except aio.CancelledError:
            log.append("asyncio cancellation")
            await aio.sleep(0)  # cleanup may await
            log.append("cleaned up")
            raise

    async def background():
        try:
            await aio.sleep(100)
        finally:
            log.append("leftover cancelled")

    async def aio_main():
        aio.create_task(background())
        await forever()

    async def main():
        with tether.move_on_after(2) as scope:
            await aio.run_hosted(aio_main())
        return scope.cancelled_caught, tether.current_time()

    assert tether.run(main, clock=MockClock(autojump_threshold=0)) == (True, 2.0)
    # All leftover tasks are cancelled together (in no particular order).
    assert sorted(log) == ["asyncio cancellation", "cleaned up", "leftover cancelled"]
    assert log.index("asyncio cancellation") < log.index("cleaned up")


def test_run_hosted_errors():
    async def fails():
        await aio.sleep(0)
        raise KeyError("from asyncio code")

    async def main():
        with pytest.raises(KeyError, match="from asyncio code"):
            await aio.run_hosted(fails())
        with pytest.raises(ValueError, match="a coroutine was expected"):
            await aio.run_hosted(fails)  # type: ignore[arg-type]

    tether.run(main)

    async def inside_aio():
        coro = fails()
        try:
            with pytest.raises(RuntimeError, match="running event loop"):
                await aio.run_hosted(coro)
        finally:
            coro.close()

    run_virtual(inside_aio())
