"""Kernel entry points for faces built on tether (tether.aio): spawning an
existing coroutine or a face's own task object, preparing a task before it
starts, ordering tasks by spawn order, interrupting any wait, and I/O
registrations kept between waits."""

from __future__ import annotations

import contextvars
import select
import socket
import threading
import types

import outcome
import pytest

import tether
import tether.testing
from tether import lowlevel
from tether._core import _io

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


class Interrupted(Exception):
    pass


def raise_interrupted():
    raise Interrupted("interrupted")


def test_spawn_coroutine_runs_the_coroutine_in_the_given_context_and_returns_task():
    async def child():
        return var.get()

    seen = {}

    async def record(coro_result_holder):
        coro_result_holder["value"] = await child()
        coro_result_holder["task"] = lowlevel.current_task()

    async def main():
        context = contextvars.copy_context()
        context.run(var.set, "from the given context")
        async with tether.open_nursery() as nursery:
            task = lowlevel.spawn_coroutine(nursery, record(seen), name="my task", context=context)
            assert isinstance(task, lowlevel.Task)
            assert task.name == "my task"
            assert task.context is context
            assert task in nursery.child_tasks
        return task

    task = tether.run(main)
    assert seen == {"value": "from the given context", "task": task}


def test_spawn_coroutine_rejects_bad_arguments():
    async def main():
        async with tether.open_nursery() as nursery:
            with pytest.raises(TypeError, match="coroutine object"):
                lowlevel.spawn_coroutine(
                    nursery, lambda: None, name="x", context=contextvars.copy_context()
                )
            coro = tether.sleep(0)
            with pytest.raises(TypeError, match=r"contextvars\.Context"):
                lowlevel.spawn_coroutine(nursery, coro, name="x", context=None)
            coro.close()
        with pytest.raises(RuntimeError, match="closed"):
            lowlevel.spawn_coroutine(
                nursery, tether.sleep(0), name="x", context=contextvars.copy_context()
            )

    with pytest.warns(RuntimeWarning, match="never awaited"):
        tether.run(main)


class FaceTask(lowlevel.Task):
    """A face's own task class: the kernel's fields plus its own."""

    __slots__ = (*lowlevel.TASK_SLOTS, "__weakref__", "log", "name", "inner")

    foreign_yield_handler = None

    def __init__(self, name, inner):
        self.name = name
        self.inner = inner
        self.log = []


class Stepper:
    """One stepper for every FaceTask of a run: steps the inner coroutine of
    the task the kernel is stepping, and ends the task with TASK_EXIT."""

    def __init__(self):
        self.state = lowlevel.current_stepping_state()

    def send(self, value):
        task = self.state.current_task
        task.log.append(("send", value))
        try:
            return task.inner.send(value)
        except StopIteration as stop:
            task.log.append(("returned", stop.value))
            return lowlevel.TASK_EXIT

    def throw(self, exc):
        task = self.state.current_task
        task.log.append(("throw", type(exc).__name__))
        try:
            return task.inner.throw(exc)
        except StopIteration:
            return lowlevel.TASK_EXIT

    def close(self):
        pass


def test_spawn_task_starts_a_face_task_object_stepped_by_its_stepper():
    async def inner(result):
        await lowlevel.checkpoint()
        assert lowlevel.current_task().name == "face"
        return result

    async def main():
        stepper = Stepper()
        context = contextvars.copy_context()
        task = FaceTask("face", inner("first"))
        async with tether.open_nursery() as nursery:
            lowlevel.spawn_task(nursery, task, stepper, context=context)
            assert task in nursery.child_tasks
            assert task.context is context and task.coro is stepper
            assert task.parent_nursery is nursery
            assert task.eventual_parent_nursery is None
            with pytest.raises(RuntimeError, match="already running"):
                lowlevel.spawn_task(nursery, task, stepper, context=context)
        assert task not in nursery.child_tasks
        # Started again once it has exited, with fresh kernel fields.
        task.inner = inner("second")
        async with tether.open_nursery() as nursery:
            lowlevel.spawn_task(nursery, task, stepper, context=context)
        return task.log

    assert tether.run(main) == [
        ("send", None),
        ("send", None),
        ("returned", "first"),
        ("send", None),
        ("send", None),
        ("returned", "second"),
    ]


