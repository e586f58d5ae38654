"""The lowlevel hook that lets a face (tether.aio) handle foreign yields."""

from __future__ import annotations

import types

import outcome
import pytest

import tether
import tether.testing
from tether import lowlevel


class Ticket:
    """A foreign awaitable: yields itself, returns what it was sent."""

    def __await__(self):
        return (yield self)


@types.coroutine
def yield_ticket(ticket):
    return (yield ticket)


def test_handler_parks_task_and_reschedule_sends_plain_value():
    parked = []

    def handler(task, obj):
        assert isinstance(obj, Ticket)
        parked.append(task)
        return lambda raise_cancel: lowlevel.Abort.SUCCEEDED

    async def waiter():
        lowlevel.current_task().foreign_yield_handler = handler
        return await Ticket()

    async def main():
        async with tether.open_nursery() as nursery:
            results = []

            async def run_waiter():
                results.append(await waiter())

            nursery.start_soon(run_waiter)
            await tether.testing.wait_all_tasks_blocked()
            assert len(parked) == 1
            lowlevel.reschedule(parked[0], outcome.Value("hello"))
        return results

    # The foreign awaitable receives the bare value, not an outcome object.
    assert tether.run(main) == ["hello"]


def test_reschedule_with_error_throws_at_the_yield_point():
    parked = []

    def handler(task, obj):
        parked.append(task)
        return lambda raise_cancel: lowlevel.Abort.SUCCEEDED

    async def waiter(log):
        lowlevel.current_task().foreign_yield_handler = handler
        try:
            await yield_ticket(Ticket())
        except LookupError as exc:
            log.append(str(exc))

    async def main():
        log = []
        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, log)
            await tether.testing.wait_all_tasks_blocked()
            lowlevel.reschedule(parked[0], outcome.Error(LookupError("thrown in")))
        return log

    assert tether.run(main) == ["thrown in"]


def test_cancelling_a_foreign_wait_calls_abort_and_raises_cancelled():
    aborted = []

    def handler(task, obj):
        def abort(raise_cancel):
            aborted.append(True)
            return lowlevel.Abort.SUCCEEDED

        return abort

    async def main():
        lowlevel.current_task().foreign_yield_handler = handler
        with tether.move_on_after(1) as scope:
            await Ticket()
        return scope.cancelled_caught

    clock = tether.testing.MockClock(autojump_threshold=0)
    assert tether.run(main, clock=clock) is True
    assert aborted == [True]


def test_handler_that_raises_throws_into_the_task():
    def handler(task, obj):
        raise TypeError(f"cannot wait for {obj!r}")

    async def main():
        lowlevel.current_task().foreign_yield_handler = handler
        with pytest.raises(TypeError, match="cannot wait for"):
            await Ticket()
        return "went on"

    assert tether.run(main) == "went on"


def test_abort_function_that_raises_crashes_the_run_not_the_canceller():
    log = []

    def bad_abort(raise_cancel):
        raise ValueError("broken primitive")

    async def victim():
        try:
            await lowlevel.wait_task_rescheduled(bad_abort)
        finally:
            log.append("victim unwound")

    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(victim)
            await tether.testing.wait_all_tasks_blocked()
            try:
                nursery.cancel_scope.cancel()
            except ValueError:  # pragma: no cover - the behaviour under test
                log.append("canceller got the abort error")
            log.append("canceller went on")
            # The victim cannot be woken (its abort failed); the crash must
            # still end the run instead of hanging it.

    with pytest.raises(tether.TetherInternalError) as info:
        tether.run(main, clock=tether.testing.MockClock(autojump_threshold=0))
    assert isinstance(info.value.__cause__, ValueError)
    assert log[:1] == ["canceller went on"]


# -- a stepper that starts the wait itself: lowlevel.ForeignWaitAbort ---------


class Started(lowlevel.ForeignWaitAbort):
    """An abort function yielded in place of a foreign awaitable: the wait
    was started by whoever yields it (here, the test)."""

    __slots__ = ("aborted",)

    def __init__(self):
        self.aborted = 0

    def __call__(self, raise_cancel):
        self.aborted += 1
        return lowlevel.Abort.SUCCEEDED


@types.coroutine
def start_foreign_wait(abort):
    return (yield abort)


def test_yielded_foreign_wait_abort_blocks_without_the_handler():
    handled = []
    abort = Started()

    async def main():
        results = []

        async def waiter():
            # A handler that must not be consulted for this yield.
            lowlevel.current_task().foreign_yield_handler = lambda task, obj: handled.append(obj)
            results.append(await start_foreign_wait(abort))

        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await tether.testing.wait_all_tasks_blocked()
            (task,) = nursery.child_tasks
            # Blocked, and (a foreign wait) it gets the plain value.
            lowlevel.reschedule(task, outcome.Value("plain"))
        return results

    assert tether.run(main) == ["plain"]
    assert handled == []
    assert abort.aborted == 0


def test_cancelled_foreign_wait_abort_is_called_as_the_abort_function():
    abort = Started()

    async def main():
        with tether.move_on_after(1) as scope:
            await start_foreign_wait(abort)
        return scope.cancelled_caught

    assert tether.run(main, clock=tether.testing.MockClock(autojump_threshold=0)) is True
    assert abort.aborted == 1


