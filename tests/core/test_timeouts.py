"""move_on_*/fail_*, sleep*, on a MockClock (no real time passes)."""

import math
import signal

import pytest

import tether
import tether.testing
from tether import lowlevel
from tether.testing import MockClock


def run_mock(async_fn, *args):
    return tether.run(async_fn, *args, clock=MockClock(autojump_threshold=0))


def test_sleep_advances_virtual_time_exactly():
    async def main():
        times = [tether.current_time()]
        await tether.sleep(1.5)
        times.append(tether.current_time())
        await tether.sleep(0)
        times.append(tether.current_time())
        await tether.sleep_until(10)
        times.append(tether.current_time())
        await tether.sleep_until(3)  # in the past: returns without waiting
        times.append(tether.current_time())
        return times

    assert run_mock(main) == [0.0, 1.5, 1.5, 10.0, 10.0]


def test_sleep_rejects_negative_and_nan():
    async def main():
        with pytest.raises(ValueError):
            await tether.sleep(-1)
        with pytest.raises(ValueError):
            await tether.sleep_until(math.nan)
        return "ok"

    assert run_mock(main) == "ok"


def test_sleep_zero_is_a_cancel_point():
    async def main():
        with tether.CancelScope() as cs:
            cs.cancel()
            await tether.sleep(0)
            raise AssertionError("not reached")  # pragma: no cover
        return cs.cancelled_caught

    assert run_mock(main) is True


def test_sleep_until_past_deadline_is_still_a_cancel_point():
    async def main():
        await tether.sleep(5)
        with tether.CancelScope() as cs:
            cs.cancel()
            await tether.sleep_until(1)
            raise AssertionError("not reached")  # pragma: no cover
        return cs.cancelled_caught

    assert run_mock(main) is True


def test_sleep_forever_until_cancelled():
    async def main():
        with tether.move_on_after(12):
            await tether.sleep_forever()
        return tether.current_time()

    assert run_mock(main) == 12.0


def test_move_on_after_expires():
    log = []

    async def main():
        with tether.move_on_after(5) as cs:
            assert isinstance(cs, tether.CancelScope)
            await tether.sleep(10)
            log.append("not reached")  # pragma: no cover
        return cs.cancelled_caught, cs.cancel_called, tether.current_time()

    assert run_mock(main) == (True, True, 5.0)
    assert log == []


def test_move_on_after_not_expiring():
    async def main():
        with tether.move_on_after(5) as cs:
            await tether.sleep(2)
        await tether.sleep(10)
        return cs.cancelled_caught, cs.cancel_called, tether.current_time()

    assert run_mock(main) == (False, False, 12.0)


def test_move_on_after_deadline_counts_from_entry():
    async def main():
        cm = tether.move_on_after(5)
        await tether.sleep(3)
        with cm as cs:
            assert cs.deadline == 8.0
            await tether.sleep(100)
        return tether.current_time()

    assert run_mock(main) == 8.0


def test_move_on_at_absolute_deadline():
    async def main():
        await tether.sleep(2)
        with tether.move_on_at(7) as cs:
            assert cs.deadline == 7
            await tether.sleep(100)
        return cs.cancelled_caught, tether.current_time()

    assert run_mock(main) == (True, 7.0)


def test_move_on_at_past_deadline_cancels_immediately():
    async def main():
        await tether.sleep(2)
        with tether.move_on_at(1) as cs:
            await lowlevel.checkpoint()
            raise AssertionError("not reached")  # pragma: no cover
        return cs.cancelled_caught, tether.current_time()

    assert run_mock(main) == (True, 2.0)


def test_fail_after_raises_too_slow_at_deadline():
    log = []

    async def main():
        try:
            with tether.fail_after(4):
                await tether.sleep(10)
        except tether.TooSlowError:
            log.append(("too slow", tether.current_time()))
        return "done"

    assert run_mock(main) == "done"
    assert log == [("too slow", 4.0)]


def test_fail_after_in_time_does_not_raise():
    async def main():
        with tether.fail_after(4) as cs:
            await tether.sleep(3)
        return cs.cancelled_caught, tether.current_time()

    assert run_mock(main) == (False, 3.0)


