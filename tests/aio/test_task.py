"""Tasks: create_task, the Task API, current_task, all_tasks, ensure_future."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import io
import sys
import traceback
import types
import weakref

import pytest

import tether
from tether import aio
from tether.testing import MockClock

from .conftest import run_virtual


def test_create_task_runs_concurrently_in_fifo_order():
    log = []

    async def child(name):
        log.append(f"{name} start")
        await aio.sleep(0)
        log.append(f"{name} end")
        return name

    async def main():
        a = aio.create_task(child("a"))
        b = aio.create_task(child("b"))
        log.append("main")
        return await a, await b

    assert run_virtual(main()) == ("a", "b")
    assert log == ["main", "a start", "b start", "a end", "b end"]


def test_task_is_an_asyncio_future_with_the_task_api():
    async def child():
        return 1

    async def main():
        task = aio.create_task(child(), name="kid")
        assert isinstance(task, aio.Task)
        assert isinstance(task, asyncio.Future)
        assert aio.isfuture(task) and asyncio.isfuture(task)
        assert task.get_name() == "kid"
        task.set_name(7)
        assert task.get_name() == "7"
        assert task.get_loop() is aio.get_running_loop()
        assert asyncio.iscoroutine(task.get_coro())
        assert not task.done()
        assert "pending" in repr(task) and "name='7'" in repr(task)
        assert await task == 1
        assert task.done() and task.result() == 1 and task.exception() is None
        assert "finished" in repr(task) and "result=1" in repr(task)
        with pytest.raises(RuntimeError, match="does not support set_result"):
            task.set_result(2)
        with pytest.raises(RuntimeError, match="does not support set_exception"):
            task.set_exception(ValueError())

    run_virtual(main())


def test_default_task_names_count_up():
    async def main():
        first = aio.create_task(aio.sleep(0))
        second = aio.create_task(aio.sleep(0))
        n1 = int(first.get_name().removeprefix("Task-"))
        n2 = int(second.get_name().removeprefix("Task-"))
        await first, await second
        return n2 - n1

    assert run_virtual(main()) == 1


def test_result_before_done_is_invalid_state():
    async def main():
        task = aio.create_task(aio.sleep(1))
        with pytest.raises(aio.InvalidStateError):
            task.result()
        with pytest.raises(asyncio.InvalidStateError):
            task.exception()
        await task

    run_virtual(main())


def test_cancel_a_waiting_task():
    log = []

    async def child():
        try:
            await aio.sleep(10)
        except aio.CancelledError as exc:
            log.append(("caught", exc.args))
            raise

    async def main():
        task = aio.create_task(child())
        await aio.sleep(0)
        assert task.cancel("stop it") is True
        assert task.cancelling() == 1
        assert not task.cancelled()  # not yet: the coroutine decides
        with pytest.raises(aio.CancelledError):
            await task
        assert task.cancelled() and task.done()
        assert task.cancel() is False
        # The await took the task's own error (with the message); a later
        # retrieval gets a new one without it, as on asyncio.
        with pytest.raises(aio.CancelledError) as later:
            task.result()
        assert later.value.args == ()

    run_virtual(main())
    assert log == [("caught", ("stop it",))]


def test_cancel_before_start_never_runs_the_body():
    started = []

    async def child():
        started.append(True)

    async def main():
        task = aio.create_task(child())
        task.cancel()
        with pytest.raises(aio.CancelledError):
            await task
        return task.cancelled()

    assert run_virtual(main()) is True
    assert started == []


def test_cancel_at_sleep0_is_delivered_at_the_next_step():
    log = []

    async def spinner():
        try:
            while True:
                await aio.sleep(0)
        except aio.CancelledError:
            log.append("spinner cancelled")
            raise

    async def main():
        task = aio.create_task(spinner())
        for _ in range(3):
            await aio.sleep(0)
        task.cancel()
        await aio.wait([task])
        return task.cancelled()

    assert run_virtual(main()) is True
    assert log == ["spinner cancelled"]


def test_cancellation_can_be_caught_and_is_edge_triggered():
    async def child():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            pass
        # Edge-triggered: awaiting again works after the cancel.
        await aio.sleep(1)
        task = aio.current_task()
        assert task.cancelling() == 1
        task.uncancel()
        assert task.cancelling() == 0
        return "survived"

    async def main():
        task = aio.create_task(child())
        await aio.sleep(0)
        task.cancel()
        return await task

    assert run_virtual(main()) == "survived"


def test_task_cancelled_while_running_gets_cancelled_at_next_await():
    async def main():
        me = aio.current_task()
        me.cancel()
        with pytest.raises(aio.CancelledError):
            await aio.sleep(5)
        me.uncancel()
        return "ok"

    assert run_virtual(main()) == "ok"


def test_awaiting_a_task_that_raised():
    async def child():
        await aio.sleep(0)
        raise ValueError("bad")

    async def main():
        task = aio.create_task(child())
        with pytest.raises(ValueError, match="bad"):
            await task
        assert isinstance(task.exception(), ValueError)
        assert "exception=ValueError('bad')" in repr(task)

    run_virtual(main())


def test_unretrieved_task_exception_goes_to_exception_handler():
    contexts = []

    async def child():
        raise ValueError("nobody awaits me")

    async def main():
        loop = aio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: contexts.append(context))
        aio.create_task(child())
        await aio.sleep(0)
        await aio.sleep(0)

    run_virtual(main())
    assert len(contexts) == 1
    assert contexts[0]["message"] == "Task exception was never retrieved"
    assert isinstance(contexts[0]["exception"], ValueError)


def test_done_callbacks_run_via_the_loop():
    log = []

    async def main():
        task = aio.create_task(aio.sleep(0, result="r"))
        task.add_done_callback(lambda t: log.append(("cb1", t.result())))

        def removed(t):
            log.append("removed")

        task.add_done_callback(removed)
        assert task.remove_done_callback(removed) == 1
        await task
        log.append("after await")
        await aio.sleep(0)

    run_virtual(main())
    # As in asyncio: the callback was added first, so it runs first.
    assert log == [("cb1", "r"), "after await"]


def test_current_task_and_all_tasks():
    async def child():
        await aio.sleep(1)

    async def main():
        me = aio.current_task()
        assert me is asyncio.current_task()
        assert isinstance(me, aio.Task)
        task = aio.create_task(child())
        assert aio.all_tasks() == {me, task}
        assert asyncio.all_tasks() == {me, task}
        await task
        assert aio.all_tasks() == {me}

    run_virtual(main())
    assert aio.current_task(aio.new_event_loop()) is None


def test_current_task_is_none_in_callbacks():
    seen = []

    async def main():
        loop = aio.get_running_loop()
        loop.call_soon(lambda: seen.append(aio.current_task()))
        await aio.sleep(0)
        await aio.sleep(0)

    run_virtual(main())
    assert seen == [None]


def test_task_context():
    var = contextvars.ContextVar("var", default="default")

    async def reader():
        return var.get()

    async def main():
        var.set("main")
        copied = await aio.create_task(reader())
        ctx = contextvars.Context()
        explicit = await aio.create_task(reader(), context=ctx)
        task = aio.create_task(reader())
        assert task.get_context().get(var) == "main"
        await task
        return copied, explicit

    assert run_virtual(main()) == ("main", "default")


def test_ensure_future():
    async def coro():
        return 3

    async def main():
        loop = aio.get_running_loop()
        fut = loop.create_future()
        assert aio.ensure_future(fut) is fut
        task = aio.ensure_future(coro())
        assert isinstance(task, aio.Task)

        class Awaitable:
            def __await__(self):
                return coro().__await__()

        wrapped = aio.ensure_future(Awaitable())
        assert await task == await wrapped == 3
        with pytest.raises(TypeError):
            aio.ensure_future(42)
        other = aio.new_event_loop()
        try:
            with pytest.raises(ValueError):
                aio.ensure_future(fut, loop=other)
        finally:
            other.close()
        fut.cancel()

    run_virtual(main())


def test_get_stack_and_print_stack():
    async def child():
        await aio.sleep(10)

    async def main():
        task = aio.create_task(child())
        await aio.sleep(0)
        frames = task.get_stack()
        assert frames and frames[-1].f_code.co_name == "child"
        out = io.StringIO()
        task.print_stack(file=out)
        assert "Stack for" in out.getvalue() and "child" in out.getvalue()
        task.cancel()
        await aio.wait([task])
        assert task.get_stack() == []

    run_virtual(main())


def test_awaiting_a_future_from_another_loop_fails():
    other = aio.new_event_loop()

    async def main():
        fut = other.create_future()
        with pytest.raises(RuntimeError, match="attached to a different loop"):
            await fut

    try:
        run_virtual(main())
    finally:
        other.close()


def test_task_cannot_await_itself():
    async def main():
        with pytest.raises(RuntimeError, match="cannot await on itself"):
            await aio.current_task()

    run_virtual(main())


def test_bad_yield():
    import types

    @types.coroutine
    def bad():
        yield 42

    async def main():
        with pytest.raises(RuntimeError, match="Task got bad yield: 42"):
            await bad()

    run_virtual(main())


def test_keyboard_interrupt_in_a_task_propagates_from_run():
    async def child():
        raise KeyboardInterrupt

    async def main():
        aio.create_task(child())
        await aio.sleep(10)

    with pytest.raises(KeyboardInterrupt):
        run_virtual(main())


def test_system_exit_in_main_propagates():
    async def main():
        await aio.sleep(0)
        raise SystemExit(3)

    with pytest.raises(SystemExit) as info:
        run_virtual(main())
    assert info.value.code == 3


def test_task_factory():
    made = []

    def factory(loop, coro, **kwargs):
        task = aio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    async def main():
        loop = aio.get_running_loop()
        loop.set_task_factory(factory)
        assert loop.get_task_factory() is factory
        await aio.create_task(aio.sleep(0), name="x")
        loop.set_task_factory(None)
        return made[0].get_name()

    assert run_virtual(main()) == "x"


def test_stdlib_task_runs_on_the_loop():
    """A standard-library asyncio.Task (callback-driven) works too."""

    async def child():
        await aio.sleep(0)
        await aio.sleep(1)
        return "std"

    async def main():
        task = asyncio.Task(child(), loop=aio.get_running_loop())
        return await task

    assert run_virtual(main()) == "std"


def stdlib_task_waits(run, sleep, new_loop):
    """An aio task awaits a pending standard-library Task (what aiohttp's
    server makes per request on 3.12 and later), once to its result and
    once while being cancelled: what each await gave, and whether the
    awaited task was cancelled with it."""

    async def child(delay, value):
        await sleep(delay)
        return value

    async def main():
        loop = asyncio.get_running_loop()
        outcomes = []
        first = asyncio.Task(child(0.01, "std"), loop=loop)
        outcomes.append(await first)
        second = asyncio.Task(child(10, "never"), loop=loop)

        async def waiter():
            return await second

        waiting = loop.create_task(waiter())
        await sleep(0.01)
        waiting.cancel()
        try:
            await waiting
        except asyncio.CancelledError:
            outcomes.append("waiter cancelled")
        outcomes.append(second.cancelled())
        return outcomes

    loop = new_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def test_awaiting_a_stdlib_task_takes_the_common_wait(monkeypatch):
    # The stepper starts the wait on a standard-library Task itself, as on
    # its own futures (no trip through `_on_foreign_yield`), with asyncio's
    # results.
    expected = stdlib_task_waits(asyncio.run, asyncio.sleep, asyncio.new_event_loop)
    assert expected == ["std", "waiter cancelled", True]
    general = []
    original = aio.Task._on_foreign_yield

    def counting(task, awaited):
        if type(awaited) is asyncio.Task:
            general.append(awaited)
        return original(task, awaited)

    monkeypatch.setattr(aio.Task, "foreign_yield_handler", staticmethod(counting))
    assert stdlib_task_waits(aio.run, aio.sleep, aio.new_event_loop) == expected
    assert general == []


def test_future_likes_whose_await_yields_none_are_awaitable():
    log = []

    class YieldsNone:
        """Gives up the loop twice (a bare yield each time), then returns."""

        def __await__(self):
            log.append("first")
            yield
            log.append("second")
            yield
            return "done"

    async def other():
        for i in range(3):
            log.append(f"other {i}")
            await aio.sleep(0)

    async def main():
        task = aio.create_task(other())
        await aio.sleep(0)
        result = await YieldsNone()
        await task
        return result

    assert run_virtual(main()) == "done"
    assert log == ["other 0", "first", "other 1", "second", "other 2"]


@pytest.mark.parametrize("library", ["asyncio", "tether.aio"])
def test_cancel_after_the_awaited_future_is_done_but_before_the_task_runs(library):
    """The task was woken by its future, cancel() comes before it runs: as
    in asyncio, it gets CancelledError at that await (not the result)."""
    lib = asyncio if library == "asyncio" else aio
    log = []

    async def child(fut):
        try:
            log.append(await fut)
        except asyncio.CancelledError as exc:
            log.append(("cancelled", exc.args))
        await lib.sleep(0)
        log.append("after")

    async def main():
        fut = lib.get_running_loop().create_future()
        task = lib.create_task(child(fut))
        await lib.sleep(0)
        fut.set_result("result")
        task.cancel("late")
        await task
        log.append(task.cancelling())

    if library == "asyncio":
        asyncio.run(main())
    else:
        run_virtual(main())
    assert log == [("cancelled", ("late",)), "after", 1]


def test_yielding_a_kernel_only_trap_is_a_bad_yield():
    @types.coroutine
    def yield_it(value):
        return (yield value)

    async def main():
        with pytest.raises(RuntimeError, match="bad yield"):
            await yield_it(tether.lowlevel.TASK_EXIT)
        return "went on"

    assert run_virtual(main()) == "went on"


@pytest.mark.parametrize(
    "wait",
    ["aio sleep", "tether sleep", "cancelled tether sleep", "tether sleep in a cancelled scope"],
)
def test_a_failed_task_is_freed_and_reported_without_the_cycle_collector(wait):
    # (On Python 3.12 and later, the frame of a coroutine that raised links
    # to the frames of the step that ran it: nothing in those may refer
    # back to the task, or to a cancellation's error that does.)
    reports = []

    async def fails():
        if wait == "aio sleep":
            await aio.sleep(0)
        elif wait == "tether sleep":
            await tether.sleep(0.01)
        elif wait == "tether sleep in a cancelled scope":
            with tether.move_on_after(1):
                await tether.sleep(10)
        else:
            try:
                await tether.sleep(10)
            except aio.CancelledError:
                pass
        raise ValueError("boom")

    async def main():
        loop = aio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reports.append(context["message"]))
        task = aio.create_task(fails())
        if wait == "cancelled tether sleep":
            await aio.sleep(0)
            task.cancel()
        await aio.wait([task])  # (does not retrieve its exception)
        ref = weakref.ref(task)
        del task
        for _ in range(3):
            await aio.sleep(0)
        return ref() is None

    gc.disable()
    try:
        freed = run_virtual(main())
    finally:
        gc.enable()
    assert freed
    assert reports == ["Task exception was never retrieved"]


def test_a_task_that_fails_at_the_end_of_a_segment_is_freed_without_the_cycle_collector(loop):
    # The end of a run_until_complete() cancels a tether-native wait with
    # the kernel's Cancelled; this task swallows it and fails.
    reports = []
    loop.set_exception_handler(lambda _loop, context: reports.append(context["message"]))

    async def fails():
        try:
            await tether.sleep(10)
        except tether.Cancelled:
            pass
        raise ValueError("boom")

    gc.disable()
    try:
        task = loop.create_task(fails())
        loop.run_until_complete(aio.sleep(0))
        loop.run_until_complete(aio.sleep(0))
        assert task.done()  # (its exception is not retrieved)
        ref = weakref.ref(task)
        del task
        loop.run_until_complete(aio.sleep(0))
        freed = ref() is None
    finally:
        gc.enable()
    assert freed
    assert reports == ["Task exception was never retrieved"]


def test_a_finished_gather_is_freed_without_the_cycle_collector():
    async def ok(i):
        await aio.sleep(0)
        return i

    async def main():
        gathering = aio.gather(ok(1), ok(2), ok(3))
        assert await gathering == [1, 2, 3]
        refs = [weakref.ref(gathering), *(weakref.ref(child) for child in gathering._children)]
        del gathering
        for _ in range(3):
            await aio.sleep(0)
        return [ref() is None for ref in refs]

    gc.disable()
    try:
        freed = run_virtual(main())
    finally:
        gc.enable()
    assert freed == [True, True, True, True]


def test_uncancel_withdraws_a_pending_cancel_from_3_13():
    # As each version's asyncio: 3.13's uncancel() drops a cancellation
    # that was requested but not delivered yet, when the count reaches 0.
    async def child():
        await aio.sleep(0)
        return "ran to the end"

    async def main():
        task = aio.create_task(child())  # not started yet
        task.cancel()
        assert task.uncancel() == 0
        try:
            return await task
        except asyncio.CancelledError:
            return "cancelled"

    expected = "ran to the end" if sys.version_info >= (3, 13) else "cancelled"
    assert aio.run(main()) == expected


def test_a_task_destroyed_while_pending_is_reported_as_in_asyncio():
    # The loop closes with the task still waiting; once the task is
    # collected, the loop's exception handler hears of it. A task that
    # gather made itself is not reported (its gather reports its errors).
    import gc

    reports = []
    loop = aio.new_event_loop()
    loop.set_exception_handler(lambda loop, context: reports.append(context))

    async def waits_forever():
        await loop.create_future()

    async def main():
        aio.create_task(waits_forever(), name="left behind")
        aio.ensure_future(aio.gather(waits_forever()))
        await aio.sleep(0)

    loop.run_until_complete(main())
    loop.close()
    gc.collect()
    messages = [(c["message"], c["task"].get_name()) for c in reports if "task" in c]
    assert messages == [("Task was destroyed but it is pending!", "left behind")]


def cancelled_error_handover(run, sleep):
    """A task that ends with CancelledError, awaited by another task: is the
    error the awaiter gets the very one the task raised, and which frames
    does its traceback run through."""

    async def inner():
        await sleep(10)

    async def victim():
        try:
            await inner()
        except asyncio.CancelledError as exc:
            raised.append(exc)
            raise

    raised = []

    async def main():
        task = asyncio.get_running_loop().create_task(victim())
        await sleep(0)
        task.cancel("stop")
        try:
            await task
        except asyncio.CancelledError as exc:
            frames = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
            return exc is raised[0], exc.args, frames

    return run(main())


def test_awaiting_a_cancelled_task_raises_the_error_it_ended_with():
    expected = cancelled_error_handover(asyncio.run, asyncio.sleep)
    assert expected[0] is True and "inner" in expected[2]
    assert cancelled_error_handover(aio.run, aio.sleep) == expected


class _FutureLike:
    """Enough of a future for an asyncio task to await (asyncio accepts any
    object with these), cancelled by its own ``cancel``."""

    _asyncio_future_blocking = False

    def __init__(self, loop):
        self._loop = loop
        self._callbacks = []
        self._cancelled = None

    def get_loop(self):
        return self._loop

    def add_done_callback(self, callback, *, context=None):
        self._callbacks.append(callback)

    def remove_done_callback(self, callback):
        self._callbacks.remove(callback)
        return 1

    def done(self):
        return self._cancelled is not None

    def cancel(self, msg=None):
        if self._cancelled is not None:
            return False
        self._cancelled = msg
        for callback in self._callbacks:
            self._loop.call_soon(callback, self)
        return True

    def result(self):
        if self._cancelled is not None:
            raise asyncio.CancelledError(self._cancelled)
        raise asyncio.InvalidStateError("not done")

    def __await__(self):
        self._asyncio_future_blocking = True
        yield self
        return self.result()


def cancelled_twice_awaiting_a_future_like(run):
    async def waiter(fut):
        try:
            await fut
        except asyncio.CancelledError as exc:
            return exc.args

    async def main():
        fut = _FutureLike(asyncio.get_running_loop())
        task = asyncio.get_running_loop().create_task(waiter(fut))
        await asyncio.sleep(0)
        task.cancel("first")
        task.cancel("second")
        return await task

    return run(main())


def test_a_task_cancelled_twice_awaiting_a_future_like_object():
    expected = cancelled_twice_awaiting_a_future_like(asyncio.run)
    assert expected == ("first",)
    assert cancelled_twice_awaiting_a_future_like(aio.run) == expected


def test_a_cancelled_task_nobody_awaits_is_freed_without_the_collector():
    # Its CancelledError (whose traceback holds the task's frames, which
    # hold the task) is kept until the first retrieval of the outcome, here
    # result(), and dropped then, as asyncio's task drops it.
    async def victim():
        me = asyncio.current_task()  # noqa: F841 (a frame that holds the task)
        await asyncio.sleep(10)

    async def main():
        task = asyncio.get_running_loop().create_task(victim())
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert task.cancelled()
        with pytest.raises(asyncio.CancelledError):
            task.result()
        return weakref.ref(task)

    gc.disable()
    try:
        ref = aio.run(main())
        assert ref() is None
    finally:
        gc.enable()


def test_reprs_list_done_callbacks_and_wakeups_as_asyncio_does():
    # A task's repr lists its done callbacks ("cb=[...]"), and the future it
    # waits for lists the task's wakeup as "Task.task_wakeup()".
    def on_done(task):
        pass

    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        async def waiter():
            await fut

        task = asyncio.create_task(waiter(), name="w")
        task.add_done_callback(on_done)
        await asyncio.sleep(0)
        seen = (repr(task), repr(fut))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return seen

    stock = asyncio.run(main())
    with asyncio.Runner(loop_factory=aio.new_event_loop) as runner:
        ours = runner.run(main())
    assert ours == stock
    assert "cb=[Task.task_wakeup()]" in ours[1]
    assert "on_done() at" in ours[0]


def test_the_first_retrieval_of_a_cancelled_tasks_outcome_gets_its_own_error():
    # As on asyncio: result() (and so run_until_complete), exception() or an
    # await after the task ended raises the very CancelledError the task's
    # coroutine ended with, its traceback through the task's frames; a later
    # retrieval gets a new one without the message.
    def frames(error):
        return [frame.f_code.co_name for frame, _ in traceback.walk_tb(error.__traceback__)]

    async def victim():
        await asyncio.sleep(10)

    async def cancelled_task(message):
        task = asyncio.create_task(victim())
        await asyncio.sleep(0)
        task.cancel(message)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return task

    async def task_retrieved_twice():
        task = await cancelled_task("stop")
        seen = []
        for retrieve in (task.exception, task.result):
            try:
                retrieve()
            except asyncio.CancelledError as error:
                seen.append(("victim" in frames(error), error.args))
        return seen

    async def awaited_late():
        task = await cancelled_task("late")
        try:
            await task
        except asyncio.CancelledError as error:
            return "victim" in frames(error), error.args

    for run in (asyncio.run, aio.run):
        assert run(task_retrieved_twice()) == [(True, ("stop",)), (False, ())]
        assert run(awaited_late()) == (True, ("late",))

    def end_cancelled(loop_factory):
        async def cancelled_inside():
            raise asyncio.CancelledError("inside")

        with asyncio.Runner(loop_factory=loop_factory) as runner:
            try:
                runner.run(cancelled_inside())
            except asyncio.CancelledError as error:
                return "cancelled_inside" in frames(error), error.args
        return None

    assert end_cancelled(None) == (True, ("inside",))
    assert end_cancelled(aio.new_event_loop) == (True, ("inside",))


@pytest.mark.parametrize("where", ["callback", "task"])
def test_nothing_more_runs_after_a_system_exit_until_the_loop_runs_again(where):
    # A SystemExit (or KeyboardInterrupt) raised by a callback or a task
    # leaves run_until_complete at once, as on asyncio: the task steps and
    # callbacks queued behind it do not run; they run, in the same order,
    # when the loop runs again.
    def story(new_loop):
        log = []
        exiting = []

        async def other():
            log.append("other task steps")
            await asyncio.sleep(0)
            log.append("other task steps again")

        async def exits():
            log.append("task exits")
            raise SystemExit(4)

        def exit_now():
            log.append("callback exits")
            raise SystemExit(4)

        async def main():
            loop = asyncio.get_running_loop()
            if where == "callback":
                loop.call_soon(exit_now)
            else:
                exiting.append(loop.create_task(exits()))
            other_task = loop.create_task(other())
            loop.call_soon(log.append, "later callback")
            await asyncio.sleep(0)
            log.append("main goes on")
            await other_task

        loop = new_loop()
        try:
            main_task = loop.create_task(main())
            with pytest.raises(SystemExit):
                loop.run_until_complete(main_task)
            log.append("-- stopped --")
            loop.run_until_complete(main_task)
            for task in exiting:
                # (Retrieved: its error is not reported as never retrieved.)
                assert isinstance(task.exception(), SystemExit)
        finally:
            loop.close()
        return log

    expected = story(asyncio.new_event_loop)
    assert expected[: expected.index("-- stopped --")] == [f"{where} exits"]
    assert story(aio.new_event_loop) == expected


@pytest.mark.timeout(15)
def test_an_error_in_the_loops_own_code_after_a_system_exit_leaves_the_loop_usable():
    # A callback raises SystemExit, and while the loop stops, the loop's own
    # code fails (simulated with a trace hook: a callback runner putting its
    # batch back for the next run raises). run_until_complete raises the
    # SystemExit, with the failure as its context; nothing of it is kept
    # for the next run, which runs normally. (The SystemExit used to stay
    # recorded, and the next run spun, putting its due timers back on the
    # heap again and again.)
    from tether.aio import _callbacks, _loop_core

    target = _callbacks.requeue_callbacks.__code__
    runner_code = _loop_core.LoopCore._run_callbacks.__code__
    failed = []

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code is target and not failed:
            if frame.f_back is not None and frame.f_back.f_code is runner_code:
                failed.append(True)
                raise RuntimeError("the loop's own code failed")
        return None

    log = []
    pending = []

    def exit_now():
        raise SystemExit(5)

    async def first():
        loop.call_soon(exit_now)
        # (A task queued in between: the next callback goes to another
        # batch, run by another runner.)
        pending.append(loop.create_task(asyncio.sleep(0)))
        loop.call_soon(log.append, "callback")
        await asyncio.sleep(0.01)

    async def second():
        loop.call_later(0.01, log.append, "timer")
        await asyncio.sleep(0.05)
        return "second done"

    loop = aio.new_event_loop(clock=MockClock(autojump_threshold=0))
    try:
        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            with pytest.raises(SystemExit) as info:
                loop.run_until_complete(first())
        finally:
            sys.settrace(previous)
        assert failed == [True]
        assert info.value.code == 5
        context = info.value.__context__
        assert isinstance(context, BaseExceptionGroup)
        assert context.subgroup(RuntimeError) is not None
        assert loop.run_until_complete(second()) == "second done"
        assert "timer" in log
    finally:
        loop.close()
