"""tether.lowlevel: traps, tasks, system tasks, RunVar, statistics, tokens."""

import contextvars
import dataclasses
import math
import threading
import types
import weakref

import outcome
import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked


def run_mock(async_fn, *args, **kwargs):
    return tether.run(async_fn, *args, clock=MockClock(autojump_threshold=0), **kwargs)


# ---- wait_task_rescheduled / reschedule


def test_reschedule_with_value():
    async def waiter(box):
        box["task"] = lowlevel.current_task()
        box["result"] = await lowlevel.wait_task_rescheduled(
            lambda raise_cancel: lowlevel.Abort.SUCCEEDED
        )

    async def main():
        box = {}
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, box)
            await wait_all_tasks_blocked()
            assert "result" not in box
            lowlevel.reschedule(box["task"], outcome.Value("hello"))
        return box["result"]

    assert tether.run(main) == "hello"


def test_a_task_of_another_run_is_not_rescheduled():
    async def waiter(box):
        box["task"] = lowlevel.current_task()
        box["result"] = await lowlevel.wait_task_rescheduled(
            lambda raise_cancel: lowlevel.Abort.SUCCEEDED
        )

    async def stranger(task):
        with pytest.raises(RuntimeError, match="belongs to another tether run") as info:
            lowlevel.reschedule(task, outcome.Value("from the other run"))
        return str(info.value)

    async def main():
        box = {}
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, box)
            await wait_all_tasks_blocked()
            message = await tether.to_thread.run_sync(tether.run, stranger, box["task"])
            assert "run_sync_soon" in message
            assert "result" not in box  # still waiting: the refusal changed nothing
            lowlevel.reschedule(box["task"], outcome.Value("from its own run"))
        return box["result"]

    assert tether.run(main) == "from its own run"


def test_a_foreign_wait_rescheduled_with_a_plain_value_gets_a_type_error():
    @types.coroutine
    def foreign_wait():
        return (yield object())

    async def waiter(box):
        task = box["task"] = lowlevel.current_task()
        task.foreign_yield_handler = lambda task, obj: lambda raise_cancel: lowlevel.Abort.SUCCEEDED
        with pytest.raises(TypeError, match=r"needs an outcome\.Value or outcome\.Error, got 42"):
            await foreign_wait()
        box["done"] = True

    async def main():
        box = {}
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, box)
            await wait_all_tasks_blocked()
            lowlevel.current_stepping_state().reschedule(box["task"], 42)
        return box

    assert tether.run(main)["done"] is True


def test_reschedule_default_sends_none():
    async def waiter(box):
        box["task"] = lowlevel.current_task()
        box["result"] = await lowlevel.wait_task_rescheduled(
            lambda raise_cancel: lowlevel.Abort.SUCCEEDED
        )

    async def main():
        box = {}
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, box)
            await wait_all_tasks_blocked()
            lowlevel.reschedule(box["task"])
        return box

    assert tether.run(main)["result"] is None


def test_reschedule_with_error():
    class Boom(Exception):
        pass

    async def waiter(box):
        box["task"] = lowlevel.current_task()
        try:
            await lowlevel.wait_task_rescheduled(lambda raise_cancel: lowlevel.Abort.SUCCEEDED)
        except Boom as exc:
            box["error"] = exc

    async def main():
        box = {}
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, box)
            await wait_all_tasks_blocked()
            lowlevel.reschedule(box["task"], outcome.Error(Boom("x")))
        return box

    assert str(tether.run(main)["error"]) == "x"


def test_abort_succeeded_raises_cancelled():
    calls = []

    def abort_fn(raise_cancel):
        calls.append(raise_cancel)
        return lowlevel.Abort.SUCCEEDED

    async def main():
        with tether.move_on_after(3) as cs:
            await lowlevel.wait_task_rescheduled(abort_fn)
        return cs.cancelled_caught, tether.current_time()

    assert run_mock(main) == (True, 3.0)
    assert len(calls) == 1
    assert callable(calls[0])


