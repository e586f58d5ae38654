"""sleep, timeout, timeout_at, Timeout and wait_for."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tether import aio

from .conftest import run_virtual


def test_sleep_returns_result_after_delay():
    async def main():
        loop = aio.get_running_loop()
        start = loop.time()
        value = await aio.sleep(2.5, result="r")
        return value, loop.time() - start

    assert run_virtual(main()) == ("r", 2.5)


def test_sleep_zero_and_negative_yield_once():
    log = []

    async def other():
        log.append("other")

    async def main():
        aio.create_task(other())
        assert await aio.sleep(0, "zero") == "zero"
        log.append("main")
        assert await aio.sleep(-1) is None

    run_virtual(main())
    assert log == ["other", "main"]


def test_sleep_is_cancellable():
    async def main():
        task = aio.create_task(aio.sleep(100))
        await aio.sleep(1)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 1.0


def test_sleep_nan_is_an_error():
    async def main():
        with pytest.raises(ValueError, match="NaN"):
            await aio.sleep(float("nan"))

    run_virtual(main())


def test_timeout_expires_into_timeout_error():
    log = []

    async def main():
        loop = aio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with aio.timeout(1) as cm:
                assert isinstance(cm, aio.Timeout)
                assert cm.when() == loop.time() + 1
                try:
                    await aio.sleep(10)
                except aio.CancelledError:
                    log.append("cancelled inside")
                    await aio.sleep(0.5)  # cleanup can await after expiry
                    log.append("cleanup done")
                    raise
        assert cm.expired()
        assert aio.current_task().cancelling() == 0
        return loop.time()

    assert run_virtual(main()) == 1.5
    assert log == ["cancelled inside", "cleanup done"]


def test_timeout_not_reached():
    async def main():
        async with aio.timeout(10) as cm:
            await aio.sleep(1)
        assert not cm.expired()
        async with aio.timeout(None) as cm:
            await aio.sleep(1)
        assert cm.when() is None
        return repr(cm)

    assert run_virtual(main()) == "<Timeout [finished]>"


def test_timeout_at_and_reschedule():
    async def main():
        loop = aio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with aio.timeout_at(loop.time() + 1) as cm:
                cm.reschedule(loop.time() + 3)
                await aio.sleep(10)
        with pytest.raises(RuntimeError, match="has not been entered"):
            aio.Timeout(None).reschedule(1)
        with pytest.raises(RuntimeError, match="Timeout is expired"):
            cm.reschedule(None)
        return loop.time()

    assert run_virtual(main()) == 3.0


def test_timeout_in_the_past_expires_next_iteration():
    async def main():
        loop = aio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with aio.timeout(-1):
                await aio.sleep(0)
                await aio.sleep(0)
        return loop.time()

    assert run_virtual(main()) == 0.0


def test_outer_cancellation_passes_through_timeout():
    async def child():
        async with aio.timeout(100):
            await aio.sleep(50)

    async def main():
        task = aio.create_task(child())
        await aio.sleep(1)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task

    run_virtual(main())


def test_nested_timeouts_outer_first():
    async def main():
        with pytest.raises(TimeoutError) as info:
            async with aio.timeout(1) as outer:
                async with aio.timeout(5) as inner:
                    await aio.sleep(10)
        assert outer.expired() and not inner.expired()
        return info.type

    assert run_virtual(main()) is TimeoutError


def test_timeout_needs_a_task():
    async def main():
        loop = aio.get_running_loop()
        fut = loop.create_future()

        async def enter():
            async with aio.timeout(1):
                pass

        def in_callback():
            coro = enter()
            try:
                coro.send(None)
            except RuntimeError as exc:
                fut.set_result(str(exc))

        loop.call_soon(in_callback)
        return await fut

    assert run_virtual(main()) == "Timeout should be used inside a task"


@pytest.mark.skipif(sys.version_info < (3, 13), reason="3.13 semantics")
def test_timeout_marks_other_errors_on_313():
    async def main():
        with pytest.raises(ValueError) as info:
            async with aio.timeout(1):
                try:
                    await aio.sleep(10)
                finally:
                    raise ValueError("cleanup failed")
        return type(info.value.__context__)

    assert run_virtual(main()) is TimeoutError


def test_wait_for_result_and_timeout():
    async def slow(delay, value):
        await aio.sleep(delay)
        return value

    async def main():
        assert await aio.wait_for(slow(1, "fast enough"), timeout=5) == "fast enough"
        assert await aio.wait_for(slow(1, "no limit"), timeout=None) == "no limit"
        with pytest.raises(TimeoutError):
            await aio.wait_for(slow(10, "x"), timeout=2)
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 4.0


def test_wait_for_cancels_the_task_on_timeout():
    log = []

    async def slow():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            log.append("inner cancelled")
            raise

    async def main():
        task = aio.create_task(slow())
        with pytest.raises(TimeoutError):
            await aio.wait_for(task, 1)
        assert task.cancelled()

    run_virtual(main())
    assert log == ["inner cancelled"]


def test_wait_for_zero_timeout():
    started = []

    async def func():
        started.append(True)

    async def main():
        with pytest.raises(TimeoutError):
            await aio.wait_for(func(), 0)
        loop = aio.get_running_loop()
        done = loop.create_future()
        done.set_result("already")
        assert await aio.wait_for(done, 0) == "already"

    run_virtual(main())
    assert started == []


def test_wait_for_returns_value_of_task_that_ignores_cancellation():
    async def stubborn():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            return "ignored the cancel"

    async def main():
        return await aio.wait_for(aio.create_task(stubborn()), 1)

    assert run_virtual(main()) == "ignored the cancel"


def test_wait_for_cancelled_from_outside_cancels_inner():
    async def main():
        inner = aio.create_task(aio.sleep(10))
        outer = aio.create_task(aio.wait_for(inner, 5))
        await aio.sleep(1)
        outer.cancel()
        with pytest.raises(aio.CancelledError):
            await outer
        await aio.sleep(0)
        return inner.cancelled()

    assert run_virtual(main()) is True


def test_stdlib_timeout_and_wait_for_on_tether_loop():
    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                await asyncio.sleep(10)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10), 1)
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 2.0
