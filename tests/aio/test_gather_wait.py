"""gather, shield, wait and as_completed."""

from __future__ import annotations

import pytest

from tether import aio

from .conftest import run_virtual


async def value_after(delay, value):
    await aio.sleep(delay)
    return value


async def fail_after(delay, exc):
    await aio.sleep(delay)
    raise exc


def test_gather_results_in_argument_order():
    async def main():
        return await aio.gather(value_after(3, "a"), value_after(1, "b"), value_after(2, "c"))

    assert run_virtual(main()) == ["a", "b", "c"]


def test_gather_empty_and_duplicates():
    async def main():
        assert await aio.gather() == []
        coro = value_after(1, "dup")
        task = aio.create_task(value_after(1, "t"))
        return await aio.gather(coro, coro, task, task)

    assert run_virtual(main()) == ["dup", "dup", "t", "t"]


def test_gather_mixes_tasks_it_makes_with_futures_finishing_first_or_last():
    # Children that gather wraps in tasks are counted as they finish; given
    # futures are counted by their callbacks. Either may finish last.
    async def main():
        loop = aio.get_running_loop()
        early, late = loop.create_future(), loop.create_future()
        loop.call_later(0.5, early.set_result, "early")
        loop.call_later(5, late.set_result, "late")
        first = await aio.gather(value_after(1, "x"), late, early, value_after(2, "y"))
        done = loop.create_future()
        done.set_result("done")
        second = await aio.gather(done, value_after(1, "z"))
        return first, second, loop.time()

    first, second, now = run_virtual(main())
    assert first == ["x", "late", "early", "y"]
    assert second == ["done", "z"]
    assert now == pytest.approx(6)


def test_gather_raises_when_a_middle_child_fails_not_when_the_last_finishes():
    async def main():
        loop = aio.get_running_loop()
        with pytest.raises(ValueError, match="boom"):
            await aio.gather(
                value_after(5, "a"), fail_after(1, ValueError("boom")), value_after(6, "c")
            )
        return loop.time()

    assert run_virtual(main()) == pytest.approx(1)


def test_gather_raises_cancelled_when_a_middle_child_is_cancelled():
    async def cancels_itself_then_returns():
        await aio.sleep(2)
        aio.current_task().cancel()
        return "ignored"  # the task is marked cancelled all the same

    async def main():
        loop = aio.get_running_loop()
        victim = aio.ensure_future(value_after(10, "victim"))
        loop.call_later(2, victim.cancel)
        with pytest.raises(aio.CancelledError):
            await aio.gather(value_after(5, "a"), victim, value_after(6, "c"))
        assert loop.time() == pytest.approx(2)
        with pytest.raises(aio.CancelledError):
            await aio.gather(
                value_after(5, "a"), cancels_itself_then_returns(), value_after(6, "c")
            )
        return loop.time()

    assert run_virtual(main()) == pytest.approx(4)


def test_gather_completes_once_when_the_failing_child_is_not_the_last():
    completions = []

    async def main():
        gathering = aio.gather(
            value_after(1, "a"),
            fail_after(2, ValueError("b")),
            value_after(3, "c"),
            return_exceptions=True,
        )
        gathering.add_done_callback(completions.append)
        results = await gathering
        await aio.sleep(1)
        return results

    results = run_virtual(main())
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], ValueError)
    assert len(completions) == 1


def test_gather_of_many_children_returns_every_result():
    async def echo(i):
        for _ in range(i % 3):
            await aio.sleep(0)
        return i

    async def main():
        return await aio.gather(*(echo(i) for i in range(500)))

    assert run_virtual(main()) == list(range(500))


def test_gather_first_exception_propagates_others_keep_running():
    log = []

    async def slow():
        await aio.sleep(5)
        log.append("slow finished")
        return "slow"

    async def main():
        slow_task = aio.create_task(slow())
        with pytest.raises(ValueError, match="boom"):
            await aio.gather(fail_after(1, ValueError("boom")), slow_task)
        assert not slow_task.done()
        assert await slow_task == "slow"

    run_virtual(main())
    assert log == ["slow finished"]


def test_gather_return_exceptions():
    async def main():
        cancelled = aio.create_task(aio.sleep(10))
        aio.get_running_loop().call_later(1, cancelled.cancel, "msg")
        return await aio.gather(
            value_after(1, 1), fail_after(2, KeyError("k")), cancelled, return_exceptions=True
        )

    one, err, cancel = run_virtual(main())
    assert one == 1
    assert isinstance(err, KeyError)
    # (As on asyncio: a task that ended with its own CancelledError keeps no
    # cancel message apart from that error, so gather reports an empty one.)
    assert isinstance(cancel, aio.CancelledError) and cancel.args == ("",)


def test_cancelling_gather_cancels_children():
    log = []

    async def child(n):
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            log.append(n)
            raise

    async def main():
        gathering = aio.gather(child(1), child(2))
        await aio.sleep(1)
        assert gathering.cancel() is True
        with pytest.raises(aio.CancelledError):
            await gathering
        assert gathering.done()  # done with CancelledError (not "cancelled"), as asyncio

    run_virtual(main())
    assert sorted(log) == [1, 2]