def test_abort_failed_keeps_task_parked_until_rescheduled():
    log = []

    async def waiter(box):
        task = lowlevel.current_task()

        def abort_fn(raise_cancel):
            log.append(("abort", tether.current_time()))
            box["raise_cancel"] = raise_cancel
            return lowlevel.Abort.FAILED

        box["task"] = task
        with tether.CancelScope() as cs:
            box["cs"] = cs
            try:
                await lowlevel.wait_task_rescheduled(abort_fn)
            except tether.Cancelled:
                log.append(("cancelled", tether.current_time()))
                raise
        log.append(("caught", cs.cancelled_caught))

    async def main():
        box = {}
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, box)
            await tether.sleep(1)
            box["cs"].cancel()
            await tether.sleep(1)
            # abort refused: still parked
            assert log == [("abort", 1.0)]
            lowlevel.reschedule(box["task"], outcome.capture(box["raise_cancel"]))

    run_mock(main)
    assert log == [("abort", 1.0), ("cancelled", 2.0), ("caught", True)]


def test_abort_fn_not_called_when_not_cancelled():
    calls = []

    async def waiter(box):
        box["task"] = lowlevel.current_task()
        await lowlevel.wait_task_rescheduled(
            lambda rc: calls.append(rc) or lowlevel.Abort.SUCCEEDED
        )

    async def main():
        box = {}
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, box)
            await tether.sleep(5)
            lowlevel.reschedule(box["task"])

    run_mock(main)
    assert calls == []


# ---- tasks


def test_lowlevel_awaitables_that_are_not_async_def_can_be_started_as_tasks():
    # checkpoint and wait_task_rescheduled are generator-based coroutines
    # (for speed); like trio's async def ones, they can be given to
    # start_soon directly.
    async def main():
        aborted = []

        def abort(raise_cancel):
            aborted.append(True)
            return lowlevel.Abort.SUCCEEDED

        async with tether.open_nursery() as nursery:
            nursery.start_soon(lowlevel.checkpoint)
            nursery.start_soon(lowlevel.wait_task_rescheduled, abort)
            await wait_all_tasks_blocked()
            (parked,) = [t for t in nursery.child_tasks]
            assert "wait_task_rescheduled" in parked.name
            nursery.cancel_scope.cancel()
        assert aborted == [True]

    tether.run(main)


def test_a_plain_generator_is_still_refused_as_a_task():
    def not_a_coroutine():
        yield

    async def main():
        async with tether.open_nursery() as nursery:
            with pytest.raises(TypeError, match="is it a synchronous function"):
                nursery.start_soon(not_a_coroutine)

    tether.run(main)


def test_current_task_and_root_task():
    async def child(box):
        box.append(lowlevel.current_task())

    async def main():
        me = lowlevel.current_task()
        root = lowlevel.current_root_task()
        assert isinstance(me, lowlevel.Task)
        assert isinstance(root, lowlevel.Task)
        assert root.parent_nursery is None
        # the root task is the ultimate ancestor of every task
        task = me
        while task.parent_nursery is not None:
            task = task.parent_nursery.parent_task
        assert task is root
        box = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child, box)
        assert box[0] is not me
        assert box[0].parent_nursery is nursery
        assert nursery.parent_task is me
        return "ok"

    assert tether.run(main) == "ok"


def test_current_task_outside_run_is_error():
    with pytest.raises(RuntimeError):
        lowlevel.current_task()


def test_task_attributes():
    after_wake = []

    async def some_child():
        me = lowlevel.current_task()
        assert me.custom_sleep_data is None
        me.custom_sleep_data = {"mine": 1}
        await lowlevel.wait_task_rescheduled(lambda rc: lowlevel.Abort.SUCCEEDED)
        # documented: reset to None whenever the task is rescheduled
        after_wake.append(me.custom_sleep_data)

    async def main():
        me = lowlevel.current_task()
        assert me.coro.cr_code.co_name == "main"
        assert isinstance(me.context, contextvars.Context)
        assert isinstance(me.child_nurseries, list)
        async with tether.open_nursery() as nursery:
            nursery.start_soon(some_child, name="kid")
            await wait_all_tasks_blocked()
            (kid,) = nursery.child_tasks
            assert kid.name == "kid"
            assert kid.coro.cr_code.co_name == "some_child"
            assert kid.eventual_parent_nursery is None
            assert kid.custom_sleep_data == {"mine": 1}
            lowlevel.reschedule(kid)
        return "ok"

    assert tether.run(main) == "ok"
    assert after_wake == [None]


