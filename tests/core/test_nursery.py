"""Nurseries: structure, strict exception groups, start()/task_status, misuse."""

import pytest

import tether
from tether import lowlevel
from tether.testing import MockClock, wait_all_tasks_blocked


def run_mock(async_fn, *args, **kwargs):
    return tether.run(async_fn, *args, clock=MockClock(autojump_threshold=0), **kwargs)


class Boom(Exception):
    pass


async def sleep_then(seconds, log, label):
    await tether.sleep(seconds)
    log.append((label, tether.current_time()))


async def raise_after(seconds, exc):
    await tether.sleep(seconds)
    raise exc


async def raise_after_shielded(seconds, exc):
    # sibling failures cannot cancel this one before it raises
    with tether.CancelScope(shield=True):
        await tether.sleep(seconds)
    raise exc


# ---- structure


def test_nursery_waits_for_all_children():
    log = []

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(sleep_then, 3, log, "a")
            nursery.start_soon(sleep_then, 1, log, "b")
            log.append(("body done", tether.current_time()))
        log.append(("nursery exited", tether.current_time()))

    run_mock(main)
    assert log == [("body done", 0.0), ("b", 1.0), ("a", 3.0), ("nursery exited", 3.0)]


def test_empty_nursery_exits():
    async def main():
        async with tether.open_nursery() as nursery:
            pass
        return nursery.child_tasks

    assert tether.run(main) == frozenset()


def test_children_can_spawn_into_nursery_while_parent_waits_in_exit():
    log = []

    async def grandchild():
        await tether.sleep(5)
        log.append(("late", tether.current_time()))

    async def spawner(nursery):
        await tether.sleep(2)
        nursery.start_soon(grandchild)

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(spawner, nursery)
        log.append(("exit", tether.current_time()))

    run_mock(main)
    assert log == [("late", 7.0), ("exit", 7.0)]


def test_child_tasks_and_parent_task():
    async def child(event):
        await event.wait()

    async def main():
        event = tether.Event()
        async with tether.open_nursery() as nursery:
            assert nursery.parent_task is lowlevel.current_task()
            assert nursery.child_tasks == frozenset()
            nursery.start_soon(child, event, name="c1")
            nursery.start_soon(child, event, name="c2")
            await wait_all_tasks_blocked()
            names = sorted(t.name for t in nursery.child_tasks)
            assert names == ["c1", "c2"]
            for task in nursery.child_tasks:
                assert task.parent_nursery is nursery
            event.set()
        assert nursery.child_tasks == frozenset()
        return "ok"

    assert run_mock(main) == "ok"


def test_task_child_nurseries():
    async def main():
        me = lowlevel.current_task()
        assert me.child_nurseries == []
        async with tether.open_nursery() as n1:
            assert me.child_nurseries == [n1]
            async with tether.open_nursery() as n2:
                assert me.child_nurseries == [n1, n2]
            assert me.child_nurseries == [n1]
        assert me.child_nurseries == []
        return "ok"

    assert tether.run(main) == "ok"


def test_task_name_defaults_and_override():
    names = {}

    async def my_worker_function():
        names[lowlevel.current_task().name] = True

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(my_worker_function)
            nursery.start_soon(my_worker_function, name="custom-name")

    tether.run(main)
    assert "custom-name" in names
    others = [n for n in names if n != "custom-name"]
    assert len(others) == 1
    assert "my_worker_function" in others[0]


# ---- errors (strict groups)


def test_single_child_error_is_wrapped_in_group():
    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(raise_after, 1, Boom("one"))

    with pytest.RaisesGroup(pytest.RaisesExc(Boom, match="one")) as info:
        run_mock(main)
    assert type(info.value) is ExceptionGroup


def test_multiple_child_errors_are_all_reported():
    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(raise_after_shielded, 1, Boom("a"))
            nursery.start_soon(raise_after_shielded, 2, ValueError("b"))
            nursery.start_soon(raise_after_shielded, 1, Boom("c"))

    with pytest.RaisesGroup(
        pytest.RaisesExc(Boom, match="a"),
        pytest.RaisesExc(Boom, match="c"),
        ValueError,
    ):
        run_mock(main)


def test_child_error_cancels_siblings_and_body():
    log = []

    async def sibling():
        try:
            await tether.sleep(100)
        except tether.Cancelled:
            log.append(("sibling cancelled", tether.current_time()))
            raise

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(sibling)
            nursery.start_soon(raise_after, 2, Boom())
            try:
                await tether.sleep(100)
            except tether.Cancelled:
                log.append(("body cancelled", tether.current_time()))
                raise

    with pytest.RaisesGroup(Boom):
        run_mock(main)
    assert sorted(log) == [("body cancelled", 2.0), ("sibling cancelled", 2.0)]