def test_fail_at_raises_too_slow():
    async def main():
        with pytest.raises(tether.TooSlowError):
            with tether.fail_at(6):
                await tether.sleep_forever()
        return tether.current_time()

    assert run_mock(main) == 6.0


def test_fail_after_propagates_body_error_not_too_slow():
    class Boom(Exception):
        pass

    async def main():
        with tether.fail_after(4):
            await tether.sleep(1)
            raise Boom

    with pytest.raises(Boom):
        run_mock(main)


def test_fail_after_escaping_body_cancelled_only_when_own_deadline():
    async def main():
        # outer move_on expires first: the inner fail_after must not raise
        with tether.move_on_after(2) as outer:
            with tether.fail_after(5):
                await tether.sleep(10)
        return outer.cancelled_caught, tether.current_time()

    assert run_mock(main) == (True, 2.0)


def test_timeout_argument_validation():
    async def main():
        with pytest.raises(ValueError):
            with tether.move_on_after(-1):
                pass  # pragma: no cover
        with pytest.raises(ValueError):
            with tether.fail_after(-1):
                pass  # pragma: no cover
        with pytest.raises(ValueError):
            with tether.move_on_after(math.nan):
                pass  # pragma: no cover
        with pytest.raises(ValueError):
            with tether.move_on_at(math.nan):
                pass  # pragma: no cover
        # The messages name the argument.
        with pytest.raises(ValueError, match=r"^`seconds` must be non-negative$"):
            await tether.sleep(-1)
        with pytest.raises(ValueError, match=r"^`seconds` must not be NaN$"):
            tether.fail_after(math.nan)
        with pytest.raises(ValueError, match=r"^deadline must not be NaN$"):
            await tether.sleep_until(math.nan)
        with pytest.raises(TypeError, match="`seconds` must be a number"):
            tether.move_on_after("3")
        with pytest.raises(TypeError, match="deadline must be a number"):
            tether.fail_at(None)
        return "ok"

    assert run_mock(main) == "ok"


def test_nested_timeouts_earliest_wins():
    async def main():
        with tether.move_on_after(10) as outer:
            with tether.move_on_after(3) as inner:
                await tether.sleep(100)
            t_inner = tether.current_time()
            await tether.sleep(100)
        return t_inner, tether.current_time(), inner.cancelled_caught, outer.cancelled_caught

    assert run_mock(main) == (3.0, 10.0, True, True)


def test_zero_timeout_cancels_first_checkpoint():
    async def main():
        with tether.move_on_after(0) as cs:
            await lowlevel.checkpoint()
            raise AssertionError("not reached")  # pragma: no cover
        return cs.cancelled_caught, tether.current_time()

    assert run_mock(main) == (True, 0.0)


def test_many_sleepers_wake_in_deadline_order():
    order = []

    async def sleeper(t):
        await tether.sleep(t)
        order.append((t, tether.current_time()))

    async def main():
        async with tether.open_nursery() as nursery:
            for t in (5, 1, 4, 2, 3, 0.5):
                nursery.start_soon(sleeper, t)

    run_mock(main)
    assert order == [(t, t) for t in (0.5, 1, 2, 3, 4, 5)]


def test_many_scopes_exited_before_their_deadlines_leave_the_right_one():
    # Thousands of deadlines removed before they fire (scopes exited, or
    # given another deadline) must not disturb the ones left.
    async def main():
        with tether.move_on_after(30) as outer:
            for i in range(2000):
                with tether.move_on_after(1 + i % 7) as scope:
                    scope.deadline += 1
                    await lowlevel.checkpoint()
            left = lowlevel.current_statistics().seconds_to_next_deadline
            await tether.sleep_forever()
        gone = lowlevel.current_statistics().seconds_to_next_deadline
        return left, outer.cancelled_caught, tether.current_time(), gone

    assert run_mock(main) == (30.0, True, 30.0, math.inf)