def test_a_face_task_is_cancelled_and_its_error_reaches_the_nursery():
    async def inner():
        await tether.sleep(100)

    async def fails():
        await lowlevel.checkpoint()
        raise ValueError("from the face task")

    async def main():
        stepper = Stepper()
        cancelled = FaceTask("cancelled", inner())
        with tether.move_on_after(1):
            async with tether.open_nursery() as nursery:
                lowlevel.spawn_task(nursery, cancelled, stepper, context=contextvars.copy_context())
        # The sleep's wait was aborted: its outcome reached the coroutine.
        kind, value = cancelled.log[-1]
        assert kind == "send" and isinstance(value.error, tether.Cancelled)
        with pytest.raises(ExceptionGroup) as info:
            async with tether.open_nursery() as nursery:
                lowlevel.spawn_task(
                    nursery, FaceTask("fails", fails()), stepper, context=contextvars.copy_context()
                )
        assert str(info.value.exceptions[0]) == "from the face task"

    tether.run(main, clock=tether.testing.MockClock(autojump_threshold=0))


def test_spawn_task_rejects_bad_arguments():
    async def main():
        async with tether.open_nursery() as nursery:
            with pytest.raises(TypeError, match=r"lowlevel\.Task"):
                lowlevel.spawn_task(nursery, object(), Stepper(), context=contextvars.Context())
            with pytest.raises(TypeError, match=r"contextvars\.Context"):
                lowlevel.spawn_task(nursery, FaceTask("x", None), Stepper(), context=None)
        with pytest.raises(RuntimeError, match="closed"):
            lowlevel.spawn_task(
                nursery, FaceTask("x", None), Stepper(), context=contextvars.Context()
            )

    tether.run(main)
    with pytest.raises(RuntimeError, match=r"inside tether\.run"):
        lowlevel.current_stepping_state()


def test_an_unstarted_face_task_reads_as_a_task_that_is_not_running():
    async def inner():
        await lowlevel.checkpoint()

    task = FaceTask("not yet", inner())
    lowlevel.init_unstarted_task(task)  # outside any run
    assert task.parent_nursery is None
    assert task.eventual_parent_nursery is None
    assert task.child_nurseries == []
    assert task.custom_sleep_data is None
    assert lowlevel.spawn_order(task) == 0
    with pytest.raises(RuntimeError, match="not registered"):
        lowlevel.remove_parking_lot_breaker(task, lowlevel.ParkingLot())

    async def main():
        # Not waiting for anything: nothing to interrupt.
        assert lowlevel.abort_wait(task, raise_interrupted) is False
        async with tether.open_nursery() as nursery:
            lowlevel.spawn_task(nursery, task, Stepper(), context=contextvars.copy_context())
            assert task.parent_nursery is nursery
            assert lowlevel.spawn_order(task) > 0

    tether.run(main)
    assert task.log[-1] == ("returned", None)


def test_init_unstarted_task_rejects_what_is_not_a_task():
    with pytest.raises(TypeError, match=r"lowlevel\.Task"):
        lowlevel.init_unstarted_task(object())


def test_spawn_order_follows_the_order_tasks_were_started_in():
    async def inner():
        await lowlevel.checkpoint()

    face_task = FaceTask("face", inner())

    async def main():
        stepper = Stepper()
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep, 0, name="first")
            lowlevel.spawn_task(nursery, face_task, stepper, context=contextvars.copy_context())
            nursery.start_soon(tether.sleep, 0, name="last")
            tasks = sorted(nursery.child_tasks, key=lowlevel.spawn_order)
            before_restart = lowlevel.spawn_order(face_task)
        # Started again: it takes its new place at the end.
        face_task.inner = inner()
        async with tether.open_nursery() as nursery:
            lowlevel.spawn_task(nursery, face_task, stepper, context=contextvars.copy_context())
        assert lowlevel.spawn_order(face_task) > before_restart
        return lowlevel.current_root_task(), tasks

    root, tasks = tether.run(main)
    assert [task.name for task in tasks] == ["first", "face", "last"]
    # Readable after the run.
    assert lowlevel.spawn_order(root) == 1