def test_body_error_is_grouped_and_cancels_children():
    log = []

    async def child():
        try:
            await tether.sleep(100)
        except tether.Cancelled:
            log.append(tether.current_time())
            raise

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child)
            await tether.sleep(3)
            raise Boom("body")

    with pytest.RaisesGroup(pytest.RaisesExc(Boom, match="body")):
        run_mock(main)
    assert log == [3.0]


def test_body_and_child_errors_reported_together():
    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(raise_after, 1, ValueError("child"))
            with tether.CancelScope(shield=True):
                await tether.sleep(2)
            raise Boom("body")

    with pytest.RaisesGroup(Boom, ValueError):
        run_mock(main)


def test_base_exception_in_child_gives_base_exception_group():
    async def child():
        await lowlevel.checkpoint()
        raise KeyboardInterrupt

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child)

    with pytest.raises(BaseExceptionGroup) as info:
        tether.run(main)
    assert not isinstance(info.value, ExceptionGroup)
    assert len(info.value.exceptions) == 1
    assert isinstance(info.value.exceptions[0], KeyboardInterrupt)


def test_nested_nursery_errors_nest_groups():
    async def inner():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(raise_after_shielded, 1, Boom("deep"))

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(inner)
            nursery.start_soon(raise_after_shielded, 2, ValueError("shallow"))

    with pytest.RaisesGroup(pytest.RaisesGroup(Boom), ValueError):
        run_mock(main)


def test_error_after_body_exit_is_reported():
    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(raise_after, 5, Boom())
        raise AssertionError("not reached")  # pragma: no cover

    with pytest.RaisesGroup(Boom):
        run_mock(main)


def test_cancelled_children_do_not_leak_cancelled():
    async def main():
        async with tether.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(tether.sleep_forever)
            await wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        return nursery.cancel_scope.cancelled_caught

    assert run_mock(main) is True


def test_child_cancelling_its_own_nursery():
    async def child(nursery):
        await tether.sleep(4)
        nursery.cancel_scope.cancel()

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(child, nursery)
            nursery.start_soon(tether.sleep_forever)
            await tether.sleep_forever()
        return tether.current_time()

    assert run_mock(main) == 4.0


# ---- misuse


def test_start_soon_rejects_coroutine_object():
    async def child():
        pass  # pragma: no cover

    async def main():
        async with tether.open_nursery() as nursery:
            coro = child()
            try:
                with pytest.raises(TypeError):
                    nursery.start_soon(coro)
            finally:
                coro.close()
        return "ok"

    assert tether.run(main) == "ok"


def test_start_soon_rejects_sync_function():
    def sync():
        return None

    async def main():
        async with tether.open_nursery() as nursery:
            with pytest.raises(TypeError):
                nursery.start_soon(sync)
        return "ok"

    assert tether.run(main) == "ok"


def test_start_soon_on_closed_nursery_is_runtime_error():
    async def child():
        pass  # pragma: no cover

    async def main():
        async with tether.open_nursery() as nursery:
            pass
        with pytest.raises(RuntimeError):
            nursery.start_soon(child)
        with pytest.raises(RuntimeError):
            await nursery.start(child)
        return "ok"

    assert tether.run(main) == "ok"


# ---- start()


def test_start_returns_started_value():
    log = []

    async def server(port, *, task_status=tether.TASK_STATUS_IGNORED):
        await tether.sleep(1)
        log.append("before started")
        task_status.started(("listening", port))
        await tether.sleep(1)
        log.append(("after started", tether.current_time()))

    async def main():
        async with tether.open_nursery() as nursery:
            value = await nursery.start(server, 8080)
            log.append(("start returned", value, tether.current_time()))

    run_mock(main)
    assert log == [
        "before started",
        ("start returned", ("listening", 8080), 1.0),
        ("after started", 2.0),
    ]


def test_started_without_value_returns_none():
    async def child(*, task_status=tether.TASK_STATUS_IGNORED):
        task_status.started()

    async def main():
        async with tether.open_nursery() as nursery:
            return await nursery.start(child)

    assert tether.run(main) is None


def test_task_status_ignored_allows_direct_call():
    async def child(*, task_status=tether.TASK_STATUS_IGNORED):
        task_status.started("ignored")
        task_status.started("twice is fine here")
        return "direct"

    async def main():
        return await child()

    assert tether.run(main) == "direct"


