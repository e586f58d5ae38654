"""The loop object: callbacks, timers, handles, threads, errors, lifecycle."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import sys
import threading
import time

import pytest

from tether import aio
from tether.testing import MockClock

from .conftest import run_on, run_virtual


def test_call_soon_runs_in_fifo_order_interleaved_with_tasks():
    log = []

    async def child():
        log.append("child")

    async def main():
        loop = aio.get_running_loop()
        loop.call_soon(log.append, "cb1")
        aio.create_task(child())
        loop.call_soon(log.append, "cb2")
        await aio.sleep(0)
        log.append("main")

    run_virtual(main())
    assert log == ["cb1", "child", "cb2", "main"]


def test_callbacks_queued_by_callbacks_run_next_iteration():
    log = []

    async def main():
        loop = aio.get_running_loop()

        def first():
            log.append("first")
            loop.call_soon(log.append, "nested")

        loop.call_soon(first)
        loop.call_soon(log.append, "second")
        await aio.sleep(0)
        log.append("main after one iteration")
        await aio.sleep(0)
        log.append("main after two")

    run_virtual(main())
    assert log == ["first", "second", "main after one iteration", "nested", "main after two"]


def test_call_soon_handle_cancel_and_context():
    import contextvars

    var = contextvars.ContextVar("var")
    log = []

    async def main():
        loop = aio.get_running_loop()
        handle = loop.call_soon(log.append, "cancelled one")
        assert isinstance(handle, asyncio.Handle)
        handle.cancel()
        assert handle.cancelled()
        ctx = contextvars.copy_context()
        ctx.run(var.set, "in ctx")
        loop.call_soon(lambda: log.append(var.get()), context=ctx)
        await aio.sleep(0)

    run_virtual(main())
    assert log == ["in ctx"]


def test_call_soon_rejects_coroutine_functions_in_debug_mode():
    async def main():
        loop = aio.get_running_loop()
        with pytest.raises(TypeError, match="coroutines cannot be used with call_soon"):
            loop.call_soon(main)

    aio.run(main(), debug=True)


def test_call_later_and_call_at_order_and_time():
    log = []

    async def main():
        loop = aio.get_running_loop()
        start = loop.time()
        loop.call_later(2, lambda: log.append(("later2", loop.time() - start)))
        h = loop.call_at(start + 1, lambda: log.append(("at1", loop.time() - start)))
        assert isinstance(h, asyncio.TimerHandle)
        assert h.when() == start + 1
        loop.call_later(1, lambda: log.append(("later1", loop.time() - start)))
        dropped = loop.call_later(1.5, log.append, "dropped")
        dropped.cancel()
        assert dropped.cancelled()
        await aio.sleep(3)

    run_virtual(main())
    assert log == [("at1", 1.0), ("later1", 1.0), ("later2", 2.0)]


def test_call_later_with_real_time():
    async def main():
        loop = aio.get_running_loop()
        fut = loop.create_future()
        start = time.monotonic()
        loop.call_later(0.02, fut.set_result, "fired")
        result = await fut
        return result, time.monotonic() - start

    result, elapsed = aio.run(main())
    assert result == "fired"
    assert elapsed >= 0.015


def test_many_timers_cancelled_are_cleaned_up():
    async def main():
        loop = aio.get_running_loop()
        handles = [loop.call_later(100 + i, print) for i in range(300)]
        for h in handles:
            h.cancel()
        assert len(loop._timers) < 300
        await aio.sleep(0)

    run_virtual(main())


def test_time_is_the_clock_time():
    clock = MockClock()
    loop = aio.new_event_loop(clock=clock)
    try:
        assert loop.time() == 0.0
        clock.jump(5)
        assert loop.time() == 5.0
    finally:
        loop.close()


def test_callback_error_goes_to_exception_handler():
    contexts = []

    async def main():
        loop = aio.get_running_loop()
        assert loop.get_exception_handler() is None
        handler = lambda loop, ctx: contexts.append(ctx)  # noqa: E731
        loop.set_exception_handler(handler)
        assert loop.get_exception_handler() is handler

        def boom():
            raise ZeroDivisionError

        loop.call_soon(boom)
        loop.call_soon(contexts.append, "next callback still runs")
        await aio.sleep(0)

    run_virtual(main())
    assert contexts[0]["message"].startswith("Exception in callback")
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    assert isinstance(contexts[0]["handle"], asyncio.Handle)
    assert contexts[1] == "next callback still runs"


def test_default_exception_handler_logs(caplog):
    async def main():
        loop = aio.get_running_loop()
        loop.call_exception_handler({"message": "something odd", "exception": ValueError("v")})
        loop.default_exception_handler({"message": "direct", "extra": 1})

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run_virtual(main())
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "something odd"
    assert caplog.records[0].exc_info[0] is ValueError
    assert messages[1] == "direct\nextra: 1"


def test_failing_exception_handler_is_logged(caplog):
    async def main():
        loop = aio.get_running_loop()

        def handler(loop, ctx):
            raise RuntimeError("handler broke")

        loop.set_exception_handler(handler)
        loop.call_exception_handler({"message": "m"})
        with pytest.raises(TypeError):
            loop.set_exception_handler(42)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        run_virtual(main())
    assert "Unhandled error in exception handler" in caplog.records[0].getMessage()


def test_call_soon_threadsafe_wakes_the_loop():
    async def main():
        loop = aio.get_running_loop()
        fut = loop.create_future()

        def thread():
            time.sleep(0.01)
            loop.call_soon_threadsafe(fut.set_result, threading.current_thread().name)

        threading.Thread(target=thread, name="helper").start()
        return await fut

    assert aio.run(main()) == "helper"


def test_call_soon_threadsafe_before_the_loop_runs():
    loop = aio.new_event_loop()
    try:
        log = []
        t = threading.Thread(target=loop.call_soon_threadsafe, args=(log.append, "queued"))
        t.start()
        t.join()
        loop.run_until_complete(aio.sleep(0))
        assert log == ["queued"]
    finally:
        loop.close()


def test_run_forever_and_stop():
    loop = aio.new_event_loop()
    log = []
    try:
        loop.call_soon(log.append, 1)
        loop.call_soon(loop.stop)
        loop.call_soon(log.append, 2)
        loop.run_forever()
        assert log == [1, 2]

        def stop_and_queue():
            loop.stop()
            loop.call_soon(log.append, "next run")

        loop.call_soon(stop_and_queue)
        loop.run_forever()
        assert log == [1, 2]
        loop.stop()
        loop.run_forever()  # stop() before run: one iteration, then stop
        assert log == [1, 2, "next run"]
    finally:
        loop.close()


def test_tasks_survive_between_runs():
    loop = aio.new_event_loop(clock=MockClock(autojump_threshold=0))
    log = []

    async def ticker():
        for i in range(4):
            log.append(i)
            await aio.sleep(1)
        return "ticked"

    try:
        task = loop.create_task(ticker())
        loop.run_until_complete(aio.sleep(1.5))
        assert log == [0, 1] and not task.done()
        fut = loop.create_future()
        loop.call_later(0, fut.set_result, None)
        loop.run_until_complete(fut)
        assert loop.run_until_complete(task) == "ticked"
        assert log == [0, 1, 2, 3]
    finally:
        loop.close()


def test_future_completed_between_runs_wakes_its_task():
    loop = aio.new_event_loop()
    try:
        fut = loop.create_future()

        async def waiter():
            return await fut

        task = loop.create_task(waiter())
        loop.run_until_complete(aio.sleep(0))
        fut.set_result("from outside")
        assert loop.run_until_complete(task) == "from outside"
    finally:
        loop.close()


def test_run_until_complete_with_stopped_loop():
    loop = aio.new_event_loop()
    try:

        async def stopper():
            loop.stop()
            await aio.sleep(1)

        with pytest.raises(RuntimeError, match="Event loop stopped before Future completed"):
            loop.run_until_complete(stopper())
    finally:
        loop.close()


def test_run_until_complete_while_running_is_an_error():
    async def main():
        loop = aio.get_running_loop()
        coro = aio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match="already running"):
                loop.run_until_complete(coro)
            with pytest.raises(RuntimeError, match="Cannot close a running event loop"):
                loop.close()
        finally:
            coro.close()

    run_virtual(main())


def test_running_another_loop_inside_is_an_error():
    other = aio.new_event_loop()

    async def main():
        with pytest.raises(RuntimeError, match="another loop is running"):
            other.run_forever()

    try:
        run_virtual(main())
    finally:
        other.close()


def test_closed_loop_refuses_work():
    loop = aio.new_event_loop()
    loop.close()
    loop.close()  # idempotent
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_later(1, print)


def test_debug_flag():
    loop = aio.new_event_loop()
    try:
        loop.set_debug(True)
        assert loop.get_debug()
        loop.set_debug(False)
        assert not loop.get_debug()
    finally:
        loop.close()


def test_create_future_and_await_it():
    async def main():
        loop = aio.get_running_loop()
        fut = loop.create_future()
        assert type(fut) is asyncio.Future
        loop.call_soon(fut.set_result, "v")
        return await fut

    assert run_virtual(main()) == "v"


def test_shutdown_asyncgens_reports_errors():
    contexts = []

    async def agen():
        try:
            yield 1
        finally:
            raise ValueError("closing failed")

    async def main():
        loop = aio.get_running_loop()
        loop.set_exception_handler(lambda loop, ctx: contexts.append(ctx))
        gen = agen()
        await gen.__anext__()
        await loop.shutdown_asyncgens()
        main.gen = gen

    run_virtual(main())
    assert "an error occurred during closing of asynchronous generator" in contexts[0]["message"]
    assert isinstance(contexts[0]["exception"], ValueError)


def test_run_in_executor_and_default_executor():
    import concurrent.futures

    async def main():
        loop = aio.get_running_loop()
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="custom")
        loop.set_default_executor(executor)
        name = await loop.run_in_executor(None, lambda: threading.current_thread().name)
        with pytest.raises(TypeError):
            loop.set_default_executor(object())
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="own") as own:
            own_name = await loop.run_in_executor(own, lambda: threading.current_thread().name)
        await loop.shutdown_default_executor()
        with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
            loop.run_in_executor(None, print)
        return name, own_name

    name, own_name = aio.run(main())
    assert name.startswith("custom") and own_name.startswith("own")


def test_timers_follow_a_patched_loop_time():
    # Test suites fake time by replacing loop.time; timers then fire after
    # `when - loop.time()` seconds, as with asyncio's loop.
    clock = MockClock(autojump_threshold=0)
    loop = aio.new_event_loop(clock=clock)
    offset = 1000.0
    loop.time = lambda: clock.current_time() + offset
    fired = []

    async def main():
        start = clock.current_time()
        loop.call_later(5, lambda: fired.append(clock.current_time() - start))
        await asyncio.sleep(10)  # asyncio's own sleep, through call_later
        return clock.current_time() - start

    try:
        slept = loop.run_until_complete(main())
    finally:
        loop.close()
    assert fired == [pytest.approx(5)]
    assert slept == pytest.approx(10)


def test_a_timer_scheduled_earlier_with_patched_time_wakes_the_loop_sooner():
    clock = MockClock(autojump_threshold=0)
    loop = aio.new_event_loop(clock=clock)
    loop.time = lambda: clock.current_time() - 50.0
    order = []

    async def main():
        start = clock.current_time()
        loop.call_later(30, order.append, "late")
        await asyncio.sleep(0)
        loop.call_later(1, order.append, "early")
        await asyncio.sleep(2)
        order.append(("after sleep", round(clock.current_time() - start)))

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert order == ["early", ("after sleep", 2)]


def moved_fake_time(new_loop, scheduled_while_patched):
    """Fake time moved forward (as aiohttp's tests move a patched
    ``loop.time``) past a timer, and iterations spun with sleep(0): the
    log of what ran, iteration by iteration."""
    from unittest import mock

    log = []

    async def main():
        loop = asyncio.get_running_loop()
        now = loop.time()
        # A real timer far away, earlier than the faked one would be by the
        # real clock: the loop's wait is armed for it, not for the fake one.
        guard = loop.call_later(60, log.append, "guard")
        with mock.patch.object(loop, "time", return_value=now):
            if scheduled_while_patched:
                loop.call_later(10, log.append, "timer")
            else:
                # (Only the real timer, scheduled before the patch; the timer
                # task arms its first wait after it, and so sees it.)
                log.append("(no timer scheduled under the patch)")
            await asyncio.sleep(0)
            loop.time.return_value = now + 120  # type: ignore[attr-defined]
            for turn in range(3):
                await asyncio.sleep(0)
                log.append(f"turn {turn}")
        guard.cancel()

    run_on(new_loop, main)
    return log


@pytest.mark.parametrize("scheduled_while_patched", [True, False])
def test_timers_due_by_a_moved_patched_time_run_at_the_next_iterations(
    scheduled_while_patched,
):
    expected = moved_fake_time(asyncio.new_event_loop, scheduled_while_patched)
    # On asyncio both timers are due by the moved fake time at once.
    assert "guard" in expected[: expected.index("turn 1")]
    assert moved_fake_time(aio.new_event_loop, scheduled_while_patched) == expected


def test_exception_handler_runs_in_the_failing_callbacks_context():
    # Python 3.12+ runs a custom handler in the context of the handle, task
    # or future the error came from; 3.11 in the loop's.
    name = contextvars.ContextVar("name", default="unset")
    seen = []

    def failing():
        name.set("set by the callback")
        raise ValueError("boom")

    async def main():
        loop = aio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: seen.append(name.get()))
        loop.call_soon(failing)
        await aio.sleep(0)

    aio.run(main())
    expected = "set by the callback" if sys.version_info >= (3, 12) else "unset"
    assert seen == [expected]


def test_an_unretrieved_task_error_is_reported_without_the_cycle_collector():
    # The loop keeps no handle of a finished callback in its frames (an
    # error's traceback can reach them), so a standard-library task that
    # failed is freed, and its error reported, as soon as nothing uses it.
    reported = []

    async def fails():
        raise ValueError("never retrieved")

    async def main():
        loop = aio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: reported.append(context["exception"]))
        asyncio.tasks._CTask(fails())  # stepped by loop callbacks
        await aio.sleep(0)
        await aio.sleep(0)
        return list(reported)

    gc.disable()
    try:
        assert [repr(exc) for exc in aio.run(main())] == ["ValueError('never retrieved')"]
    finally:
        gc.enable()


def test_debug_mode_tracks_coroutine_origins_while_running_and_restores_the_depth():
    # As asyncio: the depth the program had set is put back after the run.
    previous = sys.get_coroutine_origin_tracking_depth()
    sys.set_coroutine_origin_tracking_depth(3)
    try:
        loop = aio.new_event_loop()
        loop.set_debug(True)

        async def depth():
            return sys.get_coroutine_origin_tracking_depth()

        try:
            during = loop.run_until_complete(depth())
        finally:
            loop.close()
        assert during == asyncio.constants.DEBUG_STACK_DEPTH
        assert sys.get_coroutine_origin_tracking_depth() == 3
    finally:
        sys.set_coroutine_origin_tracking_depth(previous)


def test_the_loops_time_is_time_monotonic_as_on_asyncio():
    # Code written for asyncio computes deadlines from time.monotonic() as
    # often as from loop.time(): both must mean the same.
    async def main():
        loop = aio.get_running_loop()
        assert abs(loop.time() - time.monotonic()) < 0.01
        fired = loop.create_future()
        start = time.monotonic()
        loop.call_at(time.monotonic() + 0.02, fired.set_result, None)
        async with aio.timeout_at(time.monotonic() + 5):
            await fired
        return time.monotonic() - start

    took = aio.run(main())
    assert 0.015 < took < 2