def test_iter_await_frames_follows_coroutines_and_async_generators():
    async def innermost(event):
        event.set()
        await tether.sleep_forever()

    async def numbers(event):
        yield 1
        await innermost(event)
        yield 2

    async def consumer(event):
        async for _ in numbers(event):
            pass

    async def athrower(event):
        agen = numbers(event)
        await agen.asend(None)
        await agen.asend(None)

    async def main():
        for top in (consumer, athrower):
            async with tether.open_nursery() as nursery:
                event = tether.Event()
                nursery.start_soon(top, event)
                await event.wait()
                (task,) = nursery.child_tasks
                names = [frame.f_code.co_name for frame, _ in task.iter_await_frames()]
                assert names[:3] == [top.__name__, "numbers", "innermost"]
                nursery.cancel_scope.cancel()
            # A finished task has no frames left.
            assert list(task.iter_await_frames()) == []

    tether.run(main)


# ---- system tasks


def test_system_task_runs_and_is_cancelled_when_main_exits():
    log = []

    async def system_worker():
        log.append("started")
        try:
            await tether.sleep_forever()
        except tether.Cancelled:
            log.append("cancelled")
            raise

    async def main():
        task = lowlevel.spawn_system_task(system_worker, name="sys-worker")
        assert isinstance(task, lowlevel.Task)
        assert task.name == "sys-worker"
        await wait_all_tasks_blocked()
        assert log == ["started"]
        # a system task is not a child of the main task
        me = lowlevel.current_task()
        assert task.parent_nursery is not None
        assert task.parent_nursery.parent_task is not me
        return "main done"

    assert tether.run(main) == "main done"
    assert log == ["started", "cancelled"]


def test_system_task_error_is_internal_error():
    class Boom(Exception):
        pass

    async def bad_system_task():
        await lowlevel.checkpoint()
        raise Boom

    async def main():
        lowlevel.spawn_system_task(bad_system_task)
        await tether.sleep_forever()

    with pytest.raises(tether.TetherInternalError) as info:
        run_mock(main)
    # The error, as the run's nurseries raised it: the system nursery's
    # group inside the run's outermost one.
    assert pytest.RaisesGroup(pytest.RaisesGroup(Boom)).matches(info.value.__cause__)


def test_system_task_keyboard_interrupt_is_internal_error_too():
    async def raises_ki():
        raise KeyboardInterrupt

    async def main():
        lowlevel.spawn_system_task(raises_ki)
        await tether.sleep_forever()

    with pytest.raises(tether.TetherInternalError) as info:
        run_mock(main)
    assert pytest.RaisesGroup(pytest.RaisesGroup(KeyboardInterrupt)).matches(info.value.__cause__)


def test_system_task_error_alongside_cancelled_keeps_only_the_error():
    async def fails_when_cancelled():
        try:
            await tether.sleep_forever()
        except tether.Cancelled:
            raise ValueError from None

    async def system_task():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(fails_when_cancelled)
            nursery.start_soon(tether.sleep_forever)

    async def main():
        lowlevel.spawn_system_task(system_task)
        await wait_all_tasks_blocked()
        # Returning shuts the system tasks down.

    with pytest.raises(tether.TetherInternalError) as info:
        run_mock(main)
    assert pytest.RaisesGroup(pytest.RaisesGroup(pytest.RaisesGroup(ValueError))).matches(
        info.value.__cause__
    )