def test_spawn_order_rejects_a_task_never_started_and_what_is_not_a_task():
    with pytest.raises(RuntimeError, match="never started"):
        lowlevel.spawn_order(FaceTask("never", None))
    with pytest.raises(TypeError, match=r"lowlevel\.Task"):
        lowlevel.spawn_order(object())


def test_stepping_state_names_the_task_being_stepped():
    async def main():
        state = lowlevel.current_stepping_state()
        assert state.current_task is lowlevel.current_task()

    tether.run(main)


def test_code_of_no_task_inside_a_step_is_refused_with_the_face_reason():
    # What a face does while it runs code that belongs to no task in the
    # middle of a step (tether.aio's loop callbacks).
    async def main():
        state = lowlevel.current_stepping_state()
        me = state.current_task
        refused = []
        watch_set = lowlevel.FdWatchSet()
        state.no_task_stepping = me
        state.no_task_reason = "a face's callback"
        state.current_task = None
        try:
            for needs_a_task in (
                lowlevel.current_task,
                lambda: tether.CancelScope().__enter__(),
                lambda: tether.sleep(1).send(None),
                lambda: watch_set.wait().send(None),
            ):
                with pytest.raises(RuntimeError) as info:
                    needs_a_task()
                refused.append(str(info.value))
            # The task being stepped is still the one the tree shows running.
            tree = lowlevel.current_task_tree()
        finally:
            state.current_task = me
            state.no_task_reason = None
            state.no_task_stepping = None
        assert refused == ["must be called from inside a tether task (a face's callback)"] * 4
        watch_set.close()
        assert [info.state for info in tree.tasks() if info.task is me] == ["running"]
        # Put back, the same calls work, and the error outside a task has
        # no reason again.
        assert lowlevel.current_task() is me
        with tether.CancelScope():
            await tether.sleep(0)
        with pytest.raises(RuntimeError, match=r"^must be called from inside a tether task$"):
            state.current_task = None
            try:
                lowlevel.checkpoint_if_cancelled().send(None)
            finally:
                state.current_task = me

    tether.run(main)


@pytest.mark.parametrize("kind", ["sleep", "event", "parking lot", "wait_task_rescheduled"])
def test_abort_wait_interrupts_any_kernel_wait_with_the_given_exception(kind):
    async def waiter(log):
        try:
            if kind == "sleep":
                await tether.sleep(100)
            elif kind == "event":
                await tether.Event().wait()
            elif kind == "parking lot":
                await lowlevel.ParkingLot().park()
            else:
                await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED)
        except Interrupted as exc:
            log.append(str(exc))

    async def main():
        log = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, log)
            await tether.testing.wait_all_tasks_blocked()
            (task,) = nursery.child_tasks
            assert lowlevel.abort_wait(task, raise_interrupted) is True
            # Not parked any more: a second call does nothing.
            assert lowlevel.abort_wait(task, raise_interrupted) is False
        return log

    clock = tether.testing.MockClock(autojump_threshold=0)
    assert tether.run(main, clock=clock) == ["interrupted"]


def test_abort_wait_respects_a_wait_that_cannot_be_abandoned():
    async def main():
        async with tether.open_nursery() as nursery:

            async def stubborn():
                await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.FAILED)

            nursery.start_soon(stubborn)
            await tether.testing.wait_all_tasks_blocked()
            (task,) = nursery.child_tasks
            assert lowlevel.abort_wait(task, raise_interrupted) is False
            lowlevel.reschedule(task)

    tether.run(main)


