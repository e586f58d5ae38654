"""Where due timers run among the callbacks and task steps of a loop
iteration, at the start of a run (`run_until_complete`, `asyncio.run`, each
test of ``IsolatedAsyncioTestCase``) as later on: compared with asyncio.

asyncio's iteration runs what was ready when it began, then the timers due
by then; whatever those queue runs in the next iteration, before timers
that fall due in the meantime."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tether import aio
from tether.testing import MockClock


def first_turns(new_loop):
    log = []

    async def child(name):
        log.append(f"{name} step")

    async def main():
        loop = asyncio.get_running_loop()
        task = loop.create_task(child("child"))
        # Already due: asyncio runs it in the next iteration, after the
        # child's step and the callback queued now.
        loop.call_at(loop.time() - 1, log.append, "timer due when made")
        loop.call_soon(log.append, "callback")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await task
        log.append("main done")

    async def second():
        loop = asyncio.get_running_loop()
        task = loop.create_task(child("second child"))
        loop.call_soon(log.append, "second callback")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        await task

    loop = new_loop()
    try:
        loop.run_until_complete(main())
        # Due before the run starts: it runs in the first iteration, after
        # the main task's first step and before what that step queued.
        loop.call_later(-1, log.append, "timer due before the run")
        loop.run_until_complete(second())
    finally:
        loop.close()
    return log


def test_due_timers_take_their_turn_as_in_asyncio():
    expected = first_turns(asyncio.new_event_loop)
    assert expected.index("child step") < expected.index("timer due when made")
    assert expected.index("timer due before the run") < expected.index("second child step")
    assert first_turns(aio.new_event_loop) == expected


def later_turns(new_loop):
    """After the first iteration: a timer already due when a task step makes
    it runs after the tasks that step (or its batch) queued, as asyncio's
    next iteration runs them; a timer the run had been waiting for runs
    with the iteration that finds it due."""
    log = []

    async def child(name):
        log.append(name)

    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)
        for n in range(3):
            task = loop.create_task(child(f"child {n}"))
            loop.call_later(0, log.append, f"timer {n}")
            for _ in range(n):
                await asyncio.sleep(0)
            await task
        await asyncio.sleep(0.01)
        loop.call_soon(log.append, "callback")
        loop.call_later(0, log.append, "zero delay")
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    loop = new_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return log


def test_timers_made_later_take_their_turn_as_in_asyncio():
    expected = later_turns(asyncio.new_event_loop)
    assert expected.index("child 0") < expected.index("timer 0")
    assert later_turns(aio.new_event_loop) == expected


def test_cancelled_timers_leave_the_heap_once_they_are_most_of_it():
    # Cancelled timers wait in the heap until they come due, unless there
    # are more than 100 of them and they are more than half of it: then the
    # heap is rebuilt without them. The loop's heap is private; what a user
    # sees is that cancelling thousands of far timers does not keep them.
    async def main():
        loop = asyncio.get_running_loop()
        kept = [loop.call_later(3600, print) for _ in range(150)]
        far = [loop.call_later(3600 + i, print) for i in range(1000)]
        for handle in far[:150]:
            handle.cancel()
        # 150 of 1,150 are cancelled: under half, all stay.
        assert len(loop._timers) == 1150
        for handle in far[150:]:
            handle.cancel()
        # Past half of the heap: rebuilt without them, at the cancel() that
        # passes half (asyncio's loop does it at its next iteration).
        left = loop._timers
        assert len(left) < 300
        assert sum(timer.cancelled() for timer in left) <= len(left) / 2
        assert set(kept) <= set(left)
        # What is left is a heap, and the kept timers still fire in order.
        for handle in kept:
            handle.cancel()
        fired = []
        for delay in (0.03, 0.01, 0.02):
            loop.call_later(delay, fired.append, delay)
        await asyncio.sleep(0.05)
        assert fired == [0.01, 0.02, 0.03]

    aio.run(main())


def test_a_due_timer_cancelled_as_the_loop_stops_is_not_kept():
    # The timer task takes the due timers off the heap between two batches
    # and runs them at its next step. A task in the same batch, stepped
    # before it, cancels one of them and stops the loop (SystemExit): the
    # timer task then puts back what it took, for the next run, except the
    # cancelled timer, which must neither run nor stay in the heap (nor
    # leave the count of cancelled timers in the heap below zero).
    loop = aio.new_event_loop()
    fired = []

    async def main():
        timer = loop.call_later(0.01, fired.append, "cancelled timer")
        loop.call_later(0.01, fired.append, "other timer")
        # Bare yields until the timer task has taken them off the heap
        # (asyncio's `_scheduled` flag, which the loop clears then): this
        # task, queued by its last yield, steps before the timer task, which
        # that turn woke.
        while timer._scheduled:
            await asyncio.sleep(0)
        timer.cancel()
        raise SystemExit("stop here")

    try:
        try:
            loop.run_until_complete(main())
        except SystemExit:
            pass
        else:
            raise AssertionError("SystemExit did not stop the loop")
        assert fired == []
        assert all(not timer.cancelled() for timer in loop._timers)
        loop.run_until_complete(asyncio.sleep(0.02))
        assert fired == ["other timer"]
        assert loop._timer_cancelled_count == 0
    finally:
        loop.close()


def test_due_timers_survive_an_error_in_the_loops_own_code():
    # An error in the loop's own code (simulated with a trace hook, on entry
    # to the function that runs a batch of callbacks) ends the run through
    # the loop's nursery, which cancels the timer task. Woken by that, it
    # has just taken the timers due by then off the heap: they go back on
    # it, and run when the loop runs again.
    from tether.aio import _callbacks

    target = _callbacks._run_entries.__code__
    fired = []

    def trigger():
        fired.append("never")

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code is target:
            entries = frame.f_locals["entries"]
            if any(getattr(entry, "_callback", None) is trigger for entry in entries):
                raise RuntimeError("the loop's own code failed")
        return None

    clock = MockClock(autojump_threshold=0)
    loop = aio.new_event_loop(clock=clock)

    async def main():
        loop.call_later(0.005, fired.append, "timer")
        await asyncio.sleep(0)
        # One batch during which the timer falls due; then one in which the
        # error happens.
        loop.call_soon(clock.jump, 0.02)
        await asyncio.sleep(0)
        loop.call_soon(trigger)
        await asyncio.sleep(0.1)
        return "main done"

    try:
        main_task = loop.create_task(main())
        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            with pytest.raises(ExceptionGroup) as info:
                loop.run_until_complete(main_task)
        finally:
            sys.settrace(previous)
        assert info.group_contains(RuntimeError, match="the loop's own code failed")
        assert fired == []
        assert loop.run_until_complete(main_task) == "main done"
        assert "timer" in fired
    finally:
        loop.close()