def test_failing_run_sync_soon_callback_crashes_the_run_in_order():
    log = []

    async def main():
        token = lowlevel.current_tether_token()
        token.run_sync_soon(lambda: {}["missing"])
        token.run_sync_soon(lambda: log.append("next callback ran"))
        try:
            await tether.sleep_forever()
        except tether.Cancelled as exc:
            log.append(exc.source)
            raise

    with pytest.raises(tether.TetherInternalError) as info:
        run_mock(main)
    assert pytest.RaisesGroup(pytest.RaisesGroup(KeyError)).matches(info.value.__cause__)
    assert log == ["next callback ran", "shutdown"]


def test_callback_failing_after_system_nursery_closed_still_crashes_the_run():
    # An async generator's finalizer runs after the system nursery closed;
    # a callback it queues that fails lands in the run's outermost nursery.
    log = []

    async def agen():
        token = lowlevel.current_tether_token()
        try:
            yield 1
        finally:
            token.run_sync_soon(lambda: {}["missing"])
            token.run_sync_soon(lambda: log.append("later callback ran"))

    kept = []

    async def main():
        kept.append(agen())
        await kept[-1].asend(None)

    with pytest.raises(tether.TetherInternalError) as info:
        run_mock(main)
    assert pytest.RaisesGroup(KeyError).matches(info.value.__cause__)
    assert log == ["later callback ran"]


sysvar = contextvars.ContextVar("sysvar", default="default")


def test_system_task_context():
    seen = {}

    async def reader(key):
        seen[key] = sysvar.get()

    async def main():
        sysvar.set("set-in-main")
        lowlevel.spawn_system_task(reader, "implicit")
        lowlevel.spawn_system_task(reader, "explicit", context=contextvars.copy_context())
        await wait_all_tasks_blocked()

    tether.run(main)
    # system tasks do not inherit the spawning task's context unless asked
    assert seen == {"implicit": "default", "explicit": "set-in-main"}


def test_spawn_system_task_rejects_coroutine_object():
    async def child():
        pass  # pragma: no cover

    async def main():
        coro = child()
        try:
            with pytest.raises(TypeError):
                lowlevel.spawn_system_task(coro)
        finally:
            coro.close()
        return "ok"

    assert tether.run(main) == "ok"


# ---- clock


def test_current_clock():
    clock = MockClock(autojump_threshold=0)

    async def main():
        assert lowlevel.current_clock() is clock
        await tether.sleep(3)
        assert clock.current_time() == tether.current_time() == 3.0
        return "ok"

    assert tether.run(main, clock=clock) == "ok"


def test_default_clock_matches_current_time():
    async def main():
        clock = lowlevel.current_clock()
        t0 = tether.current_time()
        t1 = clock.current_time()
        t2 = tether.current_time()
        return t0 <= t1 <= t2

    assert tether.run(main) is True


# ---- RunVar


def test_runvar_outside_run_is_error():
    rv = lowlevel.RunVar("rv")
    with pytest.raises(RuntimeError):
        rv.get()
    with pytest.raises(RuntimeError):
        rv.set(1)


def test_runvar_get_set_reset():
    rv = lowlevel.RunVar("rv")
    rv_default = lowlevel.RunVar("rv_default", default="dflt")

    async def main():
        with pytest.raises(LookupError):
            rv.get()
        assert rv.get("fallback") == "fallback"
        assert rv_default.get() == "dflt"
        token1 = rv.set(1)
        assert rv.get() == 1
        token2 = rv.set(2)
        assert rv.get() == 2
        rv.reset(token2)
        assert rv.get() == 1
        with pytest.raises(ValueError):
            rv.reset(token2)
        rv.reset(token1)
        with pytest.raises(LookupError):
            rv.get()
        token3 = rv_default.set("x")
        with pytest.raises(ValueError, match="token is not for us"):
            rv.reset(token3)
        with pytest.raises(TypeError):
            rv.reset(None)
        rv_default.reset(token3)
        assert rv_default.get() == "dflt"
        return "ok"

    assert tether.run(main) == "ok"


def test_runvar_is_shared_across_tasks_and_reset_between_runs():
    rv = lowlevel.RunVar("shared")

    async def child():
        rv.set("from child")

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child)
        return rv.get()

    assert tether.run(main) == "from child"

    async def second():
        return rv.get("fresh")

    assert tether.run(second) == "fresh"


