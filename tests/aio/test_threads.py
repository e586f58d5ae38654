"""Threads: to_thread, run_in_executor, call_soon_threadsafe,
run_coroutine_threadsafe, wrap_future."""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
import time

import pytest

from tether import aio

var = contextvars.ContextVar("var", default="unset")


def test_to_thread_runs_in_a_thread_with_the_context():
    def work(x, *, y):
        return threading.current_thread() is not threading.main_thread(), var.get(), x + y

    async def main():
        var.set("copied")
        return await aio.to_thread(work, 1, y=2)

    assert aio.run(main()) == (True, "copied", 3)


def test_to_thread_propagates_errors():
    def fail():
        raise LookupError("in thread")

    async def main():
        with pytest.raises(LookupError, match="in thread"):
            await aio.to_thread(fail)

    aio.run(main())


def test_to_thread_cancellation_abandons_the_result():
    release = threading.Event()

    def slow():
        release.wait(5)
        return "late"

    async def main():
        task = aio.create_task(aio.to_thread(slow))
        await aio.sleep(0.01)
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task
        release.set()
        return "cancelled"

    assert aio.run(main()) == "cancelled"


def test_run_coroutine_threadsafe_from_another_thread():
    results = []

    async def add(a, b):
        await aio.sleep(0)
        return a + b

    async def main():
        loop = aio.get_running_loop()

        def thread():
            future = aio.run_coroutine_threadsafe(add(1, 2), loop)
            assert isinstance(future, concurrent.futures.Future)
            results.append(future.result(timeout=5))

        await aio.to_thread(thread)
        return results

    assert aio.run(main()) == [3]


def test_run_coroutine_threadsafe_cancel_and_errors():
    async def forever():
        await aio.sleep(3600)

    async def main():
        loop = aio.get_running_loop()
        started = threading.Event()

        def thread():
            future = aio.run_coroutine_threadsafe(forever(), loop)
            time.sleep(0.01)
            future.cancel()
            started.set()
            return future.cancelled()

        cancelled = await aio.to_thread(thread)
        with pytest.raises(TypeError):
            aio.run_coroutine_threadsafe(42, loop)  # type: ignore[arg-type]
        return cancelled

    assert aio.run(main()) is True


def test_wrap_future():
    async def main():
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            wrapped = aio.wrap_future(pool.submit(lambda: "from pool"))
            assert aio.isfuture(wrapped)
            assert aio.wrap_future(wrapped) is wrapped
            result = await wrapped
            failing = aio.wrap_future(pool.submit(lambda: 1 / 0))
            with pytest.raises(ZeroDivisionError):
                await failing
        with pytest.raises(TypeError):
            aio.wrap_future(42)
        return result

    assert aio.run(main()) == "from pool"


def test_wrap_future_cancel_propagates():
    async def main():
        source: concurrent.futures.Future = concurrent.futures.Future()
        wrapped = aio.wrap_future(source)
        wrapped.cancel()
        await aio.sleep(0)
        return source.cancelled()

    assert aio.run(main()) is True