def test_foreign_wait_abort_base_class_cannot_abort():
    with pytest.raises(NotImplementedError, match="must implement __call__"):
        lowlevel.ForeignWaitAbort()(lambda: None)


class SharedAbort(lowlevel.ForeignWaitAbort):
    """One abort function for the waits of many tasks: the kernel aborts a
    wait through `abort_task`, which names the task."""

    __slots__ = ("aborted",)

    def __init__(self):
        self.aborted = []

    def abort_task(self, task, raise_cancel):
        self.aborted.append(task)
        return lowlevel.Abort.SUCCEEDED


def test_one_foreign_wait_abort_serves_many_tasks_through_abort_task():
    shared = SharedAbort()

    async def main():
        waiting = []

        async def waiter(name):
            waiting.append(lowlevel.current_task())
            try:
                await start_foreign_wait(shared)
            except tether.Cancelled:
                return
            raise AssertionError(f"{name} was not cancelled")

        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter, "first")
            nursery.start_soon(waiter, "second")
            await tether.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        return waiting

    waiting = tether.run(main)
    # Each wait was aborted once, and the kernel said whose it was (a call
    # of the object itself would have raised NotImplementedError).
    assert sorted(map(id, shared.aborted)) == sorted(map(id, waiting))
    assert len(waiting) == 2


def test_abort_task_calls_the_object_by_default():
    abort = Started()
    assert abort.abort_task(object(), lambda: None) is lowlevel.Abort.SUCCEEDED
    assert abort.aborted == 1


@pytest.mark.parametrize("value", [None, "sent"])
def test_resume_foreign_wait_sends_the_value_at_the_yield(value):
    # The stepping state's unchecked wakeup for a wait a stepper started
    # itself: the task runs again, the yield gets `value`, and the wait's
    # abort function is forgotten (a later cancel does not call it).
    abort = Started()

    async def main():
        results = []

        async def waiter():
            results.append(await start_foreign_wait(abort))
            await tether.sleep_forever()

        async with tether.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await tether.testing.wait_all_tasks_blocked()
            (task,) = nursery.child_tasks
            lowlevel.current_stepping_state().resume_foreign_wait(task, value)
            await tether.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        return results

    assert tether.run(main) == [value]
    assert abort.aborted == 0


def test_resume_foreign_wait_refuses_a_task_not_at_a_foreign_wait():
    async def main():
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep_forever)
            await tether.testing.wait_all_tasks_blocked()
            (task,) = nursery.child_tasks
            with pytest.raises(RuntimeError, match="is not at a foreign wait"):
                lowlevel.current_stepping_state().resume_foreign_wait(task)
            nursery.cancel_scope.cancel()

    tether.run(main)


def test_waits_of_a_known_foreign_wait_class_in_a_cancelled_scope_are_aborted():
    # The first object of a class goes through foreign_yield, the next ones
    # are blocked by the step loop itself: in a cancelled scope each wait is
    # aborted at once, by either path.
    class Fresh(Started):
        __slots__ = ()

    waits = [Fresh() for _ in range(3)]

    async def main():
        caught = []
        for abort in waits:
            with tether.CancelScope() as scope:
                scope.cancel()
                await start_foreign_wait(abort)
            caught.append(scope.cancelled_caught)
        return caught

    assert tether.run(main) == [True, True, True]
    assert [abort.aborted for abort in waits] == [1, 1, 1]


class _Unhashable(type):
    """A metaclass whose classes compare by name and so cannot be hashed."""

    def __eq__(cls, other):
        return getattr(other, "__name__", None) == cls.__name__

    __hash__ = None  # type: ignore[assignment]


def test_a_yielded_object_of_an_unhashable_class_is_refused_in_its_task():
    # The step loop looks classes up in a set: a class that cannot be hashed
    # must get the usual error in its task, not crash the run.
    class Odd(metaclass=_Unhashable):
        pass

    @types.coroutine
    def yield_odd():
        yield Odd()

    async def main():
        with pytest.raises(TypeError, match="yielded <"):
            await yield_odd()
        return "ran on"

    assert tether.run(main) == "ran on"


def test_a_foreign_wait_abort_of_an_unhashable_class_still_blocks():
    class OddAbort(Started, metaclass=type("UnhashableAbortMeta", (_Unhashable,), {})):
        __slots__ = ()

    async def main():
        aborts = [OddAbort(), OddAbort()]
        for abort in aborts:
            with tether.move_on_after(1):
                await start_foreign_wait(abort)
        return [abort.aborted for abort in aborts]

    clock = tether.testing.MockClock(autojump_threshold=0)
    assert tether.run(main, clock=clock) == [1, 1]


def test_the_run_forgets_the_foreign_wait_classes_it_saw():
    import gc
    import weakref

    def run_with_a_new_class():
        class Passing(Started):
            __slots__ = ()

        async def main():
            with tether.CancelScope() as scope:
                scope.cancel()
                await start_foreign_wait(Passing())

        tether.run(main)
        return weakref.ref(Passing)

    ref = run_with_a_new_class()
    gc.collect()
    assert ref() is None