def test_error_before_started_propagates_unwrapped_from_start():
    log = []

    async def failing(*, task_status=tether.TASK_STATUS_IGNORED):
        await tether.sleep(1)
        raise Boom("early")

    async def bystander():
        await tether.sleep(5)
        log.append("bystander finished")

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(bystander)
            with pytest.raises(Boom, match="early"):
                await nursery.start(failing)
            log.append("start raised")
        return "nursery unaffected"

    assert run_mock(main) == "nursery unaffected"
    assert log == ["start raised", "bystander finished"]


def test_start_with_function_not_accepting_task_status():
    async def no_status():
        pass  # pragma: no cover

    async def main():
        async with tether.open_nursery() as nursery:
            with pytest.raises(TypeError):
                await nursery.start(no_status)
        return "ok"

    assert tether.run(main) == "ok"


def test_child_returning_without_started_is_runtime_error():
    async def forgetful(*, task_status=tether.TASK_STATUS_IGNORED):
        await lowlevel.checkpoint()

    async def main():
        async with tether.open_nursery() as nursery:
            with pytest.raises(RuntimeError):
                await nursery.start(forgetful)
        return "ok"

    assert tether.run(main) == "ok"


def test_started_twice_is_runtime_error():
    errors = []

    async def twice(*, task_status=tether.TASK_STATUS_IGNORED):
        task_status.started(1)
        try:
            task_status.started(2)
        except RuntimeError as exc:
            errors.append(exc)

    async def main():
        async with tether.open_nursery() as nursery:
            return await nursery.start(twice)

    assert tether.run(main) == 1
    assert len(errors) == 1


def test_error_after_started_goes_to_nursery():
    async def child(*, task_status=tether.TASK_STATUS_IGNORED):
        task_status.started("up")
        await tether.sleep(1)
        raise Boom("late")

    async def main():
        async with tether.open_nursery() as nursery:
            assert await nursery.start(child) == "up"
            await tether.sleep(10)

    with pytest.RaisesGroup(pytest.RaisesExc(Boom, match="late")):
        run_mock(main)


def test_cancelling_start_cancels_the_child():
    log = []

    async def slow_start(*, task_status=tether.TASK_STATUS_IGNORED):
        try:
            await tether.sleep(100)
        except tether.Cancelled:
            log.append(("child cancelled", tether.current_time()))
            raise
        task_status.started()  # pragma: no cover

    async def main():
        async with tether.open_nursery() as nursery:
            with tether.move_on_after(3) as cs:
                await nursery.start(slow_start)
            log.append(("moved on", cs.cancelled_caught))
        return nursery.child_tasks

    assert run_mock(main) == frozenset()
    assert log == [("child cancelled", 3.0), ("moved on", True)]


def test_start_child_parentage_before_and_after_started():
    seen = {}

    async def child(nursery, *, task_status=tether.TASK_STATUS_IGNORED):
        me = lowlevel.current_task()
        seen["before_eventual"] = me.eventual_parent_nursery is nursery
        seen["before_parent_is_target"] = me.parent_nursery is nursery
        task_status.started()
        await lowlevel.checkpoint()
        seen["after_parent"] = me.parent_nursery is nursery
        seen["after_eventual"] = me.eventual_parent_nursery

    async def main():
        async with tether.open_nursery() as nursery:
            await nursery.start(child, nursery)

    tether.run(main)
    assert seen == {
        "before_eventual": True,
        "before_parent_is_target": False,
        "after_parent": True,
        "after_eventual": None,
    }


def test_started_child_is_cancelled_with_target_nursery():
    log = []

    async def child(*, task_status=tether.TASK_STATUS_IGNORED):
        task_status.started()
        try:
            await tether.sleep_forever()
        except tether.Cancelled:
            log.append(tether.current_time())
            raise

    async def main():
        async with tether.open_nursery() as nursery:
            await nursery.start(child)
            await tether.sleep(2)
            nursery.cancel_scope.cancel()

    run_mock(main)
    assert log == [2.0]


def test_start_name_argument():
    async def child(*, task_status=tether.TASK_STATUS_IGNORED):
        task_status.started(lowlevel.current_task().name)

    async def main():
        async with tether.open_nursery() as nursery:
            return await nursery.start(child, name="named-start")

    assert tether.run(main) == "named-start"


def test_scope_around_start_does_not_affect_child_after_started():
    log = []

    async def child(*, task_status=tether.TASK_STATUS_IGNORED):
        task_status.started()
        await tether.sleep(5)
        log.append(("child finished", tether.current_time()))

    async def main():
        async with tether.open_nursery() as nursery:
            with tether.CancelScope() as cs:
                await nursery.start(child)
                cs.cancel()
                await tether.sleep(1)
            log.append(("scope done", cs.cancelled_caught, tether.current_time()))

    run_mock(main)
    assert log == [("scope done", True, 0.0), ("child finished", 5.0)]