def test_abort_wait_with_make_cancelled_looks_like_a_cancellation_to_the_wait():
    # The task gets the Cancelled where it waits (a face would turn it into
    # its own error), and the abandoned thread sees a cancellation too.
    seen = []
    release = threading.Event()
    thread_done = threading.Event()

    def in_thread():
        release.wait()
        try:
            tether.from_thread.check_cancelled()
        except tether.Cancelled:
            seen.append("thread saw a cancellation")
        thread_done.set()

    def raise_cancelled():
        raise lowlevel.make_cancelled()

    async def waiter():
        try:
            await tether.to_thread.run_sync(in_thread, abandon_on_cancel=True)
        except tether.Cancelled:
            seen.append("task got Cancelled")

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await tether.testing.wait_all_tasks_blocked()
            (task,) = nursery.child_tasks
            assert lowlevel.abort_wait(task, raise_cancelled) is True

    tether.run(main)
    release.set()
    assert thread_done.wait(10)
    assert seen == ["task got Cancelled", "thread saw a cancellation"]


def test_has_open_nurseries_follows_the_nurseries_a_task_has_open():
    async def main():
        task = lowlevel.current_task()
        seen = [lowlevel.has_open_nurseries(task)]
        async with tether.open_nursery():
            seen.append(lowlevel.has_open_nurseries(task))
        seen.append(lowlevel.has_open_nurseries(task))
        return seen

    assert tether.run(main) == [False, True, False]


def test_cancelled_by_own_scope_tells_the_tasks_own_scopes_from_its_nurserys():
    seen = []

    async def child(task_status=tether.TASK_STATUS_IGNORED):
        task = lowlevel.current_task()
        with tether.CancelScope() as outer:
            with tether.CancelScope(shield=True) as inner:
                task_status.started((task, outer, inner))
                await tether.sleep_forever()
        seen.append(("child left", outer.cancelled_caught, inner.cancelled_caught))

    async def main():
        async with tether.open_nursery() as nursery:
            task, outer, inner = await nursery.start(child)
            # Only the nursery's own scope: not a scope of the task's.
            nursery.cancel_scope.cancel()
            seen.append(("nursery cancelled", lowlevel.cancelled_by_own_scope(task)))
            # Its outer scope is hidden by the shield of its inner one.
            outer.cancel()
            seen.append(("outer cancelled", lowlevel.cancelled_by_own_scope(task)))
            inner.cancel()
            seen.append(("inner cancelled", lowlevel.cancelled_by_own_scope(task)))
        unstarted = FaceTask("not yet", None)
        lowlevel.init_unstarted_task(unstarted)
        seen.append(("unstarted", lowlevel.cancelled_by_own_scope(unstarted)))

    tether.run(main)
    assert seen == [
        ("nursery cancelled", False),
        ("outer cancelled", False),
        ("inner cancelled", True),
        ("child left", False, True),
        ("unstarted", False),
    ]


def test_code_coroutine_is_what_a_face_task_runs_and_what_its_frames_show():
    gate = tether.Event()

    async def inner():
        await gate.wait()

    class Face(FaceTask):
        __slots__ = ()

        def code_coroutine(self):
            return self.inner

    async def main():
        task = Face("face", inner())
        assert lowlevel.current_task().code_coroutine() is lowlevel.current_task().coro
        async with tether.open_nursery() as nursery:
            lowlevel.spawn_task(nursery, task, Stepper(), context=contextvars.copy_context())
            await tether.testing.wait_all_tasks_blocked()
            assert task.code_coroutine() is task.inner
            assert next(task.iter_await_frames())[0].f_code.co_name == "inner"
            gate.set()

    tether.run(main)


