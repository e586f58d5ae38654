"""Standard-library asyncio code running inside tether.aio.run.

The stdlib's helpers find tether's loop and tasks through
``asyncio.get_running_loop()`` and ``asyncio.current_task()``, and their
futures park aio tasks in the kernel.
"""

from __future__ import annotations

import asyncio

import pytest

from tether import aio

from .conftest import run_virtual


def test_stdlib_current_task_and_loop():
    async def main():
        assert asyncio.current_task() is aio.current_task()
        assert asyncio.get_running_loop() is aio.get_running_loop()
        inner = asyncio.create_task(asyncio.sleep(0, result="x"))
        assert isinstance(inner, aio.Task)
        return await inner

    assert run_virtual(main()) == "x"


def test_stdlib_sleep():
    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(0)
        await asyncio.sleep(2)
        return loop.time() - start

    assert run_virtual(main()) == 2.0


def test_stdlib_timeout():
    log = []

    async def main():
        try:
            async with asyncio.timeout(1):
                try:
                    await asyncio.sleep(5)
                except asyncio.CancelledError:
                    log.append("cancelled")
                    raise
        except TimeoutError:
            log.append("timeout")
        async with asyncio.timeout(5) as cm:
            await asyncio.sleep(1)
        assert not cm.expired()

    run_virtual(main())
    assert log == ["cancelled", "timeout"]


def test_stdlib_queue():
    async def producer(queue):
        for i in range(5):
            await queue.put(i)
        await queue.put(None)

    async def main():
        queue = asyncio.Queue(maxsize=2)
        aio.create_task(producer(queue))
        items = []
        while (item := await queue.get()) is not None:
            items.append(item)
        with pytest.raises(asyncio.QueueEmpty):
            queue.get_nowait()
        return items

    assert run_virtual(main()) == [0, 1, 2, 3, 4]


def test_stdlib_lock_fairness():
    log = []

    async def worker(lock, name):
        async with lock:
            log.append(f"{name} in")
            await asyncio.sleep(1)
            log.append(f"{name} out")

    async def main():
        lock = asyncio.Lock()
        await asyncio.gather(*(worker(lock, n) for n in "abc"))

    run_virtual(main())
    assert log == ["a in", "a out", "b in", "b out", "c in", "c out"]


def test_stdlib_gather_wait_and_taskgroup():
    async def value(v):
        await asyncio.sleep(v)
        return v

    async def main():
        results = await asyncio.gather(value(2), value(1))
        done, _ = await asyncio.wait([asyncio.create_task(value(1))])
        async with asyncio.TaskGroup() as tg:
            t = tg.create_task(value(3))
        shielded = await asyncio.shield(value(1))
        return results, [d.result() for d in done], t.result(), shielded

    assert run_virtual(main()) == ([2, 1], [1], 3, 1)


def test_stdlib_run_with_tether_loop_factory():
    import sys

    if sys.version_info < (3, 12):
        pytest.skip("asyncio.run(loop_factory=) is new in 3.12")

    async def main():
        return type(asyncio.get_running_loop())

    assert asyncio.run(main(), loop_factory=aio.new_event_loop) is aio.TetherEventLoop


def test_sniffio_reports_asyncio_in_aio_tasks():
    sniffio = pytest.importorskip("sniffio")

    async def main():
        return sniffio.current_async_library()

    assert run_virtual(main()) == "asyncio"


def test_event_loop_policy_makes_stdlib_run_use_tether():
    async def main():
        return type(asyncio.get_running_loop())

    previous = asyncio.get_event_loop_policy()
    try:
        aio.set_event_loop_policy(aio.EventLoopPolicy())
        assert asyncio.run(main()) is aio.TetherEventLoop
    finally:
        asyncio.set_event_loop_policy(previous)


def test_sniffio_reports_asyncio_in_tasks_hosted_by_a_tether_run():
    sniffio = pytest.importorskip("sniffio")
    import tether

    async def aio_main():
        inner = asyncio.get_running_loop().create_task(report())
        return [sniffio.current_async_library(), await inner]

    async def report():
        return sniffio.current_async_library()

    async def main():
        return sniffio.current_async_library(), await aio.run_hosted(aio_main())

    assert tether.run(main) == ("tether", ["asyncio", "asyncio"])