def test_call_soon_threadsafe_from_many_threads():
    async def main():
        loop = aio.get_running_loop()
        seen = []
        done = loop.create_future()

        def add(item):
            seen.append(item)
            if len(seen) == 40 and not done.done():
                done.set_result(None)

        def thread(n):
            for i in range(10):
                loop.call_soon_threadsafe(add, (n, i))

        threads = [threading.Thread(target=thread, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        await done
        for t in threads:
            t.join()
        # Each thread's callbacks run in the order it queued them.
        for n in range(4):
            assert [i for m, i in seen if m == n] == list(range(10))
        return len(seen)

    assert aio.run(main()) == 40


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at"])
@pytest.mark.parametrize("loop_is", ["in a callback", "waiting"])
def test_plain_call_soon_and_timers_from_another_thread_outside_debug_mode(method, loop_is):
    # Not thread-safe on asyncio either, which accepts such calls outside
    # debug mode (and runs them at its next iteration); on tether's loop
    # they are handed over as call_soon_threadsafe's are, and wake the loop.
    async def main():
        loop = aio.get_running_loop()
        loop.set_debug(False)
        ran = loop.create_future()
        errors = []

        def schedule():
            try:
                if method == "call_soon":
                    loop.call_soon(ran.set_result, time.monotonic())
                elif method == "call_later":
                    loop.call_later(0.02, ran.set_result, time.monotonic() + 0.02)
                else:
                    loop.call_at(loop.time() + 0.02, ran.set_result, time.monotonic() + 0.02)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=schedule)
        if loop_is == "in a callback":
            # The loop's thread is held until the call returns.
            loop.call_soon(lambda: (thread.start(), thread.join()))
        else:
            # The loop waits for I/O, with no timer of its own: only the
            # handed-over call can wake it.
            loop.call_soon(thread.start)
        due = await aio.wait_for(ran, 5)
        thread.join()
        assert errors == []
        # A timer does not fire before its time.
        assert time.monotonic() >= due - 0.005

    aio.run(main())


def test_a_timer_from_another_thread_while_a_segment_ends_is_kept():
    # At the end of a segment the loop drops its kernel token before its
    # timer task's wait: a timer scheduled from another thread in between
    # is kept for the next segment (no wakeup to send), not an error.
    async def main():
        loop = aio.get_running_loop()
        loop.set_debug(False)
        errors = []
        while loop._timer_scope is None:
            # (Until the timer task waits: a sooner timer must move its wait.)
            await aio.sleep(0)
        token = loop._token
        loop._token = None  # (as in that moment)
        try:

            def schedule():
                try:
                    loop.call_later(0.001, print)
                except BaseException as exc:
                    errors.append(exc)

            thread = threading.Thread(target=schedule)
            thread.start()
            thread.join()
        finally:
            loop._token = token
        return errors, len(loop._timers)

    errors, timers = aio.run(main())
    assert errors == []
    assert timers >= 1


def test_a_schedule_waits_for_the_loops_worker_threads():
    # While a job of the loop's executor runs (run_in_executor, to_thread,
    # the default executor's shutdown at the end of run_hosted), the run is
    # not deadlocked: a schedule must wait for the thread's result rather
    # than report that nothing can wake the task.
    from tether.testing import Schedule

    async def job_results():
        loop = aio.get_running_loop()
        first = await loop.run_in_executor(None, _slow_value, "executor")
        second = await aio.to_thread(_slow_value, "to_thread")
        return first, second

    async def main():
        return await aio.run_hosted(job_results())

    assert Schedule().run(main) == ("executor", "to_thread")


def test_a_deadlock_after_the_loops_worker_threads_is_still_reported():
    # The count of jobs out is given back when they report, and when the
    # hosted loop stops with one still out (its result never comes back to
    # the closed loop): a real deadlock afterwards is reported at once.
    import tether
    from tether.testing import HangError, Schedule

    release = threading.Event()
    pool = concurrent.futures.ThreadPoolExecutor(1)

    async def abandon_a_job():
        loop = aio.get_running_loop()
        assert await loop.run_in_executor(None, _slow_value, 7) == 7
        with pytest.raises(TimeoutError):
            async with aio.timeout(1):
                await loop.run_in_executor(pool, release.wait, 10)

    async def main():
        await aio.run_hosted(abandon_a_job())
        await tether.Event().wait()  # nothing will ever set it

    try:
        with pytest.raises(HangError, match="deadlocked"):
            Schedule().run(main)
    finally:
        release.set()
        pool.shutdown()


def _slow_value(value):
    time.sleep(0.02)  # long enough for the loop to find nothing else to do
    return value


def test_run_in_executor_called_from_another_thread_still_works():
    # Not what asyncio's API is for, but it worked, and the count of the
    # loop's jobs (kept in the loop's thread) must not break it.
    async def main():
        loop = aio.get_running_loop()
        futures = []
        caller = threading.Thread(
            target=lambda: futures.append(loop.run_in_executor(None, _slow_value, 5))
        )
        caller.start()
        caller.join()
        return await futures[0]

    assert aio.run(main()) == 5