def test_a_face_class_overriding_the_old_private_hook_still_works_with_a_warning():
    with pytest.warns(tether.TetherDeprecationWarning, match=r"override code_coroutine\(\)"):

        class OldFace(FaceTask):
            __slots__ = ()

            def _code_coroutine(self):
                return self.inner

    task = OldFace("old", object())
    assert task.code_coroutine() is task.inner
    assert task._code_coroutine() is task.inner


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll only")
def test_epoll_keeps_a_registration_between_waits(monkeypatch):
    calls = []
    real_epoll = select.epoll

    class CountingEpoll:
        def __init__(self):
            self._epoll = real_epoll()

        def __getattr__(self, name):
            attribute = getattr(self._epoll, name)
            if name in ("register", "modify", "unregister"):

                def counted(*args):
                    calls.append(name)
                    return attribute(*args)

                return counted
            return attribute

    monkeypatch.setattr(_io.select, "epoll", CountingEpoll)
    a, b = socket.socketpair()

    async def main():
        calls.clear()
        for _ in range(5):
            b.send(b"x")
            await lowlevel.wait_readable(a)
            assert a.recv(1) == b"x"
        lowlevel.notify_closing(a)

    try:
        tether.run(main)
    finally:
        a.close()
        b.close()
    # One registration, re-armed by modify for each later wait, dropped when
    # the fd is about to close.
    assert calls == ["register"] + ["modify"] * 4 + ["unregister"]


def test_kept_registration_survives_fd_number_reuse():
    async def main():
        a, b = socket.socketpair()
        b.send(b"1")
        await lowlevel.wait_readable(a)
        number = a.fileno()
        a.close()  # without notify_closing: epoll drops it on its own
        b.close()
        # New sockets; one of them may get the same number back.
        c, d = socket.socketpair()
        try:
            if c.fileno() != number:
                pytest.skip("the OS did not hand the same fd number out again")
            d.send(b"2")
            with tether.fail_after(5):
                await lowlevel.wait_readable(c)
            assert c.recv(1) == b"2"
        finally:
            c.close()
            d.close()

    tether.run(main)


def test_a_coroutine_that_yields_task_exit_gets_a_type_error():
    @types.coroutine
    def yield_it(value):
        return (yield value)

    async def main():
        with pytest.raises(TypeError, match="only a face's stepper"):
            await yield_it(lowlevel.TASK_EXIT)
        return "still running"

    assert tether.run(main) == "still running"


def test_face_task_code_is_not_ki_protected_unless_marked():
    seen = {}

    async def user_code():
        seen["face task"] = lowlevel.currently_ki_protected()

    async def plain():
        seen["plain task"] = lowlevel.currently_ki_protected()

    async def main():
        async with tether.open_nursery() as nursery:
            lowlevel.spawn_task(
                nursery, FaceTask("face", user_code()), Stepper(), context=contextvars.Context()
            )
            nursery.start_soon(plain)

    tether.run(main)
    assert seen == {"face task": False, "plain task": False}


def test_stepping_state_says_whether_a_cancel_point_would_raise():
    async def main():
        state = lowlevel.current_stepping_state()
        assert state.cancel_pending() is False
        with tether.CancelScope() as outer:
            outer.cancel()
            assert state.cancel_pending() is True
            with tether.CancelScope(shield=True):
                assert state.cancel_pending() is False
            # Only a question: nothing was raised, the scope is still to
            # catch the cancellation at the next checkpoint.
            assert state.cancel_pending() is True
            await lowlevel.checkpoint()
        assert outer.cancelled_caught

    tether.run(main)


def test_stepping_state_reschedule_wakes_a_waiting_task():
    async def main():
        state = lowlevel.current_stepping_state()
        woken = []

        async def waiter():
            woken.append(await lowlevel.wait_task_rescheduled(lambda _: lowlevel.Abort.SUCCEEDED))

        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await tether.testing.wait_all_tasks_blocked()
            (task,) = nursery.child_tasks
            state.reschedule(task, outcome.Value("hello"))
        assert woken == ["hello"]

    tether.run(main)


@pytest.mark.parametrize("door", [lowlevel.cancelled_by_own_scope, lowlevel.effective_deadline_of])
def test_the_task_reading_doors_reject_what_is_not_a_task(door):
    with pytest.raises(TypeError, match=r"expected a tether\.lowlevel\.Task, got 'a name'"):
        door("a name")
