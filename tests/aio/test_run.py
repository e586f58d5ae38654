"""Running: run, Runner, the loop getters and setters."""

from __future__ import annotations

import _thread
import asyncio
import gc
import inspect
import signal
import sys
import threading
import weakref

import pytest

import tether
from tether import aio
from tether.testing import MockClock

from .conftest import run_virtual


def test_run_returns_result_and_closes_loop():
    seen = {}

    async def main():
        seen["loop"] = aio.get_running_loop()
        await aio.sleep(0)
        return 42

    assert aio.run(main()) == 42
    assert isinstance(seen["loop"], aio.TetherEventLoop)
    assert isinstance(seen["loop"], asyncio.AbstractEventLoop)
    assert seen["loop"].is_closed()


def test_run_raises_the_main_exception():
    async def main():
        await aio.sleep(0)
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        aio.run(main())


def test_run_rejects_non_coroutines():
    async def main():
        pass

    with pytest.raises(ValueError, match="a coroutine was expected"):
        aio.run(main)  # type: ignore[arg-type]


def test_run_inside_running_loop_is_an_error():
    async def main():
        coro = aio.sleep(0)
        try:
            aio.run(coro)
        finally:
            coro.close()

    with pytest.raises(RuntimeError, match="cannot be called from a running event loop"):
        aio.run(main())


def test_get_running_loop_outside_a_loop():
    with pytest.raises(RuntimeError, match="no running event loop"):
        aio.get_running_loop()


def test_stdlib_sees_the_running_loop():
    async def main():
        return asyncio.get_running_loop() is aio.get_running_loop()

    assert aio.run(main())
    assert asyncio.events._get_running_loop() is None


def test_leftover_tasks_are_cancelled_at_exit():
    log = []

    async def forever():
        try:
            await aio.sleep(3600)
        except aio.CancelledError:
            log.append("cancelled")
            await aio.sleep(0)  # cleanup may still await
            log.append("cleaned up")
            raise

    async def main():
        aio.create_task(forever())
        await aio.sleep(0)
        return "done"

    assert run_virtual(main()) == "done"
    assert log == ["cancelled", "cleaned up"]


def test_leftover_task_errors_go_to_the_exception_handler():
    contexts = []

    async def stubborn():
        try:
            await aio.sleep(3600)
        except aio.CancelledError:
            raise ValueError("refused to die") from None

    async def main():
        aio.get_running_loop().set_exception_handler(lambda loop, ctx: contexts.append(ctx))
        aio.create_task(stubborn())
        await aio.sleep(0)

    run_virtual(main())
    assert [c["message"] for c in contexts] == ["unhandled exception during asyncio.run() shutdown"]
    assert isinstance(contexts[0]["exception"], ValueError)


def test_async_generators_are_finalized_at_exit():
    log = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            await aio.sleep(0)
            log.append("agen closed")

    async def main():
        gen = agen()
        assert await gen.__anext__() == 1
        main.gen = gen  # keep it alive past main

    run_virtual(main())
    assert log == ["agen closed"]


def test_default_executor_is_shut_down():
    threads = []

    def work():
        threads.append(threading.current_thread())
        return "worked"

    async def main():
        return await aio.get_running_loop().run_in_executor(None, work)

    assert aio.run(main()) == "worked"
    threads[0].join(timeout=5)
    assert not threads[0].is_alive()


def test_runner_runs_several_coroutines_on_one_loop():
    log = []

    async def background():
        for i in range(3):
            log.append(f"bg {i}")
            await aio.sleep(1)

    async def start():
        aio.create_task(background())
        await aio.sleep(0)
        return aio.get_running_loop()

    async def later():
        await aio.sleep(1.5)
        return aio.get_running_loop()

    with aio.Runner(clock=MockClock(autojump_threshold=0)) as runner:
        first = runner.run(start())
        second = runner.run(later())
        assert first is second is runner.get_loop()
    # The background task kept running in the second run.
    assert log == ["bg 0", "bg 1"]
    coro = later()
    with pytest.raises(RuntimeError, match="Runner is closed"):
        runner.run(coro)
    coro.close()


def test_runner_context_is_shared_between_runs():
    import contextvars

    var = contextvars.ContextVar("var", default="unset")

    async def set_it():
        var.set("set")

    async def get_it():
        return var.get()

    with aio.Runner() as runner:
        runner.run(set_it())
        assert runner.run(get_it()) == "set"