def test_start_child_gets_copy_of_callers_context():
    import contextvars

    cvar = contextvars.ContextVar("cvar", default="none")
    seen = []

    async def child(*, task_status=tether.TASK_STATUS_IGNORED):
        seen.append(cvar.get())
        cvar.set("child")
        task_status.started()

    async def main():
        async with tether.open_nursery() as nursery:
            cvar.set("caller")
            await nursery.start(child)
            return cvar.get()

    assert tether.run(main) == "caller"
    assert seen == ["caller"]


def test_cancelled_is_stripped_from_group_by_catching_scope():
    async def failing_later():
        with tether.CancelScope(shield=True):
            await tether.sleep(2)
        raise Boom("after outer cancel")

    async def main():
        with tether.CancelScope() as cs:
            async with tether.open_nursery() as nursery:
                nursery.start_soon(failing_later)
                nursery.start_soon(tether.sleep_forever)
                await tether.sleep(1)
                cs.cancel()
                await tether.sleep_forever()
        raise AssertionError("not reached")  # pragma: no cover

    with pytest.RaisesGroup(pytest.RaisesExc(Boom, match="after outer cancel")) as info:
        run_mock(main)

    def no_cancelled(exc):
        if isinstance(exc, BaseExceptionGroup):
            return all(no_cancelled(e) for e in exc.exceptions)
        return not isinstance(exc, tether.Cancelled)

    assert no_cancelled(info.value)


def test_mixed_keyboard_interrupt_and_errors():
    async def kbd():
        with tether.CancelScope(shield=True):
            await tether.sleep(1)
        raise KeyboardInterrupt

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(kbd)
            nursery.start_soon(raise_after_shielded, 2, Boom())

    with pytest.raises(BaseExceptionGroup) as info:
        run_mock(main)
    kinds = sorted(type(e).__name__ for e in info.value.exceptions)
    assert kinds == ["Boom", "KeyboardInterrupt"]


def test_children_raising_on_first_step_are_all_reported():
    async def raiser(exc):
        raise exc

    async def main():
        async with tether.open_nursery() as nursery:
            for i in range(4):
                nursery.start_soon(raiser, Boom(str(i)))

    with pytest.raises(ExceptionGroup) as info:
        tether.run(main)
    assert sorted(str(e) for e in info.value.exceptions) == ["0", "1", "2", "3"]


def test_start_soon_returns_none_and_runs_later():
    log = []

    async def child():
        log.append("child")

    async def main():
        async with tether.open_nursery() as nursery:
            assert nursery.start_soon(child) is None
            log.append("after start_soon")

    tether.run(main)
    assert log == ["after start_soon", "child"]


# -- strict_exception_groups=False (deprecated, as in trio) ---------------------


def test_loose_nursery_raises_single_error_bare_and_warns():
    async def main():
        with pytest.warns(tether.TetherDeprecationWarning, match="strict_exception_groups=False"):
            manager = tether.open_nursery(strict_exception_groups=False)
        with pytest.raises(Boom):
            async with manager as nursery:
                nursery.start_soon(raise_after, 1, Boom())
        # Two errors still come as a group.
        with pytest.warns(tether.TetherDeprecationWarning):
            manager = tether.open_nursery(strict_exception_groups=False)
        with pytest.RaisesGroup(Boom, KeyError):
            async with manager as nursery:
                nursery.start_soon(raise_after_shielded, 1, Boom())
                nursery.start_soon(raise_after_shielded, 1, KeyError())

    run_mock(main)


def test_run_sets_default_strictness_for_its_nurseries():
    async def main():
        # Inherits the run's choice, without a warning of its own.
        async with tether.open_nursery() as nursery:
            nursery.start_soon(raise_after, 1, Boom())

    with pytest.warns(tether.TetherDeprecationWarning) as record:
        with pytest.raises(Boom):
            run_mock(main, strict_exception_groups=False)
    assert len(record) == 1

    # An explicit strict nursery overrides the run.
    async def strict_main():
        async with tether.open_nursery(strict_exception_groups=True) as nursery:
            nursery.start_soon(raise_after, 1, Boom())

    with pytest.warns(tether.TetherDeprecationWarning):
        with pytest.RaisesGroup(Boom):
            run_mock(strict_main, strict_exception_groups=False)