def test_cancelling_the_awaiting_task_cancels_gather_children():
    log = []

    async def child(n):
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            log.append(n)
            raise

    async def parent():
        await aio.gather(child(1), child(2))

    async def main():
        task = aio.create_task(parent())
        await aio.sleep(1)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task

    run_virtual(main())
    assert sorted(log) == [1, 2]


def test_child_cancellation_does_not_cancel_gather():
    async def main():
        child = aio.create_task(aio.sleep(10))
        other = aio.create_task(value_after(2, "other"))
        aio.get_running_loop().call_later(1, child.cancel)
        with pytest.raises(aio.CancelledError):
            await aio.gather(child, other)
        return await other

    assert run_virtual(main()) == "other"


def test_shield_keeps_inner_running():
    log = []

    async def important():
        await aio.sleep(5)
        log.append("important done")
        return "result"

    async def waiter(inner):
        return await aio.shield(inner)

    async def main():
        inner = aio.create_task(important())
        task = aio.create_task(waiter(inner))
        await aio.sleep(1)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task
        assert not inner.cancelled()
        return await inner

    assert run_virtual(main()) == "result"
    assert log == ["important done"]


def test_shield_of_done_future_and_inner_failure():
    async def main():
        loop = aio.get_running_loop()
        done = loop.create_future()
        done.set_result(1)
        assert aio.shield(done) is done
        with pytest.raises(ValueError):
            await aio.shield(fail_after(1, ValueError()))
        inner = aio.create_task(aio.sleep(5))
        shielded = aio.shield(inner)
        inner.cancel()
        with pytest.raises(aio.CancelledError):
            await shielded

    run_virtual(main())


def test_wait_all_completed():
    async def main():
        tasks = [aio.create_task(value_after(d, d)) for d in (1, 3, 2)]
        done, pending = await aio.wait(tasks)
        return sorted(t.result() for t in done), pending, aio.get_running_loop().time()

    assert run_virtual(main()) == ([1, 2, 3], set(), 3.0)


def test_wait_first_completed_and_timeout():
    async def main():
        tasks = [aio.create_task(value_after(d, d)) for d in (3, 1, 2)]
        done, pending = await aio.wait(tasks, return_when=aio.FIRST_COMPLETED)
        assert [t.result() for t in done] == [1] and len(pending) == 2
        done, pending = await aio.wait(pending, timeout=0.5)
        assert done == set() and len(pending) == 2
        for t in pending:
            t.cancel()
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 1.5


def test_wait_first_exception():
    async def main():
        tasks = [
            aio.create_task(value_after(5, "late")),
            aio.create_task(fail_after(1, ValueError())),
            aio.create_task(value_after(0.5, "early")),
        ]
        done, pending = await aio.wait(tasks, return_when=aio.FIRST_EXCEPTION)
        assert len(done) == 2 and len(pending) == 1
        pending.pop().cancel()
        return aio.get_running_loop().time()

    assert run_virtual(main()) == 1.0


def test_wait_argument_errors():
    async def main():
        coro = aio.sleep(0)
        with pytest.raises(TypeError, match="expect a list of futures"):
            await aio.wait(coro)
        with pytest.raises(TypeError, match="Passing coroutines is forbidden"):
            await aio.wait([coro])
        coro.close()
        with pytest.raises(ValueError, match="empty"):
            await aio.wait([])
        task = aio.create_task(aio.sleep(0))
        with pytest.raises(ValueError, match="Invalid return_when"):
            await aio.wait([task], return_when="sometime")
        await task

    run_virtual(main())


def test_as_completed_in_completion_order():
    async def main():
        results = []
        for next_done in aio.as_completed([value_after(d, d) for d in (3, 1, 2)]):
            results.append(await next_done)
        return results

    assert run_virtual(main()) == [1, 2, 3]


def test_as_completed_async_iteration_yields_the_tasks():
    async def main():
        tasks = [aio.create_task(value_after(d, d)) for d in (2, 1)]
        seen = []
        async for task in aio.as_completed(tasks):
            assert task in tasks
            seen.append(task.result())
        return seen

    assert run_virtual(main()) == [1, 2]


def test_as_completed_timeout():
    async def main():
        results = []
        with pytest.raises(TimeoutError):
            for next_done in aio.as_completed(
                [value_after(1, "ok"), value_after(10, "late")], timeout=5
            ):
                results.append(await next_done)
        return results, aio.get_running_loop().time()

    assert run_virtual(main()) == (["ok"], 5.0)


def test_as_completed_exception():
    async def main():
        with pytest.raises(KeyError):
            for next_done in aio.as_completed([fail_after(1, KeyError())]):
                await next_done
        coro = aio.sleep(0)
        with pytest.raises(TypeError):
            aio.as_completed(coro)
        coro.close()

    run_virtual(main())