def test_runner_debug_flag():
    async def main():
        return aio.get_running_loop().get_debug()

    with aio.Runner(debug=True) as runner:
        assert runner.run(main()) is True


def test_runner_with_loop_factory():
    made = []

    def factory():
        loop = aio.new_event_loop()
        made.append(loop)
        return loop

    async def main():
        return aio.get_running_loop()

    with aio.Runner(loop_factory=factory) as runner:
        assert runner.run(main()) is made[0]


def test_stdlib_runner_with_tether_loop_factory():
    """An unmodified `import asyncio` program under asyncio.Runner."""
    log = []

    async def worker(n):
        await asyncio.sleep(0.001 * n)
        log.append(n)
        return n

    async def forever():
        try:
            await asyncio.sleep(3600)
        finally:
            log.append("forever cancelled")

    async def main():
        assert isinstance(asyncio.get_running_loop(), aio.TetherEventLoop)
        background = asyncio.create_task(forever())  # left for the runner to cancel
        results = await asyncio.gather(*(worker(n) for n in (3, 1, 2)))
        assert not background.done()
        async with asyncio.timeout(1):
            await asyncio.sleep(0)
        return results

    with asyncio.Runner(loop_factory=aio.new_event_loop) as runner:
        assert runner.run(main()) == [3, 1, 2]
    assert log == [1, 2, 3, "forever cancelled"]


def test_new_event_loop_and_run_until_complete():
    loop = aio.new_event_loop()
    try:
        assert not loop.is_running()

        async def main():
            assert loop.is_running()
            return "x"

        assert loop.run_until_complete(main()) == "x"
        assert not loop.is_running()
    finally:
        loop.close()
    assert loop.is_closed()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_forever()


def test_set_and_get_event_loop():
    loop = aio.new_event_loop()
    try:
        aio.set_event_loop(loop)
        assert aio.get_event_loop() is loop
        assert asyncio.get_event_loop() is loop

        async def main():
            return aio.get_event_loop()

        assert loop.run_until_complete(main()) is loop
    finally:
        aio.set_event_loop(None)
        loop.close()


def test_get_event_loop_in_thread_without_loop():
    errors = []

    def thread():
        try:
            aio.get_event_loop()
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=thread)
    t.start()
    t.join()
    assert errors and "no current event loop" in str(errors[0]).lower()


def test_loops_in_two_threads_at_once():
    results = {}
    barrier = threading.Barrier(2, timeout=10)

    async def main(name):
        await aio.sleep(0)
        await aio.to_thread(barrier.wait)
        await aio.sleep(0.01)
        return name, threading.current_thread().name

    def thread_main():
        results["thread"] = aio.run(main("thread"))

    t = threading.Thread(target=thread_main, name="second")
    t.start()
    results["main"] = aio.run(main("main"))
    t.join(timeout=10)
    assert results["thread"] == ("thread", "second")
    assert results["main"][0] == "main"


def test_aio_run_inside_tether_run_is_an_error_that_names_run_hosted():
    loop = aio.new_event_loop()

    async def tmain():
        coro = aio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match=r"await tether\.aio\.run_hosted"):
                aio.run(coro)
            with pytest.raises(RuntimeError, match=r"await tether\.aio\.run_hosted"):
                loop.run_until_complete(coro)
        finally:
            coro.close()
        # Refused before a task was made: none is left pending.
        return len(aio.all_tasks(loop))

    try:
        assert tether.run(tmain) == 0
    finally:
        loop.close()