# ---- statistics


def test_current_statistics():
    clock = MockClock()  # no autojump: time moves only by clock.jump()

    async def main():
        base = lowlevel.current_statistics()
        # The root task and this one.
        assert base.tasks_living == 2
        assert [f.name for f in dataclasses.fields(base)] == [
            "tasks_living",
            "tasks_runnable",
            "seconds_to_next_deadline",
            "io_statistics",
            "run_sync_soon_queue_size",
        ]
        assert base.tasks_runnable >= 0
        assert base.seconds_to_next_deadline == math.inf
        assert base.run_sync_soon_queue_size == 0
        assert base.io_statistics is not None

        async with tether.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(tether.sleep, 10)
            spawned = lowlevel.current_statistics()
            assert spawned.tasks_living == base.tasks_living + 3
            assert spawned.tasks_runnable >= 3
            await wait_all_tasks_blocked()
            blocked = lowlevel.current_statistics()
            assert blocked.tasks_runnable == 0
            assert blocked.seconds_to_next_deadline == 10.0
            clock.jump(4)
            assert lowlevel.current_statistics().seconds_to_next_deadline == 6.0
            nursery.cancel_scope.cancel()
        after = lowlevel.current_statistics()
        assert after.tasks_living == base.tasks_living
        return "ok"

    assert tether.run(main, clock=clock) == "ok"


# ---- tokens / run_sync_soon


def test_token_identity_and_run_sync_soon():
    log = []

    async def main():
        token = lowlevel.current_tether_token()
        assert isinstance(token, lowlevel.TetherToken)
        assert lowlevel.current_tether_token() is token
        event = tether.Event()

        def callback(a, b):
            log.append((a, b, lowlevel.in_tether_run()))
            event.set()

        token.run_sync_soon(callback, 1, 2)
        await event.wait()
        return token

    token = tether.run(main)
    assert log == [(1, 2, True)]
    with pytest.raises(tether.RunFinishedError):
        token.run_sync_soon(print, "too late")


def test_run_sync_soon_from_thread_while_sleeping():
    async def main():
        token = lowlevel.current_tether_token()
        event = tether.Event()
        result = []

        def from_thread():
            token.run_sync_soon(lambda: (result.append("called"), event.set()))

        thread = threading.Thread(target=from_thread)
        thread.start()
        with tether.fail_after(30):
            await event.wait()
        thread.join()
        return result

    assert tether.run(main) == ["called"]


def test_run_sync_soon_callback_error_is_internal_error():
    def explode():
        raise ValueError("callback")

    async def main():
        lowlevel.current_tether_token().run_sync_soon(explode)
        await tether.sleep_forever()

    with pytest.raises(tether.TetherInternalError):
        tether.run(main)


def test_in_tether_run_and_task():
    assert not lowlevel.in_tether_run()
    assert not lowlevel.in_tether_task()

    async def main():
        return lowlevel.in_tether_run(), lowlevel.in_tether_task()

    assert tether.run(main) == (True, True)
    assert not lowlevel.in_tether_run()


def test_run_sync_soon_is_fifo_and_counted_in_statistics():
    calls = []

    async def main():
        token = lowlevel.current_tether_token()
        done = tether.Event()
        for i in range(5):
            token.run_sync_soon(calls.append, i)
        token.run_sync_soon(done.set)
        assert lowlevel.current_statistics().run_sync_soon_queue_size >= 6
        await done.wait()
        assert lowlevel.current_statistics().run_sync_soon_queue_size == 0
        return "ok"

    assert tether.run(main) == "ok"
    assert calls == [0, 1, 2, 3, 4]


def test_accepted_run_sync_soon_call_runs_before_run_returns():
    calls = []

    async def main():
        lowlevel.current_tether_token().run_sync_soon(calls.append, "late")
        return "main returned first"

    assert tether.run(main) == "main returned first"
    assert calls == ["late"]