def test_a_scope_deadline_equal_to_a_sleeps_own_raises_from_the_sleep():
    # The scope's deadline is set while the sleep waits, to the very time it
    # ends: as in trio (where a sleep is a wait in a scope of its own), the
    # sleep raises Cancelled instead of returning.
    async def main():
        log = []
        with tether.CancelScope() as scope:

            async def set_deadline():
                await tether.sleep(1)
                scope.deadline = 5

            async with tether.open_nursery() as nursery:
                nursery.start_soon(set_deadline)
                try:
                    await tether.sleep_until(5)
                    log.append("sleep returned")
                except tether.Cancelled:
                    log.append("sleep raised")
                    raise
        return log, scope.cancelled_caught, tether.current_time()

    assert run_mock(main) == (["sleep raised"], True, 5.0)


def test_a_sleeper_whose_scope_is_cancelled_before_it_resumes_raises_from_the_sleep():
    # Both timers fire together; the task that runs first cancels the
    # other's scope before that one resumes. Its sleep raises, as a wait in
    # a scope of its own would (the cancellation is visible when it resumes).
    async def main():
        log = []
        async with tether.open_nursery() as nursery:
            with tether.CancelScope() as scope:

                async def canceller():
                    await tether.sleep(1)
                    scope.cancel()

                nursery.start_soon(canceller)
                await tether.testing.wait_all_tasks_blocked()
                try:
                    await tether.sleep(1)
                    log.append("sleep returned")
                except tether.Cancelled:
                    log.append("sleep raised")
                    raise
        return log, scope.cancelled_caught

    assert run_mock(main) == (["sleep raised"], True)


def test_a_cancelled_sleep_leaves_no_timer_behind():
    async def main():
        with tether.move_on_after(1):
            await tether.sleep(50)
        after_cancel = lowlevel.current_statistics().seconds_to_next_deadline
        async with tether.open_nursery() as nursery:
            nursery.start_soon(tether.sleep, 7)
            await tether.testing.wait_all_tasks_blocked()
            while_sleeping = lowlevel.current_statistics().seconds_to_next_deadline
        return after_cancel, while_sleeping, tether.current_time()

    assert run_mock(main) == (math.inf, 7.0, 8.0)


def test_many_scopes_and_sleeps_exited_early_leave_the_right_deadline():
    # Thousands of deadlines removed before they fire (scopes exited, sleeps
    # cancelled) must not disturb the ones left.
    async def main():
        woke = []

        async def sleeper(t):
            await tether.sleep(t)
            woke.append((t, tether.current_time()))

        async with tether.open_nursery() as nursery:
            for t in (300, 200, 100):
                nursery.start_soon(sleeper, t)
            for i in range(1000):
                with tether.move_on_after(1 + i % 7):
                    await lowlevel.checkpoint()
                with tether.move_on_after(0.5):
                    await tether.sleep(1 + i % 5)
        return woke, lowlevel.current_statistics().seconds_to_next_deadline

    assert run_mock(main) == ([(100, 100.0), (200, 200.0), (300, 300.0)], math.inf)


def test_a_sleeping_task_rescheduled_by_a_stranger_gets_an_error():
    async def main():
        errors = []

        async def sleeper():
            try:
                await tether.sleep(10)
            except RuntimeError as exc:
                errors.append(str(exc))

        async with tether.open_nursery() as nursery:
            nursery.start_soon(sleeper)
            await tether.testing.wait_all_tasks_blocked()
            (task,) = nursery.child_tasks
            lowlevel.reschedule(task)
        # Its timer went with it: nothing is left to wait for.
        return errors, lowlevel.current_statistics().seconds_to_next_deadline

    errors, left = run_mock(main)
    assert errors == [
        "a task in tether.sleep_until() was rescheduled by something other than its "
        "timer or a cancellation"
    ]
    assert left == math.inf


def test_ctrl_c_reaches_the_main_task_while_it_sleeps():
    @lowlevel.enable_ki_protection
    def ctrl_c_in_protected_code():
        signal.raise_signal(signal.SIGINT)

    async def main():
        ctrl_c_in_protected_code()
        await tether.sleep(10)

    with pytest.raises(KeyboardInterrupt):
        run_mock(main)