def test_ctrl_c_cancels_the_main_task_then_raises_keyboard_interrupt():
    seen = []

    async def main():
        loop = aio.get_running_loop()
        loop.call_soon(_thread.interrupt_main)  # as if Ctrl-C were pressed
        try:
            await loop.create_future()
        except aio.CancelledError:
            seen.append("cancelled")
            raise

    with aio.Runner() as runner, pytest.raises(KeyboardInterrupt):
        runner.run(main())
    assert seen == ["cancelled"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_after_the_main_task_was_cancelled_leaves_it_a_cancellation():
    # Ctrl-C's cancel arrives after another one already ended the task: the
    # task was not cancelled by Ctrl-C, so run() raises its CancelledError.
    async def cancel_then_interrupt(task):
        await aio.sleep(0)
        task.cancel()
        _thread.interrupt_main()

    async def main():
        aio.create_task(cancel_then_interrupt(aio.current_task()))
        await aio.get_running_loop().create_future()

    with aio.Runner() as runner:
        try:
            with pytest.raises(aio.CancelledError):
                runner.run(main())
        except KeyboardInterrupt:  # would end the whole pytest session
            pytest.fail("run() took Ctrl-C for the cause of another task's cancel")


def test_keyboard_interrupt_in_the_loops_own_code_is_raised_by_run():
    # A Ctrl-C can land in the loop's own code around the callbacks (as the
    # code that runs a batch of them starts), not in a callback. It must
    # come out of run() as the KeyboardInterrupt it is, as one raised by a
    # callback does, not as a cancellation of the loop's tasks. (Simulated
    # with a trace hook, raising it where a signal could be handled: on
    # entry to the function that runs the batch.)
    from tether.aio import _callbacks

    target = _callbacks._run_entries.__code__
    landed = []

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code is target and not landed:
            landed.append(True)
            raise KeyboardInterrupt
        return None

    async def main():
        asyncio.get_running_loop().call_soon(lambda: None)
        await asyncio.sleep(0.01)

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        with pytest.raises(KeyboardInterrupt):
            aio.run(main())
    finally:
        sys.settrace(previous)
    assert landed == [True]


def _sigint_at_line(function, source_line):
    """A trace function that raises a real SIGINT once, when `function`
    reaches the first line (after its first) whose text is `source_line`;
    tether's handler then decides whether the code there may be
    interrupted. Returns the tracer and the list it appends to when it
    fires."""
    code = function.__code__
    lines = inspect.getsourcelines(function)[0]
    target = code.co_firstlineno + next(
        i for i, text in enumerate(lines) if i and text.strip() == source_line
    )
    fired = []

    def local(frame, event, arg):
        if event == "line" and frame.f_lineno == target and not fired:
            fired.append(True)
            signal.raise_signal(signal.SIGINT)
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code is code else None

    return tracer, fired


@pytest.mark.parametrize(
    "where",
    ["while the run starts", "while a task is created"],
)
def test_ctrl_c_in_the_loops_bookkeeping_loses_nothing(where):
    # A real Ctrl-C lands in the loop's own code: as a run starts, while it
    # takes what was queued for it (which was lost: the next run ran none of
    # it, and one that waited for such a task hung), or in create_task,
    # after the new task is registered and before it is set up (the loop
    # then failed on that half-made task, and its next run raised "This
    # event loop is already running"). The interrupt
    # is deferred to the loop's main wait: the run raises it, and the next
    # run finds everything in place.
    from tether.aio import _loop_core, _task

    loop = aio.new_event_loop()
    log = []

    async def worker(name):
        await asyncio.sleep(0)
        log.append(name)

    if where == "while the run starts":
        tracer, fired = _sigint_at_line(_loop_core.LoopCore._run_segment, "for item in pending:")
        loop.call_soon(log.append, "callback")
        tasks = [loop.create_task(worker("queued task"))]
        first = asyncio.sleep(0)
    else:
        tracer, fired = _sigint_at_line(_task.new_task, "nursery = loop._nursery")
        tasks = []

        async def first():
            await asyncio.sleep(0)
            # (Traced from here: the loop runs.)
            sys.settrace(tracer)
            try:
                tasks.append(loop.create_task(worker("new task")))
            finally:
                sys.settrace(None)
            await asyncio.sleep(0)

        first = first()
    previous = sys.gettrace()
    try:
        if where == "while the run starts":
            sys.settrace(tracer)
        try:
            with pytest.raises(KeyboardInterrupt):
                loop.run_until_complete(first)
        finally:
            sys.settrace(previous)
        assert fired == [True]
        for task in tasks:
            loop.run_until_complete(task)
        if where == "while the run starts":
            assert log == ["callback", "queued task"]
        else:
            assert log == ["new task"]
    finally:
        loop.close()


def test_a_loop_run_hosted_is_freed_once_closed():
    # run_hosted closes its loop; nothing of the host run (which goes on)
    # keeps it afterwards.
    refs = []

    async def hosted():
        refs.append(weakref.ref(asyncio.get_running_loop()))
        await asyncio.sleep(0)

    async def main():
        await aio.run_hosted(hosted())
        gc.collect()
        return refs[0]() is None

    assert tether.run(main) is True