@pytest.mark.filterwarnings("ignore::tether.TetherDeprecationWarning")
def test_loose_group_collapses_once_cancelled_is_stripped():
    # The inner loose nursery's group holds one real error and a Cancelled;
    # the outer scope, which caused the Cancelled, keeps only the error.
    async def boom():
        raise Boom

    async def main():
        with pytest.RaisesGroup(Boom, Boom):
            async with tether.open_nursery() as outer:
                outer.start_soon(boom)
                async with tether.open_nursery(strict_exception_groups=False) as inner:
                    inner.start_soon(tether.sleep_forever)
                    inner.start_soon(boom)
                    outer.cancel_scope.cancel()

    run_mock(main)


@pytest.mark.filterwarnings("ignore::tether.TetherDeprecationWarning")
def test_start_unwraps_early_error_even_in_loose_run():
    async def fails_early(task_status=tether.TASK_STATUS_IGNORED):
        raise Boom

    async def main():
        async with tether.open_nursery() as nursery:
            await nursery.start(fails_early)

    with pytest.raises(Boom):
        run_mock(main, strict_exception_groups=False)


def test_unentered_manager_explains_itself():
    manager = tether.open_nursery()
    with pytest.raises(AttributeError, match="async with open_nursery") as info:
        manager.start_soon(tether.sleep, 0)
    assert info.value.name == "start_soon"
    with pytest.raises(AttributeError, match=r"no attribute 'nonsense'$"):
        manager.nonsense  # noqa: B018
    with pytest.raises(RuntimeError, match=r"use 'async with open_nursery\(...\)'"):
        with manager:  # type: ignore[attr-defined]
            pass  # pragma: no cover


def test_cancelled_nursery_is_freed_without_the_garbage_collector():
    import gc
    import weakref

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep_forever)
            nursery.cancel_scope.cancel()
        ref = weakref.ref(nursery)
        del nursery
        await lowlevel.checkpoint()
        return ref

    gc.collect()
    gc.disable()
    try:
        ref = tether.run(main)
        # Freed by reference counting alone: no cycle kept it.
        assert ref() is None
    finally:
        gc.enable()


def test_exiting_a_nursery_twice_is_a_clear_error():
    async def main():
        async with tether.open_nursery() as outer:
            manager = tether.open_nursery()
            inner = await manager.__aenter__()
            assert await manager.__aexit__(None, None, None) is True
            with pytest.raises(RuntimeError, match="exited twice"):
                await manager.__aexit__(None, None, None)
            with pytest.raises(RuntimeError, match="exited twice"):
                await manager.__aexit__(ValueError, ValueError("late"), None)
            # The task's other open nursery is untouched by the refused exits.
            assert lowlevel.current_task().child_nurseries == [outer]
            outer.start_soon(tether.sleep, 1)
            with pytest.raises(RuntimeError, match="Nursery is closed"):
                inner.start_soon(tether.sleep, 1)

    run_mock(main)


def test_exiting_an_unentered_nursery_is_a_clear_error():
    async def main():
        with pytest.raises(RuntimeError, match="without being entered"):
            await tether.open_nursery().__aexit__(None, None, None)

    run_mock(main)


def test_cancelling_a_nursery_reaches_a_child_that_left_a_scope_of_its_own():
    # A child back under its nursery's scope after a scope of its own
    # (and one still inside a scope) are both cancelled with the nursery.
    log = []

    async def scoped_then_wait(label, leave_scope):
        with tether.CancelScope():
            await tether.sleep(1)
            if not leave_scope:
                try:
                    await tether.sleep_forever()
                finally:
                    log.append((label, "cancelled in its scope"))
        try:
            await tether.sleep_forever()
        finally:
            log.append((label, "cancelled after its scope"))

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(scoped_then_wait, "left", True)
            nursery.start_soon(scoped_then_wait, "inside", False)
            await tether.sleep(2)
            nursery.cancel_scope.cancel()

    run_mock(main)
    assert sorted(log) == [
        ("inside", "cancelled in its scope"),
        ("left", "cancelled after its scope"),
    ]


def test_a_started_task_is_cancelled_with_the_nursery_it_moved_into():
    log = []

    async def service(task_status=tether.TASK_STATUS_IGNORED):
        task_status.started()
        try:
            await tether.sleep_forever()
        finally:
            log.append("service cancelled")

    async def main():
        async with tether.open_nursery() as nursery:
            await nursery.start(service)
            (task,) = nursery.child_tasks
            await wait_all_tasks_blocked()
            assert log == []
            nursery.cancel_scope.cancel()
        return task

    task = run_mock(main)
    assert log == ["service cancelled"]
    assert task.parent_nursery is not None
