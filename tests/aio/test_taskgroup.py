"""TaskGroup."""

from __future__ import annotations

import pytest

import tether
from tether import aio

from .conftest import run_virtual


async def value_after(delay, value):
    await aio.sleep(delay)
    return value


def test_taskgroup_waits_for_all_tasks():
    async def main():
        async with aio.TaskGroup() as tg:
            a = tg.create_task(value_after(2, "a"))
            b = tg.create_task(value_after(1, "b"), name="bee")
            assert b.get_name() == "bee"
            assert "entered" in repr(tg) and "tasks=2" in repr(tg)
        return a.result(), b.result(), aio.get_running_loop().time()

    assert run_virtual(main()) == ("a", "b", 2.0)


def test_taskgroup_error_cancels_siblings_and_body():
    log = []

    async def failing():
        await aio.sleep(1)
        raise ValueError("first")

    async def sibling():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            log.append("sibling cancelled")
            raise

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with aio.TaskGroup() as tg:
                tg.create_task(failing())
                tg.create_task(sibling())
                try:
                    await aio.sleep(10)
                except aio.CancelledError:
                    log.append("body cancelled")
                    raise
        assert aio.current_task().cancelling() == 0
        return [type(e) for e in info.value.exceptions], aio.get_running_loop().time()

    assert run_virtual(main()) == ([ValueError], 1.0)
    assert sorted(log) == ["body cancelled", "sibling cancelled"]


def test_taskgroup_collects_several_errors_and_body_error():
    async def fail(delay, exc):
        await aio.sleep(delay)
        raise exc

    async def main():
        with pytest.raises(ExceptionGroup) as info:
            async with aio.TaskGroup() as tg:
                tg.create_task(fail(1, ValueError()))
                tg.create_task(fail(1, KeyError()))
        types_ = {type(e) for e in info.value.exceptions}
        with pytest.raises(ExceptionGroup) as info2:
            async with aio.TaskGroup() as tg:
                tg.create_task(aio.sleep(5))
                raise ZeroDivisionError
        return types_, [type(e) for e in info2.value.exceptions]

    assert run_virtual(main()) == ({ValueError, KeyError}, [ZeroDivisionError])


def test_taskgroup_parent_cancellation():
    log = []

    async def child():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            log.append("child cancelled")
            raise

    async def parent():
        async with aio.TaskGroup() as tg:
            tg.create_task(child())
        log.append("not reached")

    async def main():
        task = aio.create_task(parent())
        await aio.sleep(1)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task

    run_virtual(main())
    assert log == ["child cancelled"]


def test_taskgroup_base_error_propagates_alone():
    async def main():
        async def kb():
            raise SystemExit(2)

        async with aio.TaskGroup() as tg:
            tg.create_task(kb())
            await aio.sleep(1)

    with pytest.raises(SystemExit):
        run_virtual(main())


def test_taskgroup_misuse():
    async def main():
        tg = aio.TaskGroup()
        coro = aio.sleep(0)
        with pytest.raises(RuntimeError, match="has not been entered"):
            tg.create_task(coro)
        coro.close()
        async with tg:
            pass
        coro = aio.sleep(0)
        with pytest.raises(RuntimeError, match="is finished"):
            tg.create_task(coro)
        coro.close()
        with pytest.raises(RuntimeError, match="has already been entered"):
            async with tg:
                pass

    run_virtual(main())


def test_taskgroup_under_a_cancelled_trio_style_scope():
    log = []

    async def child():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            log.append("child got asyncio cancellation")
            raise

    async def main():
        with tether.move_on_after(1) as scope:
            async with aio.TaskGroup() as tg:
                task = tg.create_task(child())
        return scope.cancelled_caught, task.cancelled(), aio.get_running_loop().time()

    assert run_virtual(main()) == (True, True, 1.0)
    assert log == ["child got asyncio cancellation"]