def test_tether_token_is_weak_referenceable():
    async def main():
        token = lowlevel.current_tether_token()
        ref = weakref.ref(token)
        assert ref() is token

    tether.run(main)


# -- detaching a task's coroutine ------------------------------------------------


@types.coroutine
def to_runner(value):
    # A bare yield: what a foreign runner's coroutine would do.
    return (yield value)


def test_permanently_detached_coroutine_continues_outside_tether():
    kept = {}

    async def detaches(final):
        await lowlevel.checkpoint()
        kept["task"] = lowlevel.current_task()
        kept["sent"] = await lowlevel.permanently_detach_coroutine_object(final)
        await to_runner("handed over")

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(detaches, outcome.Value(None))
        # The task is over for tether; its coroutine goes on when driven.
        coro = kept["task"].coro
        assert coro.send("first value") == "handed over"
        assert kept["sent"] == "first value"
        with pytest.raises(StopIteration):
            coro.send(None)

        # The task's result is the outcome given: here an error, which its
        # nursery raises.
        with pytest.RaisesGroup(KeyError):
            async with tether.open_nursery() as nursery:
                nursery.start_soon(detaches, outcome.Error(KeyError("detached")))
        kept["task"].coro.close()

    tether.run(main)


def test_permanent_detach_refuses_with_a_nursery_open():
    async def main():
        async with tether.open_nursery():
            with pytest.raises(RuntimeError, match="open nurser"):
                await lowlevel.permanently_detach_coroutine_object(outcome.Value(None))

    tether.run(main)


def test_temporarily_detached_coroutine_is_reattached():
    kept = {}
    log = []

    def abort_fn(raise_cancel):
        log.append("abort called")
        return lowlevel.Abort.FAILED

    async def detaches():
        task = kept["task"] = lowlevel.current_task()
        log.append(await lowlevel.temporarily_detach_coroutine_object(abort_fn))
        log.append(await to_runner("step 1"))
        with pytest.raises(RuntimeError, match="does not match"):
            await lowlevel.reattach_detached_coroutine_object(kept["other"], None)
        await lowlevel.reattach_detached_coroutine_object(task, "back to tether")
        log.append("under tether again")
        with pytest.raises(tether.Cancelled):
            await lowlevel.checkpoint()

    async def other():
        kept["other"] = lowlevel.current_task()

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(other)
            nursery.start_soon(detaches)
            await wait_all_tasks_blocked()
            # Cancelling a detached task only calls its abort function.
            nursery.cancel_scope.cancel()
            coro = kept["task"].coro
            assert coro.send("sent by the other runner") == "step 1"
            assert coro.send("more") == "back to tether"

    tether.run(main)
    assert log == ["abort called", "sent by the other runner", "more", "under tether again"]


def test_detached_abort_function_must_fail():
    async def detaches():
        await lowlevel.temporarily_detach_coroutine_object(lambda _: lowlevel.Abort.SUCCEEDED)

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(detaches)
            await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    # The run crashes; the detached task can never be woken to unwind, so
    # the run ends with the abort function's error as the cause.
    with pytest.raises(tether.TetherInternalError, match="could not be woken") as info:
        tether.run(main)
    assert pytest.RaisesExc(RuntimeError, match="must return Abort.FAILED").matches(
        info.value.__cause__
    )


def test_an_idempotent_call_that_started_can_be_queued_again():
    # Its equal copy is no longer waiting once it runs, so queueing it from
    # inside itself is not dropped: it runs again (until it stops).
    runs = []

    def again(token):
        runs.append(len(runs))
        if len(runs) < 3:
            token.run_sync_soon(again, token, idempotent=True)

    async def main():
        token = lowlevel.current_tether_token()
        token.run_sync_soon(again, token, idempotent=True)
        await wait_all_tasks_blocked()

    tether.run(main)
    assert runs == [0, 1, 2]


def test_a_refused_call_names_the_function():
    async def main():
        return lowlevel.current_tether_token()

    token = tether.run(main)
    with pytest.raises(tether.RunFinishedError, match=r"print.*has finished"):
        token.run_sync_soon(print, "too late")
